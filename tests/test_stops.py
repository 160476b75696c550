"""Prompt stops (SPEC §5 Signals): SIGTERM/SIGINT end the run within a few seconds whatever
hangs — an upload, a token call — nothing new is sent after the signal, and the records in
flight are undelivered, not lost. A dead token endpoint is one answer for every thread."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import LiveRun, assert_accounted, position, tap

# Far longer than a test waits for the target to end: only a stop that cuts the hung request
# ends the run in time. (The emulator ends its hung handlers when it stops.)
HANG_SECONDS = 900
SLOW_TIMEOUT = {"request_timeout": 600}
STOP_WITHIN = 60  # generous for a loaded machine; a stop that waits for the hang takes 600 s


def hung_run(
    emulator: AmazonAdsEmulator, tmp_path: Path, hung_call: str, records: int, concurrency: int
) -> LiveRun:
    """The target fed `records` records while every `hung_call` request hangs."""
    config = emulator.target_config(max_concurrent_requests=concurrency, **SLOW_TIMEOUT)
    emulator.faults.hang_seconds = HANG_SECONDS
    emulator.faults.hang_calls = frozenset({hung_call})
    live = LiveRun(config, tmp_path)
    live.feed(tap([seed_record(i) for i in range(records)], state_every=50))
    return live


def stopped_after_signal(
    emulator: AmazonAdsEmulator, live: LiveRun, signum: signal.Signals, hung_call: str, *,
    in_flight: int = 1, twice: bool = False,
) -> dict[str, int]:  # fmt: skip
    """Signal once `in_flight` hung calls arrived (every slot is taken: the run can send
    nothing more); what arrived after the signal, per call."""
    emulator.wait_for_arrivals(hung_call, in_flight)
    calls = ("upload", "token", "definitions list", "definitions create")
    before = {call: emulator.arrivals(call) for call in calls}
    live.process.send_signal(signum)
    if twice:
        live.process.send_signal(signum)
    assert live.finish(timeout=STOP_WITHIN) == 128 + signum
    return {call: emulator.arrivals(call) - before[call] for call in calls}


def assert_nothing_lost(live: LiveRun, signum: signal.Signals) -> None:
    assert len(live.error_lines) == 1, live.stderr[-3000:]
    assert f"stopped by {signum.name}" in live.error_lines[0]
    assert "Traceback" not in live.stderr
    report = live.report
    assert_accounted(report)
    assert report["records_undelivered"] > 0
    assert "re-run from the last STATE" in live.error_lines[0]
    undelivered = {u["dedupe_id"] for u in report["undelivered"]}
    assert len(undelivered) == report["records_undelivered"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_hung_upload_does_not_hold_up_a_stop(
    emulator: AmazonAdsEmulator, tmp_path: Path, signum: signal.Signals
) -> None:
    live = hung_run(emulator, tmp_path, "upload", records=400, concurrency=2)

    sent_after = stopped_after_signal(emulator, live, signum, "upload", in_flight=2)

    assert sent_after == {"upload": 0, "token": 0, "definitions list": 0, "definitions create": 0}
    assert_nothing_lost(live, signum)
    assert live.states == [], "no STATE passes a record in flight"


def test_a_hung_token_call_does_not_hold_up_a_stop(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    live = hung_run(emulator, tmp_path, "token", records=300, concurrency=4)

    sent_after = stopped_after_signal(emulator, live, signal.SIGTERM, "token")

    assert sent_after["token"] == 0, "no new token request after the signal"
    assert sum(sent_after.values()) == 0
    assert_nothing_lost(live, signal.SIGTERM)
    assert live.states == []


def test_a_second_signal_stops_at_once(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    live = hung_run(emulator, tmp_path, "upload", records=400, concurrency=2)

    sent_after = stopped_after_signal(
        emulator, live, signal.SIGTERM, "upload", in_flight=2, twice=True
    )

    assert sum(sent_after.values()) == 0
    assert_nothing_lost(live, signal.SIGTERM)


def test_answers_before_the_stop_still_settle_their_records(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """Uploads answered before the signal are accepted and STATE covers them; only the hung
    one is undelivered."""
    records = [seed_record(i) for i in range(1000)]
    config = emulator.target_config(max_concurrent_requests=1, **SLOW_TIMEOUT)
    emulator.faults.hang_seconds = HANG_SECONDS
    emulator.script("upload", *[207] * 3, "hang")  # three uploads answered, the fourth hangs
    live = LiveRun(config, tmp_path)
    live.feed(tap(records, state_every=100))
    live.wait_for_state(at_least=300)

    stopped_after_signal(emulator, live, signal.SIGTERM, "upload")

    assert_nothing_lost(live, signal.SIGTERM)
    assert position(live.states[-1]) == 300
    assert live.report["records_accepted"] == 300
    assert sorted(emulator.accepted_ids().values()) == [1] * 300


def test_a_dead_token_endpoint_is_one_answer_for_every_thread(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.script("token", *[503] * 500)
    records = [seed_record(i) for i in range(2000)]
    config = emulator.target_config(
        max_concurrent_requests=8, max_retries=3, conversion_definitions={"purchase": "cd-purchase"}
    )
    run = run_target(config, singer_stream(records, state_every=100), tmp_path)

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    assert "could not get an access token" in run.error_lines[0]
    assert "after 3 retries" in run.error_lines[0]
    assert emulator.arrivals("token") == 4, "one sign-in: the first try and 3 retries"
    assert run.states == []
    assert_accounted(run.report)


def _blocked_signals(pid: int, tid: int) -> set[int]:
    """The signals a thread of a process blocks (/proc: SigBlk, a hex bit mask)."""
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    mask = int(
        next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
    )
    return {number for number in range(1, 65) if mask & (1 << (number - 1))}


def test_only_the_main_thread_takes_a_stop_signal(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """The kernel hands a signal to any thread that does not block it, and Python runs the
    handler only in the main thread: one that lands on an upload thread while the main thread
    waits for a free slot would hold the stop up until the hung request ends (seen in CI, 1 run
    in 6 under load). So every other thread of the target blocks SIGTERM and SIGINT."""
    live = hung_run(emulator, tmp_path, "upload", records=400, concurrency=2)
    emulator.wait_for_arrivals("upload", 2)
    pid = live.process.pid
    threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    assert len(threads) >= 4  # main, two uploads, the progress ticker
    stop = {signal.SIGTERM.value, signal.SIGINT.value}
    for tid in threads:
        blocked = _blocked_signals(pid, tid) & stop
        assert blocked == (set() if tid == pid else stop), f"thread {tid}"
    stopped_after_signal(emulator, live, signal.SIGTERM, "upload", in_flight=2)
    assert_nothing_lost(live, signal.SIGTERM)


def test_sigusr1_prints_where_each_thread_waits_and_the_run_goes_on(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """What a run that seems stuck waits for: `kill -USR1` prints every thread's stack (files,
    lines, functions; no values), and the run carries on until it is stopped."""
    live = hung_run(emulator, tmp_path, "upload", records=400, concurrency=2)
    emulator.wait_for_arrivals("upload", 2)
    live.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + STOP_WITHIN
    # Both upload threads wait for their answers; the main thread (the oldest, printed last)
    # runs the command line's `main`.
    while live.stderr.count("in _deliver") < 2 or "cli.py" not in live.stderr:
        assert time.monotonic() < deadline, live.stderr[-3000:]
        time.sleep(0.1)
    assert live.process.poll() is None, "SIGUSR1 must not end the run"
    assert "order-0" not in live.stderr and "@example.com" not in live.stderr.lower()
    stopped_after_signal(emulator, live, signal.SIGTERM, "upload", in_flight=2)
    assert_nothing_lost(live, signal.SIGTERM)
