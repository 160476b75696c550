"""Singer input reading that never echoes input lines (they hold personal data) in errors."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO, Any, Protocol

from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_amazon_dsp_conversions.record_checks import SDC_METADATA_KEYS
from target_amazon_dsp_conversions.workers import (
    BlockResults,
    EventKind,
    StreamSpec,
    WorkerPool,
    split_lines,
)

logger = logging.getLogger("target-amazon-dsp-conversions")
# json.loads with parse_float builds a new decoder per call; one decoder serves every line.
_decode = json.JSONDecoder(parse_float=Decimal).decode

_INPUT_BUFFER_BYTES = 1 << 20
# Input handed to a worker process at a time: ~800 typical records, ~40 ms of work.
_BLOCK_BYTES = 1 << 18
# Worker processes start once this much input was read: a small input (~800 records) is
# not worth their start-up (~0.15 s of CPU each).
_START_WORKERS_AT = _BLOCK_BYTES
SINGER_TYPES = frozenset({"SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION", "BATCH"})
# JSON may escape half of a surrogate pair alone ("\ud800"): Python then holds a string that
# cannot be encoded (UTF-8 output, hashing). Such lines are rare, so a cheap test finds them.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class ParallelConversion(Protocol):
    """What the reader needs from the target to have records converted by worker processes."""

    def start_worker_pool(self) -> WorkerPool | None:
        """Worker processes for this run, or None to convert every record here."""

    def worker_streams(self) -> dict[str, StreamSpec]:
        """The streams whose records the workers may convert, as they are now."""

    def start_converted_block(self, kinds: list[EventKind]) -> None:
        """The event kinds the results of the next block refer to."""

    def process_converted(self, lines: list[bytes], results: list[tuple[Any, ...]]) -> None:
        """Record lines in a row that a worker converted (or rejected)."""

    def converted_block_done(self) -> None:
        """The lines of a block that had converted records were all handled."""


class SafeSingerReader(SingerReader):
    """Counts lines, names them in errors, and skips unknown message types with a warning."""

    def __init__(self) -> None:
        """Start counting at line 0."""
        super().__init__()
        self.line_number = 0
        self._unknown_types: set[str] = set()
        self._warned_surrogates = False
        # Signal handling (see target.py): a stop requested while a line is being processed
        # waits for the next line boundary; while blocked on input it raises at once.
        self.waiting_for_input = False
        self.check_stop: Callable[[], None] = lambda: None
        self.parallel: ParallelConversion | None = None
        # Reading stdin in blocks (see _process_blocks).
        self._callbacks: dict[str, Callable[[dict], None]] = {}
        self._counts: Counter[str] = Counter()
        self._pool: WorkerPool | None = None
        self._pool_tried = False
        self._bytes_read = 0
        self._warned_broken_pool = False
        self._ready: deque[tuple[bytes, BlockResults | None]] = deque()
        self._schema_outside_barrier = False

    @property
    def default_input(self) -> IO[str]:  # type: ignore[override]
        """stdin decoded as strict UTF-8 line by line, whatever the locale says.

        Under a C/POSIX locale Python reads stdin with `surrogateescape`, which would turn a
        stray byte into text that cannot be hashed or written; decoding each line ourselves
        names the bad line (a text wrapper decodes whole chunks and would name an earlier one).
        """
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:  # stdin replaced by a text-only object (embedding, tests)
            return sys.stdin
        # 1 MiB reads instead of 8 KiB: each read releases the GIL, and getting it back from
        # busy upload threads costs far more than the read itself. A pipe still yields each
        # line as soon as it arrives. Without a file descriptor, stdin is read as it is.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            buffer = open(  # noqa: SIM115 - lives as long as the process's stdin
                buffer.fileno(), "rb", buffering=_INPUT_BUFFER_BYTES, closefd=False
            )
        return (raw.decode("utf-8") for raw in buffer)  # type: ignore[return-value]

    def process_lines(
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict], None]]
    ) -> Any:
        """Reading stdin: blocks of lines (`_process_blocks`); any other input: the SDK's loop,
        fed through `_lines` so a stop request ends it between lines."""
        fd = _stdin_fd() if file_input is None and self.parallel is not None else None
        if fd is None:
            return super().process_lines(
                self._lines(file_input or self.default_input),  # type: ignore[arg-type]
                callbacks,
            )
        self._callbacks = callbacks
        self._counts = Counter()
        try:
            self._process_blocks(fd)
        except BaseException:
            self._close_pool(wait=False)
            raise
        self._close_pool(wait=True)
        return self._counts

    def _close_pool(self, *, wait: bool) -> None:
        if self._pool is not None:
            self._pool.close(wait=wait)
            self._pool = None

    def _process_blocks(self, fd: int) -> None:
        """Lines are handled here, one by one, in input order; records of known streams are
        converted beforehand by worker processes, started once the input proves large.

        A block goes to a free worker as soon as it is read; answers are handled oldest first.
        A SCHEMA line is a barrier: the blocks before it are finished, it is handled here, and
        the workers learn the new stream before any later block."""
        assert self.parallel is not None
        for block in self._blocks(fd):
            self._bytes_read += len(block)
            if (
                self._pool is None
                and not self._pool_tried
                and self._bytes_read >= _START_WORKERS_AT
            ):
                self._pool_tried = True
                self._pool = self.parallel.start_worker_pool()
                if self._pool is not None:
                    self._pool.set_streams(self.parallel.worker_streams())
            for part, schema_line in _split_at_schema_lines(block):
                if part:
                    self._convert(part)
                if schema_line is not None:
                    self._finish_in_flight()
                    self._handle(schema_line, None)
                    self._sync_streams()
        self._finish_in_flight()

    def _convert(self, block: bytes) -> None:
        """Send the block to a worker (waiting for the oldest one if none is free), then
        handle the answers that came back; without workers, handle the block here."""
        pool = self._pool
        if pool is None:
            self._handle(block, None)
            return
        while not pool.has_free_worker and pool.blocks_in_flight:
            self._ready.append(self._receive(pool))
        if pool.has_free_worker:
            pool.send(block)
        else:  # the workers are still starting, or the pool broke: handled here
            self._warn_if_broken(pool)
            self._ready.append((block, None))
        while self._ready:
            self._handle(*self._ready.popleft())
        if self._schema_outside_barrier:
            self._finish_in_flight()

    def _finish_in_flight(self) -> None:
        """Handle every block sent to the workers."""
        while self._ready:
            self._handle(*self._ready.popleft())
        pool = self._pool
        while pool is not None and pool.blocks_in_flight:
            self._handle(*self._receive(pool))
        if self._schema_outside_barrier:
            self._sync_streams()

    def _receive(self, pool: WorkerPool) -> tuple[bytes, BlockResults | None]:
        self.waiting_for_input = True  # a stop signal may end the wait at once
        try:
            received = pool.receive()
        finally:
            self.waiting_for_input = False
        self._warn_if_broken(pool)
        return received

    def _warn_if_broken(self, pool: WorkerPool) -> None:
        if pool.broken and not self._warned_broken_pool:
            self._warned_broken_pool = True
            logger.warning(
                "A worker process stopped unexpectedly; the rest of the input is converted "
                "in the main process"
            )

    def _sync_streams(self) -> None:
        self._schema_outside_barrier = False
        if self._pool is not None:
            self._pool.set_streams(self.parallel.worker_streams())  # type: ignore[union-attr]

    def _handle(self, block: bytes, converted: BlockResults | None) -> None:
        """The lines of a block in order: converted records to the target, the rest here."""
        lines = split_lines(block)
        parallel = self.parallel
        assert parallel is not None
        if converted is None or self._schema_outside_barrier:
            for line in lines:
                self.line_number += 1
                self.check_stop()
                self._process_line(line)
            return
        results, kinds = converted
        parallel.start_converted_block(kinds)
        records = 0
        start = 0
        while start < len(lines):
            if results[start] is None:
                self.line_number += 1
                self.check_stop()
                self._process_line(lines[start])
                start += 1
                continue
            # Converted records in a row: no other message (so no STATE) among them.
            try:
                end = results.index(None, start)
            except ValueError:
                end = len(results)
            self.check_stop()
            parallel.process_converted(lines[start:end], results[start:end])  # type: ignore[arg-type]
            self.line_number += end - start
            records += end - start
            start = end
        if records:
            self._counts["RECORD"] += records
            parallel.converted_block_done()

    def _blocks(self, fd: int) -> Iterator[bytes]:
        """Whole lines as they arrive, up to ~_BLOCK_BYTES at a time, each ending with a
        newline but perhaps the very last one. Before waiting for input, every block in flight
        is finished: what was read must not wait for what a slow tap has not written yet."""
        partial = b""
        while True:
            if not _readable_now(fd):
                self._finish_in_flight()
            data = self._read(fd, _BLOCK_BYTES)
            # A pipe holds 64 KiB: gather what is ready into one block.
            while data and len(data) < _BLOCK_BYTES and _readable_now(fd):
                more = self._read(fd, _BLOCK_BYTES - len(data))
                if not more:
                    break
                data += more
            if not data:
                if partial:
                    yield partial  # the last line, without a newline
                return
            data = partial + data
            end = data.rfind(b"\n") + 1
            partial = data[end:]
            if end:
                yield data[:end]

    def _read(self, fd: int, size: int) -> bytes:
        self.waiting_for_input = True
        try:
            self.check_stop()
            return os.read(fd, size)
        finally:
            self.waiting_for_input = False

    def _process_line(self, raw: bytes) -> None:
        """One line handled here, as the SDK's loop would."""
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputLine(
                f"input line {self.line_number} is not UTF-8 text; nothing after it was read"
            ) from None
        if not line.strip():
            return
        self._current_message = line
        message = self.deserialize_json(line)
        self.assert_line_requires(message, requires={"type"})
        kind = message["type"]
        callback = self._callbacks.get(kind)
        if callback is None:
            self._process_unknown_message(message)
        else:
            callback(message)
            if kind == "SCHEMA":
                # Unless this is the barrier itself, blocks already sent were converted
                # without this schema: the rest of them is handled here.
                self._schema_outside_barrier = True
        self._counts[kind] += 1

    def _lines(self, file_input: Iterable[str]) -> Iterator[str]:
        lines = iter(file_input)
        while True:
            self.waiting_for_input = True
            try:
                # Checked after the flag is up: a signal that came just before is not missed.
                self.check_stop()
                line = next(lines, None)
            except UnicodeDecodeError:
                raise InvalidInputLine(
                    f"input line {self.line_number + 1} is not UTF-8 text; nothing after it "
                    "was read"
                ) from None
            finally:
                self.waiting_for_input = False
            if line is None:
                return
            self.line_number += 1
            if line.strip():  # a blank line (a tap's stray print) holds no message
                yield line

    def deserialize_json(self, line: str) -> dict:
        """Parse one line; a broken line is named by number, not by content."""
        try:
            message = _decode(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputLine(
                f"input line {self.line_number} is not valid JSON ({exc.msg} at column "
                f"{exc.pos + 1}); nothing after it was read"
            ) from None
        except (ValueError, RecursionError) as exc:
            # An integer beyond Python's digit limit, or nesting deeper than the stack allows.
            reason = "nested too deeply" if isinstance(exc, RecursionError) else "a number too long"
            raise InvalidInputLine(
                f"input line {self.line_number} cannot be read ({reason}); nothing after it "
                "was read"
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is not a Singer message (a JSON object)"
            )
        if "\\u" in line and _SURROGATE_ESCAPE.search(line):
            cleaned = _without_lone_surrogates(message)
            if cleaned != message:
                if not self._warned_surrogates:
                    self._warned_surrogates = True
                    logger.warning(
                        "Input line %d holds text that is not valid Unicode (a lone surrogate "
                        "escape); such characters are replaced with U+FFFD",
                        self.line_number,
                    )
                return cleaned
        return message

    def assert_line_requires(self, line_dict: dict, requires: set[str]) -> None:  # type: ignore[override]
        """Name what is missing, not the line's content."""
        missing = requires - set(line_dict)
        if missing:
            kind = line_dict.get("type", "no type")
            # The SDK also checks a SCHEMA's schema object, whose "type" is a JSON type.
            what = kind if kind in SINGER_TYPES or kind == "no type" else "SCHEMA's schema"
            raise InvalidInputLine(
                f"input line {self.line_number} ({str(what)[:40]}) lacks "
                f"{', '.join(sorted(missing))}"
            )

    def _process_unknown_message(self, message_dict: dict) -> None:
        """Singer allows new message types; skipping them loses no record."""
        kind = str(message_dict.get("type"))[:40]
        if kind not in self._unknown_types:
            self._unknown_types.add(kind)
            logger.warning("Skipping Singer messages of unknown type %r", kind)


def record_of_line(line: bytes) -> Any:
    """The record of a RECORD line that a worker converted, as this reader would have handed
    it on (for the rejects file). Workers leave lines with lone surrogates to this reader, so
    there is nothing to clean."""
    record = _decode(line.decode("utf-8")).get("record")
    if isinstance(record, dict):
        for name in SDC_METADATA_KEYS:
            record.pop(name, None)
    return record


def _split_at_schema_lines(block: bytes) -> Iterator[tuple[bytes, bytes | None]]:
    """(lines before, the SCHEMA line after them or None): what may be a SCHEMA message is
    found by its text; a line that only mentions the word is handled here, which is harmless."""
    start = 0
    while True:
        found = block.find(b'"SCHEMA"', start)
        if found < 0:
            yield block[start:], None
            return
        previous_newline = block.rfind(b"\n", start, found)
        line_start = previous_newline + 1 if previous_newline >= 0 else start
        line_end = block.find(b"\n", found) + 1 or len(block)
        yield block[start:line_start], block[line_start:line_end]
        start = line_end


def _readable_now(fd: int) -> bool:
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return False  # cannot tell: as if the read would wait


def _stdin_fd() -> int | None:
    buffer = getattr(sys.stdin, "buffer", None)
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return buffer.fileno() if buffer is not None else None
    return None


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    return value
