"""The Singer target: settings at start-up, input to the run, STATE through the ledger."""

from __future__ import annotations

import _thread
import json
import logging
import signal
import sys
from collections.abc import Iterable
from decimal import Decimal
from types import FrameType
from typing import Any

from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.mapper import SameRecordTransform

from target_amazon_dsp_conversions.config_sources import environment_config
from target_amazon_dsp_conversions.converter import BlockResults, Converter, StreamSpec
from target_amazon_dsp_conversions.errors import DeliveryError, SignInError, UserError
from target_amazon_dsp_conversions.reader import SafeSingerReader
from target_amazon_dsp_conversions.run import STOP_GRACE_SECONDS, Run
from target_amazon_dsp_conversions.sdk_internals import TargetWithAckedState
from target_amazon_dsp_conversions.settings import CONFIG_SCHEMA
from target_amazon_dsp_conversions.sinks import ConversionSink
from target_amazon_dsp_conversions.startup_checks import CheckedConfig, check_config
from target_amazon_dsp_conversions.threads import STOP_SIGNALS, stop_signals_blocked
from target_amazon_dsp_conversions.workers import WorkerPool

logger = logging.getLogger("target-amazon-dsp-conversions")


class Terminated(UserError):  # noqa: N818 - users read it as 'terminated by a signal'
    """SIGTERM or SIGINT: stop, keep what was acknowledged, exit non-zero."""

    def __init__(self, signum: int, undelivered: int = 0) -> None:
        """Remember the signal for the exit status."""
        name = signal.Signals(signum).name
        message = f"stopped by {name}; STATE covers only acknowledged records"
        if undelivered:
            message += f"; {_not_delivered(undelivered)}"
        super().__init__(message)
        self.signum = signum


