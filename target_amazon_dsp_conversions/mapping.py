"""Record -> conversion fields: where each conversion field is looked up in a record.

With no `mapping`, the column names of SPEC §3 work as they are; `mapping` replaces the lookup
of a field with one property path (dotted for nested objects) and `defaults` fills gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Conversion field -> record properties tried in order (the first present wins).
CONVERSION_FIELDS: dict[str, tuple[str, ...]] = {
    "eventTime": ("eventTime", "event_time", "timestamp"),
    "conversionType": ("conversionType", "eventType", "conversion_type", "event_type"),
    "name": ("name", "eventName", "event_name"),
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
    "email": ("email",),
    "phone": ("phone",),
    "firstName": ("firstName", "first_name"),
    "lastName": ("lastName", "last_name"),
    "address": ("address",),
    "city": ("city",),
    "state": ("state",),
    "postalCode": ("postalCode", "postal_code"),
    "maid": ("maid",),
    "rampId": ("rampId", "ramp_id"),
    "matchId": ("matchId", "match_id"),
    "limitedDataUse": ("limitedDataUse", "limited_data_use"),
    # Events API only.
    "ipAddress": ("ipAddress", "ip_address"),
    "amazonUserData": ("amazonUserData", "amazon_user_data"),
    "amazonAdStorage": ("amazonAdStorage", "amazon_ad_storage"),
    "tcf": ("tcf",),
    "gpp": ("gpp",),
    "eventSource": ("eventSource", "event_source"),
    "dataSetName": ("dataSetName", "data_set_name"),
    "customData": ("customData", "custom_data"),
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
}

Getter = Callable[[Mapping[str, Any]], Any]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _path(path: str) -> Getter:
    parts = path.split(".")

    def get(record: Mapping[str, Any]) -> Any:
        # A flattened record (flattening_enabled) carries the dotted name as one key.
        if path in record:
            return record[path]
        value: Any = record
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get


# Distinct property sets remembered per stream; a tap rarely has more than a handful.
_MAX_PLANS = 256

# How the fields of records with one set of property names are found:
#   direct  (conversion field, the one candidate name present, default)   - most fields
#   other   (conversion field, getter or candidate names present, default)
_Plan = tuple[
    tuple[tuple[str, str, Any], ...],
    tuple[tuple[str, "Getter | tuple[str, ...]", Any], ...],
]


class RecordMapping:
    """The lookups of one stream, compiled once so that each record costs a few dict reads."""

    def __init__(self, mapping: Mapping[str, str], defaults: Mapping[str, Any]) -> None:
        """Compile a getter per conversion field."""
        self._mapped = {field: _path(path) for field, path in mapping.items()}
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
            getter = self._mapped.get(field)
            if getter is not None:
                other.append((field, getter, default))
                continue
            there = tuple(name for name in candidates if name in present)
            if len(there) == 1:
                direct.append((field, there[0], default))
            elif there or default is not None:
                other.append((field, there, default))
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        result = self._plans[names] = (tuple(direct), tuple(other))
        return result

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
