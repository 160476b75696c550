"""Unit tests: which record properties the default mapping reads (SPEC §3), explicit mappings,
flattened records, and key properties that look like user identifiers."""

from __future__ import annotations

from typing import Any

import pytest

from target_amazon_dsp_conversions.converter import StreamSpec, dedupe_key_warning
from target_amazon_dsp_conversions.mapping import (
    CONVERSION_FIELDS,
    MATCH_KEY_FIELDS,
    RecordMapping,
    user_identifier_keys,
)


def extract(
    record: dict[str, Any], mapping: dict[str, Any] | None = None, **defaults: Any
) -> dict[str, Any]:
    return RecordMapping(mapping or {}, defaults).extract(record)


# --------------------------------------------------------------------------- default columns

# SPEC §3: conversion field -> the record properties read with no mapping (first present wins).
SPEC_COLUMNS = {
    "eventTime": ["eventTime", "event_time", "timestamp"],
    "conversionType": ["conversionType", "eventType", "conversion_type", "event_type"],
    "name": ["eventName", "event_name", "conversionName", "conversion_name"],
    "conversionValue": ["conversionValue", "eventValue", "value"],
    "currency": ["currency", "currencyCode"],
    "unitsSold": ["unitsSold", "units_sold", "quantity"],
    "countryCode": ["countryCode", "country_code", "country"],
    "source": ["source", "eventAttributionSource"],
    "advertiserId": ["advertiserId", "advertiser_id"],
    "dedupeId": ["dedupeId", "eventId", "clientDedupeId"],
    "userIdentifier": ["userIdentifier", "userId"],
    "email": ["email"],
    "firstName": ["firstName", "first_name"],
    "postalCode": ["postalCode", "postal_code"],
    "rampId": ["rampId", "ramp_id"],
    "realId": ["realId", "real_id"],
    "merkleId": ["merkleId", "merkle_id"],
    "kantarId": ["kantarId", "kantar_id"],
    "fip": ["fip"],
    "userAgent": ["userAgent"],
    "amazonAdEventKey": ["amazonAdEventKey"],
    "arefMeasurementTokens": ["arefMeasurementTokens"],
    "limitedDataUse": ["limitedDataUse"],
    "ipAddress": ["ipAddress"],
    "customData": ["customData"],
}


@pytest.mark.parametrize(("field", "columns"), sorted(SPEC_COLUMNS.items()))
def test_default_columns_of_the_spec(field: str, columns: list[str]) -> None:
    for column in columns:
        assert extract({column: "x"}) == {field: "x"}, column
    # The first one present wins.
    assert extract({column: column for column in reversed(columns)})[field] == columns[0]


def test_match_key_fields_of_the_spec() -> None:
    assert MATCH_KEY_FIELDS == {
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
        "realId": "REAL_ID",
        "merkleId": "MERKLE_ID",
        "kantarId": "KANTAR_ID",
        "fip": "FIP",
    }
    assert set(MATCH_KEY_FIELDS) <= set(CONVERSION_FIELDS)


def test_a_bare_name_column_is_never_the_conversion_name() -> None:
    # A customer table's `name` holds a person's name: it must not leave the process (SPEC §3).
    record = {"name": "John Roe", "conversionType": "purchase"}
    assert "name" not in extract(record)
    assert extract({**record, "conversionName": "store"})["name"] == "store"
    # Mapped explicitly, it is the user's choice.
    assert extract(record, {"name": "name"})["name"] == "John Roe"


def test_an_empty_mapping_turns_a_default_column_off() -> None:
    # An order table's `state` holds an order status, its `source` a sales channel.
    record = {"state": "shipped", "source": "web", "value": 3, "country": "DE"}
    fields = extract(record, {"state": "", "source": "", "conversionValue": None})

    assert fields == {"countryCode": "DE"}
    # The default still applies: it is a constant, not a column.
    assert extract(record, {"state": ""}, state="CA")["state"] == "CA"


# --------------------------------------------------------------------------- paths


def test_dotted_paths_find_nested_and_flattened_properties() -> None:
    nested = {"customer": {"email": "nested@example.com"}}
    dotted = {"customer.email": "dotted@example.com"}
    # The Singer SDK's flattening (flattening_enabled) joins names with "__".
    flattened = {"customer__email": "flat@example.com"}
    mapping = {"email": "customer.email"}

    assert extract(nested, mapping) == {"email": "nested@example.com"}
    assert extract(dotted, mapping) == {"email": "dotted@example.com"}
    assert extract(flattened, mapping) == {"email": "flat@example.com"}
    deep = {"a__b__c": "deep@example.com", "x": 1}
    assert extract(deep, {"email": "a.b.c"}) == {"email": "deep@example.com"}
    assert extract({"customer": "not an object"}, mapping) == {}
    assert extract({"customer__email": "  "}, mapping, email="d@example.com") == {
        "email": "d@example.com"
    }


def test_plans_follow_the_property_names_of_each_record() -> None:
    mapping = RecordMapping({"email": "customer.email"}, {})
    assert mapping.extract({"customer__email": "a@example.com"}) == {"email": "a@example.com"}
    assert mapping.extract({"customer": {"email": "b@example.com"}}) == {"email": "b@example.com"}
    assert mapping.extract({"customer__email": "c@example.com"}) == {"email": "c@example.com"}


# --------------------------------------------------------------------------- dedupe keys


@pytest.mark.parametrize(
    "name",
    [
        "email", "EMAIL", "e_mail", "customerEmail", "hashed_email", "email_sha256",
        "phone", "phone_number", "mobile", "customer_id", "CustomerID", "customerId",
        "userId", "user_id", "userid", "uid", "member_no", "client_id", "account_id",
        "visitor_id", "device_id", "ip_address", "maid", "idfa", "customer",
    ],
)  # fmt: skip
def test_key_properties_that_identify_a_person(name: str) -> None:
    assert user_identifier_keys([name]) == [name]


@pytest.mark.parametrize(
    "name",
    [
        "order_id", "orderId", "id", "transaction_id", "event_id", "customer_order_id",
        "session_id", "ad_id", "sku", "order_number", "invoice", "line_item_id", "",
    ],
)  # fmt: skip
def test_key_properties_that_identify_an_event(name: str) -> None:
    assert user_identifier_keys([name]) == []


def test_user_identifier_keys_keep_their_order() -> None:
    assert user_identifier_keys(["order_id", "email", "customer_id"]) == ["email", "customer_id"]


def test_dedupe_key_warning_once_the_schema_is_known() -> None:
    schema = {"type": "object", "properties": {"customer_id": {}, "total": {}}}
    warning = dedupe_key_warning("orders", StreamSpec(schema, ("customer_id",)), {})

    assert warning is not None
    assert warning.startswith("Stream 'orders': key properties customer_id look like a user")
    assert "DSP: the first; Events API: the latest" in warning
    assert dedupe_key_warning("orders", StreamSpec(schema, ("order_id",)), {}) is None
    # Records carry their own dedupe ID: the key properties are not hashed.
    with_id = {"type": "object", "properties": {"customer_id": {}, "eventId": {}}}
    assert dedupe_key_warning("orders", StreamSpec(with_id, ("customer_id",)), {}) is None
    mapped = {"dedupeId": "order_ref"}
    assert dedupe_key_warning("orders", StreamSpec(schema, ("customer_id",)), mapped) is None
    turned_off = {"dedupeId": ""}
    assert dedupe_key_warning("orders", StreamSpec(with_id, ("customer_id",)), turned_off)
    assert dedupe_key_warning("orders", StreamSpec(None, ("email",)), {})
