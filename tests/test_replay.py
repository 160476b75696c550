"""Replaying rejects (SPEC §6), end to end as a user does it: records rejected, the rejects file
fixed, `target-amazon-dsp-conversions-replay FILE | target-amazon-dsp-conversions --config ...`,
each record accepted once, with the dedupe ID it had."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TARGET, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

REPLAY = [sys.executable, "-m", "target_amazon_dsp_conversions.replay"]


def rejects_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fix(path: Path, change: Any) -> Path:
    """What a user does in an editor: change each rejected record, save it as a new file."""
    fixed = path.with_name("rejects-fixed.jsonl")
    lines = []
    for reject in rejects_of(path):
        change(reject["record"])
        lines.append(json.dumps(reject))
    fixed.write_text("\n".join(lines) + "\n")
    return fixed


def replay_into_target(
    workdir: Path, *files: str, replay_args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`replay FILES | target --config config.json`, in the shell, as the README shows it."""
    replay = " ".join([*REPLAY, *replay_args, *files])
    target = " ".join([*TARGET, "--config", "config.json"])
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{replay} | {target}"], capture_output=True, text=True,
        cwd=workdir, timeout=300, check=False,
    )  # fmt: skip


def replay_output(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REPLAY, *args], capture_output=True, text=True, cwd=workdir, timeout=60, check=False
    )


def test_rejected_records_fixed_and_replayed_are_accepted_once_with_their_dedupe_ids(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i, currency="dollars" if i % 2 else "USD") for i in range(6)]
    first = run_target(emulator.target_config(), singer_stream(records), tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.report["records_rejected"] == 3
    rejected_ids = [r["dedupe_id"] for r in first.rejects]

    fixed = fix(tmp_path / "rejects.jsonl", lambda record: record.update(currency="USD"))
    replayed = replay_into_target(tmp_path, fixed.name)

    assert replayed.returncode == 0, replayed.stderr
    assert "replay: 3 records replayed" in replayed.stderr
    assert sorted(emulator.accepted_ids().values()) == [1] * 6  # each record once
    assert [e["clientDedupeId"] for e in emulator.accepted[3:]] == rejected_ids
    assert all(rejected_ids)
    # The tap sends the corrected rows as well (a full resync): same keys, same IDs, so
    # Amazon drops them as repeats of the replayed events (if they are sent at all).
    sent_before = set(emulator.accepted_ids())
    corrected = [seed_record(i, currency="USD") for i in range(1, 6, 2)]
    again = run_target(emulator.target_config(), singer_stream(corrected), tmp_path)
    assert again.returncode == 0, again.stderr
    assert set(emulator.accepted_ids()) == sent_before


def test_a_dry_run_before_the_real_run_marks_its_rejects_and_the_replay_skips_them(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """The Quickstart's order: a dry run, then the real run, appending to one rejects file."""
    records = [seed_record(i, currency="dollars" if i % 2 else "USD") for i in range(6)]
    for dry_run in (True, False):
        run = run_target(emulator.target_config(dry_run=dry_run), singer_stream(records), tmp_path)
        assert run.returncode == 0, run.stderr
        assert f"Files: rejects {tmp_path / 'rejects.jsonl'}" in run.stderr  # where they are
    lines = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [line.get("dry_run") for line in lines] == [True] * 3 + [None] * 3

    fixed = fix(tmp_path / "rejects.jsonl", lambda record: record.update(currency="USD"))
    replayed = replay_into_target(tmp_path, fixed.name)

    assert replayed.returncode == 0, replayed.stderr
    assert (
        "replay: 3 records replayed, 3 lines of dry runs skipped (nothing was sent; the real "
        "run rejects those records again)" in replayed.stderr
    )
    assert sorted(emulator.accepted_ids().values()) == [1] * 6


def test_a_stream_without_key_properties_keeps_the_id_its_content_gave(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Without key properties the derived ID hashes the record's content, which the fix
    # changes: the replay sends the ID the rejects file kept, the same each time it is run.
    records = [seed_record(1, currency="dollars"), seed_record(2, currency="dollars")]
    first = run_target(
        emulator.target_config(), singer_stream(records, key_properties=[]), tmp_path
    )
    assert first.report["records_rejected"] == 2
    rejected_ids = [r["dedupe_id"] for r in first.rejects]
    fixed = fix(tmp_path / "rejects.jsonl", lambda record: record.update(currency="EUR"))

    assert replay_into_target(tmp_path, fixed.name).returncode == 0
    assert replay_into_target(tmp_path, fixed.name).returncode == 0  # by mistake, twice

    # Both times the same two IDs went out (Amazon drops the repeats; the delivery journal may
    # not even send them again).
    assert set(emulator.accepted_ids()) == set(rejected_ids)
    assert len(set(rejected_ids)) == 2
    assert all(rejected_ids)
    sent = [json.loads(line) for line in replay_output(tmp_path, fixed.name).stdout.splitlines()]
    assert [m["record"]["dedupeId"] for m in sent if m["type"] == "RECORD"] == rejected_ids


def test_a_record_with_its_own_dedupe_id_keeps_it(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i, eventId=f"shop-{i}", currency="dollars") for i in range(2)]
    run_target(emulator.target_config(), singer_stream(records), tmp_path)
    fixed = fix(tmp_path / "rejects.jsonl", lambda record: record.update(currency="GBP"))

    replayed = replay_into_target(tmp_path, fixed.name)

    assert replayed.returncode == 0, replayed.stderr
    assert [e["clientDedupeId"] for e in emulator.accepted] == ["shop-0", "shop-1"]
    output = replay_output(tmp_path, fixed.name).stdout.splitlines()
    assert all("dedupeId" not in json.loads(line).get("record", {}) for line in output)


def test_the_replay_is_singer_input_with_the_streams_schema_and_keys(tmp_path: Path) -> None:
    lines = [
        {"stream": "orders", "record": {"order_id": "A", "eventTime": "x"}, "errors": [],
         "key_properties": ["order_id"], "dedupe_id": "tadc-a"},
        {"stream": "leads", "record": {"lead": 1, "value": 1.25}, "errors": [],
         "key_properties": [], "dedupe_id": None},
        {"stream": "orders", "record": {"order_id": "B", "email": "b@example.com"},
         "errors": [], "key_properties": ["order_id"], "dedupe_id": "tadc-b"},
    ]  # fmt: skip
    (tmp_path / "rejects.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = replay_output(tmp_path, "rejects.jsonl", "--dedupe-field", "order_ref")

    assert run.returncode == 0, run.stderr
    assert [json.loads(line) for line in run.stdout.splitlines()] == [
        {"type": "SCHEMA", "stream": "orders", "key_properties": ["order_id"],
         "schema": {"type": "object", "properties": {
             "order_id": {}, "eventTime": {}, "email": {}}}},
        {"type": "RECORD", "stream": "orders",
         "record": {"order_id": "A", "eventTime": "x", "order_ref": "tadc-a"}},
        {"type": "SCHEMA", "stream": "leads", "key_properties": [],
         "schema": {"type": "object", "properties": {"lead": {}, "value": {}}}},
        {"type": "RECORD", "stream": "leads", "record": {"lead": 1, "value": 1.25}},
        {"type": "RECORD", "stream": "orders",
         "record": {"order_id": "B", "email": "b@example.com", "order_ref": "tadc-b"}},
    ]  # fmt: skip
    assert run.stderr == "target-amazon-dsp-conversions-replay: 3 records replayed\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"stream": "orders", "record": {"order_id": "A"}, "key_properties": ["order_id"]}\n'
         '{"stream": "orders", "record": {"order_id": "B",}}\n',
         "rejects-fixed.jsonl line 2 is not valid JSON"),
        ('{"stream": "orders", "record": {"id": "A"}, "key_properties": ["order_id"]}\n',
         "rejects-fixed.jsonl line 1: the record lacks its key properties order_id"),
        ('["orders", {"order_id": "A"}]\n',
         "rejects-fixed.jsonl line 1 is not a rejects line: it needs a stream and a record"),
        ('{"stream": "orders", "record": {}, "dedupe_id": 5}\n',
         "rejects-fixed.jsonl line 1: dedupe_id must be text"),
    ],
)  # fmt: skip
def test_a_line_broken_while_editing_stops_the_replay_before_it_writes_anything(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / "rejects-fixed.jsonl").write_text(content)
    run = replay_output(tmp_path, "rejects-fixed.jsonl")

    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.startswith(f"target-amazon-dsp-conversions-replay: error: {problem}")
    assert len(run.stderr.splitlines()) == 1


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    run = replay_output(tmp_path, "nowhere.jsonl")

    assert run.returncode == 1
    assert run.stderr == (
        "target-amazon-dsp-conversions-replay: error: cannot read nowhere.jsonl: "
        "No such file or directory\n"
    )


