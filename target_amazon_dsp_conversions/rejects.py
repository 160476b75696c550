"""The rejects file: every record refused for good, with its reasons, one JSON object a line.

The one place a record is kept whole, so the file is created owner-only (`open_owner_only`).
Each line also carries what a replay needs (`replay.py`): the stream's key properties and the
record's dedupe ID. Lines are strict JSON: a NaN or infinite number in a record is written as
the text "NaN", "Infinity" or "-Infinity", which every JSON reader accepts.

Records converted from their input lines are kept as those lines until they are refused
(`record_of_line`)."""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from target_amazon_dsp_conversions.errors import Problem
from target_amazon_dsp_conversions.record_checks import SDC_METADATA_KEYS

logger = logging.getLogger("target-amazon-dsp-conversions")

OWNER_ONLY = 0o600
# Whole numbers up to this many digits are written as they are; longer ones (1e400) as floats.
_MAX_INTEGER_DIGITS = 40


class RejectsFile:
    """Appends refused records with their reasons; the one place the original record is kept."""

    def __init__(self, path: str) -> None:
        """Opened on the first reject, so a clean run leaves no file behind."""
        self._path = path
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    def write(
        self,
        stream: str,
        record: Any,
        problems: Sequence[Problem],
        *,
        key_properties: Sequence[str] = (),
        dedupe_id: str | None = None,
    ) -> None:
        """One line per record, flushed at once so a crash cannot lose it.

        `key_properties` are the stream's, `dedupe_id` the one the record was (or would have
        been) sent with, None when it has none (its key properties are all null)."""
        line = strict_json(
            {
                "stream": stream,
                "record": record,
                "errors": [p.as_dict() for p in problems],
                "rejected_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "key_properties": list(key_properties),
                "dedupe_id": dedupe_id,
            }
        )
        with self._lock:
            if self._file is None:
                self._file = open_owner_only(self._path, append=True)
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file if it was opened."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def open_owner_only(path: str, *, append: bool) -> TextIO:
    """A text file for raw records or other personal data, readable and writable by its owner
    only (0600, as credential files are): created so, whatever the umask, and made so when it
    exists with wider permissions (a warning says so). A missing parent directory is created.
    `append` False empties the file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    descriptor = os.open(path, flags, OWNER_ONLY)
    try:
        mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
        if mode & ~OWNER_ONLY:
            os.fchmod(descriptor, OWNER_ONLY)
            logger.warning(
                "%s was readable by others (mode %o); made it owner-only (600), as it holds "
                "personal data",
                path,
                mode,
            )
    except OSError:
        pass  # a file of another owner: its permissions are not ours to change
    return os.fdopen(descriptor, "a" if append else "w", encoding="utf-8")


def strict_json(value: Any) -> str:
    """JSON text every reader accepts (Go, JavaScript, BigQuery): numbers as the input had them
    (`_original_value`), non-finite ones as the text "NaN", "Infinity", "-Infinity"."""
    try:
        return _encode_strict(value)
    except ValueError:  # a non-finite float (Decimal ones never get here)
        return _encode_strict(_finite_floats(value))


def _finite_floats(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {key: _finite_floats(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_floats(item) for item in value]
    return value


def _original_value(value: Any) -> Any:
    # The reader parses JSON numbers as Decimal: write them back as numbers, not strings.
    # NaN and infinities (and numbers beyond a float's range) become text: "NaN", "Infinity".
    if isinstance(value, Decimal) and value.is_finite():
        if value == value.to_integral_value() and value.adjusted() < _MAX_INTEGER_DIGITS:
            return int(value)
        number = float(value)
        if math.isfinite(number):
            return number
    return str(value)


# The reader parses JSON numbers as Decimal; so does this, so a record reads back the same.
# NaN, Infinity and -Infinity (which Python's JSON reads) become Decimals too, written as text.
_decode = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal).decode
_encode_record = json.JSONEncoder(default=_original_value, ensure_ascii=False).encode
_encode_strict = json.JSONEncoder(
    default=_original_value, ensure_ascii=False, allow_nan=False
).encode


def record_line(record: Any) -> bytes:
    """A record the SDK handed over, kept as a line `record_of_line` reads back."""
    return ('{"record":' + _encode_record(record) + "}").encode()


def record_of_line(line: bytes) -> Any:
    """The record of a RECORD line, as the rejects file shows it (without SDK metadata)."""
    record = _decode(line.decode("utf-8")).get("record")
    if isinstance(record, dict):
        for name in SDC_METADATA_KEYS:
            record.pop(name, None)
    return record
