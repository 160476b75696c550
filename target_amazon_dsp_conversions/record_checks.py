"""A record against its stream's SCHEMA and key properties, before it is mapped.

Shared by the SDK sink (main process) and the conversion workers, so that both judge a record
alike. Messages name the property and the rule, never a value.
"""

from __future__ import annotations

import json
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


# An enum longer than this is checked as a set: fastjsonschema writes out one comparison per
# value, so a 110,000-value enum took 37 s and 830 MB to compile and 45 ms per record.
MAX_INLINE_ENUM = 64
# Validators kept by schema text: streams that share a schema (and the SDK sink and the
# converters of one process) compile it once.
_MAX_COMPILED = 256
_compiled: dict[str, SchemaCheck | None] = {}
# Keywords whose values are data, not schemas.
_VALUES = frozenset({"enum", "const", "default", "examples"})


def compile_schema(schema: Mapping[str, Any]) -> SchemaCheck | None:
    """A validator for the schema (fastjsonschema: many times faster than jsonschema), or None
    when the schema cannot be compiled (the stream is then not validated)."""
    try:
        text = json.dumps(schema, sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        return None
    if text not in _compiled:
        if len(_compiled) >= _MAX_COMPILED:
            _compiled.clear()
        _compiled[text] = _compile(schema)
    return _compiled[text]


def _compile(schema: Mapping[str, Any]) -> SchemaCheck | None:
    sets: dict[str, Callable[[str], bool]] = {}
    try:
        prepared = _prepared(schema, sets)
        # Formats are not checked (the SDK does not either, and the run parses times itself):
        # `_prepared` removed them; the only formats left are the long enums' sets.
        return fastjsonschema.compile(prepared, formats=sets)
    except Exception:  # noqa: BLE001 - a schema we cannot compile is not the user's loss
        return None


def _prepared(schema: Any, sets: dict[str, Callable[[str], bool]]) -> Any:
    """The schema without `format` keywords (a property named "format" stays), each long enum
    of strings turned into a set lookup (a custom format, whose name is the error message)."""
    if isinstance(schema, list):
        return [_prepared(item, sets) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _VALUES:
            result[key] = value
        elif key == "properties" and isinstance(value, dict):
            result[key] = {name: _prepared(item, sets) for name, item in value.items()}
        elif key != "format":
            result[key] = _prepared(value, sets)
    enum = result.get("enum")
    if isinstance(enum, list) and len(enum) > MAX_INLINE_ENUM:
        strings = frozenset(value for value in enum if type(value) is str)
        others = [value for value in enum if type(value) is not str]
        name = f"one of the {len(enum)} values of its enum"
        while name in sets:
            name += "'"
        sets[name] = strings.__contains__
        check: dict[str, Any] = (
            {"if": {"type": "string"}, "then": {"format": name}, "else": {"enum": others}}
            if others
            else {"type": "string", "format": name}
        )
        del result["enum"]
        result["allOf"] = [*result.get("allOf", []), check]
    return result


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
