"""BATCH messages: the files a tap wrote in batch mode, read as blocks of record lines.

A BATCH message (the Singer SDK's batch spec) names files (`manifest`) holding raw records of one
stream: JSON Lines, gzip-compressed or not, or Parquet. Files are opened through fsspec, as the
SDK's own batch reader does (`file://` URLs and local paths; remote storage such as `s3://` when
its fsspec package is installed), and read a block at a time, so memory stays flat whatever
their size. Parquet rows become JSON lines, so that every record goes the same way.

Errors are one line naming the file (without a URL's query or credentials), never its content.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from target_amazon_dsp_conversions.errors import InputError

JSONL = "jsonl"
PARQUET = "parquet"
_GZIP_MAGIC = b"\x1f\x8b"
# Parquet rows turned into lines at a time.
_PARQUET_ROWS = 2000


class BatchFileError(InputError):
    """A BATCH message or one of its files cannot be read; the run stops."""


@dataclass(frozen=True)
class BatchMessage:
    """What a BATCH message asks for, checked."""

    stream: str
    format: str  # JSONL or PARQUET
    manifest: tuple[str, ...]

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> BatchMessage:
        """The message's stream, encoding and files; BatchFileError says what is wrong."""
        stream = message.get("stream")
        if not isinstance(stream, str):
            raise BatchFileError("BATCH message without a stream name")
        encoding = message.get("encoding")
        if not isinstance(encoding, Mapping) or not isinstance(encoding.get("format"), str):
            raise BatchFileError(
                f"BATCH of stream '{stream}' has no encoding format (jsonl or parquet)"
            )
        file_format = encoding["format"].lower()
        compression = encoding.get("compression")
        compression = str(compression).lower() if compression else "none"
        if file_format not in (JSONL, PARQUET):
            raise BatchFileError(
                f"BATCH of stream '{stream}': encoding format '{file_format[:40]}' is not "
                "supported (jsonl, or parquet with pyarrow installed)"
            )
        if file_format == JSONL and compression not in ("gzip", "none"):
            raise BatchFileError(
                f"BATCH of stream '{stream}': compression '{compression[:40]}' is not supported "
                "for jsonl files (gzip or none)"
            )
        manifest = message.get("manifest")
        if not isinstance(manifest, list) or not all(isinstance(u, str) for u in manifest):
            raise BatchFileError(
                f"BATCH of stream '{stream}' has no manifest (a list of file URLs)"
            )
        return cls(stream, file_format, tuple(manifest))


def shown(url: str) -> str:
    """The URL as errors and the rejects file show it: without credentials or query."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a path (or a Windows drive letter)
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def record_blocks(batch: BatchMessage, url: str, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(the file's line number of the block's first line, whole lines of raw records), about
    `block_bytes` at a time; a Parquet file's rows are numbered as its lines."""
    with _open(url) as file:
        if batch.format == PARQUET:
            yield from _parquet_blocks(file, url, block_bytes)
            return
        # A gzip file says so itself: taps' declared compression is not always what they wrote.
        if _starts_with(file, _GZIP_MAGIC):
            yield from _line_blocks(gzip.GzipFile(fileobj=file, mode="rb"), url, block_bytes)
        else:
            yield from _line_blocks(file, url, block_bytes)


def _open(url: str) -> IO[bytes]:
    try:
        import fsspec  # noqa: PLC0415 - the SDK's dependency; loaded for BATCH messages only

        opened: IO[bytes] = fsspec.open(url, mode="rb").open()
    except FileNotFoundError:
        raise BatchFileError(f"BATCH file '{shown(url)}' does not exist") from None
    except IsADirectoryError:
        raise BatchFileError(f"BATCH file '{shown(url)}' is a directory, not a file") from None
    except PermissionError:
        raise BatchFileError(
            f"BATCH file '{shown(url)}' cannot be read: permission denied"
        ) from None
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its package missing
        raise BatchFileError(
            f"BATCH file '{shown(url)}' cannot be opened: {_first_line(exc)}"
        ) from None
    except OSError as exc:
        raise BatchFileError(
            f"BATCH file '{shown(url)}' cannot be read: {exc.strerror or _first_line(exc)}"
        ) from None
    return opened


def _starts_with(file: IO[bytes], magic: bytes) -> bool:
    head = file.read(len(magic))
    file.seek(0)
    return head == magic


def _line_blocks(
    source: IO[bytes] | gzip.GzipFile, url: str, block_bytes: int
) -> Iterator[tuple[int, bytes]]:
    line = 1
    partial = b""
    while True:
        try:
            data = source.read(block_bytes)
        except (OSError, EOFError, zlib.error) as exc:
            # gzip.BadGzipFile is an OSError; a truncated file ends in EOFError.
            what = "is cut short" if isinstance(exc, EOFError) else "is not valid gzip"
            raise BatchFileError(
                f"BATCH file '{shown(url)}' {what} after line {line - 1}; nothing after it was read"
            ) from None
        if not data:
            if partial:
                yield line, partial  # the last line, without a newline
            return
        data = partial + data
        end = data.rfind(b"\n") + 1
        partial = data[end:]
        if end:
            yield line, data[:end]
            line += data.count(b"\n", 0, end)


def _parquet_blocks(file: IO[bytes], url: str, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415 - optional, as in the SDK
    except ImportError:
        raise BatchFileError(
            f"BATCH file '{shown(url)}' is Parquet, which needs pyarrow: pip install pyarrow"
        ) from None
    import pyarrow  # noqa: PLC0415

    try:
        parquet = pq.ParquetFile(file)
        row = 1
        lines: list[bytes] = []
        size = 0
        for table in parquet.iter_batches(batch_size=_PARQUET_ROWS):
            for record in table.to_pylist():
                encoded = (_encode_row(record) + "\n").encode()
                lines.append(encoded)
                size += len(encoded)
                if size >= block_bytes:
                    yield row, b"".join(lines)
                    row += len(lines)
                    lines, size = [], 0
        if lines:
            yield row, b"".join(lines)
    except pyarrow.ArrowException as exc:
        raise BatchFileError(
            f"BATCH file '{shown(url)}' is not a readable Parquet file ({_first_line(exc)})"
        ) from None


def _json_value(value: Any) -> Any:
    """Parquet's types that JSON lacks: times as ISO 8601, decimals as numbers, bytes as
    base64."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encode_row = json.JSONEncoder(default=_json_value, ensure_ascii=False).encode


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
