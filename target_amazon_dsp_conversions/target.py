"""The Singer target: settings at start-up, records to the run, STATE through the ledger."""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any

from singer_sdk import Target
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.plugin_base import _ConfigInput

from target_amazon_dsp_conversions.errors import UserError
from target_amazon_dsp_conversions.pipeline import Run
from target_amazon_dsp_conversions.reader import SafeSingerReader
from target_amazon_dsp_conversions.settings import CONFIG_SCHEMA, Settings
from target_amazon_dsp_conversions.sinks import ConversionSink


class Terminated(UserError):
    """SIGTERM or SIGINT: stop, keep what was acknowledged, exit non-zero."""

    def __init__(self, signum: int) -> None:
        """Remember the signal for the exit status."""
        super().__init__(
            f"stopped by {signal.Signals(signum).name}; STATE covers only acknowledged records"
        )
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
        super().__init__(*args, **kwargs)
        self.settings = Settings.from_config(self.config)
        self.run = Run(self.settings, self._write_state_message)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # Our checks first: they name the setting in one line, as users expect.
        Settings.from_config(self.config)
        return super()._validate_config(raise_errors=raise_errors)

    def _process_state_message(self, message_dict: dict) -> None:
        # The SDK would emit STATE after a drain; ours waits for Amazon's answers (ledger).
        self._assert_line_requires(message_dict, requires={"value"})
        self.run.on_state(message_dict["value"])

    def process_endofpipe(self) -> None:
        """End of input: flush, wait for every answer, emit the last STATE, report."""
        super().process_endofpipe()
        self.run.finish()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        raise Terminated(signum)

    def stop_after(self, error: BaseException) -> None:
        """The input loop stopped early: deliver or abandon what was read, then report."""
        deliver_what_was_read = not isinstance(error, (Terminated, KeyboardInterrupt)) and (
            self.run.delivery.failure is None
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
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        try:
            target.listen(file_input)
        except BaseException as error:
            target.stop_after(error)
            raise
        sys.stdout.flush()
