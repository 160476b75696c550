"""Benchmark: this target vs MeltanoLabs' target-csv, with and without API latency.

    python bench/run.py [--records 100000] [--big 1000000] [--rounds 3] [--latency 0.1]

Runs, side by side and interleaved in each round, on the same synthetic input:

* ``target-csv``   meltanolabs-target-csv 0.5.0 (a reference SDK target; own venv in
                   bench/.venv-csv, created on first use),
* ``target``       this target against the emulator, no latency,
* ``target+lat``   this target against the emulator adding ``--latency`` s to every API call,

then this target once more on ``--big`` records for the memory point. Each run is a fresh
process: wall time from start to exit; peak RSS is the larger of the child's own peak (``wait4``)
and the sum over the target and its worker processes (sampled every 20 ms).
The emulators run in their own processes (they must not share the target's GIL) with
``--no-validate --no-ledger``: its per-request OpenAPI check would otherwise be the slow side
of the no-latency runs. Every target run must end with all records accepted (checked from its
run report) or the benchmark fails.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from generate import write_input  # noqa: E402

CSV_VENV = HERE / ".venv-csv"
CSV_PACKAGE = "meltanolabs-target-csv==0.5.0"

# Goals (README "Performance").
GOAL_VS_CSV = 0.45  # wall time at --records, vs target-csv (issue 20)
GOAL_LATENCY = 1.5  # wall time with latency, vs without
GOAL_MEMORY = 1.3  # peak RSS at --big, vs at --records
JOURNAL = "delivery-journal.sqlite"


@dataclass
class Result:
    seconds: float
    peak_rss_mb: float


def ensure_csv_venv() -> Path:
    python = CSV_VENV / "bin" / "python"
    if not (CSV_VENV / "bin" / "target-csv").exists():
        print(f"Creating {CSV_VENV} with {CSV_PACKAGE} (first run only) ...", flush=True)
        venv.create(CSV_VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", CSV_PACKAGE], check=True)
    return CSV_VENV / "bin" / "target-csv"


def run_child(argv: list[str], stdin: Path, cwd: Path, env: dict[str, str] | None = None) -> Result:
    """Run to completion; wall seconds and peak RSS: the largest of the child's own peak
    (wait4, exact) and the sum over the child and its worker processes (sampled every 20 ms)."""
    with stdin.open("rb") as source, (cwd / "stderr.log").open("wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            argv, stdin=source, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd, env=env
        )
        tree_peak = [0]
        done = threading.Event()
        sampler = threading.Thread(target=_sample_tree_rss, args=(child.pid, tree_peak, done))
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = (cwd / "stderr.log").read_text(errors="replace")[-2000:]
        raise SystemExit(f"{argv[0]} exited {child.returncode}:\n{tail}")
    own_peak = usage.ru_maxrss * 1024  # Linux: KiB
    return Result(seconds, max(own_peak, tree_peak[0]) / 2**20)


def _sample_tree_rss(pid: int, peak: list[int], done: threading.Event) -> None:
    try:
        process = psutil.Process(pid)
        while not done.wait(0.02):
            total = process.memory_info().rss
            for worker in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += worker.memory_info().rss
            peak[0] = max(peak[0], total)
    except psutil.Error:
        pass  # the process ended between two samples


class Emulator:
    """`python -m tests.emulator` in its own process."""

    def __init__(self, latency: float, *, validate: bool = False, ledger: bool = False) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "tests.emulator", "--port", "0", "--latency", str(latency),
                *([] if validate else ["--no-validate"]), *([] if ledger else ["--no-ledger"]),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        first = self.process.stdout.readline()  # "Amazon Ads emulator listening on URL"
        self.url = first.rsplit(" ", 1)[-1].strip()
        if not self.url.startswith("http"):
            raise SystemExit(f"emulator did not start: {first!r}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def target_config(url: str, work: Path) -> dict[str, object]:
    return {
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": "test-client-secret",
        "refresh_token": "Atzr|test-refresh-token",
        "api_url": url,
        "auth_url": f"{url}/auth/o2/token",
        "advertiser_id": "1234567890",
        "profile_id": "3333333333",
        "conversion_definitions": {"purchase": "cd-purchase"},
        "rejects_path": str(work / "rejects.jsonl"),
        "report_path": str(work / "report.json"),
        "journal_path": str(work / JOURNAL),
    }


def run_target(name: str, url: str, records: int, inputs: Path, work: Path) -> Result:
    run_dir = work / name
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "config.json"
    config.write_text(json.dumps(target_config(url, run_dir)))
    (run_dir / "report.json").unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):  # the same records again would all be skipped
        (run_dir / (JOURNAL + suffix)).unlink(missing_ok=True)
    python = Path(sys.executable)
    result = run_child(
        [str(python), "-m", "target_amazon_dsp_conversions", "--config", str(config)],
        inputs,
        run_dir,
    )
    report = json.loads((run_dir / "report.json").read_text())
    if report["records_accepted"] != records:
        raise SystemExit(f"{name}: {report['records_accepted']} of {records} accepted: {report}")
    return result


def run_csv(csv: Path, inputs: Path, work: Path) -> Result:
    run_dir = work / "target-csv"
    out = run_dir / "out"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    config = run_dir / "config.json"
    config.write_text(json.dumps({"output_path": str(out)}))
    return run_child([str(csv), "--config", str(config)], inputs, run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000, help="0 skips the memory point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per API call")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "target-amazon-dsp-conversions-bench",
        help="inputs (~300 MB at 1M records), configs, logs; outside the repository by default",
    )
    args = parser.parse_args()

    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    csv = ensure_csv_venv()
    # pip compiles a package's bytecode when it installs it (target-csv's included); an
    # editable install does not, and with PYTHONDONTWRITEBYTECODE set nothing ever writes it,
    # so every run would compile this target's modules again (~0.3 s of start-up).
    compileall.compile_dir(ROOT / "target_amazon_dsp_conversions", quiet=1)
    inputs = {}
    for n in {args.records, args.big} - {0}:
        path = work / f"input-{n}.jsonl"
        print(f"Generating {n:,} records -> {path} ...", flush=True)
        inputs[n] = write_input(path, n)  # fresh each run: timestamps must be recent

    fast, slow = Emulator(0.0), Emulator(args.latency)
    results: dict[str, list[Result]] = {"target-csv": [], "target": [], "target+lat": []}
    try:
        n = args.records
        for round_no in range(1, args.rounds + 1):
            for name in results:
                if name == "target-csv":
                    result = run_csv(csv, inputs[n], work)
                else:
                    url = fast.url if name == "target" else slow.url
                    result = run_target(name, url, n, inputs[n], work)
                results[name].append(result)
                print(
                    f"  round {round_no} {name:11s} {result.seconds:7.2f} s "
                    f"{n / result.seconds:9,.0f} records/s  peak RSS {result.peak_rss_mb:6.1f} MB",
                    flush=True,
                )
        big = None
        if args.big:
            big = run_target("target-big", fast.url, args.big, inputs[args.big], work)
            print(
                f"  big      target      {big.seconds:7.2f} s {args.big / big.seconds:9,.0f} "
                f"records/s  peak RSS {big.peak_rss_mb:6.1f} MB",
                flush=True,
            )
    finally:
        fast.stop()
        slow.stop()

    med = {k: statistics.median(r.seconds for r in v) for k, v in results.items()}
    rss = {k: max(r.peak_rss_mb for r in v) for k, v in results.items()}
    n = args.records
    print()
    print(f"{n:,} records, median of {args.rounds} rounds (latency {args.latency * 1000:.0f} ms):")
    print(f"  {'':11s} {'wall s':>8s} {'records/s':>10s} {'vs csv':>7s} {'peak RSS MB':>12s}")
    for name in results:
        print(
            f"  {name:11s} {med[name]:8.2f} {n / med[name]:10,.0f} "
            f"{med[name] / med['target-csv']:7.2f} {rss[name]:12.1f}"
        )
    checks = [
        (
            f"target wall time <= {GOAL_VS_CSV}x target-csv",
            med["target"] / med["target-csv"],
            GOAL_VS_CSV,
        ),
        (
            f"with {args.latency * 1000:.0f} ms latency <= {GOAL_LATENCY}x no latency",
            med["target+lat"] / med["target"],
            GOAL_LATENCY,
        ),
    ]
    if big is not None:
        print(
            f"  {args.big:,} records: {big.seconds:.2f} s, "
            f"{args.big / big.seconds:,.0f} records/s, peak RSS {big.peak_rss_mb:.1f} MB"
        )
        checks.append(
            (
                f"peak RSS at {args.big:,} <= {GOAL_MEMORY}x at {n:,}",
                big.peak_rss_mb / rss["target"],
                GOAL_MEMORY,
            )
        )
    print("Goals:")
    failed = False
    for label, value, goal in checks:
        ok = value <= goal
        failed |= not ok
        print(f"  {'PASS' if ok else 'MISS'}  {label}: {value:.2f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
