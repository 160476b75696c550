"""Kills, signals and outages mid-run: STATE covers only what Amazon acknowledged, and a
re-run from the last STATE delivers every record, the dedupe ID absorbing the resends."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import (
    SEED_SCHEMA,
    TARGET,
    cli_error_lines,
    read_report,
    run_target,
    seed_record,
)
from tests.emulator import AmazonAdsEmulator

STREAM = "conversions"


def dedupe_id(record: dict[str, Any], stream: str = STREAM) -> str:
    """The README's rule for a stream with key properties (here `order_id`)."""
    seed = stream + "\x1f" + json.dumps([record["order_id"]])
    return "tadc-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def tap(records: list[dict[str, Any]], *, start: int = 0, state_every: int = 100) -> list[dict]:
    """A tap that resumes: STATE {"n": N} means records[:N] were emitted; it starts at `start`."""
    messages: list[dict[str, Any]] = [
        {"type": "SCHEMA", "stream": STREAM, "schema": SEED_SCHEMA, "key_properties": ["order_id"]}
    ]
    for n in range(start + 1, len(records) + 1):
        messages.append({"type": "RECORD", "stream": STREAM, "record": records[n - 1]})
        if n % state_every == 0 or n == len(records):
            messages.append({"type": "STATE", "value": {"bookmarks": {STREAM: {"n": n}}}})
    return messages


def position(state: dict[str, Any]) -> int:
    """How many records a STATE says were emitted."""
    return int(state["bookmarks"][STREAM]["n"])


def split_after_state(messages: list[dict], n: int) -> tuple[list[dict], list[dict]]:
    """The messages up to the STATE for `n` records, and the rest: a test that changes the
    emulator once that STATE came writes the rest only then, so however fast the target is,
    the rest meets the change."""
    cut = 1 + next(
        i for i, m in enumerate(messages) if m["type"] == "STATE" and position(m["value"]) == n
    )
    return messages[:cut], messages[cut:]


