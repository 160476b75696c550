"""Validate documents against the structure-only copies of Amazon's OpenAPI schemas.

The copies live in ``tests/schemas/`` (see ``tests/schemas/extract.py``). They keep
Amazon's types, required fields, enums, limits, patterns and formats verbatim, with
one change: Amazon's ``ErrorsIndex.index`` ``maximum: 0`` is dropped (a spec artefact;
Events API 207 error indexes run 0..499).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
# The copies drop Amazon's ErrorsIndex.index "maximum": 0 (spec artefact; indexes run 0..499).
SPEC_FILES = {"dsp": "dsp-conversions-api.json", "events": "events-api.json"}
REQUEST_SCHEMAS = {
    "dsp": "BatchImportConversionEventDataRequestV1",
    "events": "CreateEventRequest",
}

# RFC 3339 date-time: fromisoformat alone would also accept a bare date or no offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def is_rfc3339(value: object) -> bool:
    """True for an RFC 3339 date-time string (non-strings pass, as JSON Schema says)."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _format_checker() -> FormatChecker:
    """jsonschema's checker, with our own date-time check (rfc3339-validator is optional)."""
    checker = FormatChecker()
    checker.checks("date-time")(is_rfc3339)
    return checker


@cache
def load_spec(api: str) -> dict[str, Any]:
    """The trimmed spec for ``api`` ("dsp" or "events"), numbers as Decimal."""
    path = SCHEMA_DIR / SPEC_FILES[api]
    return json.loads(path.read_text(), parse_float=Decimal)


@cache
def validator(api: str, schema_name: str, check_formats: bool = True) -> Draft4Validator:
    """A Draft 4 validator for ``#/components/schemas/<schema_name>`` of ``api``."""
    spec = load_spec(api)
    if schema_name not in spec["components"]["schemas"]:
        raise KeyError(f"{schema_name} is not in the {api} test-tree schemas")
    wrapper = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    return Draft4Validator(wrapper, format_checker=_format_checker() if check_formats else None)


def schema_errors(api: str, schema_name: str, doc: Any, check_formats: bool = True) -> list[str]:
    """Messages ``"path: problem"`` for every way ``doc`` breaks the schema ([] when valid).

    ``doc`` is round-tripped through JSON with floats parsed as Decimal, so what is
    checked is the JSON text that would be sent (``multipleOf: 0.01`` works for 19.99).
    """
    normalized = json.loads(json.dumps(doc), parse_float=Decimal)
    found = validator(api, schema_name, check_formats).iter_errors(normalized)
    return sorted(f"{'/'.join(map(str, err.absolute_path))}: {err.message}" for err in found)


def request_errors(api: str, body: dict[str, Any]) -> list[str]:
    """Schema errors of an upload request body for ``api`` ("dsp" or "events")."""
    return schema_errors(api, REQUEST_SCHEMAS[api], body)
