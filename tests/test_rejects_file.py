"""The rejects file as a user's tools read it (SPEC §6): strict JSON that Go, JavaScript and
BigQuery accept (no bare NaN), owner-only because it holds raw records, appended across runs,
and each line carries what a replay needs: the stream's key properties and the record's
dedupe ID."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

from target_amazon_dsp_conversions.errors import Problem
from target_amazon_dsp_conversions.rejects import RejectsFile, strict_json
from tests.conftest import SEED_SCHEMA, TARGET, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator


def strict_lines(path: Path) -> list[dict[str, Any]]:
    """Read as a strict JSON reader does: NaN, Infinity and -Infinity are errors."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def derived_id(stream: str, *keys: str) -> str:
    """The README's derived dedupe ID: stream + U+001F + the key values as a JSON array."""
    seed = stream + "\x1f" + json.dumps(list(keys))
    return "tadc-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def test_nan_and_infinity_in_a_rejected_record_are_written_as_text(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Python's JSON (and so a tap written in Python) writes float("nan") as a bare NaN.
    schema = {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "additionalProperties": True,  # the other columns are not listed
    }
    lines = [
        json.dumps({"type": "SCHEMA", "stream": "orders", "schema": schema,
                    "key_properties": ["order_id"]}),
        json.dumps({"type": "RECORD", "stream": "orders",
                    "record": seed_record(1, conversionValue=float("nan"),
                                          ratio=float("inf"), low=[float("-inf"), 1.5])}),
    ]  # fmt: skip
    assert "NaN" in lines[1] and "Infinity" in lines[1]
    run = run_target(emulator.target_config(), "\n".join(lines) + "\n", tmp_path)

    assert run.returncode == 0, run.stderr
    (reject,) = strict_lines(tmp_path / "rejects.jsonl")
    assert reject["errors"][0]["code"] == "INVALID_NUMBER"
    record = reject["record"]
    assert (record["conversionValue"], record["ratio"], record["low"]) == (
        "NaN",
        "Infinity",
        ["-Infinity", 1.5],
    )


def test_strict_json_writes_non_finite_floats_as_text() -> None:
    value = {"a": float("nan"), "b": [float("inf"), {"c": float("-inf")}], "d": 2.5}
    assert json.loads(strict_json(value)) == {
        "a": "NaN",
        "b": ["Infinity", {"c": "-Infinity"}],
        "d": 2.5,
    }


def test_the_rejects_file_is_created_owner_only_whatever_the_umask(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    messages = singer_stream([seed_record(1, currency="dollars")])
    text = "".join(json.dumps(m) + "\n" for m in messages)
    (tmp_path / "config.json").write_text(json.dumps(emulator.target_config()))
    old_umask = os.umask(0o002)  # the child inherits it: a group-writable default
    try:
        run = subprocess.run(
            [*TARGET, "--config", "config.json"], input=text, capture_output=True, text=True,
            cwd=tmp_path, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.umask(old_umask)

    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE((tmp_path / "rejects.jsonl").stat().st_mode) == 0o600


def test_a_rejects_file_others_could_read_is_made_owner_only_and_appended_to(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    first = run_target(
        emulator.target_config(), singer_stream([seed_record(1, currency="dollars")]), tmp_path
    )
    (tmp_path / "rejects.jsonl").chmod(0o644)  # as an older version left it
    second = run_target(
        emulator.target_config(), singer_stream([seed_record(2, currency="dollars")]), tmp_path
    )

    assert first.returncode == second.returncode == 0
    assert stat.S_IMODE((tmp_path / "rejects.jsonl").stat().st_mode) == 0o600
    assert "made it owner-only (600)" in second.stderr
    # Appended across runs: both runs' records are there.
    assert [r["record"]["order_id"] for r in strict_lines(tmp_path / "rejects.jsonl")] == [
        "order-000001",
        "order-000002",
    ]


def test_a_line_carries_the_key_properties_and_the_dedupe_id(tmp_path: Path) -> None:
    rejects = RejectsFile(str(tmp_path / "rejects.jsonl"))
    problem = Problem("INVALID_CURRENCY", "currency 'DOLLARS' is not accepted", "currency")
    rejects.write(
        "orders", {"order_id": "A-1"}, [problem], key_properties=("order_id",), dedupe_id="tadc-1"
    )
    rejects.write("orders", {"order_id": None}, [problem])
    rejects.close()

    first, second = strict_lines(tmp_path / "rejects.jsonl")
    assert first["key_properties"] == ["order_id"]
    assert first["dedupe_id"] == "tadc-1"
    assert first["errors"] == [problem.as_dict()]
    assert (second["key_properties"], second["dedupe_id"]) == ([], None)


def test_every_kind_of_reject_notes_its_streams_keys_and_its_dedupe_id(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Needs run.py to pass key_properties and dedupe_id to RejectsFile.write (issue 15).
    emulator.poison_ids["amazon-says-no"] = ("INVALID_ARGUMENT", "matchKeys could not be read")
    records = [
        seed_record(1),
        seed_record(2, currency="dollars"),  # refused here, before it is sent
        seed_record(3, eventId="amazon-says-no"),  # refused by Amazon (a 207 item)
        seed_record(4, order_id=None),  # no key: no dedupe ID of its own
    ]
    schema = {**SEED_SCHEMA, "properties": {**SEED_SCHEMA["properties"], "order_id": {}}}
    run = run_target(emulator.target_config(), singer_stream(records, schema=schema), tmp_path)

    assert run.returncode == 0, run.stderr
    lines = {r["errors"][0]["code"]: r for r in strict_lines(tmp_path / "rejects.jsonl")}
    assert set(lines) == {"INVALID_CURRENCY", "INVALID_ARGUMENT", "NULL_KEY_PROPERTIES"}
    assert {tuple(line["key_properties"]) for line in lines.values()} == {("order_id",)}
    assert lines["INVALID_CURRENCY"]["dedupe_id"] == derived_id("conversions", "order-000002")
    assert lines["INVALID_ARGUMENT"]["dedupe_id"] == "amazon-says-no"
    assert lines["NULL_KEY_PROPERTIES"]["dedupe_id"] is None


def test_a_torn_last_line_is_set_aside_before_the_next_reject(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    first = run_target(
        emulator.target_config(), singer_stream([seed_record(1, currency="dollars")]), tmp_path
    )
    assert first.returncode == 0, first.stderr
    torn = '{"stream": "conversions", "record": {"order_id": "order-0000'
    with (tmp_path / "rejects.jsonl").open("a") as rejects:
        rejects.write(torn)  # a run stopped (a full disk, a kill) while writing its line

    second = run_target(
        emulator.target_config(), singer_stream([seed_record(2, currency="dollars")]), tmp_path
    )

    assert second.returncode == 0, second.stderr
    assert "rejects.jsonl ended in a torn line" in second.stderr
    assert "moved it to rejects.jsonl.torn" in second.stderr
    # Every line whole: both runs' records, each on a line of its own.
    assert [r["record"]["order_id"] for r in strict_lines(tmp_path / "rejects.jsonl")] == [
        "order-000001",
        "order-000002",
    ]
    assert (tmp_path / "rejects.jsonl.torn").read_text() == torn + "\n"
    assert stat.S_IMODE((tmp_path / "rejects.jsonl.torn").stat().st_mode) == 0o600
