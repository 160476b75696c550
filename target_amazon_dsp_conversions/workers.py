"""Worker processes: the per-record work (`Converter`) spread over CPUs.

Decoding, checking, mapping, normalizing, hashing and encoding a record is pure CPU work and
one Python process runs it on one core. The main process reads input in blocks of whole lines
and hands each block to a worker process, which answers with `Converter.convert_block`'s
results, in order; the main process settles them exactly as it settles the results of blocks it
converts itself.

The worker side must not import the Singer SDK (slow to start) and must never log (records hold
personal data).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from target_amazon_dsp_conversions.converter import (
    Block,
    BlockResults,
    ConversionSettings,
    Converter,
    StreamSpec,
)

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

    def __init__(self, count: int, settings: ConversionSettings) -> None:
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
        self._busy: deque[tuple[_Worker, Block]] = deque()
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

    def set_streams(self, streams: Mapping[str, StreamSpec | None]) -> None:
        """Tell the workers which streams to convert, or (None) no longer convert (only while
        no block is in flight); streams not named stay as they are."""
        if self.broken or not streams:
            return
        for worker in self._workers:
            self._send(worker, ("streams", dict(streams)))

    def send(self, block: Block) -> None:
        """Give a block of whole lines to a free worker."""
        worker = self._free.popleft()
        self._busy.append((worker, block))
        if block.stream is None:
            self._send(worker, ("block", block.data))
        else:
            self._send(worker, ("records", (block.stream, block.data)))

    def receive(self) -> tuple[Block, BlockResults | None]:
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
    converter: Converter | None = None
    while True:
        try:
            kind, payload = jobs.recv()
        except EOFError:
            return  # the main process is done (or gone)
        if kind == "settings":
            converter = Converter(payload)
            # What is loaded now lives as long as the process: keeping it out of the garbage
            # collector's passes makes them cheaper.
            gc.freeze()
            results.send("ready")
        elif kind == "streams" and converter is not None:
            converter.update_streams(payload)
        elif kind == "block" and converter is not None:
            results.send(converter.convert_block(payload))
        elif kind == "records" and converter is not None:
            results.send(converter.convert_records(*payload))


def main(argv: list[str]) -> None:
    """Worker process entry: `python -m target_amazon_dsp_conversions.workers JOBS RESULTS`."""
    # Ctrl-C reaches the whole process group: the main process decides how to stop, and a
    # worker ends when its input pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    jobs = Connection(int(argv[1]), writable=False)
    results = Connection(int(argv[2]), readable=False)
    # A pipe that fails (broken, or ending inside a message) means the main process is gone,
    # stopped or killed while a block was on its way: nothing is left to do or to say.
    with contextlib.suppress(OSError):
        _serve(jobs, results)


if __name__ == "__main__":
    main(sys.argv)