class TargetAmazonDSPConversions(TargetWithAckedState):
    """Uploads conversions to Amazon DSP (Conversions API) or the Amazon Ads Events API."""

    name = "target-amazon-dsp-conversions"
    package_name = "target-amazon-dsp-conversions"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = ConversionSink
    message_reader_class = SafeSingerReader
    capabilities = [  # noqa: RUF012 - the SDK declares it a plain class attribute
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        TargetCapabilities.VALIDATE_RECORDS,
    ]

    def __init__(
        self,
        *,
        config: dict[str, Any] | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        checked: CheckedConfig | None = None,
    ) -> None:
        """Check the settings and prepare the run before any input is read. Settings from the
        environment are read as text and checked as config files are (`startup_checks.py`).
        `checked`: what the command line's check of this config found, so it is not checked
        again."""
        if parse_env_config:
            config = {**(config or {}), **environment_config()}
            checked = None
        self._checked = checked
        super().__init__(config=config, parse_env_config=False, validate_config=validate_config)
        assert self._checked is not None  # check_settings ran in the SDK's __init__
        self.settings = self._checked.settings
        self.run = Run(
            self.settings,
            self.emit_state,
            self._checked.converter,
            batch_size_rows=self.config.get("batch_size_rows"),
        )
        self.converter: Converter = self.run.converter
        # The SDK drains sinks on a pool of its own threads, which would not block the stop
        # signals (`threads.py`); ours hold nothing to drain (the run delivers), so one at a time.
        self.max_parallelism = 1
        self.stop_signal: int | None = None
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # The main thread takes the stop signals (`threads.py`), even if its parent blocked them.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if isinstance(self.message_reader, SafeSingerReader):
            self.message_reader.attach(self)

    # The SDK's messages (sdk_internals.TargetWithAckedState).

    def check_settings(self) -> dict[str, Any]:
        """One line naming a bad setting, before the SDK's own check; the SDK gets each value
        read as its kind (text from the environment or an undeclared Meltano setting)."""
        if self._checked is None:
            self._checked = check_config(self.config)
        return self._checked.config

    def on_state(self, state: Any) -> None:
        """Emitted once every record before it is settled."""
        self.run.on_state(state)

    def process_endofpipe(self) -> None:
        """End of input: flush, wait for every answer, emit the last STATE, report."""
        super().process_endofpipe()
        try:
            self.run.finish()
        except BaseException as error:  # noqa: BLE001 - said as the user should read it
            raise self._failure(error) from None
        if self.stop_signal is not None:
            # The signal came after the last line was read: everything may be settled, but a
            # stopped run still exits non-zero, as its caller asked it to stop.
            raise Terminated(self.stop_signal, self.run.stats.records_undelivered)

    def emit_state(self, state: Any) -> None:
        """Write a STATE; called from upload threads, under the ledger's lock, so lines never
        interleave. The reader parses numbers as Decimal; they go back out as numbers."""
        sys.stdout.write(json.dumps(state, default=_json_number) + "\n")
        sys.stdout.flush()

    # What the reader needs (reader.InputHandler).

    def line_streams(self, names: Iterable[str]) -> dict[str, StreamSpec]:
        """Streams whose records need nothing from the SDK (no stream maps, no flattening):
        they are converted from their input lines."""
        streams: dict[str, StreamSpec] = {}
        for name in names:
            if not self.sink_exists(name):
                continue
            sink = self.get_sink(name)
            maps = self.mapper.stream_maps.get(name) or []
            identity = (
                len(maps) == 1
                and type(maps[0]) is SameRecordTransform
                and maps[0].stream_alias == name
                and not maps[0].flattening_enabled
            )
            if identity and isinstance(sink, ConversionSink):
                streams[name] = sink.spec
        return streams

    def start_worker_pool(self) -> WorkerPool | None:
        """Worker processes for this run, unless `worker_processes` is 0."""
        count = self.settings.worker_processes
        if not count:
            return None
        logger.info("Converting records in %d worker processes", count)
        try:
            return WorkerPool(count, self.settings.conversion())
        except (OSError, ValueError) as exc:  # ValueError: no pass_fds (Windows)
            logger.warning("Cannot start worker processes (%s); converting in one process", exc)
            return None

    def settle(self, lines: list[bytes], results: BlockResults) -> None:
        """Records converted from their lines: settled by the run, counted as the SDK would."""
        for stream, count in self.run.settle(lines, results).items():
            if self.sink_exists(stream):
                sink = self.get_sink(stream)
                sink.tally_record_read(count)
                sink.record_counter_metric.increment(count)

    def check_stop(self) -> None:
        """Raise Terminated once a stop signal came."""
        if self.stop_signal is not None:
            raise Terminated(self.stop_signal)

    def input_started(self) -> None:
        """Reading begins: the run's progress lines and batch timer start."""
        self.run.start()

    def input_stopped(self, error: BaseException) -> BaseException:
        """Reading stopped early: deliver (or abandon) what was read, report; the error the
        user sees."""
        stopped = self.stop_signal is not None or isinstance(error, (Terminated, KeyboardInterrupt))
        if stopped:
            logger.warning(
                "Stopping on %s: requests in flight are finished, nothing new is sent; STATE "
                "covers only acknowledged records",
                signal.Signals(self.stop_signal).name if self.stop_signal else "interrupt",
            )
        what = str(error).splitlines()[0] if str(error) else type(error).__name__
        self.run.abort(flush=not stopped and self.run.delivery.failure is None, failure=what)
        return self._failure(error)

    # Internals.

    def _failure(self, error: BaseException) -> BaseException:
        undelivered = self.run.stats.records_undelivered
        if self.stop_signal is not None:
            # Whatever the stop cut short (a send, a wait), the cause is the signal.
            return Terminated(self.stop_signal, undelivered)
        if undelivered and isinstance(error, (DeliveryError, SignInError)):
            # The one line the user sees says what the failure cost and what to do.
            return UserError(f"{error}; {_not_delivered(undelivered)}")
        return error

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        """SIGTERM/SIGINT: stop at the next safe point; never tear a record's bookkeeping.

        Raising here at any bytecode could drop a batch between the batcher and the pool, so
        the stop is only raised at once while the main thread is blocked reading input;
        otherwise the reader raises it before the next line. Nothing new is sent, retry waits
        end at once, and requests still in flight are cut off after a grace of a few seconds
        (`Run.stop`), at once on a second signal.
        """
        grace = STOP_GRACE_SECONDS if self.stop_signal is None else 0.0
        self.stop_signal = self.stop_signal or signum
        # Event.set takes a lock the interrupted main thread may hold: stop from elsewhere.
        with stop_signals_blocked():
            _thread.start_new_thread(self.run.stop, (), {"grace": grace})
        reader = self.message_reader
        if isinstance(reader, SafeSingerReader) and reader.waiting_for_input:
            raise Terminated(signum)


def _not_delivered(count: int) -> str:
    return (
        f"{count} record{'s' if count != 1 else ''} not delivered (listed in the log and the "
        "report); re-run from the last STATE to resend them"
    )


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
