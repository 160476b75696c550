"""The delivery journal (SPEC §5): which events each destination acknowledged, kept while Amazon
could still accept them, so a rerun never sends them again.

A STATE is written only once every record before it is settled, but a STATE written is not a
STATE kept: a killed run, a cancelled `meltano run` (the STATE printed, never stored) or a
`--full-refresh` reads the same rows again. The journal keeps each acknowledged event's key and
a digest of its payload, durable (fsync) before the acknowledgement counts, for as long as
Amazon could accept the event again (7 days dsp, 21 days events, counted from the
acknowledgement, which is never before the event, and rounded up to the hour); a rerun skips
an event whose key and payload are both there. An acknowledgement counts only for the
destination that gave it: the key is a hash of the API, its host (`api_url`), the account
(advertiser) and the dedupe ID, so a rerun against another advertiser, region, API or host
sends everything. An updated row (same ID, other content) is sent again.

On disk: SQLite (the standard library's), read without loading it into memory. Acknowledgements
of this run go to `acknowledged_log`, appended in input order (cheap: its pages fill one after
the other), and are merged into the indexed `acknowledged` at the end of the run, sorted by key,
or at the start of the next one after a crash; expired entries go at start-up. So the file
holds the acknowledgements of the last 7 or 21 days, and a run's memory stays that of SQLite's
page cache. A journal that cannot be read costs a resend, never a failure or a loss: it is set
aside (`.damaged`) with a warning and a new one begun.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta

from target_amazon_dsp_conversions import databases
from target_amazon_dsp_conversions.files import OutputError, OutputFile, check_database_directory

logger = logging.getLogger("target-amazon-dsp-conversions")

SETTING = "journal_path"
FORMAT_VERSION = 1
# The files SQLite writes beside the journal (write-ahead log, its index, a rollback journal).
_SQLITE_FILES = ("-wal", "-shm", "-journal")
# Acknowledgements written per INSERT: one statement for many rows costs half as much per row
# as a statement per row (executemany), and this many stays far below SQLite's parameter limit.
_INSERT_ROWS = 100
_HOUR = 3600
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS acknowledged "
    "(key INTEGER PRIMARY KEY, digest INTEGER NOT NULL, keep_until INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS acknowledged_log "
    "(key INTEGER NOT NULL, digest INTEGER NOT NULL, keep_until INTEGER NOT NULL)",
    # Expired entries are found without reading the others (it grows at its end: cheap).
    "CREATE INDEX IF NOT EXISTS acknowledged_expiry ON acknowledged (keep_until)",
)


def destination(api: str, api_url: str) -> bytes:
    """What names where events go, but for the account (`entry_key`)."""
    return f"{api}\x1f{api_url.rstrip('/')}\x1f".encode()


def entry_key(destination: bytes, account: str, dedupe_id: str) -> int:
    """The journal's key of an event: its destination, account and dedupe ID, hashed."""
    return entry_keys(destination, account, [dedupe_id])[0]


def entry_keys(destination: bytes, account: str, dedupe_ids: Iterable[str]) -> list[int]:
    """`entry_key` of each dedupe ID; what they share is hashed once (a request's worth)."""
    shared = hashlib.blake2b(destination + account.encode() + b"\x1f", digest_size=8)
    from_bytes = int.from_bytes
    keys = []
    for dedupe_id in dedupe_ids:
        hasher = shared.copy()
        hasher.update(dedupe_id.encode())
        keys.append(from_bytes(hasher.digest(), "big", signed=True))
    return keys


def digest(payload: bytes) -> int:
    """What identifies an event's content (a changed row has another digest)."""
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big", signed=True)


@functools.lru_cache(maxsize=_INSERT_ROWS)
def _insert_statement(rows: int) -> str:
    """An INSERT of `rows` acknowledgements into the log (parameters only: no value in the text)."""
    return "INSERT INTO acknowledged_log VALUES " + ",".join(["(?, ?, ?)"] * rows)  # noqa: S608