class LiveRun:
    """The console script as a process we can watch, feed slowly, signal and kill."""

    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        """Start the target; stdout is read as it comes, stderr goes to a file."""
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(json.dumps({"report_path": "report.json", **config}))
        self.workdir = workdir
        self._stderr = (workdir / "stderr.txt").open("w")
        self.process = subprocess.Popen(
            [*TARGET, "--config", "config.json"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=workdir,
            env={**os.environ},
        )
        self.states: list[Any] = []
        self._lines: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self._lines.put(json.loads(line))
        self._lines.put(None)

    def feed(self, messages: list[dict[str, Any]], *, close: bool = True) -> threading.Thread:
        """Write messages to stdin from a thread (a pipe can hold only so much); join the
        thread before writing more yourself."""

        def write() -> None:
            # OSError: the target was stopped while we were still writing.
            with contextlib.suppress(ValueError, OSError):
                self._send(messages, close=close)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        return writer

    def write(self, messages: list[dict[str, Any]], *, close: bool = True) -> None:
        """Write messages to stdin here (no feeding thread may be running); a target that ended
        before reading them all fails the test with its exit code and the end of its stderr."""
        try:
            self._send(messages, close=close)
        except BrokenPipeError:
            code = self.process.wait(timeout=60)
            raise AssertionError(
                f"the target ended (exit {code}) before reading its input:\n{self.stderr[-3000:]}"
            ) from None

    def _send(self, messages: list[dict[str, Any]], *, close: bool) -> None:
        assert self.process.stdin is not None
        for message in messages:
            self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        if close:
            self.process.stdin.close()

    def wait_for_state(self, at_least: int, timeout: float = 300) -> Any:
        """Block until a STATE covering `at_least` records comes out."""
        deadline = time.monotonic() + timeout
        while True:
            state = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert state is not None, "the target ended before emitting that STATE"
            self.states.append(state)
            if position(state) >= at_least:
                return state

    def finish(self, timeout: float = 300) -> int:
        """Wait for the exit; collect every STATE it wrote. (Generous timeouts: a machine
        busy with other work may run the target many times slower than an idle one.)"""
        try:
            returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # the target prints its threads' stacks
            time.sleep(2)
            self.process.kill()
            raise AssertionError(
                f"the target did not end within {timeout} s; where its threads were:\n"
                + self.stderr[-6000:]
            ) from None
        while (state := self._lines.get(timeout=30)) is not None:
            self.states.append(state)
        self._stderr.close()
        return returncode

    @property
    def stderr(self) -> str:
        """Everything written to stderr so far."""
        return (self.workdir / "stderr.txt").read_text()

    @property
    def report(self) -> dict[str, Any]:
        """The JSON run report."""
        return read_report(self.workdir)

    @property
    def error_lines(self) -> list[str]:
        """Our CLI's one-line fatal errors."""
        return cli_error_lines(self.stderr)


def settled_ledger(emulator: AmazonAdsEmulator, quiet: float = 1.0) -> Counter[str | None]:
    """The emulator's accepted IDs once the requests of a stopped target are all answered: none
    in flight and none new for `quiet` seconds (a busy machine may be slow to hand one over)."""
    seen, quiet_since = len(emulator.requests), time.monotonic()
    while True:
        time.sleep(0.1)
        count = len(emulator.requests)
        if count != seen or emulator.api_in_flight:
            seen, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return emulator.accepted_ids()


def assert_accounted(report: dict[str, Any]) -> None:
    """records read = accepted + rejected + undelivered, whatever happened."""
    assert report["records_read"] == (
        report["records_accepted"] + report["records_rejected"] + report["records_undelivered"]
    ), report


def test_sigkill_mid_run_then_restart_from_last_state_loses_nothing(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(3000)]
    ids = [dedupe_id(r) for r in records]
    emulator.faults.latency_seconds = 0.1  # requests are in flight when the kill comes
    config = emulator.target_config(max_concurrent_requests=4)

    first = LiveRun(config, tmp_path / "first")
    # Half the input, stdin left open: however late the kill comes, the run is not over.
    first.feed(split_after_state(tap(records), 1500)[0], close=False)
    first.wait_for_state(at_least=300)
    first.process.kill()
    assert first.finish() == -signal.SIGKILL
    resume_at = position(first.states[-1])

    after_kill = settled_ledger(emulator)
    # The STATE it emitted covers only records Amazon had accepted.
    assert all(after_kill[i] == 1 for i in ids[:resume_at])

    second = run_target(config, tap(records, start=resume_at), tmp_path / "second")
    assert second.returncode == 0, second.stderr
    assert second.states[-1] == {"bookmarks": {STREAM: {"n": len(records)}}}
    assert second.report["records_read"] == len(records) - resume_at

    ledger = emulator.accepted_ids()
    assert set(ledger) == set(ids), "a record was lost or an unknown event appeared"
    duplicates = {i: n - 1 for i, n in ledger.items() if n > 1}
    # Exactly the records Amazon accepted after the last STATE the killed run emitted were
    # sent again, with the same dedupe ID: that is what Amazon's dedupe absorbs.
    resent = {i for i in ids[resume_at:] if after_kill[i]}
    assert set(duplicates) == resent
    assert all(n == 1 for n in duplicates.values())
    events_by_id: dict[str, list[dict[str, Any]]] = {}
    for event in emulator.accepted:
        events_by_id.setdefault(event["clientDedupeId"], []).append(event)
    for dup in duplicates:
        first_copy, second_copy = events_by_id[dup]
        assert first_copy == second_copy, "a resend must be the same event, not a new one"


def test_sigterm_mid_run_states_only_acknowledged_records(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(2000)]
    ids = [dedupe_id(r) for r in records]
    emulator.faults.latency_seconds = 0.2
    config = emulator.target_config(max_concurrent_requests=2)

    run = LiveRun(config, tmp_path)
    # Half the input, stdin left open: however late the signal comes, the run is not over.
    run.feed(split_after_state(tap(records), 1000)[0], close=False)
    run.wait_for_state(at_least=200)
    run.process.send_signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGTERM

    assert len(run.error_lines) == 1, run.stderr
    assert "stopped by SIGTERM" in run.error_lines[0]
    assert "Traceback" not in run.stderr
    report = run.report
    assert_accounted(report)
    # Records read but not acknowledged when the stop came (if the stop fell between two
    # batches there are none) are named in the line; those never read are simply resent.
    if report["records_undelivered"]:
        assert "re-run from the last STATE" in run.error_lines[0]
    ledger = settled_ledger(emulator)
    last = position(run.states[-1])
    assert all(ledger[i] == 1 for i in ids[:last])
    assert report["records_accepted"] == sum(ledger.values())


def test_signal_while_waiting_for_input_stops_at_once(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """A slow tap: the target is blocked reading stdin when Meltano stops it."""
    records = [seed_record(i) for i in range(150)]
    ids = [dedupe_id(r) for r in records]
    config = emulator.target_config()
    for signum in (signal.SIGTERM, signal.SIGINT):
        run = LiveRun(config, tmp_path / signum.name)
        run.feed(tap(records, state_every=100)[:-1], close=False)  # no final STATE, no EOF
        run.wait_for_state(at_least=100)
        run.process.send_signal(signum)
        assert run.finish(timeout=30) == 128 + signum
        assert [position(s) for s in run.states] == [100]
        assert f"stopped by {signum.name}" in run.error_lines[0]
        report = run.report
        assert_accounted(report)
        assert report["records_read"] >= 100
        assert all(emulator.accepted_ids()[i] >= 1 for i in ids[:100])
        assert run.process.stdin is not None
        run.process.stdin.close()


def test_amazon_down_mid_run_fails_with_undelivered_records_then_rerun_completes(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(1000)]
    ids = [dedupe_id(r) for r in records]
    emulator.faults.latency_seconds = 0.05
    emulator.faults.fail_status = 503
    config = emulator.target_config(max_concurrent_requests=2, max_retries=1)

    run = LiveRun(config, tmp_path / "first")
    first, rest = split_after_state(tap(records), 100)
    run.write(first, close=False)
    run.wait_for_state(at_least=100)
    emulator.faults.fail_first_n = 10**9  # from now on every API request answers 503
    run.feed(rest)
    assert run.finish() == 1

    assert len(run.error_lines) == 1, run.stderr
    line = run.error_lines[0]
    assert "failed after 1 retries (last: HTTP 503)" in line
    assert "not delivered" in line and "re-run from the last STATE" in line
    assert "Traceback" not in run.stderr
    report = run.report
    assert_accounted(report)
    undelivered = {u["dedupe_id"] for u in report["undelivered"]}
    assert report["records_undelivered"] == len(undelivered) > 0
    assert "not delivered (dedupe IDs: tadc-" in run.stderr
    ledger = settled_ledger(emulator)
    assert not undelivered & set(ledger), "a record both accepted and reported undelivered"
    read = ids[: report["records_read"]]
    assert set(read) == undelivered | set(ledger)
    last = position(run.states[-1])
    assert all(ledger[i] == 1 for i in ids[:last])
    assert not undelivered & set(ids[:last]), "STATE passed a record that was not delivered"

    emulator.faults.fail_first_n = 0
    rerun = run_target(config, tap(records, start=last), tmp_path / "second")
    assert rerun.returncode == 0, rerun.stderr
    final = emulator.accepted_ids()
    assert set(final) == set(ids)
