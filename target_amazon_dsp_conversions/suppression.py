"""The suppression list (SPEC §5 Opt-outs): everyone who opted out, so that no conversion of
theirs is sent again, in this run or any later one.

Amazon deletes the events it has of a person who opted out (the DSP's user-deletion call), but
not those sent after the deletion: the advertiser must stop sending them. So each person who
opts out is added here before their deletion is sent, and every conversion is screened against
the list before it is queued.

Who is the same person: a conversion is suppressed when it carries a key that identifies a
person alone (email, phone, a mobile ad ID, an identity partner's ID) that an opted-out person
had, or all of an opted-out person's name-and-address keys (first name, last name, address,
city, state, postal code) — one of those alone (a first name) is many people, and would silence
them all.

On disk: SQLite, owner-only, never a raw value — each identity is the SHA-256 of a key's type
and its hashed value (a raw MAID is hashed first). A list that cannot be read stops the run:
without it, the conversions of people who opted out would be sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from target_amazon_dsp_conversions import databases
from target_amazon_dsp_conversions.errors import SettingError
from target_amazon_dsp_conversions.files import OutputError, OutputFile, check_database_directory

logger = logging.getLogger("target-amazon-dsp-conversions")

SETTING = "suppression_list_path"
FORMAT_VERSION = 1
# Keys that identify a person only together.
NAME_AND_ADDRESS = frozenset({"FIRST_NAME", "LAST_NAME", "ADDRESS", "CITY", "STATE", "POSTAL"})
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS suppressed "
    "(identity BLOB PRIMARY KEY, added_at INTEGER NOT NULL) WITHOUT ROWID",
    # The sets of key types identities are made of (a handful): what to look a conversion up by.
    "CREATE TABLE IF NOT EXISTS shapes (shape TEXT PRIMARY KEY) WITHOUT ROWID",
)

PersonKeys = tuple[tuple[str, str], ...]  # (type, hashed value), as `conversion.person_keys`
Shape = tuple[str, ...]  # key types, sorted


def identities_of(person: PersonKeys) -> list[tuple[Shape, bytes]]:
    """What an opted-out person is known by: each key that identifies a person alone, and
    their name-and-address keys together (two or more of them)."""
    alone: list[tuple[Shape, bytes]] = [
        ((key_type,), _identity(((key_type, value),)))
        for key_type, value in person
        if key_type not in NAME_AND_ADDRESS
    ]
    together = sorted((k, v) for k, v in person if k in NAME_AND_ADDRESS)
    if len(together) >= 2:  # noqa: PLR2004 - one of them alone is many people
        alone.append((tuple(k for k, _ in together), _identity(tuple(together))))
    return alone


def _identity(keys: Iterable[tuple[str, str]]) -> bytes:
    text = "\x1e".join(f"{key_type}\x1f{value}" for key_type, value in keys)
    return hashlib.sha256(text.encode()).digest()


class SuppressionList:
    """Opened for the run (held: one run at a time); used by the main thread only."""

    def __init__(self, path: str, *, dry_run: bool = False) -> None:
        """Open (or create) the list. A dry run changes nothing on disk: it works on a copy in
        memory of the list (when there is one). A list that cannot be created or read stops
        the run here (SettingError / OutputError naming `suppression_list_path`)."""
        self._path = path
        self._file: OutputFile | None = None
        if dry_run:
            self._db = self._copy_in_memory(path)
        else:
            check_database_directory(SETTING, path)
            self._file = OutputFile(SETTING, path)
            self._db = self._connect(path)
        try:
            self._shapes: set[Shape] = {
                tuple(shape.split("+")) for (shape,) in self._db.execute("SELECT shape FROM shapes")
            }
            (self.earlier,) = self._db.execute("SELECT count(*) FROM suppressed").fetchone()
        except sqlite3.Error as exc:
            self.close()
            raise self._unreadable(exc) from None
        self._in_transaction = False
        if self.earlier:
            logger.info(
                "Suppression list %s: %d identities of people who opted out; their conversions "
                "are not sent",
                path,
                self.earlier,
            )

    def screen(self, rows: Sequence[tuple[bool, PersonKeys]]) -> list[bool]:
        """Rows read in a row, in input order: (opted out, person). Each opted-out person is
        added (at once for the rows after it; durably at `commit`); returns for each row
        whether it is a conversion of someone on the list (never for an opt-out row)."""
        suppressed = [False] * len(rows)
        waiting: list[tuple[int, bytes]] = []  # conversions to look up, with their identities
        try:
            for index, (opted_out, person) in enumerate(rows):
                if opted_out:
                    self._look_up(waiting, suppressed)  # those before it are not its own
                    waiting = []
                    self._add(identities_of(person))
                elif person and self._shapes:
                    waiting.extend((index, identity) for identity in self._candidates(person))
            self._look_up(waiting, suppressed)
        except sqlite3.Error as exc:
            raise OutputError(SETTING, self._path, str(exc)) from None
        return suppressed

    def commit(self) -> None:
        """Make the people added so far durable (before any event read after them is sent)."""
        if not self._in_transaction:
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise OutputError(SETTING, self._path, str(exc)) from None
        self._in_transaction = False

    def close(self) -> None:
        """Commit and release the file."""
        with contextlib.suppress(sqlite3.Error, OutputError):
            self.commit()
        self._db.close()
        if self._file is not None:
            self._file.close()
            self._file = None

    # Internals.

    def _candidates(self, person: PersonKeys) -> list[bytes]:
        """The identities a conversion of `person` would match, one per shape on the list."""
        types = dict(person)
        return [
            _identity((key_type, types[key_type]) for key_type in shape)
            for shape in self._shapes
            if all(key_type in types for key_type in shape)
        ]

    def _add(self, identities: list[tuple[Shape, bytes]]) -> None:
        if not self._in_transaction:
            self._db.execute("BEGIN")
            self._in_transaction = True
        now = int(time.time())
        self._db.executemany(
            "INSERT OR IGNORE INTO suppressed VALUES (?, ?)",
            [(identity, now) for _, identity in identities],
        )
        for shape, _ in identities:
            if shape not in self._shapes:
                self._shapes.add(shape)
                self._db.execute("INSERT OR IGNORE INTO shapes VALUES (?)", ("+".join(shape),))

    def _look_up(self, waiting: list[tuple[int, bytes]], suppressed: list[bool]) -> None:
        """Mark the rows whose identities are on the list."""
        identities = [identity for _, identity in waiting]
        found = {
            row[0]
            for row in databases.rows_with(
                self._db, "identity", "suppressed", "identity", identities
            )
        }
        for index, identity in waiting:
            if identity in found:
                suppressed[index] = True

    def _connect(self, path: str) -> sqlite3.Connection:
        assert self._file is not None
        header = os.pread(self._file.descriptor, len(databases.SQLITE_HEADER), 0)
        try:
            if header and header != databases.SQLITE_HEADER:
                raise sqlite3.DatabaseError("not a suppression list (not SQLite)")
            return databases.connect(path, schema=_SCHEMA, version=FORMAT_VERSION)
        except sqlite3.Error as exc:
            self._file.close()
            raise self._unreadable(exc) from None

    def _copy_in_memory(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", isolation_level=None)
        try:
            if os.path.exists(path):
                uri = Path(path).resolve().as_uri() + "?mode=ro"
                source = sqlite3.connect(uri, uri=True)
                try:
                    source.backup(db)
                finally:
                    source.close()
            for statement in _SCHEMA:
                db.execute(statement)
        except sqlite3.Error as exc:
            db.close()
            raise self._unreadable(exc) from None
        return db

    def _unreadable(self, exc: sqlite3.Error) -> SettingError:
        return SettingError(
            SETTING,
            f"{self._path} cannot be read as a suppression list ({exc}); without it, "
            "conversions of people who opted out would be sent: restore it or give another path",
        )
