"""Amazon's throttling as users meet it (SPEC §5): a run paces itself to what the account allows
and never fails because of 429s while requests get through; it fails, in one line, only when
Amazon accepts nothing for `throttle_timeout` seconds."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from tests.conftest import run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import LiveRun, position, split_after_state, tap


def test_a_throttled_run_paces_itself_and_delivers_everything_once(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # A limit any machine exceeds, however busy: one request at a time, 4 a second (no
    # Retry-After). The target starts with two requests in flight, so the second meets a 429.
    emulator.throttle.configure(rate=4, burst=1, retry_after=None)
    records = [seed_record(i) for i in range(1200)]
    run = run_target(emulator.target_config(), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(emulator.accepted_ids().values()) == [1] * 1200
    report = run.report
    assert report["records_accepted"] == 1200
    assert report["requests_throttled"] > 0
    assert "Amazon throttles account 1234567890 (HTTP 429)" in run.stderr
    # Paced, not hammering: most requests get through (retrying at once would meet mostly 429s).
    assert report["requests_throttled"] < 0.5 * report["requests_sent"]


def test_retry_after_pauses_and_the_run_goes_on(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Every third request meets a 429 with `Retry-After: 1`, however fast the machine.
    emulator.faults.every_nth_429 = 3
    emulator.faults.retry_after = "1"
    records = [seed_record(i) for i in range(800)]
    config = emulator.target_config(max_retries=0)  # 429s are paced, not retried
    run = run_target(config, singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(emulator.accepted_ids().values()) == [1] * 800
    throttled = [r for r in emulator.requests if r.status == 429]
    assert run.report["requests_throttled"] == len(throttled) >= 3


def test_nothing_accepted_for_throttle_timeout_fails_in_one_line(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Two requests (the definitions list, one upload), then nothing but 429s.
    emulator.throttle.configure(rate=0.000001, burst=2, retry_after=None)
    records = [seed_record(i) for i in range(300)]
    config = emulator.target_config(throttle_timeout=2, max_concurrent_requests=1)  # in order
    run = run_target(config, singer_stream(records, state_every=100), tmp_path)

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    assert "Amazon kept throttling account 1234567890" in run.error_lines[0]
    assert "not delivered" in run.error_lines[0]
    assert "Traceback" not in run.stderr
    assert run.report["records_undelivered"] == 200
    assert run.states == [{"bookmarks": {"conversions": {"n": 100}}}]


def test_a_retry_after_beyond_throttle_timeout_fails_at_once(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """Waiting as long as Amazon asks (capped at 5 minutes) would pass throttle_timeout: the
    run fails when it is told, not minutes later."""
    emulator.throttle.configure(rate=0.000001, burst=2, retry_after=1_000_000_000)
    records = [seed_record(i) for i in range(300)]
    config = emulator.target_config(throttle_timeout=5, max_concurrent_requests=1)
    started = time.monotonic()
    run = run_target(config, singer_stream(records, state_every=100), tmp_path)

    assert time.monotonic() - started < 120  # a wait of Retry-After's 300 s would not end so
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    assert "and it asks to wait 300 s more (throttle_timeout 5 s)" in run.error_lines[0]
    assert run.report["records_undelivered"] == 200
    assert run.states == [{"bookmarks": {"conversions": {"n": 100}}}]


def test_the_limit_changes_mid_run_and_progress_shows_the_pace(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.throttle.configure(rate=10, burst=10, retry_after=None)
    records = [seed_record(i) for i in range(1500)]
    live = LiveRun(emulator.target_config(), tmp_path)
    first, rest = split_after_state(tap(records, state_every=100), 300)
    live.write(first, close=False)
    live.wait_for_state(at_least=300)
    emulator.throttle.configure(rate=1, burst=1, retry_after=None)
    rest_written = live.feed(rest)
    time.sleep(11)  # two progress lines (one every 5 s) while the limit is low
    emulator.throttle.configure(rate=10, burst=10, retry_after=None)
    rest_written.join()
    assert live.finish() == 0, live.stderr[-3000:]
    assert sorted(emulator.accepted_ids().values()) == [1] * 1500
    assert position(live.states[-1]) == 1500
    assert "Amazon throttles account 1234567890:" in live.stderr
    assert "requests/s allowed" in live.stderr


def test_a_slow_tap_sees_state_within_seconds(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    """A record every 1.5 s, never 2 s of silence nor a full batch: a partial batch goes out
    about 2 s after its first record, and its STATE comes out while the tap is still writing."""
    records = [seed_record(i) for i in range(40)]  # 60 s of input, well short of a batch of 100
    messages = tap(records, state_every=1)
    live = LiveRun(emulator.target_config(), tmp_path)
    assert live.process.stdin is not None
    stdin = live.process.stdin
    stdin.write(json.dumps(messages[0]) + "\n")  # SCHEMA
    first_state_seen = threading.Event()
    written = 0

    def slow_tap() -> None:
        nonlocal written
        for record, state in zip(messages[1::2], messages[2::2], strict=True):
            if first_state_seen.is_set():
                break
            stdin.write(json.dumps(record) + "\n" + json.dumps(state) + "\n")
            stdin.flush()
            written += 1
            time.sleep(1.5)
        stdin.close()

    writer = threading.Thread(target=slow_tap)
    writer.start()
    # However long start-up takes on a busy machine, the tap goes on until this STATE.
    live.wait_for_state(at_least=1, timeout=90)
    assert writer.is_alive(), "the first STATE came only at the end of the input"
    first_state_seen.set()
    writer.join()
    assert live.finish() == 0, live.stderr
    assert position(live.states[-1]) == written < len(records)
    assert sorted(emulator.accepted_ids().values()) == [1] * written
