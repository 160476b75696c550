"""Stream maps (the SDK's `stream_maps` setting) that go wrong, as the user meets them through the
console script: one line naming the stream, the input line and what failed; no traceback, no
record value (an expression's Python error may quote one), no STATE past the failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator


def run_with_maps(
    emulator: AmazonAdsEmulator, tmp_path: Path, maps: dict[str, Any], records: list[dict[str, Any]]
) -> TargetRun:
    config = emulator.target_config(stream_maps={"conversions": maps})
    return run_target(config, singer_stream(records, state_every=2), tmp_path)


def assert_stops_with(run: TargetRun, expected: str) -> None:
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert expected in run.error_lines[0], run.error_lines[0]
    assert "Traceback" not in run.stderr
    assert "@example.com" not in run.stderr.lower()


def test_a_stream_map_that_does_not_compile_stops_at_the_schema(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    run = run_with_maps(emulator, tmp_path, {"value_cents": "conversionValue *"}, [seed_record(1)])

    assert_stops_with(
        run,
        "input line 1: setting 'stream_maps' of stream 'conversions' cannot be used for its "
        "SCHEMA: Failed to parse expression conversionValue *.",
    )
    assert emulator.requests == []
    assert run.states == []


def test_a_stream_map_that_fails_on_a_record_names_the_line_not_the_value(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # int() of an e-mail address: Python's own message would quote the address.
    records = [seed_record(i, email="7") for i in range(2)] + [
        seed_record(2, email="a@example.com")
    ]
    run = run_with_maps(emulator, tmp_path, {"email": "str(int(email))"}, records)

    assert_stops_with(
        run,
        "input line 5: setting 'stream_maps' of stream 'conversions' failed on this RECORD: "
        "ValueError",
    )
    # The two records before it were delivered, and their STATE written; nothing past it.
    assert run.states == [{"bookmarks": {"conversions": {"n": 2}}}]
    assert sorted(emulator.accepted_ids().values()) == [1, 1]


def test_a_record_that_loses_its_key_property_to_a_stream_map_names_stream_and_line(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(1), {k: v for k, v in seed_record(2).items() if k != "order_id"}]
    run = run_with_maps(emulator, tmp_path, {"value_cents": "str(conversionValue * 100)"}, records)

    assert_stops_with(
        run,
        "input line 3: a RECORD of stream 'conversions' lacks its key properties ['order_id'] "
        "after stream_maps",
    )
    assert run.states == []
