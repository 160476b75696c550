"""What the user sees of a run: counters, progress lines, the summary line and the report."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.errors import Problem
from target_amazon_dsp_conversions.threads import stop_signals_blocked

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
        self.requests_sent = 0  # uploads of events (in a dry run: written to its file)
        self.lookup_requests = 0  # conversion definitions listed or created
        self.requests_throttled = 0
        self.retries = 0
        self.records_already_acknowledged = 0
        self.records_suppressed = 0  # conversions of people who opted out: not sent
        self.records_deleted_at_source = 0  # rows the tap marks deleted: not sent
        # Opt-outs done: Amazon acknowledged the person's deletion, or (an API without a
        # deletion call) they are on the suppression list. Counted as accepted too.
        self.users_opted_out = 0
        self.rejects_by_code: Counter[str] = Counter()
        # Records per set of match key types (a handful of sets; summed up for the report).
        self._key_type_sets: dict[tuple[str, ...], int] = {}
        # Match keys (types, and userIdentifier) left out of events as unusable beside others.
        self.match_keys_dropped: Counter[str] = Counter()
        self._notices: set[str] = set()
        self.undelivered: list[dict[str, str]] = []
        self.failure: str | None = None

    def count_read(self, match_key_types: tuple[str, ...] = (), records: int = 1) -> None:
        """A record (or `records` records with the same match key types) was read; called
        from the main thread only."""
        self.records_read += records
        if match_key_types:
            sets = self._key_type_sets
            sets[match_key_types] = sets.get(match_key_types, 0) + records

    def count_dropped_keys(self, key_types: tuple[str, ...], records: int) -> None:
        """`records` events left out these match keys (types, or `userIdentifier`) as unusable
        beside other keys; the first of each kind is logged (never a value). Main thread."""
        dropped = self.match_keys_dropped
        for key_type in key_types:
            if key_type not in dropped:
                logger.warning("%s", _dropped_key_warning(key_type))
            dropped[key_type] += records

    def notice(self, texts: tuple[str, ...]) -> None:
        """Log each of these fixed texts the first time it comes (once per run). Main thread."""
        for text in texts:
            if text not in self._notices:
                self._notices.add(text)
                logger.warning("%s", text)

    @property
    def match_keys(self) -> Counter[str]:
        """Records read per match key type."""
        counts: Counter[str] = Counter()
        for key_types, records in self._key_type_sets.items():
            for key_type in key_types:
                counts[key_type] += records
        return counts

    def count_request(self, *, upload: bool = True) -> None:
        """An HTTP request went out: an upload of events, or a lookup (definitions)."""
        with self._lock:
            if upload:
                self.requests_sent += 1
            else:
                self.lookup_requests += 1

    def count_retry(self) -> None:
        """A request is retried."""
        with self._lock:
            self.retries += 1

    def count_throttled(self) -> None:
        """Amazon answered 429."""
        with self._lock:
            self.requests_throttled += 1

    def count_already_acknowledged(self, records: int) -> None:
        """Records the delivery journal showed Amazon acknowledged in an earlier run: counted
        as accepted, not sent again."""
        with self._lock:
            self.records_already_acknowledged += records
            self.records_accepted += records

    def count_suppressed(self) -> None:
        """A conversion of a person who opted out was not sent. Main thread."""
        self.records_suppressed += 1

    def count_deleted(self) -> None:
        """A row deleted at the source was not sent. Main thread."""
        self.records_deleted_at_source += 1

    def count_opted_out(self, people: int = 1) -> None:
        """Opt-outs done (see `users_opted_out`)."""
        with self._lock:
            self.users_opted_out += people

    def count_sent(self, n: int) -> None:
        """n records left in a request."""
        with self._lock:
            self.records_sent += n

    def count_accepted(self, n: int = 1) -> None:
        """n records were accepted by Amazon."""
        with self._lock:
            self.records_accepted += n

    def count_rejected(self, problems: Sequence[Problem]) -> None:
        """A record went to the rejects file; every code of it counts."""
        with self._lock:
            self.records_rejected += 1
            self.rejects_by_code.update(problem.code for problem in problems)

    def fail(self, failure: str) -> None:
        """The run stopped on this (bad input, a signal, a setup Amazon refused)."""
        with self._lock:
            self.failure = self.failure or failure

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

    def progress_line(self, *, dry_run: bool = False) -> str:
        """One line of progress."""
        seconds = max(self.seconds, 1e-9)
        return (
            f"{self.records_read} read, {self.records_sent} sent, "
            f"{self.records_accepted} {'written' if dry_run else 'accepted'}, "
            f"{self.records_rejected} rejected, {self.records_read / seconds:.0f} records/s"
        )

    def summary_line(self, *, dry_run: bool) -> str:
        """The one line at the end of a run."""
        verb = "written to the dry-run file" if dry_run else "accepted"
        line = (
            f"Run {'failed' if self.records_undelivered or self.failure else 'complete'}: "
            f"{self.records_read} records read, {self.records_accepted} {verb}, "
            f"{self.records_rejected} rejected"
        )
        if self.records_undelivered:
            line += f", {self.records_undelivered} not delivered (resent by the next run)"
        if self.records_suppressed:
            line += f", {self.records_suppressed} suppressed (people who opted out)"
        if self.records_deleted_at_source:
            line += f", {self.records_deleted_at_source} deleted at the source (not sent)"
        if self.users_opted_out:
            line += f", {_count(self.users_opted_out, 'opt-out')} done"
        requests = _count(self.requests_sent, "request")
        if dry_run:
            requests += " written"
        if self.lookup_requests:
            requests += f", {_count(self.lookup_requests, 'definitions request')}"
        retries = _count(self.retries, "retry", "retries")
        line = f"{line}; {requests}, {retries}, {self.seconds:.1f} s"
        if dry_run:
            # An orchestrator stores the STATE a target prints and moves its bookmark: the real
            # run would then skip the rows of the dry run.
            line += "; dry run: no STATE written, so the real run sends these records"
        return line

    def report(self, *, api: str, dry_run: bool) -> dict[str, Any]:
        """The JSON report of SPEC §6, plus what a failed run left undelivered. A dry run
        accepts and sends nothing: its records and requests count as written (to its file)."""
        seconds = max(self.seconds, 1e-9)
        report: dict[str, Any] = {
            "records_read": self.records_read,
            "records_accepted": 0 if dry_run else self.records_accepted,
            **({"records_written": self.records_accepted} if dry_run else {}),
            "records_rejected": self.records_rejected,
            "records_undelivered": self.records_undelivered,
            "requests_sent": 0 if dry_run else self.requests_sent,
            **({"requests_written": self.requests_sent} if dry_run else {}),
            "lookup_requests": self.lookup_requests,
            "requests_throttled": self.requests_throttled,
            "requests_per_second": 0 if dry_run else round(self.requests_sent / seconds, 2),
            "retries": self.retries,
            "records_already_acknowledged": self.records_already_acknowledged,
            "records_suppressed": self.records_suppressed,
            "records_deleted_at_source": self.records_deleted_at_source,
            "users_opted_out": self.users_opted_out,
            "rejects_by_code": dict(self.rejects_by_code),
            "match_keys": dict(self.match_keys),
            "match_keys_dropped": dict(self.match_keys_dropped),
            "duration_seconds": round(self.seconds, 3),
            "api": api,
            "dry_run": dry_run,
        }
        if self.failure is not None:
            report["failure"] = self.failure
        if self.records_undelivered:
            report["undelivered"] = self.undelivered
        return report


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def _dropped_key_warning(key_type: str) -> str:
    if key_type == "userIdentifier":
        what = (
            "userIdentifier values that cannot be used (a type that cannot be inferred without "
            "user_identifier_type, or no usable value of their type)"
        )
    else:
        what = f"{key_type} match keys that cannot be used (see the README's identity rules)"
    return (
        f"{what} were left out of events that had other match keys; the run report counts "
        "them under match_keys_dropped"
    )


def report_json(report: dict[str, Any]) -> bytes:
    """The report as its file holds it."""
    return (redaction.redact(json.dumps(report, indent=2)) + "\n").encode()


class ProgressTicker:
    """Logs progress every few seconds and runs a periodic task (flushing stale batches)."""

    def __init__(
        self, describe: Callable[[], str], interval: float, tick: Callable[[], None]
    ) -> None:
        """`tick()` runs on each beat (twice a second), from the ticker's thread; every
        `interval` seconds the line `describe()` gives is logged."""
        self._describe = describe
        self._interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def start(self) -> None:
        """Start beating."""
        with stop_signals_blocked():
            self._thread.start()

    def stop(self) -> None:
        """Stop beating."""
        self._stop.set()

    def _run(self) -> None:
        last_log = time.monotonic()
        while not self._stop.wait(0.5):
            self._tick()
            if time.monotonic() - last_log >= self._interval:
                last_log = time.monotonic()
                logger.info("Progress: %s", self._describe())
