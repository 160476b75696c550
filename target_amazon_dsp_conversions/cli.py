"""Console entry point: user errors print one line and exit non-zero, without a traceback."""

from __future__ import annotations

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
USER_ERRORS = (
    UserError,
    InvalidInputLine,
    RecordsWithoutSchemaException,
    MissingKeyPropertiesError,
)


def main() -> None:
    """Run the target."""
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
