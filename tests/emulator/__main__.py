"""Run a default emulator in the foreground: ``python -m tests.emulator [--port 8765]``."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from .server import AmazonAdsEmulator, Faults


def main(argv: list[str] | None = None) -> None:
    """Start the emulator, print its URL and credentials, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per API call")
    args = parser.parse_args(argv)

    emu = AmazonAdsEmulator(args.port, host=args.host)
    emu.faults = Faults(latency_seconds=args.latency)
    emu.start()
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
