"""Singer input reading that never echoes input lines (they hold personal data) in errors."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO, Any, Protocol

from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_amazon_dsp_conversions.record_checks import SDC_METADATA_KEYS
from target_amazon_dsp_conversions.workers import Result, StreamSpec, WorkerPool

logger = logging.getLogger("target-amazon-dsp-conversions")
# json.loads with parse_float builds a new decoder per call; one decoder serves every line.
_decode = json.JSONDecoder(parse_float=Decimal).decode

_INPUT_BUFFER_BYTES = 1 << 20
# Input handed to a worker process at a time: ~800 typical records, ~40 ms of work.
_BLOCK_BYTES = 1 << 18
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

    def process_converted(self, line: bytes, result: Result) -> None:
        """A record line a worker converted (or rejected)."""


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
        """The SDK's loop, fed through `_lines` so a stop request ends it between lines.

        Reading stdin, records are converted by worker processes when the target starts them.
        """
        fd = _stdin_fd() if file_input is None and self.parallel is not None else None
        pool = self.parallel.start_worker_pool() if fd is not None and self.parallel else None
        if pool is None:
            return super().process_lines(
                self._lines(file_input or self.default_input),  # type: ignore[arg-type]
                callbacks,
            )
        try:
            counts = self._process_blocks(fd, pool, callbacks)  # type: ignore[arg-type]
        except BaseException:
            pool.close(wait=False)
            raise
        pool.close()
        return counts

    def _process_blocks(
        self, fd: int, pool: WorkerPool, callbacks: dict[str, Callable[[dict], None]]
    ) -> Counter[str]:
        """Blocks of lines go to the workers; their results are handled here, line by line,
        in input order. A SCHEMA line is a barrier: the blocks before it are finished, it is
        handled here, and the workers learn the new stream before any later block."""
        assert self.parallel is not None
        counts: Counter[str] = Counter()
        ready: deque[tuple[bytes, list[Result] | None]] = deque()

        def handle(block: bytes, results: list[Result] | None) -> None:
            lines = block.split(b"\n")
            lines.pop()
            if results is None or self._schema_outside_barrier:
                results = [None] * len(lines)
            for line, result in zip(lines, results, strict=True):
                self.line_number += 1
                self.check_stop()
                if result is None:
                    self._process_line(line, callbacks, counts)
                else:
                    counts["RECORD"] += 1
                    self.parallel.process_converted(line, result)  # type: ignore[union-attr]

        def finish_in_flight() -> None:
            while ready:
                handle(*ready.popleft())
            while pool.blocks_in_flight:
                self.waiting_for_input = True
                try:
                    received = pool.receive()
                finally:
                    self.waiting_for_input = False
                handle(*received)
            if self._schema_outside_barrier:
                self._schema_outside_barrier = False
                pool.set_streams(self.parallel.worker_streams())  # type: ignore[union-attr]

        for block in self._blocks(fd):
            for part, schema_line in _split_at_schema_lines(block):
                if part and pool.has_free_worker:
                    pool.send(part)
                elif part:
                    # Wait for the oldest block, send this one, then handle the answers.
                    while not pool.has_free_worker and pool.blocks_in_flight:
                        self.waiting_for_input = True
                        try:
                            ready.append(pool.receive())
                        finally:
                            self.waiting_for_input = False
                    if pool.has_free_worker:
                        pool.send(part)
                    else:  # the pool broke: this block is handled here
                        ready.append((part, None))
                while ready:
                    handle(*ready.popleft())
                if self._schema_outside_barrier:
                    finish_in_flight()
                if schema_line is not None:
                    finish_in_flight()
                    handle(schema_line, None)
                    self._schema_outside_barrier = False
                    pool.set_streams(self.parallel.worker_streams())
        finish_in_flight()
        return counts

    def _blocks(self, fd: int) -> Iterator[bytes]:
        """Whole lines, each ending with a newline, as they arrive (at most ~_BLOCK_BYTES)."""
        partial: list[bytes] = []
        while True:
            self.waiting_for_input = True
            try:
                self.check_stop()
                data = os.read(fd, _BLOCK_BYTES)
            finally:
                self.waiting_for_input = False
            if not data:
                if partial:
                    yield b"".join(partial) + b"\n"
                return
            end = data.rfind(b"\n") + 1
            if end == 0:
                partial.append(data)
                continue
            partial.append(data[:end])
            yield b"".join(partial)
            partial = [data[end:]] if end < len(data) else []

    def _process_line(
        self, raw: bytes, callbacks: dict[str, Callable[[dict], None]], counts: Counter[str]
    ) -> None:
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
        callback = callbacks.get(kind)
        if callback is None:
            self._process_unknown_message(message)
        else:
            callback(message)
            if kind == "SCHEMA":
                # Unless this is the barrier itself, blocks already sent were converted
                # without this schema: the rest of them is handled here.
                self._schema_outside_barrier = True
        counts[kind] += 1

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
    it on (for the rejects file)."""
    text = line.decode("utf-8")
    message = _decode(text)
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        message = _without_lone_surrogates(message)
    record = message.get("record")
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
        line_end = block.index(b"\n", found) + 1
        yield block[start:line_start], block[line_start:line_end]
        start = line_end


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
