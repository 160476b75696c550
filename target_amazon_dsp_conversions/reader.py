"""Reading Singer input: blocks of whole lines, converted (here or by worker processes), settled
in input order; every other message goes to the SDK. The records of a BATCH message's files go
the same way, block by block, before the next input line. Errors name the line, never its
content (input holds personal data).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import select
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, Any, Protocol

from singer_sdk.exceptions import (
    MapExpressionError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
    StreamMapConfigError,
)
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_amazon_dsp_conversions.batch_files import BatchFileError, BatchMessage, record_blocks
from target_amazon_dsp_conversions.batch_files import shown as shown_url
from target_amazon_dsp_conversions.converter import (
    Block,
    BlockResults,
    Converter,
    StreamSpec,
    split_lines,
)
from target_amazon_dsp_conversions.errors import (
    InputError,
    MissingKeyPropertiesInput,
    json_error_reason,
)
from target_amazon_dsp_conversions.rejects import record_line
from target_amazon_dsp_conversions.sdk_internals import raised_by_stream_map
from target_amazon_dsp_conversions.workers import WorkerPool

logger = logging.getLogger("target-amazon-dsp-conversions")
# json.loads with parse_float builds a new decoder per call; one decoder serves every line.
_decode = json.JSONDecoder(parse_float=Decimal).decode

# Input converted at a time: ~800 typical records, ~40 ms of work.
_BLOCK_BYTES = 1 << 18
# Worker processes start once this much input was read: a small input (~800 records) is
# not worth their start-up (~0.15 s of CPU each).
_START_WORKERS_AT = _BLOCK_BYTES
SINGER_TYPES = frozenset({"SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION", "BATCH"})
# JSON may escape half of a surrogate pair alone ("\ud800"): Python then holds a string that
# cannot be encoded (UTF-8 output, hashing). Such lines are rare, so a cheap test finds them.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# The key properties in the SDK's MissingKeyPropertiesError (names, never values).
_SDK_KEY_PROPERTIES = re.compile(r"Key Properties: (?P<keys>\[[^\]]*\])")


class InputHandler(Protocol):
    """What the reader needs from the target."""

    converter: Converter

    def line_streams(self, names: Iterable[str]) -> dict[str, StreamSpec]:
        """Of these streams, those whose records are converted from their lines (no maps)."""

    def start_worker_pool(self) -> WorkerPool | None:
        """Worker processes for this run, or None to convert every record here."""

    def settle(self, lines: list[bytes], results: BlockResults) -> None:
        """Records read in a row and their results, in input order."""

    def check_stop(self) -> None:
        """Raise when the run was asked to stop."""

    def input_started(self) -> None:
        """Reading begins."""

    def input_stopped(self, error: BaseException) -> BaseException:
        """Reading stopped early: settle what can be, and the error to raise instead."""


class SafeSingerReader(SingerReader):
    """Reads input in blocks, counts lines, names them in errors, skips unknown message types."""

    def __init__(self) -> None:
        """Start counting at line 0; `attach` gives the reader its target."""
        super().__init__()
        self.line_number = 0
        self.handler: InputHandler | None = None
        # A stop requested while a line is being processed waits for the next line
        # boundary; while blocked on input it is raised at once (see target.py).
        self.waiting_for_input = False
        self._callbacks: dict[str, Callable[[dict], None]] = {}
        self._counts: Counter[str] = Counter()
        self._stream_names: set[str] = set()
        # Streams converted from their lines, as the converters know them, and the changes
        # the worker processes have yet to learn.
        self._line_streams: dict[str, StreamSpec] = {}
        self._changed_streams: dict[str, StreamSpec | None] = {}
        # The latest SCHEMA line of each stream, and the stream of each such line: the same
        # SCHEMA sent again is recognised by its bytes and costs nothing more.
        self._schema_lines: dict[str, bytes] = {}
        self._schema_line_streams: dict[bytes, str] = {}
        self._unknown_types: set[str] = set()
        self._warned_surrogates = False
        self._line_cleaned = False  # the last line decoded held lone surrogates
        self._warned_broken_pool = False
        self._pool: WorkerPool | None = None
        self._pool_tried = False
        self._bytes_read = 0
        self._ready: deque[tuple[Block, BlockResults | None]] = deque()
        # A SCHEMA came that blocks already converted did not know of: their results are
        # not used (their lines are handled one by one) until the workers learn it.
        self._stale_results = False

    def attach(self, handler: InputHandler) -> None:
        """The target whose records this reader settles."""
        self.handler = handler

    def process_lines(
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict], None]]
    ) -> Counter[str]:
        """Read every line of the input (stdin by default) and handle it in order."""
        self._callbacks = callbacks
        self._counts = Counter()
        if self.handler is not None:
            self.handler.input_started()
        try:
            self._read_all(file_input)
        except BaseException as error:
            self._close_pool(wait=False)
            handler = self.handler
            if handler is None:
                raise
            raise handler.input_stopped(error) from None
        self._close_pool(wait=True)
        return self._counts

    # Blocks.

    def _read_all(self, file_input: IO[str] | None) -> None:
        """Blocks go to a free worker as soon as they are read (or are converted here);
        results are settled oldest first. A SCHEMA or BATCH line is a barrier: the blocks before
        it are finished, it is handled here (the converters learn the new stream; the batch's
        records are converted and settled), before any later block."""
        for block in self._blocks(file_input):
            self._count_bytes(len(block))
            for part, barrier_line in _split_at_barrier_lines(block):
                if barrier_line is not None and self._repeats_a_schema(barrier_line):
                    # Nothing changes: no barrier; the line is counted in its turn.
                    self._convert(Block(part + barrier_line))
                    continue
                if part:
                    self._convert(Block(part))
                if barrier_line is not None:
                    self._finish_in_flight()
                    self._handle_line(barrier_line)
                    self._finish_in_flight()
        self._finish_in_flight()

    def _count_bytes(self, size: int) -> None:
        self._bytes_read += size
        if not self._pool_tried and self._bytes_read >= _START_WORKERS_AT:
            self._start_pool()

    def _start_pool(self) -> None:
        assert self.handler is not None
        self._pool_tried = True
        self._pool = self.handler.start_worker_pool()
        self._changed_streams.clear()
        if self._pool is not None:
            self._pool.set_streams(self._line_streams)

    def _convert(self, block: Block) -> None:
        """Send the block to a worker (waiting for the oldest one if none is free), then
        settle the answers that came back; without workers, convert and settle it here."""
        pool = self._pool
        if pool is None:
            assert self.handler is not None
            self._handle(block, self.handler.converter.convert_any(block))
            return
        while not pool.has_free_worker and pool.blocks_in_flight:
            self._ready.append(self._receive(pool))
        if pool.has_free_worker:
            pool.send(block)
        else:  # the workers are still starting, or the pool broke: converted here
            self._warn_if_broken(pool)
            assert self.handler is not None
            self._ready.append((block, self.handler.converter.convert_any(block)))
        while self._ready:
            self._handle(*self._ready.popleft())
        if self._stale_results:
            self._finish_in_flight()

    def _finish_in_flight(self) -> None:
        """Settle every block sent to the workers; then they may learn new streams."""
        while self._ready:
            self._handle(*self._ready.popleft())
        pool = self._pool
        while pool is not None and pool.blocks_in_flight:
            self._handle(*self._receive(pool))
        if self._stale_results:
            self._stale_results = False
            if pool is not None:
                pool.set_streams(self._changed_streams)
            self._changed_streams.clear()

    def _receive(self, pool: WorkerPool) -> tuple[Block, BlockResults | None]:
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

    def _close_pool(self, *, wait: bool) -> None:
        if self._pool is not None:
            self._pool.close(wait=wait)
            self._pool = None

    def _handle(self, block: Block, results: BlockResults | None) -> None:
        """The lines of a block in order: converted records settled in runs (no other message,
        so no STATE, among them), every other line handled on its own."""
        lines = split_lines(block.data)
        if results is None or self._stale_results:
            for number, line in enumerate(lines):
                if block.origin is None:
                    self._handle_line(line)
                else:
                    self._handle_batch_line(block, block.origin[1] + number, line)
            return
        assert self.handler is not None
        outcomes = results.outcomes
        origin = block.origin
        start = 0
        while start < len(lines):
            if outcomes[start] is None:
                if origin is None:
                    self._handle_line(lines[start])
                else:
                    self._handle_batch_line(block, origin[1] + start, lines[start])
                start += 1
                continue
            end = start + 1
            while end < len(lines) and outcomes[end] is not None:
                end += 1
            self.handler.check_stop()
            whole = start == 0 and end == len(lines)
            part = results if whole else results.part(start, end)
            if origin is None:
                self.handler.settle(lines[start:end], part)
                self.line_number += end - start
                self._counts["RECORD"] += end - start
            else:
                url, first = origin
                records = [
                    _batch_origin(url, first + i) + _record_text(lines[i]) + b"}"
                    for i in range(start, end)
                ]
                self.handler.settle(records, part)
            start = end

    def _blocks(self, file_input: IO[str] | None) -> Iterator[bytes]:
        """Whole lines as they arrive, up to ~_BLOCK_BYTES at a time, each ending with a
        newline but perhaps the very last one. Before waiting for input, every block in flight
        is finished: what was read must not wait for what a slow tap has not written yet."""
        read = self._reader_of(file_input)
        partial = b""
        while True:
            data = read(_BLOCK_BYTES)
            if not data:
                if partial:
                    yield partial  # the last line, without a newline
                return
            data = partial + data
            end = data.rfind(b"\n") + 1
            partial = data[end:]
            if end:
                yield data[:end]

    def _reader_of(self, file_input: IO[str] | None) -> Callable[[int], bytes]:
        """`read(size)` of the input as bytes: a file descriptor where there is one (stdin, a
        file), else the object's own reads (text is encoded: the lines are decoded later)."""
        source: Any = sys.stdin if file_input is None else file_input
        fd = _fileno(source)
        if fd is not None:
            return lambda size: self._read_fd(fd, size)
        binary = getattr(source, "buffer", source)

        def read(size: int) -> bytes:
            self.handler.check_stop()  # type: ignore[union-attr]
            data = binary.read(size)
            return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data

        return read

    def _read_fd(self, fd: int, size: int) -> bytes:
        if not _readable_now(fd):
            self._finish_in_flight()
        data = self._wait_and_read(fd, size)
        # A pipe holds 64 KiB: gather what is ready into one block.
        while data and len(data) < size and _readable_now(fd):
            more = self._wait_and_read(fd, size - len(data))
            if not more:
                break
            data += more
        return data

    def _wait_and_read(self, fd: int, size: int) -> bytes:
        self.waiting_for_input = True
        try:
            self.handler.check_stop()  # type: ignore[union-attr]
            return os.read(fd, size)
        finally:
            self.waiting_for_input = False

    # Lines handled one by one.

    def _handle_line(self, raw: bytes) -> None:
        """One line that was not converted beforehand: a record is converted now, any other
        message goes to the SDK."""
        assert self.handler is not None
        self.line_number += 1
        self.handler.check_stop()
        if self._repeats_a_schema(raw):
            self._counts["SCHEMA"] += 1
            return
        message = self._message_of(raw)
        if message is None:
            return  # a blank line (a tap's stray print) holds no message
        kind = message["type"]
        if kind == "RECORD" and self._settle_record(raw, message):
            self._counts[kind] += 1
            return
        if kind == "BATCH":
            self._read_batch(message)
            self._counts[kind] += 1
            return
        callback = self._callbacks.get(kind)
        if callback is None:
            self._skip_unknown_message(message)
        else:
            if kind == "ACTIVATE_VERSION":
                self._check_activate_version(message)
            try:
                callback(message)
            except (InputError, RecordsWithoutSchemaException) as exc:
                # Our words or the SDK's (its exception, as its callers expect), with the line.
                what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise type(exc)(f"input line {self.line_number}: {what}") from None
            except MissingKeyPropertiesError as exc:  # the SDK's check, after stream maps
                raise MissingKeyPropertiesError(self._missing_keys(message, exc)) from None
            except Exception as exc:
                if not raised_by_stream_map(exc):
                    raise
                raise InputError(self._stream_map_failed(kind, message, exc)) from None
            if kind == "SCHEMA":
                self._learn_stream(message, raw)
        self._counts[kind] += 1

    def _check_activate_version(self, message: dict[str, Any]) -> None:
        """ACTIVATE_VERSION names a stream whose SCHEMA came before it (else the SDK fails)."""
        self.assert_line_requires(message, requires={"stream", "version"})
        stream = message["stream"]
        if str(stream) not in self._stream_names:
            raise InputError(
                f"input line {self.line_number}: ACTIVATE_VERSION of stream "
                f"{str(stream)[:100]!r} comes before the stream's SCHEMA"
            )

    def _missing_keys(self, message: dict[str, Any], error: Exception) -> str:
        """The SDK's missing key properties, named with the stream and the line."""
        declared = _SDK_KEY_PROPERTIES.search(str(error))
        keys = f" {declared['keys']}" if declared else ""
        return (
            f"input line {self.line_number}: a RECORD of stream "
            f"{str(message.get('stream'))[:100]!r} lacks its key properties{keys} after "
            "stream_maps; the dedupe ID is derived from them"
        )

    def _stream_map_failed(self, kind: str, message: dict[str, Any], error: Exception) -> str:
        """A stream map that does not compile (at the SCHEMA) or fails on a record. Only the
        SDK's own words (they quote the expression) or the error's type: Python's messages may
        quote the record's values."""
        stream = str(message.get("stream"))[:100]
        if isinstance(error, (MapExpressionError, StreamMapConfigError)):
            what = str(error).splitlines()[0] if str(error) else type(error).__name__
        else:
            what = type(error).__name__
        where = "cannot be used for its SCHEMA" if kind == "SCHEMA" else "failed on this RECORD"
        return (
            f"input line {self.line_number}: setting 'stream_maps' of stream {stream!r} "
            f"{where}: {what}"
        )

    def _settle_record(self, raw: bytes, message: dict[str, Any]) -> bool:
        """Convert and settle a record of a stream converted from lines; False for others."""
        assert self.handler is not None
        record = message.get("record")
        # A record this reader cleaned is kept as cleaned: its line could not be written out.
        line = record_line(record) if self._line_cleaned else raw
        try:
            result = self.handler.converter.convert_message(message, datetime.now(timezone.utc))
        except MissingKeyPropertiesInput as exc:
            raise MissingKeyPropertiesError(f"input line {self.line_number}: {exc}") from None
        if result is None:
            return False
        self.handler.settle([line], BlockResults.of([result]))
        return True

    # BATCH messages.

    def _read_batch(self, message: dict[str, Any]) -> None:
        """The records of every file of a BATCH message, converted and settled in order, as
        their RECORD messages would be, before the next input line (a STATE after the BATCH
        waits for all of them)."""
        where = f"input line {self.line_number}"
        try:
            batch = BatchMessage.of(message)
        except BatchFileError as exc:
            raise BatchFileError(f"{where}: {exc}") from None
        if batch.stream not in self._stream_names:
            raise RecordsWithoutSchemaException(
                f"{where}: BATCH of stream '{batch.stream[:100]}' came before its SCHEMA"
            )
        # A BATCH line is a barrier (`_read_all`), unless spelled with escapes: then later
        # input is already being converted, and the batch's blocks are converted here.
        pool = self._pool
        at_barrier = not self._ready and (pool is None or not pool.blocks_in_flight)
        assert self.handler is not None
        try:
            for url in batch.manifest:
                for first_line, data in record_blocks(batch, url, _BLOCK_BYTES):
                    block = Block(data, batch.stream, (url, first_line))
                    if at_barrier:
                        self._count_bytes(len(data))
                        self._convert(block)
                    else:
                        self._handle(block, self.handler.converter.convert_any(block))
        except BatchFileError as exc:
            raise BatchFileError(f"{where}: {exc}") from None
        if at_barrier:
            self._finish_in_flight()

    def _handle_batch_line(self, block: Block, number: int, raw: bytes) -> None:
        """A BATCH file's line that was not converted beforehand: read here, and settled as
        the RECORD message it stands for."""
        assert self.handler is not None and block.stream is not None and block.origin is not None
        self.handler.check_stop()
        url = block.origin[0]
        where = f"line {number} of BATCH file '{shown_url(url)}' (input line {self.line_number})"
        text = _text_of(raw, where)
        if not text.strip():
            return
        record = self._decode_json(text, where)
        line = _batch_origin(url, number) + record_line(record)[len(b'{"record":') :]
        message = {"type": "RECORD", "stream": block.stream, "record": record}
        try:
            result = self.handler.converter.convert_message(message, datetime.now(timezone.utc))
        except MissingKeyPropertiesInput as exc:
            raise MissingKeyPropertiesError(f"{where}: {exc}") from None
        if result is None:  # a stream the SDK maps: its RECORD callback, as for input lines
            try:
                self._callbacks["RECORD"](message)
            except (InputError, RecordsWithoutSchemaException) as exc:
                what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise type(exc)(f"{where}: {what}") from None
            return
        self.handler.settle([line], BlockResults.of([result]))

    def _learn_stream(self, message: dict[str, Any], raw: bytes) -> None:
        """After a SCHEMA: the converters learn the stream (workers once none is busy); the
        other streams stay as they are."""
        assert self.handler is not None
        name = str(message.get("stream"))
        self._stream_names.add(name)
        earlier = self._schema_lines.get(name)
        if earlier is not None:
            self._schema_line_streams.pop(earlier, None)
        if not self._line_cleaned:
            self._schema_lines[name] = raw
            self._schema_line_streams[raw] = name
        spec = self.handler.line_streams([name]).get(name)
        if spec == self._line_streams.get(name):
            return
        if spec is None:
            del self._line_streams[name]
        else:
            self._line_streams[name] = spec
        self.handler.converter.update_streams({name: spec})
        self._changed_streams[name] = spec
        self._stale_results = True

    def _repeats_a_schema(self, raw: bytes) -> bool:
        """The line is the latest SCHEMA of its stream, byte for byte: handling it again
        would change nothing (the SDK, too, ignores a SCHEMA that did not change)."""
        stream = self._schema_line_streams.get(raw)
        return stream is not None and self._schema_lines.get(stream) == raw

    def _message_of(self, raw: bytes) -> dict[str, Any] | None:
        """The message of a line; raises InvalidInputLine naming the line when there is none."""
        line = _text_of(raw, f"input line {self.line_number}")
        if not line.strip():
            return None
        message = self.deserialize_json(line)
        self.assert_line_requires(message, requires={"type"})
        return message

    def deserialize_json(self, line: str) -> dict:
        """Parse one line; a broken line is named by number, not by content."""
        message = self._decode_json(line, f"input line {self.line_number}")
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is not a Singer message (a JSON object)"
            )
        return message

    def _decode_json(self, line: str, where: str) -> Any:
        """The JSON value of a line (lone surrogates cleaned, with a warning once)."""
        try:
            message = _decode(line)
        except json.JSONDecodeError as exc:
            reason = f"{json_error_reason(exc)} at column {exc.pos + 1}"
            raise InvalidInputLine(
                f"{where} is not valid JSON ({reason}); nothing after it was read"
            ) from None
        except (ValueError, RecursionError) as exc:
            # An integer beyond Python's digit limit, or nesting deeper than the stack allows.
            reason = "nested too deeply" if isinstance(exc, RecursionError) else "a number too long"
            raise InvalidInputLine(
                f"{where} cannot be read ({reason}); nothing after it was read"
            ) from None
        self._line_cleaned = False
        if "\\u" in line and _SURROGATE_ESCAPE.search(line):
            cleaned = _without_lone_surrogates(message)
            if cleaned != message:
                self._line_cleaned = True
                if not self._warned_surrogates:
                    self._warned_surrogates = True
                    logger.warning(
                        "%s holds text that is not valid Unicode (a lone surrogate escape); "
                        "such characters are replaced with U+FFFD",
                        where[0].upper() + where[1:],
                    )
                return cleaned
        return message

    def assert_line_requires(self, line_dict: dict, requires: set[str]) -> None:  # type: ignore[override]
        """Name what is missing, not the line's content."""
        missing = requires - set(line_dict)
        if "type" in missing:
            # Plain JSON rows piped in (`cat orders.jsonl | target-...`): a tap makes them Singer.
            raise InvalidInputLine(
                f"input line {self.line_number} is not a Singer message (a JSON object with "
                '"type": SCHEMA, RECORD or STATE); to load plain JSON rows, read them with a tap '
                "such as tap-jsonl (see the README)"
            )
        if missing:
            kind = line_dict.get("type", "no type")
            # The SDK also checks a SCHEMA's schema object, whose "type" is a JSON type.
            what = kind if kind in SINGER_TYPES or kind == "no type" else "SCHEMA's schema"
            raise InvalidInputLine(
                f"input line {self.line_number} ({str(what)[:40]}) lacks "
                f"{', '.join(sorted(missing))}"
            )

    def _skip_unknown_message(self, message_dict: dict) -> None:
        """Singer allows new message types; skipping them loses no record."""
        kind = str(message_dict.get("type"))[:40]
        if kind not in self._unknown_types:
            self._unknown_types.add(kind)
            logger.warning("Skipping Singer messages of unknown type %r", kind)


