"""A record against its stream's SCHEMA and key properties, before it is mapped.

Shared by the SDK sink (main process) and the conversion workers, so that both judge a record
alike. Messages name the property and the rule, never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import fastjsonschema

from target_amazon_dsp_conversions.errors import Problem

# The Singer SDK's record metadata columns (`Sink._remove_sdc_metadata_from_record`).
SDC_METADATA_KEYS = (
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_deleted_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_sync_started_at",
)

SchemaCheck = Callable[[Any], Any]


def compile_schema(schema: Mapping[str, Any]) -> SchemaCheck | None:
    """A validator for the schema (fastjsonschema: many times faster than jsonschema), or None
    when the schema cannot be compiled (the stream is then not validated)."""
    try:
        # Formats are not checked: the SDK does not either, and the run parses times itself.
        return fastjsonschema.compile(dict(schema), use_formats=False)
    except Exception:  # noqa: BLE001 - a schema we cannot compile is not the user's loss
        return None


def schema_problem(check: SchemaCheck, record: Mapping[str, Any]) -> Problem | None:
    """Why the record breaks its schema, or None."""
    try:
        check(record)
    except fastjsonschema.JsonSchemaValueException as exc:
        # exc.message names the property and the rule, never the value.
        return Problem(
            "SCHEMA_MISMATCH",
            f"record does not match the stream's SCHEMA: {exc.message}",
            (exc.name or "").removeprefix("data.") or None,
        )
    return None


def missing_key_properties(keys: Sequence[str], record: Mapping[str, Any]) -> list[str]:
    """Key properties absent from the record (a Singer spec violation: the run stops)."""
    for key in keys:  # a loop first: almost always every key is there
        if key not in record:
            return [k for k in keys if k not in record]
    return []


def null_keys_problem(keys: Sequence[str], record: Mapping[str, Any]) -> Problem | None:
    """All key properties null: such records would share one dedupe ID and Amazon would keep
    only one of them, so each is rejected instead. Expects every key to be present."""
    for key in keys:
        if record[key] is not None:
            return None
    if not keys:
        return None
    return Problem(
        "NULL_KEY_PROPERTIES",
        f"key properties {', '.join(keys)} are all null; the dedupe ID is derived from them",
        keys[0],
    )
