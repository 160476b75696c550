"""Pacing: how fast requests to one Amazon account may go, following Amazon's 429s (SPEC §5).

Amazon's limits are dynamic, per account, unpublished, and some 429s carry no `Retry-After`.
The pace is modelled on the client-side rate limiter of the AWS SDKs' "adaptive" retry mode: a
request rate that is free until the first 429 (but for a small first window of requests in
flight), then cut and grown back after each answer along CUBIC's curve (Ha, Rhee and Xu, 2008):
quickly while far below the rate Amazon allows, slowly near it, then faster again to find out
whether Amazon now allows more. A rate, not a number of requests in flight: Amazon counts
requests per second, and a fast answer would let even one request in flight exceed that.

Where the curve levels off is measured from the spacing of successes: a 429 means Amazon's
token bucket was empty, so the requests it accepted between two 429s are what it refilled in
between — its rate, to within one request, however large its burst allowance. (What was
answered over the last second is the fallback: the burst allowance and tokens saved while
below the limit inflate it.) A 429 while the rate is still below that level (some come
whatever the rate) slows the pace for a while but keeps the level. Below `SLOW_LIMIT`
requests/s the curve is the one at that rate, run in requests instead of seconds, so that
probing above the limit costs the same small share of requests at any low limit.

One `Pace` per account is shared by every upload thread: a 429 slows them all, `Retry-After`
pauses them all, and after a pause one request goes first, alone, to see whether it is over.
How fast to send is decided here only; what an answer means, in `answers.py`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

# AWS SDKs' adaptive retry mode constants (but SCALE).
BETA = 0.7  # the rate kept after a 429 that tells nothing better
SCALE = 0.6  # CUBIC's C: how fast the rate grows back (AWS: 0.4; faster after a limit is raised)
MIN_RATE = 0.5  # requests per second, at the slowest
CEILING = 4  # the rate never grows beyond this many times what is actually sent
# Until the first 429, requests in flight start at this many and double every WINDOW_DOUBLES
# seconds, and grow by one with each answer that took SLOW_ANSWER or longer (doubling every
# round trip): the first burst of requests meets the end of Amazon's burst allowance with few
# requests in flight (each of them a 429), and a slow API is at full concurrency within a few
# round trips.
FIRST_WINDOW = 1
WINDOW_DOUBLES = 0.25
SLOW_ANSWER = 0.08
ANSWERED_SHARE = 0.9  # after a 429, a little under the rate Amazon allows, so its bucket refills
# A 429 within this long after the first: even the rate set at the first was too high (the
# burst allowance hid Amazon's rate, and the curve towards what was sent overtook it within
# moments): cut to SETTLE_BETA of that rate, but not below what Amazon surely accepted since
# the first 429, and probe upwards from there rather than grow back to the rate it met.
SETTLING = 1.0
SETTLE_BETA = 0.5
# Successes between two 429s tell Amazon's rate once they span this long (±1 request), and
# until they span KEPT seconds (the bucket has surely filled up by then: see FILLED_UP).
MIN_SPAN = 1.0
KEPT = 30.0
# Fewer successes than this share of last second's answers between two 429s: Amazon's bucket
# filled up meanwhile (the pace was well below the limit) and lost tokens; they do not tell.
FILLED_UP = 0.5
# Below this many requests/s the rate grows back as it does at this rate, counted in requests
# rather than seconds (CUBIC's C and its clock both scaled by the rate): at a low limit a probe
# above it is a larger share of the requests, and its 429 costs as much.
SLOW_LIMIT = 10.0


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
        self._scale = SCALE  # CUBIC's C for the current curve (see SLOW_LIMIT)
        self._clock_scale = 1.0  # how fast the curve's clock runs (see SLOW_LIMIT)
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
        # When the requests Amazon accepted were sent, over the last KEPT seconds: Amazon takes
        # requests in the order they are sent, not in the order their answers come back.
        self._accepted_sends: deque[float] = deque()
        # When the requests answered 429 were sent: Amazon's bucket was empty then.
        self._first_empty = -1e9
        self._first_rate = 0.0  # the rate set then
        self._last_empty = -1e9
        self._in_flight: list[float] = []  # when the requests still unanswered were sent
        self._slow_answers = 0
        self.throttled = 0

    def take(self, wait: Callable[[float], bool]) -> Ticket | None:
        """Block until a request may go; None when `wait` says the run is stopping.

        `wait(seconds)` sleeps (or less) and returns True when the run is stopping. A request
        takes the next slot only once it is due: a rate changed meanwhile applies at once."""
        while True:
            with self._changed:
                now = self._clock()
                delay = max(self._paused_until - now, 0.0)
                if self.limited:
                    delay = max(delay, self._next_slot - now)
                window_full = not self.limited and len(self._in_flight) >= self._window(now)
                if self._probing or window_full:
                    # After a pause one request goes first; before any 429, a few at first.
                    self._changed.wait(0.05)
                    delay = 0.0
                elif delay <= 0:
                    probe = self._probe_due
                    self._probing = probe
                    self._probe_due = False
                    if self.limited:
                        self._next_slot = max(self._next_slot, now) + 1.0 / self.rate
                    self._count_sent(now)
                    self._in_flight.append(now)
                    return Ticket(now, probe, self._generation)
            if wait(min(delay, 0.05)):
                return None

    def answered(self, ticket: Ticket) -> None:
        """Amazon answered the request with anything but a 429: the pace may grow."""
        with self._changed:
            now = self._clock()
            self.last_accepted = now
            self._accepted_sends.append(ticket.sent_at)
            while self._accepted_sends[0] < now - KEPT:
                self._accepted_sends.popleft()
            if now - ticket.sent_at >= SLOW_ANSWER:
                self._slow_answers += 1
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
                self._cut(now, ticket.sent_at)
            self._last_empty = max(self._last_empty, ticket.sent_at)
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

    def _cut(self, now: float, empty: float) -> None:
        # The rate the curve levels off at (CUBIC's W_max), and the new rate below it.
        sent = max(self._measured_rate(now), MIN_RATE)
        # What Amazon answered per second. At the first 429, counted over a full second even
        # if the run is younger: the burst allowance of the start must not pass for its rate.
        answered = self._answered_rate(now, shortest=0.25 if self.limited else 1.0)
        throttled = min(sent, self.rate) if self.limited else sent
        if not self.limited:
            # A burst allowance hides Amazon's rate: grow back towards what was sent.
            self._max_rate = sent
            rate = min(throttled * BETA, ANSWERED_SHARE * answered)
            self._first_empty = empty
            self._first_rate = rate
        elif empty - self._first_empty < SETTLING:
            surely = self._accepted_between(self._first_empty, empty, slack=-1)
            base = min(throttled, self._first_rate)
            rate = max(base * SETTLE_BETA, ANSWERED_SHARE * surely)
            rate = self._max_rate = min(rate, throttled * BETA)
        else:
            refilled = self._accepted_between(self._last_empty, empty, slack=0)
            spaced = MIN_SPAN <= empty - self._last_empty < KEPT
            probing = self.rate >= self._max_rate  # the curve had grown back to the level
            if spaced and refilled >= FILLED_UP * answered and probing:
                # A probe above the level met the end of Amazon's bucket: level off at its rate.
                self._max_rate = min(throttled, refilled)
                rate = ANSWERED_SHARE * self._max_rate
            elif spaced and not probing:
                # Below the level, a 429 once in a while says little about Amazon's rate (some
                # come whatever the rate): slow down, grow back to the level as before.
                rate = throttled * BETA
            else:  # 429s in quick succession (a lower limit), or a bucket that filled up
                self._max_rate = min(throttled, answered)
                rate = min(throttled * BETA, ANSWERED_SHARE * answered)
        self.limited = True
        slowness = min(1.0, self._max_rate / SLOW_LIMIT)
        self._scale = SCALE * slowness
        self._clock_scale = slowness
        self._k = (max(self._max_rate - rate, 0.0) / self._scale) ** (1 / 3)
        self._throttled_at = now
        self._generation += 1
        self._set_rate(rate)
        self._next_slot = now + 1.0 / self.rate

    def _accepted_between(self, empty: float, again: float, slack: int) -> float:
        """Requests per second Amazon accepted between two moments its bucket was empty: what
        it refilled, give or take one request (`slack` -1: the least it can be). Requests sent
        in between and not answered yet count as accepted: Amazon took them before it found
        its bucket empty again (their answers are slower, not later in its queue)."""
        accepted = sum(1 for sent in self._accepted_sends if empty < sent < again)
        accepted += sum(1 for sent in self._in_flight if empty < sent < again)
        return max((accepted + slack) / max(again - empty, 1e-3), MIN_RATE)

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
        elapsed = (now - self._throttled_at) * self._clock_scale
        return self._scale * (elapsed - self._k) ** 3 + self._max_rate

    def _set_rate(self, rate: float) -> None:
        # Never more than CEILING times what is actually sent: growth follows real traffic.
        self.rate = max(MIN_RATE, min(rate, CEILING * self._measured_rate(self._clock())))

    def _window(self, now: float) -> float:
        """Requests in flight allowed before the first 429."""
        by_time = FIRST_WINDOW * 2 ** min((now - self._started) / WINDOW_DOUBLES, 20)
        return max(by_time, FIRST_WINDOW + self._slow_answers)

    def _done(self, ticket: Ticket) -> None:
        self._in_flight.remove(ticket.sent_at)
        if ticket.probe:
            self._probing = False
        self._changed.notify_all()

    def _count_sent(self, moment: float) -> None:
        self._sends.append(moment)