def _split_at_barrier_lines(block: bytes) -> Iterator[tuple[bytes, bytes | None]]:
    """(lines before, the SCHEMA or BATCH line after them or None): what may be such a message
    is found by its text; a line that only mentions the word is handled here, which is
    harmless."""
    start = 0
    while True:
        found = _find_barrier(block, start)
        if found < 0:
            yield block[start:], None
            return
        previous_newline = block.rfind(b"\n", start, found)
        line_start = previous_newline + 1 if previous_newline >= 0 else start
        line_end = block.find(b"\n", found) + 1 or len(block)
        yield block[start:line_start], block[line_start:line_end]
        start = line_end


def _text_of(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputLine(f"{where} is not UTF-8 text; nothing after it was read") from None


def _find_barrier(block: bytes, start: int) -> int:
    schema = block.find(b'"SCHEMA"', start)
    batch = block.find(b'"BATCH"', start, schema if schema >= 0 else len(block))
    return batch if batch >= 0 else schema


def _batch_origin(url: str, line: int) -> bytes:
    """The start of a BATCH record's line as the rejects file reads it (`record_of_line`):
    where it came from, then (after this) its record and a closing brace."""
    return _batch_file_head(url) + b'%d,"record":' % line


@functools.lru_cache(maxsize=64)
def _batch_file_head(url: str) -> bytes:
    return f'{{"batch_file":{json.dumps(shown_url(url))},"batch_line":'.encode()


def _record_text(line: bytes) -> bytes:
    return line.rstrip(b"\r\n")


def _readable_now(fd: int) -> bool:
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return False  # cannot tell: as if the read would wait


def _fileno(source: Any) -> int | None:
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return int(source.fileno())
    return None


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    return value
