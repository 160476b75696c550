"""The pace of one account, with a fake clock: 429s slow it, success lets it grow back,
`Retry-After` pauses everyone and one request probes; 429s alone do not fail a run that moves."""

from __future__ import annotations

import threading

import pytest

from target_amazon_dsp_conversions.pacing import (
    ANSWERED_SHARE,
    BETA,
    FIRST_WINDOW,
    MIN_RATE,
    SCALE,
    SETTLE_BETA,
    SETTLING,
    WINDOW_DOUBLES,
    Pace,
    Ticket,
)


class FakeClock:
    """Time that moves only when a request waits for its slot (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += max(0.0, seconds)
        return False  # never stopping


def send(pace: Pace, clock: FakeClock, count: int) -> list[Ticket]:
    tickets = []
    for _ in range(count):
        ticket = pace.take(clock.wait)
        assert ticket is not None
        tickets.append(ticket)
    return tickets


def test_free_until_the_first_429_but_for_a_few_first_requests() -> None:
    clock = FakeClock()
    pace = Pace(clock=clock)
    start = clock.now
    first = send(pace, clock, FIRST_WINDOW)
    assert pace.take(lambda seconds: True) is None, "one more must wait for an answer"
    for ticket in first:
        pace.answered(ticket)
    clock.now += 10 * WINDOW_DOUBLES  # the window doubles as time goes by
    start = clock.now
    many = send(pace, clock, 50)
    assert len(many) == 50
    assert clock.now == start  # nobody waited for a slot
    assert not pace.limited


def test_a_429_cuts_the_rate_and_slows_every_request() -> None:
    clock = FakeClock()
    pace = Pace(clock=clock)
    for _ in range(40):  # 20 requests/s for two seconds
        (ticket,) = send(pace, clock, 1)
        pace.answered(ticket)
        clock.now += 0.05
    (ticket,) = send(pace, clock, 1)
    pace.throttled_now(ticket, retry_after=None)
    assert pace.limited
    assert pace.rate == pytest.approx(20 * BETA, rel=0.1)
    # The next requests are spaced by the new rate, whoever sends them.
    first, second, third = send(pace, clock, 3)
    assert second.sent_at - first.sent_at == pytest.approx(1 / pace.rate, rel=0.01)
    assert third.sent_at - second.sent_at == pytest.approx(1 / pace.rate, rel=0.01)


def test_429s_of_requests_sent_before_the_cut_do_not_cut_again() -> None:
    clock = FakeClock()
    pace = Pace(clock=clock)
    clock.now += 10 * WINDOW_DOUBLES  # the first window is wide open by then
    in_flight = send(pace, clock, 10)  # ten requests out at once
    clock.now += 0.5
    pace.throttled_now(in_flight[0], retry_after=None)
    rate = pace.rate
    for ticket in in_flight[1:]:
        pace.throttled_now(ticket, retry_after=None)
    assert pace.rate == rate
    assert pace.throttled == 10


def test_success_grows_the_rate_back_and_beyond() -> None:
    clock = FakeClock()
    pace = Pace(clock=clock)
    for _ in range(20):
        (ticket,) = send(pace, clock, 1)
        pace.answered(ticket)
        clock.now += 0.1  # 10 requests/s
    (ticket,) = send(pace, clock, 1)
    pace.throttled_now(ticket, retry_after=None)
    cut = pace.rate
    rates = []
    for _ in range(400):
        (ticket,) = send(pace, clock, 1)
        pace.answered(ticket)
        rates.append(pace.rate)
    assert rates == sorted(rates), "it only grows while Amazon accepts"
    assert cut < 10 < rates[-1], "back to the throttled rate, then probing above it"


def test_the_rate_never_falls_below_the_minimum() -> None:
    clock = FakeClock()
    pace = Pace(clock=clock)
    for _ in range(50):
        (ticket,) = send(pace, clock, 1)
        pace.throttled_now(ticket, retry_after=None)
    assert pace.rate >= MIN_RATE


def test_retry_after_pauses_everyone_then_one_request_probes() -> None:
    clock = FakeClock()
    pace = Pace(clock=clock)
    (ticket,) = send(pace, clock, 1)
    pace.throttled_now(ticket, retry_after=5.0)
    paused_at = clock.now
    probe = pace.take(clock.wait)
    assert probe is not None and probe.probe and probe.sent_at >= paused_at + 5.0

    # While the probe is out nobody else goes; its success lets them go.
    released: list[Ticket | None] = []
    other = threading.Thread(target=lambda: released.append(pace.take(clock.wait)))
    clock.now += 1
    other.start()
    other.join(0.3)
    assert released == []
    pace.answered(probe)
    other.join(60)  # generous: a busy machine may be slow to schedule it
    assert released and released[0] is not None and not released[0].probe


def test_progress_is_measured_from_the_last_answer_that_was_not_a_429() -> None:
    clock = FakeClock()
    pace = Pace(clock=clock)
    (ticket,) = send(pace, clock, 1)
    pace.answered(ticket)
    clock.now += 100
    for _ in range(3):
        (ticket,) = send(pace, clock, 1)
        pace.throttled_now(ticket, retry_after=None)
    assert pace.seconds_without_progress() >= 100
    (ticket,) = send(pace, clock, 1)
    pace.answered(ticket)
    assert pace.seconds_without_progress() == 0


def test_a_stop_ends_a_pause_at_once() -> None:
    clock = FakeClock()
    pace = Pace(clock=clock)
    (ticket,) = send(pace, clock, 1)
    pace.throttled_now(ticket, retry_after=300.0)
    assert pace.take(lambda seconds: True) is None


def test_a_429_right_after_the_burst_cuts_without_growing_back_to_the_rate_it_met() -> None:
    """A burst allowance inflates the first answers: the rate set at the first 429 is too high
    and meets a 429 again at once. The pace then probes upwards from the cut, slowly, rather
    than grow back to the rate that was just throttled (a 429 per round trip at a low limit)."""
    clock = FakeClock()
    pace = Pace(clock=clock)
    clock.now += 10 * WINDOW_DOUBLES
    for ticket in send(pace, clock, 10):  # the burst allowance, answered at once
        pace.answered(ticket)
    (ticket,) = send(pace, clock, 1)
    pace.throttled_now(ticket, retry_after=None)
    met = pace.rate
    (ticket,) = send(pace, clock, 1)  # at the new rate, but above Amazon's
    pace.throttled_now(ticket, retry_after=None)
    cut = pace.rate
    assert cut == pytest.approx(met * SETTLE_BETA, rel=0.01)
    started = clock.now
    rates = []
    while clock.now < started + SETTLING:
        (ticket,) = send(pace, clock, 1)
        pace.answered(ticket)
        rates.append(pace.rate)
    assert max(rates) <= cut + SCALE * (clock.now - started) ** 3 + 1e-9 < met


def first_429_after_a_burst(pace: Pace, clock: FakeClock) -> None:
    """Ten requests answered at once as the run starts (a burst allowance), then a 429."""
    for _ in range(10):
        (ticket,) = send(pace, clock, 1)
        pace.answered(ticket)
    (ticket,) = send(pace, clock, 1)
    pace.throttled_now(ticket, retry_after=None)


def test_a_quick_second_429_does_not_cut_below_what_amazon_surely_accepted() -> None:
    """At a high limit the rate grows past it within a fraction of a second of the first 429;
    the 429 that follows cuts to a little under what Amazon accepted in between, not to half."""
    clock = FakeClock()
    pace = Pace(clock=clock)
    first_429_after_a_burst(pace, clock)
    started = clock.now
    for _ in range(25):  # as fast as the pace lets them go, all accepted
        (ticket,) = send(pace, clock, 1)
        pace.answered(ticket)
    (ticket,) = send(pace, clock, 1)
    sent = 26 / (clock.now - started)
    pace.throttled_now(ticket, retry_after=None)
    assert clock.now - started < SETTLING
    surely = 24 / (clock.now - started)  # 25 accepted, give or take one
    assert pace.rate == pytest.approx(ANSWERED_SHARE * surely, rel=0.01)
    assert pace.rate > SETTLE_BETA * sent


class FakeBucket:
    """Amazon's limit on the fake clock: a token bucket, full at the start."""

    def __init__(self, clock: FakeClock, rate: float, burst: float) -> None:
        self.clock, self.rate, self.burst = clock, rate, burst
        self.tokens, self.updated = burst, clock.now

    def admit(self) -> bool:
        elapsed = self.clock.now - self.updated
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = self.clock.now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def deliver(pace: Pace, clock: FakeClock, bucket: FakeBucket, requests: int) -> int:
    """Send `requests` one at a time, each until Amazon accepts it; the 429s met."""
    throttled = 0
    for _ in range(requests):
        while True:
            (ticket,) = send(pace, clock, 1)
            if bucket.admit():
                pace.answered(ticket)
                break
            pace.throttled_now(ticket, retry_after=None)
            throttled += 1
    return throttled


