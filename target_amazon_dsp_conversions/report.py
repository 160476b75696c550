"""What the user sees of a run: counters, the rejects file, progress lines, summary and report."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from target_amazon_dsp_conversions.errors import Problem

logger = logging.getLogger("target-amazon-dsp-conversions")

MAX_LISTED_UNDELIVERED = 1000


class RunStats:
    """Thread-safe counters of one run."""

    def __init__(self) -> None:
        """Start the clock."""
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.records_read = 0
        self.records_sent = 0
        self.records_accepted = 0
        self.records_rejected = 0
        self.records_undelivered = 0
        self.requests_sent = 0
        self.retries = 0
        self.rejects_by_code: Counter[str] = Counter()
        # Records per set of match key types (a handful of sets; summed up for the report).
        self._key_type_sets: dict[tuple[str, ...], int] = {}
        self.undelivered: list[dict[str, str]] = []
        self.failure: str | None = None

    def count_read(self, match_key_types: tuple[str, ...] = (), records: int = 1) -> None:
        """A record (or `records` records with the same match key types) was read; called
        from the main thread only."""
        self.records_read += records
        if match_key_types:
            sets = self._key_type_sets
            sets[match_key_types] = sets.get(match_key_types, 0) + records

    @property
    def match_keys(self) -> Counter[str]:
        """Records read per match key type."""
        counts: Counter[str] = Counter()
        for key_types, records in self._key_type_sets.items():
            for key_type in key_types:
                counts[key_type] += records
        return counts

    def count_request(self) -> None:
        """An HTTP request went out."""
        with self._lock:
            self.requests_sent += 1

    def count_retry(self) -> None:
        """A request is retried."""
        with self._lock:
            self.retries += 1

    def count_sent(self, n: int) -> None:
        """n records left in a request."""
        with self._lock:
            self.records_sent += n

    def count_accepted(self, n: int = 1) -> None:
        """n records were accepted by Amazon."""
        with self._lock:
            self.records_accepted += n

    def count_rejected(self, problems: list[Problem]) -> None:
        """A record went to the rejects file."""
        with self._lock:
            self.records_rejected += 1
            self.rejects_by_code[problems[0].code] += 1

    def count_undelivered(self, stream: str, dedupe_id: str, failure: str) -> None:
        """A record could be neither delivered nor rejected; the next run resends it."""
        with self._lock:
            self.records_undelivered += 1
            self.failure = self.failure or failure
            if len(self.undelivered) < MAX_LISTED_UNDELIVERED:
                self.undelivered.append({"stream": stream, "dedupe_id": dedupe_id})

    @property
    def seconds(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def progress_line(self) -> str:
        """One line of progress."""
        seconds = max(self.seconds, 1e-9)
        return (
            f"{self.records_read} read, {self.records_sent} sent, "
            f"{self.records_accepted} accepted, "
            f"{self.records_rejected} rejected, {self.records_read / seconds:.0f} records/s"
        )

    def summary_line(self, *, dry_run: bool) -> str:
        """The one line at the end of a run."""
        verb = "written to the dry-run file" if dry_run else "accepted"
        line = (
            f"Run {'failed' if self.records_undelivered else 'complete'}: "
            f"{self.records_read} records read, {self.records_accepted} {verb}, "
            f"{self.records_rejected} rejected"
        )
        if self.records_undelivered:
            line += f", {self.records_undelivered} not delivered (resent by the next run)"
        return (
            line + f"; {self.requests_sent} requests, {self.retries} retries, {self.seconds:.1f} s"
        )

    def report(self, *, api: str, dry_run: bool) -> dict[str, Any]:
        """The JSON report of SPEC §6, plus what a failed run left undelivered."""
        report: dict[str, Any] = {
            "records_read": self.records_read,
            "records_accepted": self.records_accepted,
            "records_rejected": self.records_rejected,
            "records_undelivered": self.records_undelivered,
            "requests_sent": self.requests_sent,
            "retries": self.retries,
            "rejects_by_code": dict(self.rejects_by_code),
            "match_keys": dict(self.match_keys),
            "duration_seconds": round(self.seconds, 3),
            "api": api,
            "dry_run": dry_run,
        }
        if self.records_undelivered:
            report["failure"] = self.failure
            report["undelivered"] = self.undelivered
        return report


class RejectsFile:
    """Appends refused records with their reasons; the one place the original record is kept."""

    def __init__(self, path: str) -> None:
        """Opened on the first reject, so a clean run leaves no file behind."""
        self._path = path
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    def write(self, stream: str, record: Any, problems: list[Problem]) -> None:
        """One line per record, flushed at once so a crash cannot lose it."""
        line = json.dumps(
            {
                "stream": stream,
                "record": record,
                "errors": [p.as_dict() for p in problems],
                "rejected_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
            default=_original_value,
            ensure_ascii=False,
        )
        with self._lock:
            if self._file is None:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file if it was opened."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _original_value(value: Any) -> Any:
    # The reader parses JSON numbers as Decimal: write them back as numbers, not strings.
    if isinstance(value, Decimal) and value.is_finite():
        if value == value.to_integral_value():
            return int(value)
        number = float(value)
        if math.isfinite(number):
            return number
    return str(value)


def write_report(path: str, report: dict[str, Any]) -> None:
    """Write the JSON report."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


class ProgressTicker:
    """Logs progress every few seconds and runs a periodic task (flushing stale batches)."""

    def __init__(self, stats: RunStats, interval: float, tick: Any) -> None:
        """`tick()` runs on each beat, from the ticker's thread."""
        self._stats = stats
        self._interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def start(self) -> None:
        """Start beating."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating."""
        self._stop.set()

    def _run(self) -> None:
        last_log = time.monotonic()
        while not self._stop.wait(1.0):
            self._tick()
            if time.monotonic() - last_log >= self._interval:
                last_log = time.monotonic()
                logger.info("Progress: %s", self._stats.progress_line())
