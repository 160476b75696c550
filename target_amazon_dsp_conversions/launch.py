"""Console entry points. Loading the program (the Singer SDK above all) takes a second or more;
a Ctrl-C meanwhile ends it with one line and exit status 130, as an interrupt does later on,
instead of a `KeyboardInterrupt` traceback. Nothing has been read or written by then."""

from __future__ import annotations

import gc
import os
import signal
import sys
from types import FrameType

INTERRUPTED_STATUS = 130


def _stop_while_loading(program: str) -> None:
    # Loading creates some 50,000 objects that live as long as the process: the collector's
    # passes over them meanwhile (a tenth of the loading time) would find next to nothing to
    # free (~2,000 objects of import-time garbage, kept instead: `_loaded` freezes them).
    gc.disable()

    def interrupted(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        sys.stderr.write(f"{program}: error: interrupted\n")
        sys.stderr.flush()
        os._exit(INTERRUPTED_STATUS)

    signal.signal(signal.SIGINT, interrupted)


def _loaded() -> None:
    # What is loaded by now is kept out of the collector's passes from here on.
    gc.freeze()
    gc.enable()
    # From here on each command handles an interrupt itself.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def target() -> None:
    """`target-amazon-dsp-conversions`."""
    _stop_while_loading("target-amazon-dsp-conversions")
    from target_amazon_dsp_conversions.cli import main  # noqa: PLC0415 - loaded under the guard

    _loaded()
    main()


def auth() -> None:
    """`target-amazon-dsp-conversions-auth`."""
    _stop_while_loading("target-amazon-dsp-conversions-auth")
    from target_amazon_dsp_conversions.auth_cli import main  # noqa: PLC0415

    _loaded()
    main()


def replay() -> None:
    """`target-amazon-dsp-conversions-replay`."""
    _stop_while_loading("target-amazon-dsp-conversions-replay")
    from target_amazon_dsp_conversions.replay import main  # noqa: PLC0415

    _loaded()
    main()