class Journal:
    """Thread-safe: looked up by the main thread, written by upload threads (group commit)."""

    def __init__(self, path: str, *, api: str, api_url: str, keep: timedelta) -> None:
        """Open (or create) the journal and lock it for this run; merge what a run that was
        killed left, drop what expired. A file that cannot be created stops the run at
        start-up (SettingError); one that cannot be read is set aside."""
        self._path = path
        self._destination = destination(api, api_url)
        self._keep_seconds = int(keep.total_seconds())
        self._lock = threading.Lock()  # the connection: one user at a time
        self._pending_lock = threading.Lock()  # taken inside _lock, never around it
        self._pending: list[int] = []  # rows of (key, digest, keep_until), one after the other
        self._queued = 0  # acknowledgements handed in so far
        self._committed = 0  # ... of which durable
        self._failure: OutputError | None = None
        self._files: list[OutputFile] = []
        self._db = self._open()
        self.has_earlier_entries = self._start()

    # Main thread.

    def already_acknowledged(self, account: str, events: Sequence[tuple[str, bytes]]) -> list[bool]:
        """For each (dedupe ID, payload) sent to `account`: did Amazon acknowledge this very
        event in an earlier run?"""
        if not self.has_earlier_entries:
            return [False] * len(events)
        keys = entry_keys(self._destination, account, [dedupe_id for dedupe_id, _ in events])
        known: dict[int, int] = {}
        try:
            with self._lock:
                known.update(
                    databases.rows_with(self._db, "key, digest", "acknowledged", "key", keys)
                )
        except sqlite3.Error as exc:
            logger.warning(
                "Cannot read the delivery journal %s (%s); sending every event", self._path, exc
            )
            self.has_earlier_entries = False
            return [False] * len(events)
        if not known:
            return [False] * len(events)
        return [
            known.get(key) == digest(payload) if key in known else False
            for key, (_, payload) in zip(keys, events, strict=True)
        ]

    # Upload threads.

    def acknowledged(self, account: str, events: Sequence[tuple[str, bytes]]) -> None:
        """(dedupe ID, payload) of events `account` just acknowledged: durable on return, or
        OutputError (the journal cannot be written; the run stops)."""
        if not events:
            return
        # Rounded up to the hour: the entries of a run share their expiry, so that merging
        # them appends to the expiry index instead of inserting all over it (a third of the
        # merge). An hour more changes nothing: an event that old is refused as too old
        # before the journal is asked about it.
        keep_until = -(-(int(time.time()) + self._keep_seconds) // _HOUR) * _HOUR
        keys = entry_keys(self._destination, account, [dedupe_id for dedupe_id, _ in events])
        values: list[int] = []
        for key, (_, payload) in zip(keys, events, strict=True):
            values += (key, digest(payload), keep_until)
        with self._pending_lock:
            self._pending += values
            self._queued += 1
            ticket = self._queued
        # Group commit: whoever holds the connection writes and commits every acknowledgement
        # handed in by then, so threads that waited meanwhile find theirs durable.
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._committed >= ticket:
                return
            with self._pending_lock:
                values, self._pending = self._pending, []
                upto = self._queued
            try:
                self._db.execute("BEGIN")
                step = 3 * _INSERT_ROWS
                for start in range(0, len(values), step):
                    chunk = values[start : start + step]
                    self._db.execute(_insert_statement(len(chunk) // 3), chunk)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._failure = OutputError(SETTING, self._path, str(exc))
                raise self._failure from None
            self._committed = upto

    # End of the run.

    def close(self) -> None:
        """Merge this run's acknowledgements into the index and release the file. A failure
        here loses nothing: the next run merges them."""
        with self._lock:
            try:
                self._merge()
            except sqlite3.Error as exc:
                logger.warning(
                    "Cannot update the delivery journal %s (%s); the next run does",
                    self._path,
                    exc,
                )
            self._db.close()
            for file in self._files:
                file.close()

    # Internals.

    def _open(self) -> sqlite3.Connection:
        """The journal file, created as every output is (`files.py`) and held for the run;
        SQLite then opens the file we hold."""
        check_database_directory(SETTING, self._path)
        database = OutputFile(SETTING, self._path)
        self._files.append(database)
        header = os.pread(database.descriptor, len(databases.SQLITE_HEADER), 0)
        problem = None
        if header.startswith(b"{"):
            problem = (
                "is a journal of an earlier version, which did not note where events went; "
                "a new one is begun (events it listed may be sent again, harmlessly: Amazon "
                "drops a dedupe ID it has)"
            )
        elif header and header != databases.SQLITE_HEADER:
            problem = "is damaged"
        if problem is None:
            try:
                return self._connect()
            except sqlite3.Error as exc:
                problem = f"is damaged ({exc})"
        return self._begin_anew(problem)

    def _connect(self) -> sqlite3.Connection:
        return databases.connect(self._path, schema=_SCHEMA, version=FORMAT_VERSION)

    def _begin_anew(self, problem: str) -> sqlite3.Connection:
        """Set the unreadable journal aside and start an empty one."""
        aside = self._path + ".damaged"
        logger.warning(
            "The delivery journal %s %s; moved it to %s and began a new one: events it held "
            "are sent again (their dedupe IDs make that harmless)",
            self._path,
            problem,
            aside,
        )
        held, self._files = self._files, []
        try:
            os.replace(self._path, aside)
            for suffix in _SQLITE_FILES:  # what SQLite keeps beside it belongs to it
                if os.path.lexists(self._path + suffix):
                    os.replace(self._path + suffix, aside + suffix)
        except OSError as exc:
            raise OutputError(SETTING, self._path, exc) from None
        finally:
            for file in held:
                file.close()
        self._files.append(OutputFile(SETTING, self._path))
        try:
            return self._connect()
        except sqlite3.Error as exc:
            raise OutputError(SETTING, self._path, str(exc)) from None

    def _start(self) -> bool:
        """Merge what a killed run left, drop what expired; whether entries remain."""
        try:
            self._merge()
            self._db.execute("DELETE FROM acknowledged WHERE keep_until < ?", (int(time.time()),))
            known = self._db.execute("SELECT count(*) FROM acknowledged").fetchone()[0]
        except sqlite3.Error as exc:
            self._db.close()
            raise OutputError(SETTING, self._path, str(exc)) from None
        if known:
            logger.info(
                "Delivery journal: %d events acknowledged by Amazon in the last %d days; a "
                "rerun does not send them to the same destination again",
                known,
                self._keep_seconds // 86400,
            )
        return bool(known)

    def _merge(self) -> None:
        """Acknowledgements logged by this (or a killed) run into the index, in one
        transaction; the newest entry of a key wins."""
        if self._db.execute("SELECT 1 FROM acknowledged_log LIMIT 1").fetchone() is None:
            return
        self._db.execute("BEGIN")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO acknowledged SELECT key, digest, keep_until "
                "FROM acknowledged_log ORDER BY key, rowid"
            )
            self._db.execute("DELETE FROM acknowledged_log")
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
