"""The delivery journal (SPEC §5): events Amazon acknowledged that no written STATE covers yet.

A STATE is written only once every record before it is settled, so a run that is killed resends
everything after the last STATE, including events Amazon already acknowledged. The journal keeps
those: each acknowledged event's dedupe ID and a digest of its payload, made durable (fsync)
before the acknowledgement counts, and dropped once a written STATE covers it — so the file stays
as small as the data in flight. A rerun reads it at start-up and skips an event whose ID and
payload are both there; an updated row (same ID, other content) is sent again. A journal that is
missing or cannot be read costs a resend, never a failure or a loss.

Lines: `{"id": dedupe ID, "digest": payload digest}`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

logger = logging.getLogger("target-amazon-dsp-conversions")
_json_text = json.encoder.encode_basestring_ascii


def digest(payload: bytes) -> str:
    """What identifies an event's content (a changed row has another digest)."""
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


def _line(dedupe_id: str, payload_digest: str) -> str:
    # What json.dumps writes for {"id": ..., "digest": ...}, at a fifth of its cost: a line
    # for every acknowledged event, written by the upload threads.
    return f'{{"id": {_json_text(dedupe_id)}, "digest": "{payload_digest}"}}\n'


def _entry(line: str) -> tuple[str, str] | None:
    """(dedupe ID, digest) of a journal line; None when it is damaged."""
    try:
        entry = json.loads(line)
        return str(entry["id"]), str(entry["digest"])
    except (ValueError, KeyError, TypeError):
        return None


class Journal:
    """Thread-safe; written by upload threads, read by the main thread."""

    def __init__(self, path: str) -> None:
        """Read what an earlier run left (warn if it cannot), then keep appending."""
        self._path = Path(path)
        self._lock = threading.Lock()
        # From an earlier run: dedupe ID -> digest, until this run meets the event again.
        self._earlier: dict[str, str] = self._read()
        # This run's entries that no written STATE covers yet, per ledger segment.
        self._uncovered: dict[int, list[str]] = {}
        self._file: TextIO | None = None
        self._file = self._open()
        self._syncing = threading.Lock()  # taken before _lock, never after it
        self._written = 0  # writes so far
        self._synced = 0  # writes made durable

    @property
    def has_earlier_entries(self) -> bool:
        """An earlier run left acknowledged events that this run may meet again."""
        return bool(self._earlier)

    def acknowledged_before(self, dedupe_id: str, payload: bytes, segment: int) -> bool:
        """True when an earlier run got this very event acknowledged; it then stays in the
        journal until a STATE covering `segment` is written."""
        with self._lock:
            known = self._earlier.get(dedupe_id)
            if known is None or known != digest(payload):
                return False
            del self._earlier[dedupe_id]
            self._uncovered.setdefault(segment, []).append(_line(dedupe_id, known))
            return True

    def acknowledged(self, events: Iterable[tuple[int, str, bytes]]) -> None:
        """(segment, dedupe ID, payload) of events Amazon just acknowledged: durable on return."""
        lines = [
            (segment, _line(event_id, digest(payload))) for segment, event_id, payload in events
        ]
        if not lines:
            return
        with self._lock:
            for segment, line in lines:
                self._uncovered.setdefault(segment, []).append(line)
            if self._file is None:
                return
            try:
                self._file.write("".join(line for _, line in lines))
                self._file.flush()
            except OSError as exc:
                self._give_up(exc)
                return
            self._written += 1
            mine = self._written
        # Group commit: one fsync makes every write before it durable, so the upload threads
        # that wait here meanwhile need none of their own.
        with self._syncing:
            if self._synced >= mine:
                return
            with self._lock:
                written = self._written
                fileno = self._file.fileno() if self._file is not None else None
            if fileno is None:
                return
            try:
                os.fsync(fileno)
            except OSError as exc:
                with self._lock:
                    self._give_up(exc)
                return
            self._synced = written

    def covered(self, first_uncovered_segment: int) -> None:
        """A STATE was written: segments before `first_uncovered_segment` need no entry."""
        with self._syncing, self._lock:  # no fsync runs on the file it replaces
            for segment in [s for s in self._uncovered if s < first_uncovered_segment]:
                del self._uncovered[segment]
            self._rewrite()

    def close(self, *, run_succeeded: bool) -> None:
        """End of the run. After a run that delivered everything, what an earlier run left and
        this one did not meet again is of no use; what no written STATE covers stays."""
        with self._syncing, self._lock:
            if run_succeeded:
                self._earlier.clear()
                self._rewrite()
            if self._file is not None:
                self._file.close()
                self._file = None

    def _rewrite(self) -> None:
        """The file holds exactly what is still needed (atomically replaced)."""
        if self._file is None:
            return
        lines = [_line(i, d) for i, d in self._earlier.items()]
        lines += [line for segment in sorted(self._uncovered) for line in self._uncovered[segment]]
        try:
            if not lines:
                self._file.truncate(0)
                self._file.flush()
                os.fsync(self._file.fileno())
                return
            fresh = self._path.with_name(self._path.name + ".new")
            with open(fresh, "w", encoding="utf-8") as out:
                out.write("".join(lines))
                out.flush()
                os.fsync(out.fileno())
            os.replace(fresh, self._path)
            self._file.close()
            self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        logger.warning(
            "Cannot write the delivery journal %s (%s); going on without it: a rerun after a "
            "crash resends what Amazon already acknowledged (its dedupe IDs make that harmless)",
            self._path,
            exc.strerror or exc,
        )
        if self._file is not None:
            self._file.close()
        self._file = None

    def _open(self) -> TextIO | None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            return open(self._path, "a", encoding="utf-8")
        except OSError as exc:
            self._give_up(exc)
            return None

    def _read(self) -> dict[str, str]:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("Cannot read the delivery journal %s (%s); sending all", self._path, exc)
            return {}
        entries: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            entry = _entry(line)
            if entry is None:
                logger.warning(
                    "The delivery journal %s is damaged at line %d; the events it held after "
                    "that are sent again",
                    self._path,
                    number,
                )
                break
            entries[entry[0]] = entry[1]
        if entries:
            logger.info(
                "Delivery journal: %d events were acknowledged by Amazon in an earlier run; they "
                "are not sent again",
                len(entries),
            )
        return entries
