"""Delivery: batches go out concurrently while input is read; answers settle every event.

At most `max_concurrent_requests` requests are in flight; when all slots are busy the reader
waits, which bounds memory by batch size x concurrency whatever the input size.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from target_amazon_dsp_conversions.answers import Meaning, meaning
from target_amazon_dsp_conversions.apis.base import (
    ACCEPTED,
    NOT_ACKNOWLEDGED,
    BatchKey,
    ItemResults,
)
from target_amazon_dsp_conversions.batching import Batch, Batcher, PendingEvent
from target_amazon_dsp_conversions.endpoints import Endpoint
from target_amazon_dsp_conversions.errors import DeliveryError, Problem, UserError
from target_amazon_dsp_conversions.http_types import OutgoingRequest, Transport
from target_amazon_dsp_conversions.threads import stop_signals_blocked

logger = logging.getLogger("target-amazon-dsp-conversions.delivery")
_Read = TypeVar("_Read")
NOT_ACKNOWLEDGED_REASON = "Amazon's answer listed it neither as accepted nor as refused"
TOO_LARGE = 413


class Sender(Protocol):
    """What delivery needs of an API call on batched items: the conversion upload
    (`apis.base.ConversionApi`) or another call of the API (`apis.base.BatchOperation`)."""

    def build_request(
        self, key: BatchKey, encoded_events: list[bytes], endpoint: Endpoint
    ) -> OutgoingRequest:
        """One request for items already encoded as JSON."""
        ...

    def read_multi_status(self, body: Any, count: int) -> ItemResults:
        """Per-item outcomes of a 2xx response to a request of `count` items."""
        ...

    def read_error(self, status: int, body: Any) -> Problem:
        """The problem a non-2xx response states, for the rejects file."""
        ...


class Outcomes:
    """Where delivery reports each event's fate (implemented by the run)."""

    def sent(self, count: int) -> None:
        """A request with `count` events goes out."""
        raise NotImplementedError

    def accepted(self, key: BatchKey, events: list[PendingEvent]) -> None:
        """Amazon accepted these events of a request for `key`."""
        raise NotImplementedError

    def rejected(self, event: PendingEvent, problems: list[Problem]) -> None:
        """Amazon refused this event for good."""
        raise NotImplementedError

    def undelivered(self, events: list[PendingEvent], failure: str) -> None:
        """These events could be neither delivered nor refused."""
        raise NotImplementedError


