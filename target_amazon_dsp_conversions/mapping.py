"""Record -> conversion fields: where each conversion field is looked up in a record.

With no `mapping`, the column names of SPEC §3 work as they are; `mapping` replaces the lookup
of a field with one property path (dotted for nested objects; a flattened record's `a.b` or
`a__b` is found too) or, with `""`, turns the field's lookup off; `defaults` fills gaps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def _own_and_snake_case_names(fields: str) -> dict[str, tuple[str, ...]]:
    """Fields (space-separated) found under their own name, then its snake_case form:
    firstName, first_name."""
    return {
        field: tuple(dict.fromkeys((field, re.sub("([A-Z])", r"_\1", field).lower())))
        for field in fields.split()
    }


# Conversion field -> record properties tried in order (the first present wins).
CONVERSION_FIELDS: dict[str, tuple[str, ...]] = {
    "eventTime": ("eventTime", "event_time", "timestamp"),
    "conversionType": ("conversionType", "eventType", "conversion_type", "event_type"),
    # Never a bare `name`: in a customer or order table it is a person's name (SPEC §3).
    "name": ("eventName", "event_name", "conversionName", "conversion_name"),
    "conversionDefinitionId": ("conversionDefinitionId", "conversion_definition_id"),
    "conversionValue": ("conversionValue", "eventValue", "value", "conversion_value"),
    "currency": ("currency", "currencyCode", "currency_code"),
    "unitsSold": ("unitsSold", "units_sold", "quantity"),
    "countryCode": ("countryCode", "country_code", "country"),
    "source": ("source", "eventAttributionSource"),
    "advertiserId": ("advertiserId", "advertiser_id"),
    "dedupeId": ("dedupeId", "eventId", "clientDedupeId", "dedupe_id", "event_id"),
    "userIdentifier": ("userIdentifier", "userId", "user_identifier"),
    # Match keys.
    **_own_and_snake_case_names(
        "email phone firstName lastName address city state postalCode maid rampId matchId "
        "limitedDataUse"
    ),
    # Events API only.
    **_own_and_snake_case_names(
        "realId merkleId kantarId fip userAgent amazonAdEventKey arefMeasurementTokens "
        "ipAddress amazonUserData amazonAdStorage tcf gpp eventSource dataSetName customData"
    ),
}

MATCH_KEY_FIELDS: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "firstName": "FIRST_NAME",
    "lastName": "LAST_NAME",
    "address": "ADDRESS",
    "city": "CITY",
    "state": "STATE",
    "postalCode": "POSTAL",
    "maid": "MAID",
    "rampId": "RAMP_ID",
    "matchId": "MATCH_ID",
    # Events API only (identity drops them for the DSP API).
    "realId": "REAL_ID",
    "merkleId": "MERKLE_ID",
    "kantarId": "KANTAR_ID",
    "fip": "FIP",
}

Getter = Callable[[Mapping[str, Any]], Any]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# The Singer SDK's flattening (`flattening_enabled`) joins nested names with this separator.
FLATTENING_SEPARATOR = "__"


def _nested(parts: tuple[str, ...]) -> Getter:
    def get(record: Mapping[str, Any]) -> Any:
        value: Any = record
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get


def _path_lookup(path: str, present: set[str]) -> str | Getter | None:
    """Where a mapped path is found in records with these property names: one name (the path
    itself, or its flattened forms `a.b` / `a__b`), a getter for a nested object, or None."""
    if path in present:
        return path
    if "." not in path:
        return None
    flattened = path.replace(".", FLATTENING_SEPARATOR)
    if flattened in present:
        return flattened
    parts = tuple(path.split("."))
    return _nested(parts) if parts[0] in present else None


# Distinct property sets remembered per stream; a tap rarely has more than a handful.
_MAX_PLANS = 256

# How the fields of records with one set of property names are found:
#   direct  (conversion field, the one name present, default)                   - most fields
#   other   (conversion field, getter or candidate names present, default)
_Plan = tuple[
    tuple[tuple[str, str, Any], ...],
    tuple[tuple[str, "Getter | tuple[str, ...]", Any], ...],
]


class RecordMapping:
    """The lookups of one stream, compiled once so that each record costs a few dict reads."""

    def __init__(self, mapping: Mapping[str, str | None], defaults: Mapping[str, Any]) -> None:
        """`mapping`: conversion field -> property path; `""` (or None) turns the field's
        lookup off (its default still applies)."""
        self._mapped = {field: (path or "").strip() for field, path in mapping.items()}
        self._candidates = CONVERSION_FIELDS
        self._defaults = dict(defaults)
        # Records of a stream share their property names: the fields to look at (and the
        # candidate names actually there) are worked out once per set of names, not per record.
        self._plans: dict[tuple[str, ...], _Plan] = {}

    def _plan(self, names: tuple[str, ...]) -> _Plan:
        present = set(names)
        direct: list[tuple[str, str, Any]] = []
        other: list[tuple[str, Getter | tuple[str, ...], Any]] = []
        for field, candidates in self._candidates.items():
            default = self._defaults.get(field)
            path = self._mapped.get(field)
            if path is None:
                there = tuple(name for name in candidates if name in present)
            else:
                found = _path_lookup(path, present) if path else None
                if callable(found):
                    other.append((field, found, default))
                    continue
                there = () if found is None else (found,)
            if len(there) == 1:
                direct.append((field, there[0], default))
            elif there or default is not None:
                other.append((field, there, default))
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        result = self._plans[names] = (tuple(direct), tuple(other))
        return result

    def looked_up(self, fields: Iterable[str]) -> str:
        """Where these fields were looked for, for a record that has none of them: "the
        mapping reads it from 'created_at', which this record lacks"."""
        fields = tuple(fields)
        if len(fields) == 1 and self._mapped.get(fields[0]):
            return f"the mapping reads it from {self._mapped[fields[0]]!r}, which this record lacks"
        names = [
            name
            for field in fields
            for name in (
                ((self._mapped[field],) if self._mapped[field] else ())
                if field in self._mapped
                else self._candidates[field]
            )
        ]
        if not names:
            return f'mapping.{fields[0]} is "", so no column is read'
        return f"looked for {', '.join(names)}, none of which this record has"

    def extract(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Conversion field -> raw value, for the fields the record (or a default) has."""
        names = tuple(record)
        plan = self._plans.get(names)
        if plan is None:
            plan = self._plan(names)
        direct, other = plan
        fields: dict[str, Any] = {}
        for field, name, default in direct:
            value = record[name]
            if value is None or (isinstance(value, str) and not value.strip()):
                value = default
            if value is not None:
                fields[field] = value
        for field, lookup, default in other:
            value = None
            if type(lookup) is tuple:
                for name in lookup:
                    candidate = record[name]
                    if candidate is not None and (
                        not isinstance(candidate, str) or candidate.strip()
                    ):
                        value = candidate
                        break
            else:
                value = lookup(record)  # type: ignore[operator]
                if _is_missing(value):
                    value = None
            if value is None:
                value = default
            if value is not None:
                fields[field] = value
        return fields


# --- key properties that identify a person rather than an event --------------------------

# Words of a property name: camelCase, snake_case, kebab-case and CAPS all split alike.
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# A word that is a contact or device identifier wherever it stands in the name.
_IDENTIFIER_WORDS = frozenset(
    "email emails phone phones mobile msisdn telephone maid idfa idfv gaid aaid".split()
)
# The same run together or split oddly ("e_mail", "userid", "ip_address").
_IDENTIFIER_JOINED = frozenset(
    "email emailaddress phonenumber mobilenumber ipaddress uid userid useridentifier "
    "customerid custid memberid clientid accountid personid contactid visitorid".split()
)
# A name made of these only, with a person word among them, names a person or device:
# customer, customer_id, userKey, member_no, device_id; order_id and customer_order_id do not.
_PERSON_WORDS = frozenset(
    "user customer cust member client account person contact visitor shopper buyer "
    "subscriber profile patient guest player device".split()
)
_ID_WORDS = frozenset("id ids identifier key no nr num number code ref uuid guid hash".split())


def user_identifier_keys(key_properties: Iterable[str]) -> list[str]:
    """The key properties whose names look like a user identifier (`email`, `customer_id`,
    `userId`, `phone`, ...), in the given order.

    The derived dedupe ID hashes the key properties: a stream keyed by a person gives all of
    that person's conversions one ID (Amazon keeps one of them), and the DSP spec forbids user
    identifiers, hashed or not, as dedupe IDs. A name check, for a warning: no value is read.
    """
    found = []
    for name in key_properties:
        words = [word.lower() for word in _NAME_WORDS.findall(name)]
        if not words:
            continue
        if (
            "".join(words) in _IDENTIFIER_JOINED
            or not _IDENTIFIER_WORDS.isdisjoint(words)
            or (
                not _PERSON_WORDS.isdisjoint(words)
                and all(word in _PERSON_WORDS or word in _ID_WORDS for word in words)
            )
        ):
            found.append(name)
    return found
