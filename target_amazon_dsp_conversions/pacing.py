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
# Until the first 429, requests in flight start at this many and grow by one per answer
# (doubling every round trip): a first burst of requests cannot all meet a limit at once.
FIRST_WINDOW = 2
ANSWERED_SHARE = 0.9  # after a 429, a little under what Amazon answered, so its bucket refills


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
        self._sends: deque[float] = deque()  # when requests went, over the last second
        self.last_accepted = now  # the last answer that was not a 429
        self._answers: deque[float] = deque()  # when answers came, over the last second
        self._started = now
        self._generation = 0  # cuts of the rate so far
        self._in_flight = 0
        self._window: float = FIRST_WINDOW  # requests in flight allowed, until the first 429
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
                if self._probing or (not self.limited and self._in_flight >= self._window):
                    # After a pause one request goes first; before any 429, a few at first.
                    self._changed.wait(0.05)
                elif paused <= 0:
                    probe = self._probe_due
                    self._probing = probe
                    self._probe_due = False
                    slot = max(now, self._next_slot) if self.limited else now
                    if self.limited:
                        self._next_slot = slot + 1.0 / self.rate
                    self._count_sent(slot)
                    self._in_flight += 1
            if slot < 0:  # paused, or a probe is out
                if wait(min(max(paused, 0.0), 0.05)):
                    return None
                continue
            if slot > now and wait(slot - now):
                return None
            with self._changed:
                if generation == self._generation or probe:
                    return Ticket(slot, probe, generation)
                self._in_flight -= 1
            # The rate was cut while this request waited for its slot: it takes a new one.

    def answered(self, ticket: Ticket) -> None:
        """Amazon answered the request with anything but a 429: the pace may grow."""
        with self._changed:
            now = self._clock()
            self.last_accepted = now
            self._window += 1
            self._answers.append(now)
            while self._answers[0] < now - 1.0:
                self._answers.popleft()
            if self.limited:
                self._set_rate(self._cubic(now))
            self._done(ticket)

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
            self._done(ticket)

    def failed(self, ticket: Ticket) -> None:
        """No answer (a timeout, a dropped connection): the pace stays as it is."""
        with self._changed:
            self._done(ticket)

    def seconds_without_progress(self) -> float:
        """Seconds since Amazon last answered this account with anything but a 429."""
        with self._changed:
            return self._clock() - self.last_accepted

    def _cut(self, now: float) -> None:
        # The rate that met the 429 (CUBIC grows back towards it), and the new one: what
        # Amazon answered over the last second, the rate it surely allows, but never more than
        # the usual multiplicative cut of what was sent.
        sent = max(self._measured_rate(now), MIN_RATE)
        # At the first 429 the answers of the run so far say how fast Amazon may go; later,
        # a full second's worth, lest the burst allowance of the start count again.
        answered = self._answered_rate(now, shortest=0.25)
        # The first 429 may come before Amazon's rate shows in its answers (a burst allowance
        # hides it): CUBIC then grows back towards what was sent. Later, what was answered
        # is the rate Amazon allows: the curve levels off there and probes above it gently.
        throttled = min(sent, self.rate) if self.limited else sent
        self._max_rate = min(sent, answered) if self.limited else sent
        rate = min(throttled * BETA, ANSWERED_SHARE * answered)
        self.limited = True
        self._k = (max(self._max_rate - rate, 0.0) / SCALE) ** (1 / 3)
        self._throttled_at = now
        self._generation += 1
        self._set_rate(rate)
        # Slots taken at the old rate are void: their requests take new ones.
        self._next_slot = now + 1.0 / self.rate

    def _answered_rate(self, now: float, shortest: float) -> float:
        """Answers per second over the last second (over the run so far if that is shorter,
        but never less than `shortest` seconds)."""
        while self._answers and self._answers[0] < now - 1.0:
            self._answers.popleft()
        window = min(1.0, max(now - self._started, shortest))
        return max(len(self._answers) / window, MIN_RATE)

    def _measured_rate(self, now: float) -> float:
        """Requests sent per second over the last second (over the run so far, if shorter)."""
        while self._sends and self._sends[0] < now - 1.0:
            self._sends.popleft()
        return len(self._sends) / min(1.0, max(now - self._started, 0.05))

    def _cubic(self, now: float) -> float:
        return SCALE * (now - self._throttled_at - self._k) ** 3 + self._max_rate

    def _set_rate(self, rate: float) -> None:
        # Never more than twice what is actually sent: growth must follow real traffic.
        self.rate = max(MIN_RATE, min(rate, 2 * self._measured_rate(self._clock())))

    def _done(self, ticket: Ticket) -> None:
        self._in_flight -= 1
        if ticket.probe:
            self._probing = False
        self._changed.notify_all()

    def _count_sent(self, moment: float) -> None:
        self._sends.append(moment)
