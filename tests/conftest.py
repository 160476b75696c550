"""Shared fixtures: the Amazon Ads emulator and a runner for the real program."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests import warm_start
from tests.emulator import AmazonAdsEmulator

TARGET = [sys.executable, "-m", "target_amazon_dsp_conversions"]


@pytest.fixture
def emulator() -> Iterator[AmazonAdsEmulator]:
    """A fresh emulator with the default advertisers, definitions and credentials."""
    with AmazonAdsEmulator() as emu:
        yield emu


@dataclass
class TargetRun:
    """What a user can look at after a run."""

    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    states: list[Any] = field(default_factory=list)

    @property
    def rejects(self) -> list[dict[str, Any]]:
        """Lines of the rejects file."""
        return _jsonl(self.workdir / "rejects.jsonl")

    @property
    def dry_run_requests(self) -> list[dict[str, Any]]:
        """Lines of the dry-run file."""
        return _jsonl(self.workdir / "dry-run-requests.jsonl")

    @property
    def report(self) -> dict[str, Any]:
        """The JSON run report."""
        return read_report(self.workdir)

    @property
    def error_lines(self) -> list[str]:
        """stderr lines our CLI prints for a fatal user error."""
        return cli_error_lines(self.stderr)


def read_report(workdir: Path) -> dict[str, Any]:
    """The JSON run report a run wrote in its working directory."""
    return json.loads((workdir / "report.json").read_text())


def cli_error_lines(stderr: str) -> list[str]:
    """The one-line fatal errors our CLI prints."""
    return [
        line for line in stderr.splitlines()
        if line.startswith("target-amazon-dsp-conversions: error:")
    ]  # fmt: skip


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_target(
    config: dict[str, Any],
    messages: list[dict[str, Any]] | str,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    preexec_fn: Callable[[], None] | None = None,
) -> TargetRun:
    """Run the installed target as a user would: config file, Singer messages on stdin (in a
    process forked from one that has loaded it: tests/warm_start.py). `preexec_fn` runs in
    the child before the target starts (a resource limit); the target then starts anew."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {"report_path": "report.json", **config}
    (workdir / "config.json").write_text(json.dumps(config))
    text = (
        messages
        if isinstance(messages, str)
        else "".join(json.dumps(m, default=str) + "\n" for m in messages)
    )
    process = warm_start.run_target(
        ["--config", "config.json"],
        input=text,
        cwd=workdir,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
    states = [json.loads(line) for line in process.stdout.splitlines() if line.strip()]
    return TargetRun(process.returncode, process.stdout, process.stderr, workdir, states)


SEED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "eventTime": {"type": "string", "format": "date-time"},
        "conversionType": {"type": "string"},
        "conversionValue": {"type": ["number", "null"]},
        "currency": {"type": ["string", "null"]},
        "userIdentifier": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"]},
        "countryCode": {"type": ["string", "null"]},
        "source": {"type": ["string", "null"]},
        "advertiserId": {"type": ["string", "null"]},
    },
}


def seed_record(i: int, **overrides: Any) -> dict[str, Any]:
    """A conversion with the seeds' column names, a few hours old."""
    record: dict[str, Any] = {
        "order_id": f"order-{i:06d}",
        "eventTime": (datetime.now(timezone.utc) - timedelta(minutes=5 + i % 600)).isoformat(),
        "conversionType": "purchase",
        "conversionValue": round(10 + i * 0.37, 2),
        "currency": "USD",
        "userIdentifier": f"Customer.{i}@Example.com",
        "countryCode": "US",
    }
    record.update(overrides)
    return record


def singer_stream(
    records: list[dict[str, Any]],
    *,
    stream: str = "conversions",
    schema: dict[str, Any] | None = None,
    key_properties: list[str] | None = None,
    state_every: int = 0,
) -> list[dict[str, Any]]:
    """SCHEMA, RECORDs, STATE every `state_every` records and at the end."""
    messages: list[dict[str, Any]] = [
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": schema or SEED_SCHEMA,
            "key_properties": ["order_id"] if key_properties is None else key_properties,
        }
    ]
    for n, record in enumerate(records, 1):
        messages.append({"type": "RECORD", "stream": stream, "record": record})
        if state_every and n % state_every == 0:
            messages.append({"type": "STATE", "value": {"bookmarks": {stream: {"n": n}}}})
    messages.append({"type": "STATE", "value": {"bookmarks": {stream: {"n": len(records)}}}})
    return messages
