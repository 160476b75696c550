"""The rejects file: every record refused for good, with its reasons, one JSON object a line.

The one place a record is kept whole: created owner-only and written as every output is
(`files.py`), each line whole or not at all.
Each line also carries what a replay needs (`replay.py`): the stream's key properties and the
record's dedupe ID. Lines are strict JSON: a NaN or infinite number in a record is written as
the text "NaN", "Infinity" or "-Infinity", which every JSON reader accepts.

A dry run's lines say so (`"dry_run": true`): they join the file the real run appends to, which
rejects the same records again, and the replay leaves them out.

Records converted from their input lines are kept as those lines until they are refused
(`record_of_line`)."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.errors import Problem, SettingError
from target_amazon_dsp_conversions.files import OutputError, OutputFile
from target_amazon_dsp_conversions.record_checks import SDC_METADATA_KEYS

logger = logging.getLogger("target-amazon-dsp-conversions")

SETTING = "rejects_path"
# How much of the file's end is read at a time to find its last line.
_TAIL_BYTES = 1 << 16
# Where a record of a BATCH message came from: the file (its URL) and the line (Parquet: row).
BATCH_ORIGIN_KEYS = ("batch_file", "batch_line")
# Whole numbers up to this many digits are written as they are; longer ones (1e400) as floats.
_MAX_INTEGER_DIGITS = 40


class RejectsFile:
    """Appends refused records with their reasons; the one place the original record is kept."""

    def __init__(self, path: str, *, dry_run: bool = False) -> None:
        """Created (or opened) now, at start-up, as every output is (`files.py`); a run that
        rejects nothing leaves no file behind. A torn last line, left by a run that stopped
        while writing it, is set aside first. `dry_run`: the lines of a dry run."""
        self._file = OutputFile(SETTING, path)
        self._marks = {"dry_run": True} if dry_run else {}
        self._lock = threading.Lock()
        if self._file.size:
            self._set_aside_torn_line()

    def write(
        self,
        stream: str,
        record: Any,
        problems: Sequence[Problem],
        *,
        key_properties: Sequence[str] = (),
        dedupe_id: str | None = None,
        origin: dict[str, Any] | None = None,
    ) -> None:
        """One line per record, whole or not at all, handed to the system at once so that a
        crash cannot lose it; OutputError when it cannot be written (the record is then not
        settled).

        `key_properties` are the stream's, `dedupe_id` the one the record was (or would have
        been) sent with, None when it has none (its key properties are all null); `origin`
        names the BATCH file and line a record came from."""
        line = strict_json(
            {
                "stream": stream,
                "record": record,
                "errors": [p.as_dict() for p in problems],
                "rejected_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "key_properties": list(key_properties),
                "dedupe_id": dedupe_id,
                **(origin or {}),
                **self._marks,
            }
        )
        with self._lock:
            self._file.append(redaction.redact(line).encode() + b"\n")

    def close(self) -> None:
        """Release the file; removed if this run created it and rejected nothing."""
        with self._lock:
            self._file.close(remove_if_empty=True)

    def _set_aside_torn_line(self) -> None:
        """Move a last line without its newline to `<path>.torn`, so the next line starts a
        line of its own (the replay command would skip the torn one, but not its record)."""
        path = self._file.path
        size = self._file.size
        descriptor = self._file.descriptor
        start = size
        while start > 0:  # back to the last newline, a block at a time
            block_start = max(0, start - _TAIL_BYTES)
            newline = os.pread(descriptor, start - block_start, block_start).rfind(b"\n")
            if newline != -1:
                start = block_start + newline + 1
                break
            start = block_start
        if start == size:
            return
        torn = os.pread(descriptor, size - start, start)
        aside = OutputFile(SETTING, path + ".torn")
        try:
            aside.append(torn + b"\n")
            os.ftruncate(self._file.descriptor, start)
        except (OSError, OutputError) as exc:
            raise SettingError(
                SETTING, f"cannot set aside the torn last line of {path}: {exc}"
            ) from None
        finally:
            aside.close()
        self._file.size = start
        logger.warning(
            "%s ended in a torn line (%d bytes, from a run that stopped while writing it); "
            "moved it to %s",
            path,
            len(torn),
            aside.path,
        )


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


def record_of_line(line: bytes) -> tuple[Any, dict[str, Any]]:
    """The record of a RECORD line, as the rejects file shows it (without SDK metadata), and
    where it came from when that was a BATCH file (`batch_file`, `batch_line`)."""
    message = _decode(line.decode("utf-8"))
    record = message.get("record")
    if isinstance(record, dict):
        for name in SDC_METADATA_KEYS:
            record.pop(name, None)
    return record, {key: message[key] for key in BATCH_ORIGIN_KEYS if key in message}
