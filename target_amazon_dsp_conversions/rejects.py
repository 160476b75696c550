"""The rejects file: every record refused for good, with its reasons, one JSON object a line.

The one place a record is kept whole. Records converted from their input lines are kept as those
lines until they are refused (`record_of_line`)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from target_amazon_dsp_conversions.errors import Problem
from target_amazon_dsp_conversions.record_checks import SDC_METADATA_KEYS


class RejectsFile:
    """Appends refused records with their reasons; the one place the original record is kept."""

    def __init__(self, path: str) -> None:
        """Opened on the first reject, so a clean run leaves no file behind."""
        self._path = path
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    def write(self, stream: str, record: Any, problems: Sequence[Problem]) -> None:
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


# The reader parses JSON numbers as Decimal; so does this, so a record reads back the same.
_decode = json.JSONDecoder(parse_float=Decimal).decode
_encode_record = json.JSONEncoder(default=_original_value, ensure_ascii=False).encode


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
