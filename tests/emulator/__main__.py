"""Run a default emulator in the foreground: ``python -m tests.emulator [--port 8765]``."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from . import server
from .server import AmazonAdsEmulator, Faults


class _Discard(list):  # type: ignore[type-arg]
    """A ledger list that keeps nothing: long benchmark runs would otherwise grow without end."""

    def append(self, item: object) -> None:
        """Drop the item."""


def main(argv: list[str] | None = None) -> None:
    """Start the emulator, print its URL and credentials, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per API call")
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="skip the OpenAPI schema check of request bodies (it dominates the emulator's "
        "CPU time; for benchmarks of the target)",
    )
    parser.add_argument(
        "--no-ledger",
        action="store_true",
        help="keep no record of requests and accepted/rejected events (constant memory)",
    )
    parser.add_argument(
        "--echo-request",
        action="store_true",
        help="quote the request (token form, Authorization header) in error answers",
    )
    args = parser.parse_args(argv)

    if args.no_validate:
        server._schema_violations = lambda api, schema, body: []
    emu = AmazonAdsEmulator(args.port, host=args.host)
    if args.no_ledger:
        emu.keep_ledger = False
        emu._requests = _Discard()
        emu._accepted = _Discard()
        emu._rejected = _Discard()
    emu.faults = Faults(latency_seconds=args.latency, echo_request=args.echo_request)
    try:
        emu.start()
    except OSError as exc:  # the port is taken, the host is not this machine's, ...
        problem = f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        parser.exit(1, f"{parser.prog}: error: {problem}\n")
    print(f"Amazon Ads emulator listening on {emu.url}", flush=True)
    print(json.dumps(emu.target_config(), indent=2), flush=True)
    done = threading.Event()
    # SIGTERM (and SIGINT, which background shells ignore by default) end the run cleanly.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    finally:
        emu.stop()
    print("Amazon Ads emulator stopped", flush=True)


if __name__ == "__main__":
    main()
