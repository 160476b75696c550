"""Console entry point: user errors print one line and exit non-zero, without a traceback.

The command line is the Singer SDK's (`--config`, `--about`, `--format`, `--input`, `--version`),
with the config read and checked here before the target starts: config files and the
environment read as the user wrote them (`config_sources.load_config`: a file that cannot be used
is one line, not the SDK's traceback), then `startup_checks.check_config` (unknown names, each
value read as its kind, `defaults`), once: the target takes what it found. The target gets the
checked config, with each value of the kind its JSON schema says, so the SDK's own check of it
finds nothing to say.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import gc
import re
import signal
import sys
from typing import IO, Any

import click
from singer_sdk.about import AboutInfo, MarkdownFormatter
from singer_sdk.exceptions import (
    ConfigValidationError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.config_sources import load_config
from target_amazon_dsp_conversions.errors import UserError
from target_amazon_dsp_conversions.startup_checks import check_config
from target_amazon_dsp_conversions.target import TargetAmazonDSPConversions, Terminated

PROGRAM = "target-amazon-dsp-conversions"
GIL_SWITCH_INTERVAL_SECONDS = 0.02
# Events waiting for Amazon's answer are many small objects that live a while: with the
# default threshold (700) the young generation is collected ~3 times per thousand records,
# each pass re-examining the survivors; this many between passes costs a third of that.
GC_YOUNG_THRESHOLD = 20_000
# `--help` ends with these ("\b": click keeps the lines as they are).
COMPANION_COMMANDS = """\b
Companion commands:
  target-amazon-dsp-conversions-auth login   sign in with Amazon, get a refresh token
  target-amazon-dsp-conversions-auth check   check sign-in, profile, advertiser, definitions
  target-amazon-dsp-conversions-replay       turn a fixed rejects file into input again
In Meltano: meltano invoke target-amazon-dsp-conversions:login (or :check, :replay)"""
USER_ERRORS = (
    UserError,
    InvalidInputLine,
    RecordsWithoutSchemaException,
    MissingKeyPropertiesError,
)


def main() -> None:
    """Run the target."""
    # The reading thread does nearly all the work; upload threads mostly wait on sockets.
    # With the default 5 ms they take the GIL back for every answer and the handovers
    # cost ~8 % of a run; 20 ms keeps that gain without leaving slow requests' slots idle.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    # What is loaded by now lives as long as the process: out of the collector's passes.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    redaction.install()
    # `kill -USR1 <pid>` prints where each thread is (files, lines and functions; no values):
    # what a run that seems stuck is waiting for.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        status = command().main(standalone_mode=False)
    except Terminated as exc:
        _fail(str(exc), 128 + exc.signum)
    except USER_ERRORS as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 1)
    except ConfigValidationError as exc:
        _fail(_sdk_config_error(exc), 1)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except (KeyboardInterrupt, click.Abort):  # click turns a Ctrl-C into Abort
        _fail("interrupted", 130)
    sys.exit(status if isinstance(status, int) else 0)


def command() -> click.Command:
    """The SDK's command line, with `--config` read by `load_config` (a dict instead of the
    SDK's own reading) and the run started by `_run`."""
    cli = TargetAmazonDSPConversions.cli
    (config,) = [param for param in cli.params if param.name == "config"]
    config.callback = _read_config
    cli.callback = _run
    cli.help = (
        "Upload conversions from Singer input (stdin, or --input) to Amazon Ads: the DSP "
        "Conversions API or the Events API."
    )
    cli.epilog = COMPANION_COMMANDS
    return cli


def _read_config(_context: click.Context, _option: click.Parameter, values: tuple[str, ...]) -> Any:
    """`--config FILE` (repeatable; later files win) and `--config ENV` (the environment
    wins over files), as the SDK reads them."""
    return load_config(values)


def _run(
    *, about: bool, about_format: str | None, config: dict[str, Any], file_input: IO[str] | None
) -> None:
    """What the SDK's `Target.invoke` does, with the config checked first."""
    target_class = TargetAmazonDSPConversions
    if about:
        target_class.print_about(about_format)
        return
    target_class.print_version(print_fn=target_class.logger.info)
    checked = check_config(config)
    try:
        target = target_class(
            config=checked.config, parse_env_config=False, validate_config=True, checked=checked
        )
    except ConfigValidationError as exc:  # the SDK's check of what ours let through
        raise UserError(_sdk_config_error(exc)) from None
    target.listen(file_input)


_SDK_ERROR = re.compile(r"^(?P<problem>.*) in config(?P<path>(\[[^\]]+\])+)$")


def _sdk_config_error(error: ConfigValidationError) -> str:
    """The first error of the SDK's JSON-schema check, worded as ours: "5 is not valid ... in
    config['stream_maps']['orders']" -> "setting 'stream_maps.orders': 5 is not valid ..."."""
    first = error.errors[0] if error.errors else str(error)
    found = _SDK_ERROR.match(first)
    if found is None:
        return first
    path = ".".join(part.strip("'\"") for part in found["path"][1:-1].split("]["))
    return f"setting '{path}': {found['problem']}"


class _MarkdownAbout(MarkdownFormatter, format_name="markdown"):
    """`--about --format=markdown`: the SDK's, with a `|` in a description (`Atzr|...`) escaped,
    so that it does not split the settings table (registered for "markdown" on import)."""

    def format_about(self, about_info: AboutInfo) -> str:
        """The SDK's markdown of the escaped settings."""
        settings = _escape_pipes(about_info.settings)
        return super().format_about(dataclasses.replace(about_info, settings=settings))


def _escape_pipes(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            key: value.replace("|", "\\|")
            if key == "description" and isinstance(value, str)
            else _escape_pipes(value)
            for key, value in schema.items()
        }
    return schema


def _fail(message: str, status: int) -> None:
    print(f"{PROGRAM}: error: {redaction.redact(message)}", file=sys.stderr)  # noqa: T201
    sys.exit(status)


if __name__ == "__main__":
    main()
