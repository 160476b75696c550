"""A mapping that names columns the stream does not have stops the run at the stream's SCHEMA,
with one line naming the stream, the field, what was looked for and the closest columns; rejects
of single records say where a missing field was looked for. Through the console script as the
user runs it (SPEC §3; `tests/test_meltano_pipeline.py` does it through `meltano run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import SEED_SCHEMA, TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

ORDERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "conversion_type": {"type": "string"},
        "total": {"type": "number"},
        "customer": {"type": "object", "properties": {"email": {"type": "string"}}},
    },
}


def order(i: int) -> dict[str, Any]:
    """A row of a shop's own orders table: its own column names, the e-mail nested."""
    seed = seed_record(i)
    return {
        "order_id": seed["order_id"],
        "created_at": seed["eventTime"],
        "conversion_type": "purchase",
        "total": seed["conversionValue"],
        "customer": {"email": seed["userIdentifier"]},
    }


def run_orders(
    emulator: AmazonAdsEmulator, tmp_path: Path, schema: dict[str, Any] | None = None, **config: Any
) -> TargetRun:
    records = [order(i) for i in range(5)]
    messages = singer_stream(records, stream="orders", schema=schema or ORDERS_SCHEMA)
    settings = {"defaults": {"countryCode": "US", "currency": "USD"}, **config}
    return run_target(emulator.target_config(**settings), messages, tmp_path)


def assert_stops_at_the_schema(run: TargetRun, emulator: AmazonAdsEmulator, line: str) -> None:
    assert run.returncode == 1, run.stderr
    assert run.error_lines == [f"target-amazon-dsp-conversions: error: input line 1: {line}"]
    assert "Traceback" not in run.stderr
    assert emulator.requests == []  # not even a token: nothing was read past the SCHEMA
    assert run.states == [] and run.rejects == []


def test_a_mapped_column_the_stream_lacks_names_the_closest_one(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    run = run_orders(
        emulator, tmp_path, mapping={"eventTime": "create_at", "email": "customer.email"}
    )
    assert_stops_at_the_schema(
        run,
        emulator,
        "stream 'orders': setting 'mapping.eventTime' reads eventTime from 'create_at', which "
        "the stream's SCHEMA does not have; closest columns: 'created_at'",
    )


def test_a_loader_set_up_for_another_tap_names_what_it_looked_for(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # The seeds' column names expected; the shop's own table arrives.
    run = run_orders(emulator, tmp_path)
    assert_stops_at_the_schema(
        run,
        emulator,
        "stream 'orders': no column for eventTime, which every record needs: looked for "
        "eventTime, event_time, timestamp (set mapping.eventTime to the column that holds it); "
        "columns of date-time values: 'created_at'",
    )


def test_every_default_candidate_of_a_match_key_absent(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    run = run_orders(emulator, tmp_path, mapping={"eventTime": "created_at"})
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "stream 'orders': no column for a match key, which every record needs: looked for " \
        "email, phone, firstName" in line  # fmt: skip
    assert "userIdentifier, userId, user_identifier (set mapping.email, mapping.phone" in line


def test_the_events_api_needs_a_conversion_type_column_or_default(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # A name for every event, but the Events API also needs its type.
    mapping = {"eventTime": "created_at", "email": "customer.email", "conversionType": ""}
    defaults = {"countryCode": "US", "currency": "USD", "name": "Web order"}
    run = run_orders(emulator, tmp_path, api="events", mapping=mapping, defaults=defaults)
    assert_stops_at_the_schema(
        run,
        emulator,
        "stream 'orders': no column for conversionType, which every record needs: looked for "
        "nothing (set mapping.conversionType to the column that holds it, or "
        "defaults.conversionType); closest columns: 'conversion_type'",
    )


def test_the_mapping_of_ones_own_table_runs(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    mapping = {
        "eventTime": "created_at",
        "conversionType": "conversion_type",
        "conversionValue": "total",
        "email": "customer.email",
    }
    run = run_orders(emulator, tmp_path, mapping=mapping)
    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 5


def test_flattening_is_the_schema_the_mapping_is_checked_against(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    flattening = {"flattening_enabled": True, "flattening_max_depth": 1}
    mapping = {"eventTime": "created_at", "conversionValue": "total"}
    # A dotted path finds the flattened column, as it finds the nested one.
    run = run_orders(
        emulator, tmp_path / "dotted", mapping={**mapping, "email": "customer.email"}, **flattening
    )
    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 5
    # The nested object is gone once flattened: its column is named instead.
    run = run_orders(
        emulator, tmp_path / "nested", mapping={**mapping, "email": "customer_email"}, **flattening
    )
    assert run.returncode == 1
    assert run.error_lines == [
        "target-amazon-dsp-conversions: error: input line 1: stream 'orders': setting "
        "'mapping.email' reads email from 'customer_email', which the stream's SCHEMA does not "
        "have; closest columns: 'customer__email'"
    ]


def test_stream_maps_make_the_schema_the_mapping_is_checked_against(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # The stream map gives the columns the seeds' names: no mapping needed.
    maps = {
        "eventTime": "created_at",
        "conversionType": "conversion_type",
        "email": "customer['email']",
        "created_at": None,
    }
    run = run_orders(emulator, tmp_path / "renamed", stream_maps={"orders": maps})
    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 5
    # A mapping of the column the stream map removed.
    run = run_orders(
        emulator,
        tmp_path / "removed",
        stream_maps={"orders": maps},
        mapping={"eventTime": "created_at"},
    )
    assert run.returncode == 1
    assert "setting 'mapping.eventTime' reads eventTime from 'created_at', which the stream's " \
        "SCHEMA does not have" in run.error_lines[0]  # fmt: skip


def test_a_schema_that_does_not_list_its_columns_is_not_judged_and_rejects_say_where(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    open_schemas = [
        {"type": "object", "properties": {}},
        {**SEED_SCHEMA, "additionalProperties": True},
    ]
    for n, schema in enumerate(open_schemas):
        records = [seed_record(1), {k: v for k, v in seed_record(2).items() if k != "eventTime"}]
        mapped = {"eventTime": "created_at"}
        records[0]["created_at"] = records[0].pop("eventTime")
        run = run_target(
            emulator.target_config(mapping=mapped),
            singer_stream(records, schema=schema),
            tmp_path / str(n),
        )
        assert run.returncode == 0, run.stderr
        assert run.report["records_accepted"] == 1
        (reject,) = run.rejects
        assert reject["errors"] == [
            {
                "code": "MISSING_FIELD",
                "field": "eventTime",
                "message": "eventTime is required: the mapping reads it from 'created_at', "
                "which this record lacks",
            }
        ]
