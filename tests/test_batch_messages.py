"""BATCH messages (the Singer SDK's batch mode), written by hand: their files' records are
delivered exactly as RECORDs of the stream, and a STATE after a BATCH waits for all of them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import SEED_SCHEMA, TargetRun, run_target, seed_record
from tests.emulator import AmazonAdsEmulator, Faults

STREAM = "conversions"
DEFINITIONS = {"purchase": "cd-purchase"}  # no definitions lookup: requests are uploads only


def schema_message(stream: str = STREAM) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": SEED_SCHEMA,
        "key_properties": ["order_id"],
    }


def state(n: int) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmarks": {STREAM: {"n": n}}}}


def batch(*files: Path | str, compression: str | None = "gzip", **encoding: Any) -> dict[str, Any]:
    return {
        "type": "BATCH",
        "stream": STREAM,
        "encoding": {"format": "jsonl", "compression": compression, **encoding},
        "manifest": [f if isinstance(f, str) else f.as_uri() for f in files],
    }


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def write(path: Path, data: bytes, *, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def run(
    emulator: AmazonAdsEmulator, messages: list[dict[str, Any]], workdir: Path, **config: Any
) -> TargetRun:
    settings = emulator.target_config(conversion_definitions=DEFINITIONS, **config)
    return run_target(settings, messages, workdir / "run")


def assert_one_line(result: TargetRun, message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert len(result.error_lines) == 1, result.stderr
    assert message in result.error_lines[0], result.error_lines
    assert "Traceback" not in result.stderr


def test_gzip_and_plain_files_are_delivered_as_records_with_state_after_them(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(12)]
    records[4]["countryCode"] = "XX"  # refused locally: named by its file and line
    gzipped = write(tmp_path / "part-1.jsonl.gz", jsonl(records[2:7]), compress=True)
    plain = write(tmp_path / "part-2.jsonl", jsonl(records[7:10]))
    messages = [
        schema_message(),
        {"type": "RECORD", "stream": STREAM, "record": records[0]},
        {"type": "RECORD", "stream": STREAM, "record": records[1]},
        state(2),
        batch(gzipped, plain),
        state(10),
        {"type": "RECORD", "stream": STREAM, "record": records[10]},
        {"type": "RECORD", "stream": STREAM, "record": records[11]},
        state(12),
    ]
    result = run(emulator, messages, tmp_path)

    assert result.returncode == 0, result.stderr
    delivered = sorted(float(event["value"]) for event in emulator.accepted)
    assert delivered == sorted(r["conversionValue"] for i, r in enumerate(records) if i != 4)
    assert sorted(emulator.accepted_ids().values()) == [1] * 11
    assert result.report["records_read"] == 12
    assert result.report["records_accepted"] == 11
    (reject,) = result.rejects
    assert reject["record"] == records[4]
    assert reject["errors"][0]["code"] == "INVALID_COUNTRY"
    assert (reject["batch_file"], reject["batch_line"]) == (gzipped.as_uri(), 3)
    assert result.states[-1] == state(12)["value"]
    assert all(s in [state(n)["value"] for n in (2, 10, 12)] for s in result.states)


def test_records_amazon_refuses_name_their_file_and_line(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Amazon refuses the definitions list (its source check) and the one upload as bad.
    emulator.faults = Faults(fail_first_n=2, fail_status=400)
    records = [seed_record(i) for i in range(3)]
    plain = write(tmp_path / "part.jsonl", jsonl(records))
    result = run(emulator, [schema_message(), batch(plain, compression=None), state(3)], tmp_path)

    assert result.returncode == 0, result.stderr
    assert [(r["record"], r["batch_file"], r["batch_line"]) for r in result.rejects] == [
        (records[i], plain.as_uri(), i + 1) for i in range(3)
    ]
    assert result.states[-1] == state(3)["value"]


def test_a_state_after_a_batch_waits_for_every_record_of_it(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.faults.fail_first_n = 1000  # Amazon unreachable: nothing is acknowledged
    records = [seed_record(i) for i in range(6)]
    first = write(tmp_path / "part-1.jsonl.gz", jsonl(records[:3]), compress=True)
    second = write(tmp_path / "part-2.jsonl.gz", jsonl(records[3:]), compress=True)
    messages = [schema_message(), state(0), batch(first, second), state(6)]
    result = run(emulator, messages, tmp_path, max_retries=0)

    assert result.returncode == 1, result.stderr
    assert result.states == [state(0)["value"]]
    assert result.report["records_read"] == 6
    assert result.report["records_undelivered"] == 6


def test_several_files_of_many_records_go_through_the_worker_processes(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(6000)]  # ~1.5 MB of lines: workers start
    files = [
        write(
            tmp_path / f"part-{n}.jsonl.gz",
            jsonl(records[n * 2000 : (n + 1) * 2000]),
            compress=True,
        )
        for n in range(3)
    ]
    result = run(
        emulator, [schema_message(), batch(*files), state(6000)], tmp_path, worker_processes=2
    )

    assert result.returncode == 0, result.stderr
    assert "worker processes" in result.stderr
    assert sorted(emulator.accepted_ids().values()) == [1] * 6000
    assert result.report["records_accepted"] == 6000
    assert result.states == [state(6000)["value"]]


def test_a_parquet_file_is_read_when_pyarrow_is_installed(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(5)]
    path = tmp_path / "part-1.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    message = batch(path, compression=None)
    message["encoding"]["format"] = "parquet"
    result = run(emulator, [schema_message(), message, state(5)], tmp_path)

    assert result.returncode == 0, result.stderr
    assert sorted(emulator.accepted_ids().values()) == [1] * 5
    assert result.states == [state(5)["value"]]


def test_a_stream_with_stream_maps_gets_its_batch_records_through_the_maps(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i, countryCode=None, country="us") for i in range(4)]
    schema = {**SEED_SCHEMA, "properties": {**SEED_SCHEMA["properties"], "country": {}}}
    plain = write(tmp_path / "part.jsonl", jsonl(records))
    messages = [
        {"type": "SCHEMA", "stream": STREAM, "schema": schema, "key_properties": ["order_id"]},
        batch(plain, compression=None),
        state(4),
    ]
    maps = {STREAM: {"countryCode": "country.upper()"}}
    result = run(emulator, messages, tmp_path, stream_maps=maps)

    assert result.returncode == 0, result.stderr
    assert {e["countryCode"] for e in emulator.accepted} == {"US"}
    assert len(emulator.accepted) == 4
    assert result.states == [state(4)["value"]]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl.gz", None, "BATCH file '{url}' does not exist"),
        ("broken.jsonl", jsonl([seed_record(0)]) + b'{"order_id": \n',
         "line 2 of BATCH file '{url}' (input line 3) is not valid JSON"),
        ("cut.jsonl.gz", gzip.compress(jsonl([seed_record(i) for i in range(50)]))[:-30],
         "BATCH file '{url}' is cut short"),
        ("binary.jsonl", b"\xff\xfe\x00not text\n", "line 1 of BATCH file '{url}'"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_read_stops_the_run_with_one_line(
    emulator: AmazonAdsEmulator, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    good = write(tmp_path / "good.jsonl", jsonl([seed_record(i) for i in range(100, 103)]))
    messages = [schema_message(), state(0), batch(good, path), state(1)]
    result = run(emulator, messages, tmp_path)

    assert_one_line(result, message.format(url=path.as_uri()))
    assert result.states == [state(0)["value"]]
    # The records read before the bad line were delivered; the STATE after the BATCH is not.
    assert result.report["records_undelivered"] == 0
    assert result.report["records_accepted"] == result.report["records_read"] >= 3


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ({"encoding": {"format": "csv"}}, "encoding format 'csv' is not supported"),
        ({"encoding": {"format": "jsonl", "compression": "zstd"}},
         "compression 'zstd' is not supported for jsonl files (gzip or none)"),
        ({"manifest": ["nosuchprotocol://bucket/part-1.jsonl"]},
         "BATCH file 'nosuchprotocol://bucket/part-1.jsonl' cannot be opened"),
        ({"stream": "unknown"}, "BATCH of stream 'unknown' came before its SCHEMA"),
    ],
)  # fmt: skip
def test_a_batch_that_cannot_be_read_is_one_line(
    emulator: AmazonAdsEmulator, tmp_path: Path, message: dict[str, Any], said: str
) -> None:
    good = write(tmp_path / "good.jsonl", jsonl([seed_record(0)]))
    result = run(emulator, [schema_message(), {**batch(good), **message}, state(1)], tmp_path)

    assert_one_line(result, said)
    assert result.error_lines[0].startswith("target-amazon-dsp-conversions: error: input line 2: ")
    assert result.states == []
