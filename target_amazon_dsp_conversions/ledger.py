"""STATE release: a tap's STATE goes out only once every record read before it is settled.

Records are numbered by segment: a segment holds the records read between two STATE messages.
A segment is done when each of its records was accepted by Amazon or written to the rejects
file; the STATE that closed the last done segment in a row is then emitted, unchanged.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class _Segment:
    outstanding: int = 0
    state: Any = None  # the STATE that closed this segment; None while it is open


class StateLedger:
    """Counts unsettled records per segment and emits STATE in order, from any thread."""

    def __init__(self, emit: Callable[[Any], None]) -> None:
        """`emit` writes one STATE value; called under the ledger's lock, in order."""
        self._emit = emit
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque([_Segment()])
        self._first_id = 0  # id of self._segments[0]
        self._last_emitted: Any = None
        self.records_opened = 0

    def open_record(self, count: int = 1) -> int:
        """Count a record (or `count` records read in a row) just read; returns the segment
        id for `settle`."""
        with self._lock:
            self.records_opened += count
            self._segments[-1].outstanding += count
            return self._first_id + len(self._segments) - 1

    def settle(self, segment_id: int) -> None:
        """A record of that segment was accepted or rejected."""
        with self._lock:
            self._segments[segment_id - self._first_id].outstanding -= 1
            self._release()

    def settle_all(self, segment_ids: list[int]) -> None:
        """`settle` for each id in turn, under one lock (a request's worth of answers)."""
        with self._lock:
            segments = self._segments
            first_id = self._first_id
            for segment_id in segment_ids:
                segments[segment_id - first_id].outstanding -= 1
            # Once, after all: of the STATEs these answers release, only the newest is written.
            if segments[0].outstanding == 0:
                self._release()

    def add_state(self, state: Any) -> None:
        """A STATE message closes the open segment."""
        with self._lock:
            self._segments[-1].state = state
            self._segments.append(_Segment())
            self._release()

    @property
    def pending_states(self) -> int:
        """STATE messages received and not yet emitted."""
        with self._lock:
            return len(self._segments) - 1

    @property
    def unsettled(self) -> int:
        """Records read and neither accepted nor rejected yet."""
        with self._lock:
            return sum(segment.outstanding for segment in self._segments)

    def _release(self) -> None:
        # Only the newest releasable STATE is written: each one supersedes those before it.
        latest: Any = None
        while len(self._segments) > 1 and self._segments[0].outstanding == 0:
            latest = self._segments.popleft().state
            self._first_id += 1
        if latest is None:
            return
        if latest != self._last_emitted:
            self._last_emitted = latest
            self._emit(latest)
