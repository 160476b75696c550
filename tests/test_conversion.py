"""Unit tests: mapping and conversion fields -> checked conversion (SPEC §3)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from target_amazon_dsp_conversions.amazon_fields import ApiRules
from target_amazon_dsp_conversions.apis.rules import DSP_RULES as DSP
from target_amazon_dsp_conversions.apis.rules import EVENTS_RULES as EVENTS
from target_amazon_dsp_conversions.conversion import (
    EVENT_NAMES,
    Conversion,
    build_conversion,
    canonical_name,
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


# Issue 24: Amazon's CreateEventDescription calls the name part of "the composite key that
# uniquely identifies an event" (openapi/events-api.json), so each spelling of one conversion type
# must give one name, in both APIs.
SPELLINGS_OF_A_PURCHASE = [
    "purchase", "Purchase", " PURCHASE ", "purchases", "order", "Order",
    "OFF_AMAZON_PURCHASES", "off_amazon_purchases", "off-amazon-purchases", "Off Amazon Purchases",
    "offline_purchase",
]  # fmt: skip


@pytest.mark.parametrize("rules", [DSP, EVENTS], ids=["dsp", "events"])
@pytest.mark.parametrize("spelling", SPELLINGS_OF_A_PURCHASE)
def test_each_spelling_of_a_type_gives_one_name(spelling: str, rules: ApiRules) -> None:
    conversion = convert({**SEED, "conversionType": spelling}, rules)
    assert (conversion.conversion_type, conversion.name) == ("OFF_AMAZON_PURCHASES", "purchase")
    assert canonical_name(spelling) == "purchase"


@pytest.mark.parametrize(
    ("spellings", "name"),
    [
        (["signup", "Sign Up", "SIGN_UP", "registration"], "sign_up"),
        (["add_to_cart", "AddToCart", "Add To Cart", "ADD_TO_SHOPPING_CART"], "add_to_cart"),
        (["page-view", "pageview", "PAGE_VIEW"], "page_view"),
        (["Lead", "LEAD"], "lead"),
        (["subscription", "Subscribe"], "subscribe"),
        (["begin_checkout", "CHECKOUT"], "checkout"),
    ],
)
def test_other_types_have_one_name_each(spellings: list[str], name: str) -> None:
    assert {convert({**SEED, "conversionType": s}).name for s in spellings} == {name}


def test_app_first_start_is_named_in_the_events_api() -> None:
    for spelling in ("app_install", "first_open", "MOBILE_APP_FIRST_START"):
        assert convert({**SEED, "conversionType": spelling}, EVENTS).name == "first_open"


def test_every_amazon_type_has_a_name_that_reads_back_as_that_type() -> None:
    assert set(EVENT_NAMES) == EVENTS.conversion_types
    for conversion_type, name in EVENT_NAMES.items():
        assert normalize_conversion_type(name) == conversion_type
    assert len(set(EVENT_NAMES.values())) == len(EVENT_NAMES)


@pytest.mark.parametrize("field", ["eventName", "event_name", "conversionName", "conversion_name"])
def test_a_name_the_record_gives_is_sent_as_given(field: str) -> None:
    assert convert({**SEED, field: " Store Purchase "}).name == "Store Purchase"
    # Even one that spells a type: the record chose it.
    assert convert({**SEED, field: "Purchase"}).name == "Purchase"


def test_a_mapped_name_is_sent_as_given() -> None:
    record = {**SEED, "campaign_event": "Spring_Sale"}
    assert convert(record, mapping={"name": "campaign_event"}).name == "Spring_Sale"


def test_names_that_spell_no_type_are_their_own_canonical_form() -> None:
    assert canonical_name(" Store Purchase ") == "Store Purchase"
    assert canonical_name("refund") == "refund"


def test_an_unknown_type_is_one_problem_not_two() -> None:
    assert problems({**SEED, "conversionType": "refund"}) == ["INVALID_CONVERSION_TYPE"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"),
        ("2026-11-22T10:00:00.123456+02:00", "2026-11-22T08:00:00Z"),
        ("2026-11-22 10:00:00", "2026-11-22T10:00:00Z"),
        (1_795_334_400, "2026-11-22T08:00:00Z"),
        (1_795_334_400_000, "2026-11-22T08:00:00Z"),
        # Epoch seconds and milliseconds as text, as CSV taps give them.
        ("1795334400", "2026-11-22T08:00:00Z"),
        (" 1795334400000 ", "2026-11-22T08:00:00Z"),
        ("1795334400.9", "2026-11-22T08:00:00Z"),
        ("20261122", "2026-11-22T00:00:00Z"),  # 8 digits: an ISO 8601 basic date
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
        ({"countryCode": "ZZ"}, "INVALID_COUNTRY"),  # a pseudo-code of the Events API only
        ({"conversionValue": "-0.01"}, "VALUE_OUT_OF_RANGE"),  # a purchase's value is money
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


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("raw", [-0.0, "-0.0", Decimal("-0.00"), "-0.004", 0])
def test_zero_is_sent_as_zero_never_as_minus_zero(raw: Any) -> None:
    for rules in (DSP, EVENTS):
        value = convert({**SEED, "conversionValue": raw}, rules).value
        assert value == 0
        assert repr(float(value)) == "0.0"  # what the payloads write


def test_negative_values_are_refused_for_purchases_only_in_both_apis() -> None:
    # Both OpenAPI files, `value` of OFF_AMAZON_PURCHASES: "Must be a minimum of 0" / "min 0";
    # other types: "Can be negative".
    for rules in (DSP, EVENTS):
        assert problems({**SEED, "conversionValue": -5}, rules) == ["VALUE_OUT_OF_RANGE"]
        signup = convert({**SEED, "conversionType": "signup", "conversionValue": -5}, rules)
        assert signup.value == Decimal("-5.00")
    # DSP without a type: the definition decides what the value is, so Amazon judges it.
    untyped = {k: v for k, v in SEED.items() if k != "conversionType"}
    assert convert({**untyped, "eventName": "store", "conversionValue": -5}).value == -5


# --------------------------------------------------------------------------- dedupe IDs


def test_own_dedupe_id_longer_than_256_characters_becomes_its_hash() -> None:
    start = "order/" + "x" * 250
    first = convert({**SEED, "dedupeId": start + "-first"}).dedupe_id
    second = convert({**SEED, "dedupeId": start + "-second"}).dedupe_id

    assert first != second  # a cut at 256 would have made them one ID
    assert first == "tadc-" + sha256_hex(start + "-first")[:40]
    exactly = "y" * 256
    assert convert({**SEED, "dedupeId": exactly}).dedupe_id == exactly


# --------------------------------------------------------------------------- advertisers, countries


def test_entity_account_ids_for_the_events_api_only() -> None:
    # Amazon's custom-attributes sample (amzn/ads-advanced-tools-docs, .env.example) sends the
    # account's entity ID as Amazon-Ads-AccountId; the DSP path takes the numeric ID only.
    record = {**SEED, "advertiserId": "ENTITY2X3Y4Z5A6B7C"}
    assert convert(record, EVENTS).advertiser_id == "ENTITY2X3Y4Z5A6B7C"
    assert problems(record, DSP) == ["INVALID_ADVERTISER_ID"]
    assert convert(SEED, EVENTS, advertiser_id="ENTITY9Z").advertiser_id == "ENTITY9Z"
    for bad in ("ENTITY", "ENTITY 1", "entity2x3y", "ENTITY2X3Y\r\nX-Other: 1"):
        assert problems({**SEED, "advertiserId": bad}, EVENTS) == ["INVALID_ADVERTISER_ID"]


def test_entity_id_refusal_says_why_per_api() -> None:
    with pytest.raises(Rejected) as dsp:
        convert({**SEED, "advertiserId": "ENTITY2X3Y"}, DSP)
    assert "not an entity ID" in dsp.value.problems[0].message
    with pytest.raises(Rejected) as events:
        convert({**SEED, "advertiserId": "12.5"}, EVENTS)
    assert "ENTITY" in events.value.problems[0].message


@pytest.mark.parametrize(
    ("given", "code"), [("ZZ", "ZZ"), ("other", "OTHER"), ("OTHER_EEA", "OTHER_EEA")]
)
def test_country_pseudo_codes_for_the_events_api_only(given: str, code: str) -> None:
    # CountryCode of the Events schema ends with ZZ, OTHER, OTHER_EEA; DSP: ISO codes.
    assert convert({**SEED, "countryCode": given}, EVENTS).country_code == code
    assert problems({**SEED, "countryCode": given}, DSP) == ["INVALID_COUNTRY"]
    assert convert({**SEED, "countryCode": "de_DE"}, EVENTS).country_code == "DE"


# --------------------------------------------------------------------------- match keys


def test_user_identifier_type_applies_only_where_the_shape_says_nothing() -> None:
    hashed = sha256_hex("jane.doe@example.com")
    phone = convert({**SEED, "userIdentifier": "+1 (555) 123-4567"}, user_identifier_type="EMAIL")
    maid = convert(
        {**SEED, "userIdentifier": "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
        user_identifier_type="EMAIL",
    )
    email = convert({**SEED, "userIdentifier": hashed.upper()}, user_identifier_type="EMAIL")

    assert phone.match_keys == [("PHONE", sha256_hex("15551234567"))]
    assert maid.match_keys == [("MAID", "6D92078A-8246-4BA4-AE5B-76104861E7DC")]
    assert email.match_keys == [("EMAIL", hashed)]


def test_unusable_user_identifier_beside_other_keys_is_dropped_and_counted() -> None:
    record = {**SEED, "email": "jane@example.com"}
    untyped = convert({**record, "userIdentifier": "a" * 64})
    broken = convert({**record, "userIdentifier": "555-0100"})  # a PHONE without area code
    duplicate = convert({**record, "userIdentifier": "other@example.com"})

    for conversion in (untyped, broken):
        assert conversion.match_keys == [("EMAIL", sha256_hex("jane@example.com"))]
        assert conversion.dropped_keys == ("userIdentifier",)
    assert duplicate.dropped_keys == ()  # the email column already gave an EMAIL


def test_dropped_match_keys_are_named_by_type() -> None:
    conversion = convert(
        {**SEED, "state": "shipped", "postalCode": "J9T", "countryCode": "CA", "phone": "12"}
    )
    assert [t for t, _ in conversion.match_keys] == ["EMAIL"]
    assert conversion.dropped_keys == ("PHONE", "STATE", "POSTAL")
    # A key type the API does not have is no drop worth counting.
    assert convert({**SEED, "realId": "AXM-1"}).dropped_keys == ()
    assert dict(convert({**SEED, "realId": "AXM-1"}, EVENTS).match_keys)["REAL_ID"] == "AXM-1"
    assert convert(SEED).dropped_keys == ()


def missing_key_message(record: dict[str, Any], rules: ApiRules = DSP, **settings: Any) -> str:
    with pytest.raises(Rejected) as caught:
        convert(record, rules, **settings)
    [problem] = [p for p in caught.value.problems if p.field in ("matchKeys", "userIdentifier")]
    return f"{problem.code}: {problem.message}"


def test_no_usable_match_key_says_what_was_dropped_and_why_never_the_value() -> None:
    record = {**SEED, "userIdentifier": None, "email": "jane.doe at example", "state": "shipped"}
    message = missing_key_message({**record, "countryCode": "DE"})

    assert message == (
        "MISSING_MATCH_KEY: no usable match key: email dropped (not an email address "
        "(local@domain.tld)), state dropped (a status word, not a region)"
    )
    assert "jane" not in message
    assert "shipped" not in message
    assert missing_key_message(record).endswith("state dropped (not a region of US)")


def test_no_usable_match_key_reasons_per_api_and_identifier() -> None:
    assert missing_key_message({**SEED, "userIdentifier": None, "realId": "AXM-1"}) == (
        "MISSING_MATCH_KEY: no usable match key: realId dropped (not supported by the dsp API)"
    )
    assert missing_key_message({**SEED, "userIdentifier": "+1 555 0100"}) == (
        "MISSING_MATCH_KEY: no usable match key: userIdentifier dropped (read as PHONE: not a "
        "complete phone number of US)"
    )
    assert missing_key_message({**SEED, "userIdentifier": "a" * 64, "phone": "12"}) == (
        "UNKNOWN_IDENTIFIER_TYPE: the type of userIdentifier cannot be inferred; set "
        "user_identifier_type; no other match key is usable: phone dropped (not a complete "
        "phone number of US)"
    )
    assert missing_key_message({**SEED, "userIdentifier": None}).startswith(
        "MISSING_MATCH_KEY: no match key: the record has none of email, phone"
    )
