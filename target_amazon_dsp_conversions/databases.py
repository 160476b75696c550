"""The SQLite files the target keeps (the delivery journal, the suppression list), opened alike:
write-ahead log, each commit durable, checked, their tables made."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

# The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
# Keys looked up per query (SQLite allows 32766 parameters; smaller queries cost no more).
_LOOKUP_CHUNK = 500


def connect(path: str, *, schema: Sequence[str], version: int) -> sqlite3.Connection:
    """The database at `path` for this run (any thread; its user serializes access); raises
    sqlite3.Error when it is damaged or written by a newer version of the target."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        (found,) = db.execute("PRAGMA user_version").fetchone()
        if found > version:
            raise sqlite3.DatabaseError(f"written by a newer version (format {found})")
        (check,) = db.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise sqlite3.DatabaseError(check)
        for statement in schema:
            db.execute(statement)
        db.execute(f"PRAGMA user_version={version}")
    except BaseException:
        db.close()
        raise
    return db


def rows_with(
    db: sqlite3.Connection, columns: str, table: str, key: str, keys: Sequence[Any]
) -> Iterator[Any]:
    """`SELECT columns FROM table WHERE key IN keys`, a few hundred keys per query."""
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[start : start + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))  # parameters only: no value in the text
        yield from db.execute(f"SELECT {columns} FROM {table} WHERE {key} IN ({marks})", chunk)  # noqa: S608
