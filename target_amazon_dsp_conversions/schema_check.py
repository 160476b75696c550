"""Does a stream's SCHEMA have the columns the mapping reads? A mapping that names a column the
stream lacks (`create_at` for `created_at`, a loader set up for another tap, flattening turned
on) would get every record rejected, and the run would exit 0: it stops at that SCHEMA instead,
with one line naming the stream, the field, what was looked for and the closest columns.

The schema checked is the one the target's sink gets: after stream maps and flattening. A schema
that does not list its columns (no `properties`, or `additionalProperties` allowing others) is
not judged: its records may have any property.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from target_amazon_dsp_conversions.amazon_fields import ApiRules
from target_amazon_dsp_conversions.mapping import (
    CONVERSION_FIELDS,
    FLATTENING_SEPARATOR,
    MATCH_KEY_FIELDS,
)

# Fields every event needs, whatever the API: one of each group (`ApiRules.required_fields`
# adds the API's own). A match key may come from any of its fields or `userIdentifier`.
_REQUIRED_GROUPS: tuple[tuple[str, ...], ...] = (
    ("eventTime",),
    ("name", "conversionType"),
    (*MATCH_KEY_FIELDS, "userIdentifier"),
)
# What a record of an opt-out stream is read for: the person and whose customer they are.
_OPT_OUT_FIELDS = frozenset({*MATCH_KEY_FIELDS, "userIdentifier", "advertiserId", "countryCode"})
_CLOSEST = 3
_SHOWN_COLUMNS = 8


def mapping_problem(
    stream: str,
    schema: Mapping[str, Any] | None,
    mapping: Mapping[str, str],
    defaults: Mapping[str, Any],
    rules: ApiRules,
    *,
    opt_out: bool = False,
) -> str | None:
    """Why no record of this stream can become an event (`opt_out`: name a person who opted
    out), as one line; None when its columns may do (or the schema does not say which columns
    there are)."""
    if not _lists_its_columns(schema):
        return None
    assert schema is not None
    # The Singer SDK's metadata columns (`_sdc_*`, which it adds to every schema) are no
    # record's data.
    columns = {k: v for k, v in schema["properties"].items() if not str(k).startswith("_sdc_")}
    if not columns:
        return None
    for field, path in mapping.items():
        if opt_out and field not in _OPT_OUT_FIELDS:
            continue
        if path and not _has_path(columns, path):
            return (
                f"stream {stream!r}: setting 'mapping.{field}' reads {field} from {path!r}, "
                f"which the stream's SCHEMA does not have; {_closest(columns, [path])}"
            )
    groups = (
        _REQUIRED_GROUPS[-1:]
        if opt_out
        else (*_REQUIRED_GROUPS, *((field,) for field in rules.required_fields))
    )
    for group in groups:
        if any(defaults.get(field) is not None for field in group):
            continue
        looked_for = [name for field in group for name in _looked_up_in(field, mapping)]
        if any(_has_path(columns, name) for name in looked_for):
            continue
        return (
            f"stream {stream!r}: no column for {_group_name(group)}, which every record needs: "
            f"looked for {', '.join(looked_for) or 'nothing'} ({_where_to_set(group)}); "
            f"{_closest(columns, looked_for or _defaults_of(group), times=group == ('eventTime',))}"
        )
    return None


def _lists_its_columns(schema: Mapping[str, Any] | None) -> bool:
    if not isinstance(schema, Mapping):
        return False
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return False
    extra = schema.get("additionalProperties")
    return extra is None or extra is False


def _looked_up_in(field: str, mapping: Mapping[str, str]) -> tuple[str, ...]:
    """The property paths a field is read from: the mapping's (none for "") or the defaults."""
    if field in mapping:
        return (mapping[field],) if mapping[field] else ()
    return CONVERSION_FIELDS[field]


def _defaults_of(group: tuple[str, ...]) -> list[str]:
    """The columns a group's fields are read from without a mapping (to suggest names)."""
    return [name for field in group for name in CONVERSION_FIELDS[field]]


def _has_path(columns: Mapping[str, Any], path: str) -> bool:
    """Whether records of these columns can hold the path (as `mapping._path_lookup` finds
    it: the name itself, flattened `a.b` / `a__b`, or nested objects)."""
    if path in columns:
        return True
    if "." not in path:
        return False
    if path.replace(".", FLATTENING_SEPARATOR) in columns:
        return True
    schema: Any = {"properties": columns}
    for part in path.split("."):
        if not _lists_its_columns(schema) or not isinstance(schema, Mapping):
            return True  # an object whose properties are not listed may hold anything
        if part not in schema["properties"]:
            return False
        schema = schema["properties"][part]
    return True


def _closest(columns: Mapping[str, Any], looked_for: Sequence[str], *, times: bool = False) -> str:
    """The columns named most like what was looked for; else, for a time, the columns of
    date-time values; else the first columns."""
    names = [str(name) for name in columns]
    closest: dict[str, None] = {}
    for wanted in looked_for:
        for candidate in (wanted, wanted.replace(".", FLATTENING_SEPARATOR)):
            for name in difflib.get_close_matches(candidate, names, n=_CLOSEST, cutoff=0.6):
                closest[name] = None
    if closest:
        return "closest columns: " + ", ".join(repr(name) for name in list(closest)[:_CLOSEST])
    if times:
        dated = [name for name in names if _is_date_time(columns[name])]
        if dated:
            return "columns of date-time values: " + ", ".join(repr(name) for name in dated)
    shown = ", ".join(repr(name) for name in names[:_SHOWN_COLUMNS])
    more = ", ..." if len(names) > _SHOWN_COLUMNS else ""
    return f"its columns: {shown}{more}"


def _is_date_time(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    if schema.get("format") in {"date-time", "date"}:
        return True
    return any(_is_date_time(option) for option in schema.get("anyOf") or ())


def _group_name(group: tuple[str, ...]) -> str:
    if len(group) > 2:  # noqa: PLR2004
        return "a match key"
    return " or ".join(group)


def _where_to_set(group: tuple[str, ...]) -> str:
    if len(group) > 2:  # noqa: PLR2004
        return "set mapping.email, mapping.phone, ... to the columns that hold them"
    field = group[-1]  # of a name or a type, the type is what a table has
    if field == "eventTime":  # a constant time would age every event alike
        return "set mapping.eventTime to the column that holds it"
    return f"set mapping.{field} to the column that holds it, or defaults.{field}"
