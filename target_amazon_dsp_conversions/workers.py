"""Worker processes: record lines -> encoded events, the per-record work spread over CPUs.

Decoding, validating, mapping, normalizing, hashing and encoding a record is pure CPU work and
one Python process runs it on one core. The main process reads input in blocks of whole lines
and hands each block to a worker process, which converts the records it can and answers with one
result per line, in order. Anything else (another message type, a stream the workers were not
told about, a line that does not parse, a record only the main process may judge) comes back
as None and the main process handles that line itself, exactly as it would without workers.

This module runs in the workers: it must not import the Singer SDK (slow to start) and must
never log (records hold personal data).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

from target_amazon_dsp_conversions.apis import api_for
from target_amazon_dsp_conversions.conversion import build_conversion, dedupe_seed
from target_amazon_dsp_conversions.errors import Rejected
from target_amazon_dsp_conversions.mapping import RecordMapping
from target_amazon_dsp_conversions.record_checks import (
    SDC_METADATA_KEYS,
    SchemaCheck,
    compile_schema,
    missing_key_properties,
    null_keys_problem,
    schema_problem,
)

# A stream the workers may convert: its schema (None: not validated) and key properties.
StreamSpec = tuple["dict[str, Any] | None", tuple[str, ...]]
# One line's result:
#   None                             the main process handles the line itself
#   (stream, problems)               the record is rejected for these reasons
#   (dedupe_id, encoded, kind)       an event; `kind` indexes the block's EventKind list
Result = tuple[Any, ...] | None
# What the events of a block have in common, listed once per block (a handful):
#   (stream, batch_key, match_key_types, definition_key)
# For the DSP API `encoded` lacks the definition ID, which the main process resolves from
# definition_key = (advertiser, definition ID, name, type, source, raw type); else it is None.
EventKind = tuple[str, tuple[str, str], tuple[str, ...], "tuple[Any, ...] | None"]
BlockResults = tuple[list[Result], list[EventKind]]

_decoder = json.JSONDecoder(parse_float=Decimal)
_decode = _decoder.decode
_scan_value = _decoder.scan_once  # type: ignore[attr-defined] # set in __init__
# Lines with an escaped lone surrogate are cleaned (and warned about) by the main process.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SCHEMA_FOLLOWS = object()


@dataclass(frozen=True)
class WorkerSettings:
    """What converting a record needs from the settings (sent to each worker once)."""

    api: str
    region: str
    mapping: dict[str, str]
    defaults: dict[str, Any]
    source: str
    advertiser_id: str | None
    user_identifier_type: str | None


class LineConverter:
    """Converts the RECORD lines of known streams; the rest is left to the main process."""

    def __init__(self, settings: WorkerSettings) -> None:
        """Build the API's rules and the mapping once."""
        self._settings = settings
        self._api = api_for(settings.api, region=settings.region)
        self._dsp = self._api.name == "dsp"
        self._mapping = RecordMapping(settings.mapping, settings.defaults)
        self._streams: dict[str, tuple[SchemaCheck | None, tuple[str, ...]]] = {}

    def set_streams(self, streams: dict[str, StreamSpec]) -> None:
        """The streams to convert, as the main process knows them now."""
        self._streams = {
            name: (None if schema is None else compile_schema(schema), keys)
            for name, (schema, keys) in streams.items()
        }

    def convert_block(self, block: bytes) -> BlockResults:
        """One result per line of a block of whole lines, and the block's event kinds."""
        lines = split_lines(block)
        self._kinds: dict[EventKind, int] = {}
        results: list[Result] = []
        now = datetime.now(timezone.utc)
        for line in lines:
            try:
                result = self.convert_line(line, now)
            except Exception:  # noqa: BLE001 - the main process meets it again and says it
                result = None
            if result is _SCHEMA_FOLLOWS:
                # A SCHEMA the main process did not see coming: what follows it may depend on
                # it, so the rest of the block is left to the main process.
                results.extend([None] * (len(lines) - len(results)))
                break
            results.append(result)
        return results, list(self._kinds)

    def convert_line(self, line: bytes, now: datetime) -> Any:
        """The result for one line (see `Result`)."""
        if b"\\u" in line and _SURROGATE_ESCAPE.search(line):
            return None
        try:
            message = _decode_line(line.decode())
        except ValueError:
            return None
        if type(message) is not dict:
            return None
        kind = message.get("type")
        if kind != "RECORD":
            return _SCHEMA_FOLLOWS if kind == "SCHEMA" else None
        stream = message.get("stream")
        record = message.get("record")
        if type(stream) is not str or type(record) is not dict:
            return None
        spec = self._streams.get(stream)
        if spec is None:
            return None
        check, keys = spec
        for name in SDC_METADATA_KEYS:
            record.pop(name, None)
        problem = schema_problem(check, record) if check is not None else None
        if keys:
            if missing_key_properties(keys, record):
                return None  # the run stops on it, in the main process
            problem = problem or null_keys_problem(keys, record)
        if problem is not None:
            return (stream, [problem])
        return self._convert_record(stream, record, keys, now)

    def _convert_record(
        self, stream: str, record: dict[str, Any], keys: tuple[str, ...], now: datetime
    ) -> Result:
        settings = self._settings
        fields = self._mapping.extract(record)
        try:
            conversion = build_conversion(
                fields,
                rules=self._api.rules,
                default_source=settings.source,
                default_advertiser_id=settings.advertiser_id,
                user_identifier_type=settings.user_identifier_type,
                dedupe_seed=dedupe_seed(stream, record, keys),
                now=now,
            )
            definition_key: tuple[Any, ...] | None = None
            if self._dsp:
                if conversion.units_sold is not None and conversion.conversion_type is None:
                    return None  # whether unitsSold is sent depends on the resolved definition
                encoded = self._api.encode_event_fields(conversion)  # type: ignore[attr-defined]
                definition_key = (
                    conversion.advertiser_id,
                    conversion.definition_id,
                    conversion.name,
                    conversion.conversion_type,
                    conversion.source,
                    fields.get("conversionType"),
                )
            else:
                encoded = self._api.encode_event(conversion)
        except Rejected as rejected:
            return (stream, rejected.problems)
        kind = (
            stream,
            self._api.batch_key(conversion),
            tuple([key_type for key_type, _ in conversion.match_keys]),
            definition_key,
        )
        index = self._kinds.get(kind)
        if index is None:
            index = self._kinds[kind] = len(self._kinds)
        return (conversion.dedupe_id, encoded, index)


