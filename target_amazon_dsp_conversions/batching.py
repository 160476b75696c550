"""Batching: events grouped per (advertiser, source) into requests under the count and size caps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from target_amazon_dsp_conversions.amazon_fields import MAX_REQUEST_BYTES
from target_amazon_dsp_conversions.apis.base import BatchKey

# Room left for the body's envelope ({"source":...,"eventData":[ ]}).
_ENVELOPE_BYTES = 64


@dataclass(slots=True)
class PendingEvent:
    """An event waiting for Amazon's answer, with what settling it needs."""

    segment: int  # of the STATE ledger
    stream: str
    line: bytes  # what the record came from, decoded again only for the rejects file
    dedupe_id: str
    encoded: bytes  # the event as it is sent


@dataclass(slots=True)
class Batch:
    """Events that go out in one request."""

    key: BatchKey
    events: list[PendingEvent] = field(default_factory=list)
    size: int = _ENVELOPE_BYTES
    opened: float = field(default_factory=time.monotonic)  # when its first event came


class Batcher:
    """Fills one batch per key and hands it over when the next event would not fit."""

    def __init__(self, max_events: int, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        """Caps per request."""
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._open: dict[BatchKey, Batch] = {}

    def add_all(self, events: list[tuple[BatchKey, PendingEvent]]) -> list[Batch]:
        """Add events in order; returns the batches they completed (an event closes at most
        two: the one it did not fit into, and its own when that is full)."""
        ready = []
        open_batches = self._open
        for key, event in events:
            batch = open_batches.get(key)
            extra = len(event.encoded) + 1
            if batch is not None and batch.size + extra > self._max_bytes:
                ready.append(open_batches.pop(key))
                batch = None
            if batch is None:
                batch = open_batches[key] = Batch(key)
            batch.events.append(event)
            batch.size += extra
            if len(batch.events) >= self._max_events:
                ready.append(open_batches.pop(key))
        return ready

    def take_all(self, opened_before: float | None = None) -> list[Batch]:
        """Every open batch, partial ones included (only those opened before a moment)."""
        if opened_before is None:
            batches = list(self._open.values())
            self._open.clear()
            return batches
        old = [key for key, batch in self._open.items() if batch.opened < opened_before]
        return [self._open.pop(key) for key in old]
