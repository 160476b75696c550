"""The stop signals go to the main thread only.

Python runs a signal handler in the main thread, but the kernel delivers a signal sent to the
process to any thread that does not block it. One that lands on an upload thread only marks the
handler pending, and a main thread blocked in a wait (for a free upload slot, for input, for a
worker's results) would not look until the wait ends — a stop could wait for a hung request's
whole timeout. So every thread the target starts is started inside `stop_signals_blocked()`:
a new thread inherits the mask of the thread that starts it, so it blocks SIGTERM and SIGINT
from its first instant (blocking them as its own first step would leave a window), and the
kernel hands them to the main thread, whose wait they interrupt.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Start threads in here (see the module's docstring). A stop signal that comes meanwhile
    waits, and reaches the main thread once its mask is restored."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
