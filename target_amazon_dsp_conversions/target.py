"""The Singer target: settings at start-up, records to the run, STATE through the ledger."""

from __future__ import annotations

import _thread
import gc
import json
import logging
import signal
import sys
from decimal import Decimal
from types import FrameType
from typing import Any

from singer_sdk import Target
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.plugin_base import _ConfigInput

from target_amazon_dsp_conversions.errors import (
    DeliveryError,
    InputError,
    Problem,
    SignInError,
    UserError,
)
from target_amazon_dsp_conversions.pipeline import ResolvedKind, Run
from target_amazon_dsp_conversions.reader import SafeSingerReader
from target_amazon_dsp_conversions.settings import CONFIG_SCHEMA, Settings
from target_amazon_dsp_conversions.sinks import ConversionSink
from target_amazon_dsp_conversions.workers import (
    EventKind,
    StreamSpec,
    WorkerPool,
    WorkerSettings,
)

logger = logging.getLogger("target-amazon-dsp-conversions")
GIL_SWITCH_INTERVAL_SECONDS = 0.02
# Events waiting for Amazon's answer are many small objects that live a while: with the
# default threshold (700) the young generation is collected ~3 times per thousand records,
# each pass re-examining the survivors; this many between passes costs a third of that.
GC_YOUNG_THRESHOLD = 20_000


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


