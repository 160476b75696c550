"""Pacing: how fast requests to one Amazon account may go, following Amazon's 429s (SPEC §5).

Amazon's limits are dynamic, per account, unpublished, and some 429s carry no `Retry-After`.
The pace is the client-side rate limiter of the AWS SDKs' "adaptive" retry mode: a request rate
that is free until the first 429, then cut to 0.7 of the rate measured when Amazon throttled,
and grown back after each success along CUBIC's curve (Ha, Rhee and Xu, 2008) — quickly while
far below the rate that was throttled, slowly near it, then faster again to find out whether
Amazon now allows more. A rate, not a number of requests in flight: Amazon counts requests per
second, and a fast answer would let even one request in flight exceed that.

One `Pace` per account is shared by every upload thread: a 429 slows them all, `Retry-After`
pauses them all, and after a pause one request goes first, alone, to see whether it is over.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

# AWS SDKs' adaptive retry mode constants.
BETA = 0.7  # the rate kept after a 429
SCALE = 0.4  # CUBIC's C: how fast the rate grows back
MIN_RATE = 0.5  # requests per second, at the slowest
SMOOTHING = 0.8  # weight of the newest half second in the measured rate
MEASURE_SECONDS = 0.5


class Ticket(NamedTuple):
    """A request let through: when, whether it goes alone after a pause, and at which cut of
    the rate (a 429 answering a request sent before the last cut tells nothing new)."""

    sent_at: float
    probe: bool
    generation: int


class Pace:
    """The pace of one account; thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Free until the first 429; `clock` is replaceable for tests."""
        self._clock = clock
        self._changed = threading.Condition()
        now = clock()
        self.limited = False  # True from the first 429 on
        self.rate = 0.0  # requests per second allowed, once limited
        self._max_rate = 0.0  # the rate at the last 429 (CUBIC's W_max)
        self._throttled_at = -1e9
        self._k = 0.0  # CUBIC's time to grow back to _max_rate
        self._next_slot = now
        self._paused_until = now
        self._probe_due = False  # a pause ended: the next request goes alone
        self._probing = False  # that request is out
        self._measured = 0.0  # requests sent per second, smoothed
        self._bucket_start = now
        self._bucket_count = 0
        self.last_accepted = now  # the last answer that was not a 429
        self._answers: deque[float] = deque()  # when answers came, over the last second
        self._generation = 0  # cuts of the rate so far
        self.throttled = 0

    def take(self, wait: Callable[[float], bool]) -> Ticket | None:
        """Block until a request may go; None when `wait` says the run is stopping.

        `wait(seconds)` sleeps (or less) and returns True when the run is stopping."""
        while True:
            with self._changed:
                now = self._clock()
                generation = self._generation
                paused = self._paused_until - now
                slot = -1.0
                if self._probing:  # after a pause one request goes first: wait for its answer
                    self._changed.wait(0.05)
                elif paused <= 0:
                    probe = self._probe_due
                    self._probing = probe
                    self._probe_due = False
                    slot = max(now, self._next_slot) if self.limited else now
                    if self.limited:
                        self._next_slot = slot + 1.0 / self.rate
                    self._count_sent(slot)
            if slot < 0:  # paused, or a probe is out
                if wait(min(max(paused, 0.0), 0.05)):
                    return None
                continue
            if slot > now and wait(slot - now):
                return None
            with self._changed:
                if generation == self._generation or probe:
                    return Ticket(slot, probe, generation)
            # The rate was cut while this request waited for its slot: it takes a new one.

    def answered(self, ticket: Ticket) -> None:
        """Amazon answered the request with anything but a 429: the pace may grow."""
        with self._changed:
            now = self._clock()
            self.last_accepted = now
            self._answers.append(now)
            while self._answers[0] < now - 1.0:
                self._answers.popleft()
            if self.limited:
                self._set_rate(self._cubic(now))
            self._end_probe(ticket)

    def throttled_now(self, ticket: Ticket, retry_after: float | None) -> None:
        """Amazon answered 429: slow down (once per burst of 429s) and pause if it says so."""
        with self._changed:
            now = self._clock()
            self.throttled += 1
            # Requests let through before the last cut tell nothing about the new rate.
            if ticket.generation == self._generation:
                self._cut(now)
            if retry_after is not None and retry_after > 0:
                self._paused_until = max(self._paused_until, now + retry_after)
                self._probe_due = True
            self._end_probe(ticket)

    def failed(self, ticket: Ticket) -> None:
        """No answer (a timeout, a dropped connection): the pace stays as it is."""
        with self._changed:
            self._end_probe(ticket)

    def seconds_without_progress(self) -> float:
        """Seconds since Amazon last answered this account with anything but a 429."""
        with self._changed:
            return self._clock() - self.last_accepted

    def _cut(self, now: float) -> None:
        sent = max(self._measured_rate(now), MIN_RATE)
        if self.limited:
            self._max_rate = min(sent, self.rate)
            rate = self._max_rate * BETA
        else:
            # The first 429: what was sent says how fast Amazon might go (CUBIC grows back
            # towards it quickly), what it answered in the last second how fast it surely does.
            answered = sum(1 for moment in self._answers if moment >= now - 1.0)
            rate = max(answered * BETA, MIN_RATE)
            self._max_rate = max(sent, rate / BETA)
            self.limited = True
        self._k = ((self._max_rate - rate) / SCALE) ** (1 / 3)
        self._throttled_at = now
        self._generation += 1
        self._set_rate(rate)
        self._next_slot = max(self._next_slot, now + 1.0 / self.rate)

    def _measured_rate(self, now: float) -> float:
        if self._measured > 0:
            return self._measured
        # Throttled within the first half second: what was sent so far says the rate.
        return self._bucket_count / max(now - self._bucket_start, 0.05)

    def _cubic(self, now: float) -> float:
        return SCALE * (now - self._throttled_at - self._k) ** 3 + self._max_rate

    def _set_rate(self, rate: float) -> None:
        # Never more than twice what is actually being sent: growth must follow real traffic.
        ceiling = 2 * self._measured if self._measured > 0 else rate
        self.rate = max(MIN_RATE, min(rate, ceiling))

    def _end_probe(self, ticket: Ticket) -> None:
        if ticket.probe:
            self._probing = False
        self._changed.notify_all()

    def _count_sent(self, now: float) -> None:
        self._bucket_count += 1
        elapsed = now - self._bucket_start
        if elapsed >= MEASURE_SECONDS:
            current = self._bucket_count / elapsed
            self._measured = SMOOTHING * current + (1 - SMOOTHING) * self._measured
            self._bucket_start = now
            self._bucket_count = 0