def test_replaying_the_file_the_target_appends_to_ends(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Not fixed, replayed from the very file the target appends its rejects to: the replay
    # reads what the file held when it started, so the run ends with the file doubled.
    records = [seed_record(i, currency="dollars") for i in range(3)]
    run_target(emulator.target_config(), singer_stream(records), tmp_path)

    replayed = replay_into_target(tmp_path, "rejects.jsonl")

    assert replayed.returncode == 0, replayed.stderr
    assert len(rejects_of(tmp_path / "rejects.jsonl")) == 6
    assert emulator.accepted == []


def test_the_replay_of_a_bad_config_stops_with_the_targets_line(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    run_target(emulator.target_config(), singer_stream([seed_record(1, currency="x")]), tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"dryrun": True}))

    replayed = replay_into_target(tmp_path, "rejects.jsonl")

    assert replayed.returncode == 1
    assert "target-amazon-dsp-conversions: error: unknown setting 'dryrun'" in replayed.stderr
    assert "Traceback" not in replayed.stderr


def test_a_line_torn_by_a_crash_is_skipped_and_named(tmp_path: Path) -> None:
    def line(key: str) -> str:
        return json.dumps({"stream": "orders", "record": {"order_id": key},
                           "key_properties": ["order_id"]})  # fmt: skip

    # An earlier version appended the next reject to a torn line; a crash tore the last one.
    (tmp_path / "rejects.jsonl").write_text(
        line("A") + "\n" + line("B")[:30] + line("C") + "\n" + line("D")[:25]
    )
    run = replay_output(tmp_path, "rejects.jsonl")

    assert run.returncode == 0, run.stderr
    records = [json.loads(m)["record"] for m in run.stdout.splitlines()[1:]]
    assert records == [{"order_id": "A"}, {"order_id": "C"}]
    assert run.stderr.splitlines() == [
        "target-amazon-dsp-conversions-replay: warning: rejects.jsonl line 2 begins with a line "
        "torn by a crash; skipped that part",
        "target-amazon-dsp-conversions-replay: warning: rejects.jsonl line 3 was cut short (torn "
        "by a crash while it was written); skipped",
        "target-amazon-dsp-conversions-replay: 2 records replayed, 2 torn lines skipped",
    ]
