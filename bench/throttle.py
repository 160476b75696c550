"""Benchmark: pacing to Amazon's throttling, and reruns after kills that resend nothing.

    python bench/throttle.py [--records 30000] [--kills 10] [--kill-records 3000] [--limits 5/s]

1. DSP runs of --records records against an emulator that allows 5, 20 and 50 requests/s per
   account (token bucket, burst 10, 429 without Retry-After), and one run whose limit drops from
   50 to 10 requests/s mid-run and comes back. For each: wall time against the ideal (the time
   the limit needs for the requests, (requests - burst) / rate, plus the target's own fixed
   start-up, measured on a tiny input), the share of requests answered 429, and the events the
   emulator accepted. Goals: exit 0 and every event accepted exactly once; wall <= 1.2x ideal;
   429s <= 10% of requests.
2. Kill and resume: --kill-records records (STATE every 50, 40 ms per API call, 30 requests/s),
   SIGKILL at random moments --kills times, each followed by a rerun from the last STATE written
   (the same delivery journal). Goal: every record accepted, and no event resent that the
   target had seen acknowledged (its journal at the kill).
Ratios are measured side by side in one run; nothing here is a timed test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from target_amazon_dsp_conversions.journal import destination, entry_key

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from generate import write_input  # noqa: E402
from run import Emulator, target_config  # noqa: E402

BURST = 10
JOURNAL = "journal.sqlite"
EVENTS_PER_REQUEST = 100
GOAL_WALL = 1.2  # wall vs ideal + start-up
GOAL_THROTTLED = 0.10  # share of requests answered 429


def control(url: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def start_target(url: str, work: Path, stdin: Any, **settings: Any) -> subprocess.Popen[bytes]:
    work.mkdir(parents=True, exist_ok=True)
    config = {**target_config(url, work), "journal_path": str(work / JOURNAL), **settings}
    (work / "config.json").write_text(json.dumps(config))
    return subprocess.Popen(
        [sys.executable, "-m", "target_amazon_dsp_conversions", "--config", "config.json"],
        stdin=stdin, stdout=subprocess.PIPE, stderr=(work / "stderr.log").open("wb"), cwd=work,
    )  # fmt: skip


def timed_run(url: str, inputs: Path, work: Path) -> tuple[float, dict[str, Any]]:
    for suffix in ("", "-wal", "-shm"):  # each run starts afresh
        (work / (JOURNAL + suffix)).unlink(missing_ok=True)
    with inputs.open("rb") as source:
        started = time.perf_counter()
        target = start_target(url, work, source)
        target.communicate()
        seconds = time.perf_counter() - started
    if target.returncode != 0:
        tail = (work / "stderr.log").read_text(errors="replace")[-1500:]
        raise SystemExit(f"target exited {target.returncode}:\n{tail}")
    return seconds, json.loads((work / "report.json").read_text())


def ideal_seconds(requests: int, schedule: list[tuple[float, float]]) -> float:
    """When a token bucket (full at start) with rates [(from second, rate), ...] has let
    `requests` through."""
    owed = requests - BURST
    for (start, rate), (end, _) in zip(schedule, [*schedule[1:], (math.inf, 0)], strict=True):
        if owed <= rate * (end - start):
            return start + owed / rate
        owed -= rate * (end - start)
    raise AssertionError("unreachable")


def throttled_runs(records: int, work: Path, only: set[str] | None = None) -> bool:
    inputs = write_input(work / f"input-{records}.jsonl", records)
    tiny = write_input(work / "input-tiny.jsonl", 10)
    requests = math.ceil(records / EVENTS_PER_REQUEST)
    runs: list[tuple[str, list[tuple[float, float]]]] = [
        ("5/s", [(0.0, 5.0)]),
        ("20/s", [(0.0, 20.0)]),
        ("50/s", [(0.0, 50.0)]),
        ("50->10->50/s", [(0.0, 50.0), (2.0, 10.0), (6.0, 50.0)]),
    ]
    ok = True
    print(f"{records:,} DSP records, {requests} requests, burst {BURST}, no Retry-After:")
    print(f"  {'limit':14s} {'wall s':>7s} {'ideal s':>8s} {'ratio':>6s} {'429s':>6s} accepted")
    for name, schedule in runs:
        if only and name not in only:
            continue
        emulator = Emulator(0.0, validate=False, ledger=True)
        try:
            startup, _ = timed_run(emulator.url, tiny, work / "startup")
            control(emulator.url, "/_emulator/throttle", {"rate": None})
            stats_before = control(emulator.url, "/_emulator/stats")
            rate = schedule[0][1]
            control(emulator.url, "/_emulator/throttle", {"rate": rate, "burst": BURST})
            changes = [
                threading.Timer(at, control, (emulator.url, "/_emulator/throttle",
                                               {"rate": r, "burst": BURST}))
                for at, r in schedule[1:]
            ]  # fmt: skip
            for timer in changes:
                timer.start()
            seconds, report = timed_run(emulator.url, inputs, work / name.replace("/", "_"))
            for timer in changes:
                timer.cancel()
            stats = control(emulator.url, "/_emulator/stats")
        finally:
            emulator.stop()
        sent = stats["requests"] - stats_before["requests"]
        throttled = (stats["throttled"] - stats_before["throttled"]) / max(sent, 1)
        ideal = ideal_seconds(requests, schedule) + startup
        # Accepted during this run, per ID (the start-up run sent IDs of the same shape).
        before_ids = stats_before["accepted_ids"]
        deltas = [n - before_ids.get(i, 0) for i, n in stats["accepted_ids"].items()]
        exactly_once = sorted(set(deltas) - {0}) == [1] and deltas.count(1) == records
        accepted = report["records_accepted"] == records and exactly_once
        ratio = seconds / ideal
        ok &= accepted and ratio <= GOAL_WALL and throttled <= GOAL_THROTTLED
        print(
            f"  {name:14s} {seconds:7.2f} {ideal:8.2f} {ratio:6.2f} {throttled:6.1%} "
            f"{'all, once' if accepted else 'NOT ALL ONCE'}  (start-up {startup:.2f} s, "
            f"{sent} requests)",
            flush=True,
        )
    return ok


def kill_and_resume(records: int, kills: int, work: Path) -> bool:
    inputs = write_input(work / "input-kills.jsonl", records, state_every=50)
    lines = inputs.read_bytes().splitlines(keepends=True)
    schema, messages = lines[0], lines[1:]
    emulator = Emulator(0.04, validate=False, ledger=True)
    control(emulator.url, "/_emulator/throttle", {"rate": 30, "burst": BURST})
    rng = random.Random(7)
    run_dir = work / "kills"
    journal = run_dir / JOURNAL
    resent_acknowledged = 0
    position = 0
    try:
        for attempt in range(kills + 1):
            rest = schema + b"".join(_after_state(messages, position))
            target = start_target(emulator.url, run_dir, subprocess.PIPE, max_concurrent_requests=4)
            writer = threading.Thread(target=_write_all, args=(target, rest))
            writer.start()
            states: list[int] = []
            reader = threading.Thread(target=_read_states, args=(target, states))
            reader.start()
            if attempt < kills:
                time.sleep(rng.uniform(0.8, 2.0))  # start-up is ~0.7 s
                target.send_signal(signal.SIGKILL)
            target.wait()
            reader.join()
            writer.join()
            position = states[-1] if states else position
            if attempt < kills:
                before = control(emulator.url, "/_emulator/stats")["accepted_ids"]
                acknowledged = _journal_ids(journal, emulator.url, before)
                after_rerun_check.append((acknowledged, before))
            elif target.returncode != 0:
                print(f"  the last run exited {target.returncode}")
                return False
        final = control(emulator.url, "/_emulator/stats")["accepted_ids"]
    finally:
        emulator.stop()
    # An event the killed run had journaled (Amazon acknowledged it) must not come again.
    for acknowledged, before in after_rerun_check:
        resent_acknowledged += sum(1 for i in acknowledged if final.get(i, 0) > before.get(i, 0))
    ids_total = len(final)
    duplicates = sum(n - 1 for n in final.values())
    ok = ids_total == records and resent_acknowledged == 0
    print(
        f"{records:,} records, {kills} SIGKILLs then reruns from the last STATE: "
        f"{ids_total:,} accepted, {resent_acknowledged} resent that had been acknowledged, "
        f"{duplicates} resent in flight at a kill (never answered)",
        flush=True,
    )
    return ok


after_rerun_check: list[tuple[set[str], dict[str, int]]] = []


def _after_state(messages: list[bytes], position: int) -> list[bytes]:
    if position == 0:
        return messages
    marker = json.dumps({"bookmarks": {"conversions": {"n": position}}}, separators=(",", ":"))
    for index, line in enumerate(messages):
        if b'"STATE"' in line and marker.encode() in line:
            return messages[index + 1 :]
    raise AssertionError(f"no STATE n={position}")


def _write_all(target: subprocess.Popen[bytes], data: bytes) -> None:
    assert target.stdin is not None
    try:
        target.stdin.write(data)
        target.stdin.close()
    except (BrokenPipeError, OSError):
        pass  # killed while we were writing


def _read_states(target: subprocess.Popen[bytes], states: list[int]) -> None:
    assert target.stdout is not None
    # extend appends each STATE as it comes: the caller reads the list once the run ended.
    states.extend(
        int(json.loads(line)["bookmarks"]["conversions"]["n"])
        for line in target.stdout
        if line.strip()
    )


def _journal_ids(path: Path, url: str, candidates: Iterable[str]) -> set[str]:
    """Which of the `candidates` (dedupe IDs) the journal holds for this emulator's account."""
    if not path.exists():
        return set()
    with contextlib.closing(sqlite3.connect(path)) as db:
        keys = {k for (k,) in db.execute("SELECT key FROM acknowledged")}
        keys |= {k for (k,) in db.execute("SELECT key FROM acknowledged_log")}
    prefix = destination("dsp", url)
    account = str(target_config(url, path.parent)["advertiser_id"])
    return {i for i in candidates if entry_key(prefix, account, i) in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kill-records", type=int, default=3_000)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "target-amazon-dsp-conversions-bench-throttle",
    )
    parser.add_argument(
        "--limits", help="only these runs, comma-separated (e.g. 5/s,50->10->50/s); default all"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    only = set(args.limits.split(",")) if args.limits else None
    ok = throttled_runs(args.records, args.workdir, only)
    if args.kills:
        ok &= kill_and_resume(args.kill_records, args.kills, args.workdir)
    print("Goals:", "PASS" if ok else "MISS")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
