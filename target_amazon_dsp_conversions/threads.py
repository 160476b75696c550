"""The stop signals go to the main thread only.

Python runs a signal handler in the main thread, but the kernel delivers a signal sent to the
process to any thread that does not block it. One that lands on an upload thread only marks the
handler pending, and a main thread blocked in a wait (for a free upload slot, for input, for a
worker's results) would not look until the wait ends — a stop could wait for a hung request's
whole timeout. So every thread the target starts blocks SIGTERM and SIGINT first: the kernel
then hands them to the main thread, whose wait they interrupt.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def leave_signals_to_main_thread() -> None:
    """Called first in every thread the target starts (see the module's docstring)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