def _decode_line(text: str) -> Any:
    """json.loads(text), without its Python-level whitespace handling for the usual line:
    a value right at the start, then the newline."""
    try:
        value, end = _scan_value(text, 0)
    except StopIteration:
        return _decode(text)  # leading whitespace, or not JSON (raises ValueError)
    if end == len(text) or text[end:] in ("\n", "\r\n"):
        return value
    return _decode(text)


def split_lines(block: bytes) -> list[bytes]:
    """The lines of a block, each with its newline (the last line of input may lack one)."""
    lines = block.split(b"\n")
    last = lines.pop()
    lines = [line + b"\n" for line in lines]
    if last:
        lines.append(last)
    return lines


# --- main process side -------------------------------------------------------------------


class _Worker:
    """One worker process and the two pipes to it."""

    def __init__(self) -> None:
        job_read, job_write = os.pipe()
        result_read, result_write = os.pipe()
        try:
            # Not multiprocessing's spawn: that would import the parent's __main__ (the
            # whole SDK) in every worker. stderr is shared, so a crash is seen.
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(job_read), str(result_write)],
                pass_fds=(job_read, result_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        finally:
            os.close(job_read)
            os.close(result_write)
        self.jobs = Connection(job_write, readable=False)
        self.results = Connection(result_read, writable=False)

    def stop(self, *, wait: bool) -> None:
        self.jobs.close()  # end of input for the worker
        self.results.close()
        if wait:
            try:
                self.process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                pass
        self.process.kill()
        self.process.wait()


class WorkerPool:
    """Blocks go to free workers; answers come back in the order the blocks were sent.

    A block is only sent to a worker that has answered all it was given, so neither side can
    block the other on a full pipe. A worker counts as free once it said it is ready (its
    modules loaded); until then the main process converts blocks itself. A worker that dies
    breaks the pool: its block (and every later one) comes back without results and is
    handled in the main process.
    """

    def __init__(self, count: int, settings: WorkerSettings) -> None:
        """Start `count` worker processes; they load their modules while input is read."""
        self._workers: list[_Worker] = []
        try:
            for _ in range(count):
                self._workers.append(_Worker())
            for worker in self._workers:
                worker.jobs.send(("settings", settings))
        except OSError:
            self.close(wait=False)
            raise
        self._starting: list[_Worker] = list(self._workers)
        self._free: deque[_Worker] = deque()
        self._busy: deque[tuple[_Worker, bytes]] = deque()
        self._streams: dict[str, StreamSpec] | None = None
        self.broken = False

    @property
    def has_free_worker(self) -> bool:
        """A block sent now would start at once."""
        if self._starting:
            self._collect_ready()
        return bool(self._free) and not self.broken

    def _collect_ready(self) -> None:
        for worker in list(self._starting):
            try:
                if not worker.results.poll():
                    continue
                worker.results.recv()  # "ready"
            except (EOFError, OSError):
                self.broken = True
                return
            self._starting.remove(worker)
            self._free.append(worker)

    @property
    def blocks_in_flight(self) -> int:
        """Blocks sent and not yet received."""
        return len(self._busy)

    def set_streams(self, streams: dict[str, StreamSpec]) -> None:
        """Tell the workers which streams to convert (only while no block is in flight)."""
        if streams == self._streams or self.broken:
            return
        self._streams = streams
        for worker in self._workers:
            self._send(worker, ("streams", streams))

    def send(self, block: bytes) -> None:
        """Give a block of whole lines to a free worker."""
        worker = self._free.popleft()
        self._busy.append((worker, block))
        self._send(worker, ("block", block))

    def receive(self) -> tuple[bytes, BlockResults | None]:
        """The oldest block in flight and its results (None: the main process converts it)."""
        worker, block = self._busy.popleft()
        if not self.broken:
            try:
                results: BlockResults = worker.results.recv()
            except (EOFError, OSError):
                self.broken = True
            else:
                self._free.append(worker)
                return block, results
        return block, None

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers (at once when not waiting)."""
        for worker in self._workers:
            worker.stop(wait=wait and not self.broken)
        self._workers = []
        self._starting = []
        self._free.clear()

    def _send(self, worker: _Worker, message: tuple[str, Any]) -> None:
        try:
            worker.jobs.send(message)
        except OSError:
            self.broken = True


def _serve(jobs: Connection, results: Connection) -> None:
    converter: LineConverter | None = None
    while True:
        try:
            kind, payload = jobs.recv()
        except EOFError:
            return  # the main process is done (or gone)
        if kind == "settings":
            converter = LineConverter(payload)
            # What is loaded now lives as long as the process: keeping it out of the garbage
            # collector's passes makes them cheaper.
            gc.freeze()
            results.send("ready")
        elif kind == "streams" and converter is not None:
            converter.set_streams(payload)
        elif kind == "block" and converter is not None:
            results.send(converter.convert_block(payload))


def main(argv: list[str]) -> None:
    """Worker process entry: `python -m target_amazon_dsp_conversions.workers JOBS RESULTS`."""
    # Ctrl-C reaches the whole process group: the main process decides how to stop, and a
    # worker ends when its input pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    jobs = Connection(int(argv[1]), writable=False)
    results = Connection(int(argv[2]), readable=False)
    # A broken pipe: the main process stopped while a block was being converted.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        _serve(jobs, results)


if __name__ == "__main__":
    main(sys.argv)
