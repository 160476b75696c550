"""Many streams, SCHEMAs sent again and again, and a SCHEMA with a huge enum: a SCHEMA costs
work for its own stream only, a repeated identical one nearly nothing, and memory follows the
schema's size."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from target_amazon_dsp_conversions import record_checks
from target_amazon_dsp_conversions.target import TargetAmazonDSPConversions
from tests.conftest import SEED_SCHEMA, TargetRun, seed_record

CONFIG = {
    "dry_run": True,
    "advertiser_id": "1234567890",
    "conversion_definitions": {"purchase": "cd-purchase"},
}


def schema(stream: str, *extra: str) -> dict[str, Any]:
    properties = {**SEED_SCHEMA["properties"], **{name: {"type": "string"} for name in extra}}
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {**SEED_SCHEMA, "properties": properties},
        "key_properties": ["order_id"],
    }


def record(stream: str, i: int) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": seed_record(i)}


def run_in_process(messages: list[dict[str, Any]], workdir: Path) -> list[dict[str, Any]]:
    """The target in this process (to count its work), as the CLI runs it; its rejects."""
    config = {
        **CONFIG,
        "worker_processes": 0,
        "dry_run_path": str(workdir / "dry-run-requests.jsonl"),
        "rejects_path": str(workdir / "rejects.jsonl"),
    }
    target = TargetAmazonDSPConversions(config=config, validate_config=True)
    target.listen(file_input=io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    rejects = workdir / "rejects.jsonl"
    return (
        [json.loads(line) for line in rejects.read_text().splitlines()] if rejects.exists() else []
    )


def events_sent(workdir: Path) -> int:
    requests = (workdir / "dry-run-requests.jsonl").read_text().splitlines()
    return sum(len(json.loads(line)["body"]["eventData"]) for line in requests)


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every schema compiled into a validator, in this process."""
    seen: list[dict[str, Any]] = []
    real = record_checks._compile

    def counting(schema: Any) -> Any:
        seen.append(schema)
        return real(schema)

    monkeypatch.setattr(record_checks, "_compile", counting)
    monkeypatch.setattr(record_checks, "_compiled", {})
    return seen


def test_a_schema_compiles_its_own_stream_only(
    compiled: list[dict[str, Any]], tmp_path: Path
) -> None:
    streams = [f"stream_{n}" for n in range(60)]
    messages = [m for n, s in enumerate(streams) for m in (schema(s, f"column_{n}"), record(s, n))]

    rejects = run_in_process(messages, tmp_path)

    # One validator per distinct schema, however many SCHEMAs came after it.
    assert len(compiled) == 60
    assert rejects == []
    assert events_sent(tmp_path) == 60


def test_a_repeated_identical_schema_compiles_nothing_again(
    compiled: list[dict[str, Any]], tmp_path: Path
) -> None:
    streams = [f"stream_{i % 3}" for i in range(300)]
    messages = [m for i, s in enumerate(streams) for m in (schema(s, s), record(s, i))]
    # A changed schema is compiled, and records are checked against it.
    bad = record("stream_0", 301)
    bad["record"]["tier"] = 7
    messages += [schema("stream_0", "stream_0", "tier"), record("stream_0", 300), bad]

    (reject,) = run_in_process(messages, tmp_path)

    assert len(compiled) == 4
    assert reject["errors"][0]["code"] == "SCHEMA_MISMATCH"
    assert reject["errors"][0]["field"] == "tier"
    assert events_sent(tmp_path) == 301


def run_measured(messages: list[dict[str, Any]], workdir: Path, **config: Any) -> TargetRun:
    """The console script, printing its own and its worker processes' peak memory (KiB)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(
        json.dumps({**CONFIG, "report_path": "report.json", **config})
    )
    code = (
        "import atexit, resource, sys\n"
        "atexit.register(lambda: print('peak memory KiB', "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr))\n"
        "from target_amazon_dsp_conversions.cli import main\n"
        "sys.argv = ['target-amazon-dsp-conversions', '--config', 'config.json']\n"
        "main()\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code],
        input="".join(json.dumps(m) + "\n" for m in messages),
        capture_output=True, text=True, cwd=workdir, timeout=600, check=False,
    )  # fmt: skip
    return TargetRun(process.returncode, process.stdout, process.stderr, workdir)


def peak_memory_mib(run: TargetRun) -> tuple[float, float]:
    (line,) = [x for x in run.stderr.splitlines() if x.startswith("peak memory KiB")]
    own, workers = line.split()[3:]
    return int(own) / 1024, int(workers) / 1024


def test_a_huge_enum_is_checked_without_huge_memory(tmp_path: Path) -> None:
    skus = [f"SKU-{n:07d}" for n in range(110_001)]  # ~1.5 MB of JSON
    message = schema("orders")
    message["schema"]["properties"]["sku"] = {"type": ["string", "null"], "enum": [*skus, None]}
    messages = [message]
    for i in range(3000):  # enough input for the worker processes to start
        line = record("orders", i)
        line["record"]["sku"] = skus[(i * 37) % len(skus)] if i % 1000 else "NOT-A-SKU"
        messages.append(line)
    run = run_measured(messages, tmp_path / "run", worker_processes=2)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "worker processes" in run.stderr
    assert run.report["records_rejected"] == 3
    assert run.report["records_read"] == 3000
    errors = {r["errors"][0]["message"] for r in run.rejects}
    assert errors == {
        "record does not match the stream's SCHEMA: data.sku must be one of the 110002 values "
        "of its enum"
    }
    own, workers = peak_memory_mib(run)
    # Compiled as one comparison per value this took 830 MB in every process.
    assert own < 400 and workers < 250, (own, workers)