class Delivery:
    """Batches events (or other items of a call: `api`) and sends them on a pool of threads."""

    def __init__(
        self,
        *,
        api: Sender,
        transport: Transport,
        endpoint: Endpoint,
        outcomes: Outcomes,
        max_in_flight: int,
        max_events: int,
        before_send: Callable[[], None] | None = None,
    ) -> None:
        """Start the pool of upload threads; requests carry at most `max_events` events.
        `before_send` runs before each batch goes out (what must be sent before it)."""
        self._api = api
        self._before_send = before_send
        self._transport = transport
        self._endpoint = endpoint
        self._outcomes = outcomes
        self._batcher = Batcher(max_events)
        self._lock = threading.Lock()  # guards the batcher: the ticker flushes too
        # Held by the ticker from taking batches until they are in flight, so that `wait`
        # never misses batches taken but not yet submitted (they would be lost to a closed pool).
        self._ticker_handover = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(
            max_workers=max_in_flight,
            thread_name_prefix="upload",
        )
        self._in_flight: set[Future[None]] = set()
        self.failure: UserError | None = None
        # Events a 2xx answer left out of both its lists: undelivered, and the run fails.
        self.not_acknowledged = 0

    def add_all(self, events: list[tuple[BatchKey, PendingEvent]]) -> None:
        """Queue events read in a row; sends the batches they complete. Raises once delivery
        has failed."""
        if self.failure is not None:
            # The run is over: these records were read, so they are counted as not delivered.
            self._outcomes.undelivered([event for _, event in events], str(self.failure))
            raise self.failure
        with self._lock:
            ready = self._batcher.add_all(events)
        if ready:
            self._submit_all(ready)

    def flush(self) -> None:
        """Send every partial batch now."""
        with self._lock:
            ready = self._batcher.take_all()
        self._submit_all(ready)

    def flush_older_than(self, seconds: float) -> None:
        """Send partial batches whose first event came that long ago (a slow tap, a STATE
        waiting for them)."""
        if self.failure is not None:
            return
        with self._ticker_handover:
            with self._lock:
                ready = self._batcher.take_all(opened_before=time.monotonic() - seconds)
            self._submit_all(ready)

    def wait(self, *, new_ones: bool = True) -> None:
        """Block until every request in flight is answered; without `new_ones`, only those in
        flight now (while input keeps coming, there may always be new ones)."""
        while True:
            with self._ticker_handover, self._lock:
                pending = list(self._in_flight)
            if not pending:
                return
            for future in pending:
                future.result()
            if not new_ones:
                return

    def fail(self, failure: UserError) -> None:
        """The run cannot go on (an output it cannot write): nothing more is sent."""
        self.failure = self.failure or failure

    def close(self) -> None:
        """Stop the pool (after `wait`, or to abandon)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def take_unsent(self) -> list[PendingEvent]:
        """Events waiting in partial batches, taken out (the run is being abandoned)."""
        with self._lock:
            batches = self._batcher.take_all()
        return [event for batch in batches for event in batch.events]

    def _submit_all(self, batches: list[Batch]) -> None:
        # Batches taken from the batcher exist nowhere else: if the wait for a slot is cut
        # short (a signal, a stopped pool), the ones not handed over are counted, not lost.
        handed_over = 0
        try:
            for batch in batches:
                self._submit(batch)
                handed_over += 1
        except BaseException as exc:
            reason = str(self.failure) if self.failure else f"stopped ({type(exc).__name__})"
            for rest in batches[handed_over:]:
                self._outcomes.undelivered(rest.events, reason)
            raise

    def _submit(self, batch: Batch) -> None:
        if self.failure is not None:
            self._outcomes.undelivered(batch.events, str(self.failure))
            return
        self._slots.acquire()
        try:
            with stop_signals_blocked():  # the pool starts its threads in `submit`
                future = self._pool.submit(self._deliver, batch)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._in_flight.discard(future)
        self._slots.release()

    def _deliver(self, batch: Batch) -> None:
        # Events settle one by one (a 413 splits a batch into requests with their own
        # answers); on failure only those not yet accepted or rejected count as undelivered.
        settled: set[int] = set()
        try:
            if self._before_send is not None:
                self._before_send()
            self._send(batch.key, batch.events, settled)
        except UserError as exc:
            self.failure = self.failure or exc
            self._undelivered(batch.events, settled, str(exc))
        except Exception as exc:  # a bug must not lose the records' accounting
            logger.exception("Unexpected error while delivering a batch")
            failure = DeliveryError(f"unexpected error: {type(exc).__name__}")
            self.failure = self.failure or failure
            self._undelivered(batch.events, settled, str(failure))

    def _not_acknowledged(self, events: list[PendingEvent], status: int, count: int) -> None:
        """Events a 2xx answer did not list: not accepted, not refused; resent by the next run."""
        with self._lock:
            self.not_acknowledged += len(events)
        logger.warning(
            "HTTP %d listed %d of %d events neither as accepted nor as refused; they count as "
            "not delivered and the next run resends them",
            status, len(events), count,
        )  # fmt: skip
        self._outcomes.undelivered(events, NOT_ACKNOWLEDGED_REASON)

    def _undelivered(self, events: list[PendingEvent], settled: set[int], reason: str) -> None:
        rest = [e for e in events if id(e) not in settled]
        if rest:
            self._outcomes.undelivered(rest, reason)

    def _send(self, key: BatchKey, events: list[PendingEvent], settled: set[int]) -> None:
        if self.failure is not None:
            raise self.failure
        request = self._api.build_request(key, [e.encoded for e in events], self._endpoint)
        self._outcomes.sent(len(events))
        answer = self._transport.send(request)
        # The transport acted on every other meaning (retries, pacing, the token, set-up).
        found = meaning(request.call, answer.status, items=len(events))
        if found is Meaning.READ_ITEMS:
            # The answer is final: whatever it says, nothing of this request is sent again.
            read = self._api.read_multi_status
            results = _readable(answer.status, read, answer.body, len(events))
            outcomes = list(zip(events, results, strict=True))
            accepted = [event for event, result in outcomes if result is ACCEPTED]
            missing = [event for event, result in outcomes if result is NOT_ACKNOWLEDGED]
            settled.update(id(event) for event in accepted)
            # Accepted first: should writing a reject fail, what Amazon has is still counted.
            self._outcomes.accepted(key, accepted)
            for event, result in outcomes:
                if isinstance(result, list):
                    settled.add(id(event))
                    self._outcomes.rejected(event, result)
            if missing:
                settled.update(id(event) for event in missing)
                self._not_acknowledged(missing, answer.status, len(events))
        elif found is Meaning.SPLIT:
            # Too large for Amazon: halve and resend; nothing of it was accepted.
            middle = len(events) // 2
            logger.info("HTTP 413 for %d events; splitting the request", len(events))
            self._send(key, events[:middle], settled)
            self._send(key, events[middle:], settled)
        elif found is Meaning.REJECT:
            if not isinstance(answer.body, dict) and answer.status != TOO_LARGE:
                # Amazon refuses a request's content with a JSON error of its own. Without one
                # (a proxy's page, an empty body) no record was refused: rejecting them all
                # for what is likely the address's fault would move STATE past them. (A 413
                # for one event is that event's, whoever says it.)
                raise _no_shape(answer.status, "no JSON error", "api_url and any proxy in between")
            problem = _readable(answer.status, self._api.read_error, answer.status, answer.body)
            for event in events:
                settled.add(id(event))
                self._outcomes.rejected(event, [problem])
        else:
            raise DeliveryError(f"unexpected answer to an upload: HTTP {answer.status}")


def _readable(status: int, read: Callable[..., _Read], *args: Any) -> _Read:
    """What `read(*args)` makes of an answer; an answer in no shape of Amazon's (a proxy's, a
    broken gateway's) stops the run in one line: its events were neither accepted nor
    refused, so they are undelivered, and no STATE passes them."""
    try:
        return read(*args)
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
        raise _no_shape(status, type(exc).__name__, "api_url") from None


def _no_shape(status: int, why: str, check: str) -> DeliveryError:
    """The one line of an answer in no shape of Amazon's, and what to check."""
    return DeliveryError(
        f"an answer to an upload (HTTP {status}) is in no shape of Amazon's ({why}); check {check}"
    )
