"""Unit tests: mapping and conversion fields -> checked conversion (SPEC §3)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from target_amazon_dsp_conversions.amazon_fields import DSP_RULES as DSP
from target_amazon_dsp_conversions.amazon_fields import EVENTS_RULES as EVENTS
from target_amazon_dsp_conversions.amazon_fields import ApiRules
from target_amazon_dsp_conversions.conversion import (
    Conversion,
    build_conversion,
    dedupe_seed,
    normalize_conversion_type,
)
from target_amazon_dsp_conversions.errors import Rejected
from target_amazon_dsp_conversions.identity import sha256_hex
from target_amazon_dsp_conversions.mapping import RecordMapping

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def convert(record: dict[str, Any], rules: ApiRules = DSP, **settings: Any) -> Conversion:
    mapping = RecordMapping(settings.pop("mapping", {}), settings.pop("defaults", {}))
    return build_conversion(
        mapping.extract(record),
        rules=rules,
        default_source=settings.pop("source", "SERVER_TO_SERVER"),
        default_advertiser_id=settings.pop("advertiser_id", "1234567890"),
        user_identifier_type=settings.pop("user_identifier_type", None),
        dedupe_seed=dedupe_seed("orders", record, ["order_id"]),
        now=NOW,
    )


def problems(record: dict[str, Any], rules: ApiRules = DSP, **settings: Any) -> list[str]:
    with pytest.raises(Rejected) as caught:
        convert(record, rules, **settings)
    return [p.code for p in caught.value.problems]


SEED = {
    "order_id": "A-1",
    "eventTime": "2026-11-22T04:30:00-05:00",
    "conversionType": "purchase",
    "conversionValue": "129.999",
    "currency": "usd",
    "userIdentifier": " Jane.Doe@Example.COM ",
    "countryCode": "en-US",
    "eventAttributionSource": "server_to_server",
}


def test_seed_columns_need_no_mapping() -> None:
    conversion = convert(SEED)
    assert conversion.event_time == "2026-11-22T09:30:00Z"
    assert conversion.conversion_type == "OFF_AMAZON_PURCHASES"
    assert conversion.name == "purchase"
    assert conversion.value == Decimal("130.00")
    assert conversion.currency == "USD"
    assert conversion.country_code == "US"
    assert conversion.source == "SERVER_TO_SERVER"
    assert conversion.advertiser_id == "1234567890"
    assert conversion.match_keys == [("EMAIL", sha256_hex("jane.doe@example.com"))]


def test_mapping_with_dotted_paths_and_defaults() -> None:
    record = {
        "id": 7,
        "created": "2026-11-21 08:00:00",
        "kind": "Sign Up",
        "customer": {"contact": {"mail": "a@b.co", "mobile": "(415) 555-0100"}},
    }
    conversion = convert(
        record,
        mapping={
            "eventTime": "created",
            "conversionType": "kind",
            "email": "customer.contact.mail",
            "phone": "customer.contact.mobile",
            "dedupeId": "id",
        },
        defaults={"countryCode": "US", "currency": "EUR"},
    )
    assert conversion.event_time == "2026-11-21T08:00:00Z"
    assert conversion.conversion_type == "SIGN_UP"
    assert conversion.dedupe_id == "7"
    assert conversion.currency == "EUR"
    assert dict(conversion.match_keys) == {
        "EMAIL": sha256_hex("a@b.co"),
        "PHONE": sha256_hex("14155550100"),
    }


def test_flattened_property_name_wins_over_nested_lookup() -> None:
    record = {**SEED, "user.email": "flat@example.com", "user": {"email": "nested@example.com"}}
    conversion = convert(record, mapping={"email": "user.email"})
    assert ("EMAIL", sha256_hex("flat@example.com")) in conversion.match_keys


@pytest.mark.parametrize(
    ("word", "enum"),
    [
        ("purchase", "OFF_AMAZON_PURCHASES"),
        ("PURCHASE", "OFF_AMAZON_PURCHASES"),
        ("signup", "SIGN_UP"),
        ("lead", "LEAD"),
        ("add_to_cart", "ADD_TO_SHOPPING_CART"),
        ("Add To Cart", "ADD_TO_SHOPPING_CART"),
        ("page-view", "PAGE_VIEW"),
        ("SUBSCRIBE", "SUBSCRIBE"),
        ("refund", None),
    ],
)
def test_conversion_type_words(word: str, enum: str | None) -> None:
    assert normalize_conversion_type(word) == enum


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"),
        ("2026-11-22T10:00:00.123456+02:00", "2026-11-22T08:00:00Z"),
        ("2026-11-22 10:00:00", "2026-11-22T10:00:00Z"),
        (1_795_334_400, "2026-11-22T08:00:00Z"),
        (1_795_334_400_000, "2026-11-22T08:00:00Z"),
        (datetime(2026, 11, 22, 1, 2, 3), "2026-11-22T01:02:03Z"),
    ],
)
def test_event_time_forms_become_utc_z(raw: Any, expected: str) -> None:
    assert convert({**SEED, "eventTime": raw}).event_time == expected


def test_event_age_limit_differs_per_api() -> None:
    ten_days_old = (NOW - timedelta(days=10)).isoformat()
    assert problems({**SEED, "eventTime": ten_days_old}, DSP) == ["EVENT_TOO_OLD"]
    assert convert({**SEED, "eventTime": ten_days_old}, EVENTS).event_time.startswith("2026-11-12")
    assert problems({**SEED, "eventTime": (NOW - timedelta(days=22)).isoformat()}, EVENTS) == [
        "EVENT_TOO_OLD"
    ]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"eventTime": None}, "MISSING_FIELD"),
        ({"eventTime": "yesterday"}, "INVALID_TIMESTAMP"),
        ({"eventTime": "2027-06-01T00:00:00Z"}, "EVENT_IN_FUTURE"),
        ({"conversionType": "refund"}, "INVALID_CONVERSION_TYPE"),
        ({"conversionValue": "NaN"}, "INVALID_NUMBER"),
        ({"conversionValue": "1e300"}, "VALUE_OUT_OF_RANGE"),
        ({"conversionValue": True}, "INVALID_NUMBER"),
        ({"currency": "XYZ"}, "INVALID_CURRENCY"),
        ({"currency": "CHF"}, "INVALID_CURRENCY"),  # not among the DSP API's 18
        ({"countryCode": "Narnia"}, "INVALID_COUNTRY"),
        ({"countryCode": None}, "MISSING_FIELD"),
        ({"unitsSold": 1.5}, "INVALID_UNITS_SOLD"),
        ({"unitsSold": 0}, "INVALID_UNITS_SOLD"),
        ({"source": "EMAIL_BLAST"}, "INVALID_SOURCE"),
        ({"advertiserId": "ENTITY2X3Y"}, "INVALID_ADVERTISER_ID"),
        ({"userIdentifier": "   "}, "MISSING_MATCH_KEY"),
        ({"userIdentifier": None, "email": "@@@"}, "MISSING_MATCH_KEY"),
        ({"userIdentifier": "a" * 64}, "UNKNOWN_IDENTIFIER_TYPE"),
        ({"limitedDataUse": "maybe"}, "INVALID_FLAG"),
    ],
)
def test_local_checks_reject_with_a_reason(overrides: dict[str, Any], code: str) -> None:
    assert code in problems({**SEED, **overrides})


def test_every_problem_of_a_record_is_reported() -> None:
    codes = problems({"order_id": "x", "conversionType": "refund", "currency": "XYZ"})
    expected = {"MISSING_FIELD", "INVALID_CONVERSION_TYPE", "INVALID_CURRENCY", "MISSING_MATCH_KEY"}
    assert expected <= set(codes)


def test_hash_given_as_identifier_needs_its_type() -> None:
    hashed = sha256_hex("jane.doe@example.com").upper()
    conversion = convert({**SEED, "userIdentifier": hashed}, user_identifier_type="EMAIL")
    assert conversion.match_keys == [("EMAIL", hashed.lower())]


def test_currency_accepted_by_events_api_only() -> None:
    assert convert({**SEED, "currency": "CHF"}, EVENTS).currency == "CHF"


def test_dedupe_id_is_deterministic_and_ignores_sdc_metadata() -> None:
    first = convert(SEED).dedupe_id
    again = convert({**SEED, "conversionValue": 1}).dedupe_id  # same key property
    assert first == again
    assert first.startswith("tadc-")
    assert convert({**SEED, "order_id": "A-2"}).dedupe_id != first
    content_a = dedupe_seed("s", {"a": 1, "_sdc_extracted_at": "x"}, [])
    content_b = dedupe_seed("s", {"a": 1, "_sdc_extracted_at": "y"}, [])
    assert content_a == content_b
    assert convert({**SEED, "eventId": "order-9"}).dedupe_id == "order-9"
