"""Console entry point: user errors print one line and exit non-zero, without a traceback."""

from __future__ import annotations

import gc
import sys

import click
from singer_sdk.exceptions import (
    ConfigValidationError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_amazon_dsp_conversions.errors import UserError
from target_amazon_dsp_conversions.target import TargetAmazonDSPConversions, Terminated

PROGRAM = "target-amazon-dsp-conversions"
GIL_SWITCH_INTERVAL_SECONDS = 0.02
# Events waiting for Amazon's answer are many small objects that live a while: with the
# default threshold (700) the young generation is collected ~3 times per thousand records,
# each pass re-examining the survivors; this many between passes costs a third of that.
GC_YOUNG_THRESHOLD = 20_000
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
    try:
        status = TargetAmazonDSPConversions.cli.main(standalone_mode=False)
    except Terminated as exc:
        _fail(str(exc), 128 + exc.signum)
    except USER_ERRORS as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 1)
    except ConfigValidationError as exc:
        _fail("; ".join(exc.errors) or str(exc), 1)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(status if isinstance(status, int) else 0)


def _fail(message: str, status: int) -> None:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)  # noqa: T201
    sys.exit(status)


if __name__ == "__main__":
    main()