@pytest.mark.parametrize("limit", [2.0, 5.0, 20.0])
def test_at_a_steady_limit_the_rate_levels_off_just_under_it(limit: float) -> None:
    """Successes between two 429s are what Amazon's bucket refilled: the rate levels off just
    under that, and probes above it are a small share of the requests, at any limit."""
    clock = FakeClock()
    pace = Pace(clock=clock)
    bucket = FakeBucket(clock, rate=limit, burst=10)
    deliver(pace, clock, bucket, 10 + int(4 * limit))  # the burst allowance, then settling
    started = clock.now
    requests = int(60 * limit)  # a minute's worth
    throttled = deliver(pace, clock, bucket, requests)
    assert requests / (clock.now - started) > 0.85 * limit
    assert throttled <= 0.05 * requests


def test_a_bucket_that_filled_up_meanwhile_does_not_pass_for_amazons_rate() -> None:
    """Long below the limit, Amazon's bucket filled up and lost tokens: few successes between
    two 429s then, but many in the last second. The rate follows the last second's answers."""
    clock = FakeClock()
    pace = Pace(clock=clock)
    bucket = FakeBucket(clock, rate=40, burst=40)
    deliver(pace, clock, bucket, 400)
    clock.now += 30  # nothing to send for a while: the bucket fills up
    throttled = pace.throttled
    while pace.throttled == throttled:  # until the saved tokens are spent
        deliver(pace, clock, bucket, 1)
    assert pace.rate > 0.5 * bucket.rate


def test_429s_that_come_whatever_the_rate_do_not_drive_the_pace_to_the_minimum() -> None:
    """One request in seven answered 429 however slowly they go (Amazon under load): each 429
    below the level the pace found slows it for a while, but does not lower that level."""
    clock = FakeClock()
    pace = Pace(clock=clock)
    started = clock.now
    for number in range(1, 701):
        (ticket,) = send(pace, clock, 1)
        clock.now += 0.01
        if number % 7 == 0:
            pace.throttled_now(ticket, retry_after=None)
        else:
            pace.answered(ticket)
    assert 700 / (clock.now - started) > 5 * MIN_RATE