class TargetAmazonDSPConversions(Target):
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Check the settings and prepare the run before any input is read."""
        self.stop_signal: int | None = None  # the handlers are installed by super().__init__
        self._identity_sinks: dict[str, tuple[Any, Any, ConversionSink | None]] = {}
        self._converted_per_stream: dict[str, int] = {}
        self._event_kinds: list[ResolvedKind] = []
        super().__init__(*args, **kwargs)
        self.settings = Settings.from_config(self.config)
        self.run = Run(self.settings, self._write_state_message)
        reader = self.message_reader
        if isinstance(reader, SafeSingerReader):
            reader.check_stop = self._raise_if_stopping
            reader.parallel = self

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # Our checks first: they name the setting in one line, as users expect.
        Settings.from_config(self.config)
        return super()._validate_config(raise_errors=raise_errors)

    def _process_state_message(self, message_dict: dict) -> None:
        # The SDK would emit STATE after a drain; ours waits for Amazon's answers (ledger).
        self._assert_line_requires(message_dict, requires={"value"})
        self.run.on_state(message_dict["value"])

    def _process_record_message(self, message_dict: dict) -> None:
        # A RECORD whose record is not an object cannot be mapped (the SDK would crash on it):
        # it goes to the rejects file like any record that cannot be sent.
        record = message_dict.get("record")
        if "record" in message_dict and not isinstance(record, dict):
            self._assert_line_requires(message_dict, requires={"stream"})
            self.run.reject_unreadable(
                str(message_dict["stream"]),
                record,
                Problem("INVALID_RECORD", "the RECORD message's record is not a JSON object"),
            )
            return
        sink = self._identity_sink(message_dict)
        if sink is None or not isinstance(record, dict):
            super()._process_record_message(message_dict)
            return
        # The SDK's steps for a stream without maps or flattening, minus the record copy and
        # the identity transform: the message dict is ours and is not used again.
        context: dict = {}
        sink._remove_sdc_metadata_from_record(record)  # noqa: SLF001
        sink._validate_and_parse(record)  # noqa: SLF001
        sink._singer_validate_message(record)  # noqa: SLF001
        sink.tally_record_read()
        sink.process_record(record, context)
        sink.record_counter_metric.increment()
        if sink.is_full:
            self.drain_one(sink)
        self._handle_max_record_age()

    # Worker processes (reader.ParallelConversion): records of streams without stream maps.

    def start_worker_pool(self) -> WorkerPool | None:
        """Worker processes for this run, unless `worker_processes` is 0."""
        count = self.settings.worker_processes
        if not count:
            return None
        settings = self.settings
        logger.info("Converting records in %d worker processes", count)
        try:
            return WorkerPool(
                count,
                WorkerSettings(
                    api=settings.api,
                    region=settings.region,
                    mapping=dict(settings.mapping),
                    defaults=dict(settings.defaults),
                    source=settings.source,
                    advertiser_id=settings.advertiser_id,
                    user_identifier_type=settings.user_identifier_type,
                ),
            )
        except (OSError, ValueError) as exc:  # ValueError: no pass_fds (Windows)
            logger.warning("Cannot start worker processes (%s); converting in one process", exc)
            return None

    def worker_streams(self) -> dict[str, StreamSpec]:
        """Streams whose records need nothing from the SDK but validation, and their specs."""
        streams: dict[str, StreamSpec] = {}
        for name in self._sinks_active:
            sink = self._identity_sink_of(name)
            if sink is not None:
                schema = sink.schema if sink.validates else None
                streams[name] = (schema, tuple(sink.key_properties))
        return streams

    def start_converted_block(self, kinds: list[EventKind]) -> None:
        """Resolve what the block's events have in common once (definitions, for the DSP)."""
        self._event_kinds = [self.run.event_kind(kind) for kind in kinds]

    def process_converted(self, lines: list[bytes], results: list[tuple[Any, ...]]) -> None:
        """Queue (or reject) records a worker converted; the SDK's counts follow per block."""
        per_stream = self.run.process_converted(lines, results, self._event_kinds)
        counts = self._converted_per_stream
        for stream, records in per_stream.items():
            counts[stream] = counts.get(stream, 0) + records

    def converted_block_done(self) -> None:
        """The SDK's bookkeeping of the records of a block, as it does for each record."""
        for stream, count in self._converted_per_stream.items():
            sink = self._sinks_active[stream]
            sink.tally_record_read(count)
            sink.record_counter_metric.increment(count)
            if sink.is_full:
                self.drain_one(sink)
        self._converted_per_stream.clear()
        self._handle_max_record_age()

    def _identity_sink(self, message_dict: dict) -> ConversionSink | None:
        """The stream's sink when its only map is the identity, else None (the SDK's path)."""
        if "record" not in message_dict or "stream" not in message_dict:
            return None  # the SDK names what is missing
        return self._identity_sink_of(message_dict["stream"])

    def _identity_sink_of(self, stream_name: str) -> ConversionSink | None:
        maps = self.mapper.stream_maps.get(stream_name)
        sink = self._sinks_active.get(stream_name)
        # Decided once per (maps, sink) pair: a SCHEMA message replaces both objects.
        known = self._identity_sinks.get(stream_name)
        if known is not None and known[0] is maps and known[1] is sink:
            return known[2]
        identity = (
            maps is not None
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream_name
            and not (maps[0].flattening_options and maps[0].flattening_enabled)
            and type(sink) is ConversionSink
            and not sink.include_sdc_metadata_properties
        )
        result = sink if identity and isinstance(sink, ConversionSink) else None
        self._identity_sinks[stream_name] = (maps, sink, result)
        return result

    def _process_batch_message(self, message_dict: dict) -> None:  # noqa: ARG002
        # BATCH names files for the target to read; this target does not declare the
        # capability, and reading paths chosen by the input is not something to do silently.
        raise InputError(
            "BATCH messages are not supported; run the tap without batch mode "
            "(RECORD messages only)"
        )

    def process_endofpipe(self) -> None:
        """End of input: flush, wait for every answer, emit the last STATE, report."""
        super().process_endofpipe()
        self.run.finish()

    def _write_state_message(self, state: dict) -> None:
        # Called from upload threads (under the ledger's lock, so lines never interleave).
        # The reader parses numbers as Decimal; the tap's STATE goes back out as numbers.
        sys.stdout.write(json.dumps(state, default=_json_number) + "\n")
        sys.stdout.flush()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        """SIGTERM/SIGINT: stop at the next safe point; never tear a record's bookkeeping.

        Raising here at any bytecode could drop a batch between the batcher and the pool, so
        the stop is only raised at once while the main thread is blocked reading input;
        otherwise the reader raises it before the next line. Retry waits end at once.
        """
        if self.stop_signal is None:
            self.stop_signal = signum
            run = getattr(self, "run", None)
            if run is not None:
                # Event.set takes a lock the interrupted main thread may hold: set it elsewhere.
                _thread.start_new_thread(run.stopping.set, ())
        reader = getattr(self, "message_reader", None)
        if reader is not None and getattr(reader, "waiting_for_input", False):
            raise Terminated(signum)

    def _raise_if_stopping(self) -> None:
        if self.stop_signal is not None:
            raise Terminated(self.stop_signal)

    def stop_after(self, error: BaseException) -> None:
        """The input loop stopped early: deliver or abandon what was read, then report."""
        stopped = self.stop_signal is not None or isinstance(error, (Terminated, KeyboardInterrupt))
        deliver_what_was_read = not stopped and self.run.delivery.failure is None
        if stopped:
            logger.warning(
                "Stopping on %s: requests in flight are finished, nothing new is sent; STATE "
                "covers only acknowledged records",
                signal.Signals(self.stop_signal).name if self.stop_signal else "interrupt",
            )
        self.run.abort(flush=deliver_what_was_read)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: Any = None,
    ) -> None:
        """The SDK's invoke, plus an orderly stop when input or delivery fails mid-run."""
        super(Target, cls).invoke(about=about, about_format=about_format)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        # The reading thread does nearly all the work; upload threads mostly wait on sockets.
        # With the default 5 ms they take the GIL back for every answer and the handovers
        # cost ~8 % of a run; 20 ms keeps that gain without leaving slow requests' slots idle.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
        # What is loaded by now lives as long as the process: out of the collector's passes.
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        try:
            target.listen(file_input)
        except BaseException as error:
            target.stop_after(error)
            undelivered = target.run.stats.records_undelivered
            if target.stop_signal is not None:
                # Whatever the stop cut short (a send, a wait), the cause is the signal.
                raise Terminated(target.stop_signal, undelivered) from None
            if undelivered and isinstance(error, (DeliveryError, SignInError)):
                # The one line the user sees says what the failure cost and what to do.
                raise type(error)(f"{error}; {_not_delivered(undelivered)}") from None
            raise
        sys.stdout.flush()
        if target.stop_signal is not None:
            # The signal came after the last line was read: everything may be settled, but a
            # stopped run still exits non-zero, as its caller asked it to stop.
            raise Terminated(target.stop_signal, target.run.stats.records_undelivered)


def _not_delivered(count: int) -> str:
    return (
        f"{count} record{'s' if count != 1 else ''} not delivered (listed in the log and the "
        "report); re-run from the last STATE to resend them"
    )


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
