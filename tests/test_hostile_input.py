"""Malformed Singer input and bad settings: one clear line, the right exit status, no
traceback, no echo of the input (it holds personal data); what can go on, goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEED_SCHEMA, TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

EMAIL = "Customer.3@Example.com"  # the userIdentifier of seed_record(3)


def text_of(messages: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def assert_one_clean_line(run: TargetRun, expected: str) -> None:
    assert len(run.error_lines) == 1, run.stderr
    assert expected in run.error_lines[0]
    assert "Traceback" not in run.stderr
    assert EMAIL not in run.stderr and EMAIL.lower() not in run.stderr


def test_broken_json_stops_after_delivering_what_came_before(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(6)]
    text = text_of(singer_stream(records, state_every=2))
    # The line of seed_record(3), which holds an email, loses a closing quote.
    lines = text.splitlines()
    broken = next(n for n, line in enumerate(lines) if EMAIL in line)
    lines[broken] = lines[broken].replace('"order-000003"', '"order-000003', 1)
    run = run_target(emulator.target_config(), "\n".join(lines) + "\n", tmp_path)

    assert run.returncode == 1
    assert_one_clean_line(run, f"input line {broken + 1} is not valid JSON")
    # Records before the broken line were delivered and their STATE emitted.
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 2}}}
    assert run.report["records_read"] == run.report["records_accepted"] == 3


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"type": "RECORD", "stream": "conversions"}', "(RECORD) lacks record"),
        ('{"type": "RECORD", "stream": "conversions", "record": {"order_id": "a\tb"}}',
         "input line 9 is not valid JSON (Invalid control character at column 70)"),
        ('{"stream": "conversions"}', "input line 9 is not a Singer message (a JSON object"),
        ('{"type": "ACTIVATE_VERSION", "stream": "orders", "version": 1}',
         "input line 9: ACTIVATE_VERSION of stream 'orders' comes before the stream's SCHEMA"),
        ("[1, 2]", "is not a Singer message"),
        ('{"type": "STATE"}', "(STATE) lacks value"),
        ('{"type": "RECORD", "stream": "conversions", "record": {"eventTime": "x"}}',
         "stream 'conversions' lacks its key properties order_id"),
        ('{"type": "SCHEMA", "stream": "x", "schema": {"type": "objectx"}}', "lacks properties"),
        ('{"type": "RECORD", "record": {"a": 1}, "stream": "x"}', "before a corresponding schema"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"type": "RECORD", "stream": "conversions", "record": {"n": ' + "9" * 5000 + "}}",
         "a number too long"),
        ('{"type": "BATCH", "stream": "conversions", "encoding": {"format": "jsonl"}, '
         '"manifest": ["file:///etc/passwd"]}',
         "line 1 of BATCH file 'file:///etc/passwd' (input line 9) is not valid JSON"),
        ('{"type": "BATCH", "stream": "conversions", "encoding": {"format": "csv"}, '
         '"manifest": []}', "encoding format 'csv' is not supported (jsonl, or parquet"),
    ],
)  # fmt: skip
def test_messages_the_run_cannot_go_past(
    emulator: AmazonAdsEmulator, tmp_path: Path, line: str, message: str
) -> None:
    records = [seed_record(i) for i in range(4)]
    text = text_of(singer_stream(records, state_every=2)) + line + "\n"
    run = run_target(emulator.target_config(), text, tmp_path)

    assert run.returncode == 1
    assert_one_clean_line(run, message)
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 4}}}
    assert sorted(emulator.accepted_ids().values()) == [1] * 4
    # What was read before is delivered, and the run still says it failed, and why.
    assert "Run failed: 4 records read, 4 accepted" in run.stderr
    assert "Run complete" not in run.stderr
    assert message in run.report["failure"] and run.report["records_undelivered"] == 0


def test_invalid_utf8_input_is_one_clean_line(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import TARGET

    (tmp_path / "config.json").write_text(json.dumps(emulator.target_config()))
    data = text_of(singer_stream([seed_record(0)])).encode() + b'{"type": "\xff\xfe"}\n'
    process = subprocess.run(
        [*TARGET, "--config", "config.json"], input=data, capture_output=True, cwd=tmp_path,
        timeout=60, check=False,
    )  # fmt: skip
    stderr = process.stderr.decode()
    assert process.returncode == 1
    assert "input line 4 is not UTF-8 text" in stderr  # SCHEMA, RECORD, STATE, then this
    assert json.loads(process.stdout) == {"bookmarks": {"conversions": {"n": 1}}}
    assert "Traceback" not in stderr


def test_records_it_can_skip_or_reject_do_not_stop_the_run(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(4)]
    good = singer_stream(records)
    new_schema = {  # order_id becomes a number
        "type": "object",
        "properties": {**SEED_SCHEMA["properties"], "order_id": {"type": ["integer", "null"]}},
    }
    messages: list[Any] = [
        "",  # a blank line
        good[0],
        {"type": "FUTURE_MESSAGE", "stream": "conversions", "payload": {"email": EMAIL}},
        {"type": "ACTIVATE_VERSION", "stream": "conversions", "version": 1},
        *good[1:3],
        {"type": "RECORD", "stream": "conversions", "record": ["not", "an", "object"]},
        {"type": "RECORD", "stream": "conversions", "record": seed_record(90, order_id=5)},
        # Schema change mid-stream: what follows is checked against the new schema.
        {"type": "SCHEMA", "stream": "conversions", "schema": new_schema,
         "key_properties": ["order_id"]},
        {"type": "RECORD", "stream": "conversions", "record": seed_record(91)},  # string id
        {"type": "RECORD", "stream": "conversions", "record": seed_record(92, order_id=92)},
        # A null key would give every such record the same dedupe ID.
        {"type": "RECORD", "stream": "conversions", "record": seed_record(95, order_id=None)},
        # A second stream, no key properties: the dedupe ID comes from the content.
        {"type": "SCHEMA", "stream": "other", "schema": SEED_SCHEMA, "key_properties": []},
        {"type": "RECORD", "stream": "other", "record": seed_record(93)},
        # JSON may escape half a surrogate pair; such text cannot be encoded as is.
        {"type": "RECORD", "stream": "other", "record": seed_record(94, email="a\ud800@x.com")},
        {"type": "STATE", "value": {"bookmarks": {"done": 1.5}}},
    ]  # fmt: skip
    text = "".join(m + "\n" if isinstance(m, str) else json.dumps(m) + "\n" for m in messages)
    run = run_target(emulator.target_config(), text, tmp_path)

    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "unknown type 'FUTURE_MESSAGE'" in run.stderr
    assert "not valid Unicode" in run.stderr
    codes = {r["errors"][0]["code"] for r in run.rejects}
    assert codes == {"INVALID_RECORD", "NULL_KEY_PROPERTIES", "SCHEMA_MISMATCH"}
    assert len(run.rejects) == 4
    report = run.report
    assert report["records_read"] == 9
    assert report["records_accepted"] == 5 == len(emulator.accepted)
    assert run.states == [{"bookmarks": {"done": 1.5}}]  # Decimal in, the same number out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"region": "XX"}, "setting 'region': must be one of NA, EU, FE"),
        ({"advertiser_id": "ENTITY1234"}, "setting 'advertiser_id'"),
        ({"advertiser_id": "12ab"}, "setting 'advertiser_id': must be a numeric"),
        ({"max_concurrent_requests": -1}, "setting 'max_concurrent_requests'"),
        ({"worker_processes": -1}, "setting 'worker_processes': must be between 0 and 64"),
        ({"max_retries": -1}, "setting 'max_retries': must be between 0 and 100"),
        ({"max_retries": "many"}, "setting 'max_retries': must be a whole number"),
        ({"request_timeout": -5}, "setting 'request_timeout'"),
        ({"client_id": None}, "setting 'client_id': is required"),
        ({"refresh_token": ""}, "setting 'refresh_token': is required"),
        ({"dryrun": True}, "unknown setting 'dryrun'; did you mean 'dry_run'?"),
        ({"dry_run": "maybe"}, "setting 'dry_run': must be true or false, got 'maybe'"),
        ({"batch_size_rows": "many"}, "setting 'batch_size_rows': must be a whole number"),
        ({"defaults": {"currency": "dollars"}}, "setting 'defaults.currency'"),
        ({"defaults": "{not json"}, "setting 'defaults': must be a JSON object"),
    ],
)
def test_bad_settings_fail_before_reading_input(
    emulator: AmazonAdsEmulator, tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    config = {k: v for k, v in {**emulator.target_config(), **overrides}.items() if v is not None}
    run = run_target(config, "this is not read\n", tmp_path)

    assert run.returncode == 1
    assert_one_clean_line(run, message)
    assert emulator.requests == []
    assert "test-client-secret" not in run.stderr
