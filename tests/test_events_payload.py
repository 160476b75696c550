"""Events API (`api: events`): payload building, request shape, 207 and error reading.

Every payload built here is also checked against Amazon's `CreateEventRequest` schema.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from target_amazon_dsp_conversions.apis.base import ACCEPTED, NOT_ACKNOWLEDGED
from target_amazon_dsp_conversions.apis.events import (
    INCOMPLETE_CONSENT_NOTICE,
    PARTNER,
    EventsApi,
)
from target_amazon_dsp_conversions.apis.rules import EVENTS_RULES as RULES
from target_amazon_dsp_conversions.conversion import Conversion, build_conversion, dedupe_seed
from target_amazon_dsp_conversions.endpoints import Endpoint
from target_amazon_dsp_conversions.errors import Problem, Rejected
from target_amazon_dsp_conversions.mapping import RecordMapping
from tests.openapi_schemas import load_spec, request_errors, schema_errors

NOW = datetime(2026, 5, 20, 12, 0, 0, tzinfo=timezone.utc)
EMAIL_HASH = hashlib.sha256(b"jane.doe@example.com").hexdigest()
# Two <token>.<epoch ms> pairs as EventCreate.arefMeasurementTokens describes them: "Token is a
# 10-char alphanumeric string; timestamp is 13-digit epoch milliseconds UTC ... separated by |".
AREF_TOKENS = "a1B2c3D4e5.1747742400000|Z9y8X7w6V5.1747742460000"


def record(**overrides: Any) -> dict[str, Any]:
    """A purchase with the seeds' column names, one hour old."""
    base: dict[str, Any] = {
        "order_id": "order-1",
        "eventTime": (NOW - timedelta(hours=1)).isoformat(),
        "conversionType": "purchase",
        "conversionValue": 19.99,
        "currency": "eur",
        "email": " Jane.Doe@Example.COM ",
        "countryCode": "de",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def build(
    rec: dict[str, Any],
    *,
    region: str = "NA",
    defaults: dict[str, Any] | None = None,
    mapping: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The EventCreate the target sends for `rec`; it must validate against Amazon's schema."""
    return build_with_conversion(rec, region=region, defaults=defaults, mapping=mapping)[0]


def build_with_conversion(
    rec: dict[str, Any],
    *,
    region: str = "NA",
    defaults: dict[str, Any] | None = None,
    mapping: dict[str, str] | None = None,
) -> tuple[dict[str, Any], Conversion]:
    """`build`, and the conversion after encoding (its notices for the main process)."""
    fields = RecordMapping(mapping or {}, defaults or {}).extract(rec)
    conversion = build_conversion(
        fields,
        rules=RULES,
        default_source="SERVER_TO_SERVER",
        default_advertiser_id="1234567890",
        user_identifier_type=None,
        dedupe_seed=dedupe_seed("conversions", rec, ["order_id"]),
        now=NOW,
    )
    event = EventsApi(region=region).event_payload(conversion)
    assert request_errors("events", {"events": [event]}) == []
    return event, conversion


def problems(rec: dict[str, Any], **kwargs: Any) -> list[tuple[str, str | None]]:
    """(code, field) of every reason `rec` is refused locally."""
    with pytest.raises(Rejected) as caught:
        build(rec, **kwargs)
    for problem in caught.value.problems:
        assert problem.message  # every reject says why
    return [(p.code, p.field) for p in caught.value.problems]


# --------------------------------------------------------------------------- payload


def test_purchase_event_carries_every_field_amazon_takes() -> None:
    event = build(
        record(
            unitsSold=2,
            dataSetName="crm_offline-sales",
            limitedDataUse=True,
            eventName="store",
            userAgent="Mozilla/5.0 (X11; Linux x86_64)",
            amazonAdEventKey="aek-123",
            arefMeasurementTokens=AREF_TOKENS,
            realId="AXM-1",
        )
    )

    assert event == {
        "eventDescription": {
            "name": "store",
            "conversionType": "OFF_AMAZON_PURCHASES",
            "eventSource": "OFFLINE",
            "eventIngestionMethod": "SERVER_TO_SERVER",
            "dataSetName": "crm_offline-sales",
        },
        "eventTime": "2026-05-20T11:00:00Z",
        "countryCode": "DE",
        "matchKeys": [
            {"type": "EMAIL", "values": [EMAIL_HASH]},
            {"type": "REAL_ID", "values": ["AXM-1"]},  # raw, as the schema says
        ],
        "eventId": event["eventId"],
        "partner": PARTNER,
        "value": 19.99,
        "currencyCode": "EUR",
        "unitsSold": 2,
        "dataProcessingOptions": {"options": "LIMITED_DATA_USE"},
        "deviceInfo": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)"},
        "amazonAdEventKey": "aek-123",
        "arefMeasurementTokens": AREF_TOKENS,
    }
    # Every property of Amazon's EventCreate can be filled from a record.
    schema = load_spec("events")["components"]["schemas"]["EventCreate"]["properties"]
    assert set(event) | {"consent", "customData"} == set(schema)


def test_optional_fields_are_left_out_when_the_record_has_none() -> None:
    # A lead: a purchase needs its currency (test_a_purchase_needs_a_currency).
    event = build(record(conversionType="Lead", conversionValue=None, currency=None))

    assert set(event) == {
        "eventDescription", "eventTime", "countryCode", "matchKeys", "eventId", "partner",
    }  # fmt: skip
    assert set(event["eventDescription"]) == {
        "name", "conversionType", "eventSource", "eventIngestionMethod",
    }  # fmt: skip
    assert event["eventDescription"]["name"] == "lead"  # the type's name when there is no name


def test_event_id_is_the_deterministic_dedupe_id() -> None:
    first, again = build(record()), build(record(conversionValue=5))
    other = build(record(order_id="order-2"))

    assert first["eventId"] == again["eventId"]  # same stream and key -> same ID
    assert first["eventId"] != other["eventId"]
    assert build(record(eventId="T-42"))["eventId"] == "T-42"


@pytest.mark.parametrize(
    ("given", "enum"),
    [
        ("purchase", "OFF_AMAZON_PURCHASES"),
        ("signup", "SIGN_UP"),
        ("Add to cart", "ADD_TO_SHOPPING_CART"),
        ("lead", "LEAD"),
        ("PAGE_VIEW", "PAGE_VIEW"),
        ("mobile_app_first_start", "MOBILE_APP_FIRST_START"),
    ],
)
def test_conversion_type_from_seed_words_or_amazons_enum(given: str, enum: str) -> None:
    assert build(record(conversionType=given))["eventDescription"]["conversionType"] == enum


def test_conversion_type_is_required() -> None:
    assert problems(record(conversionType=None, eventName="store")) == [
        ("MISSING_FIELD", "conversionType")
    ]
    assert problems(record(conversionType="refund")) == [
        ("INVALID_CONVERSION_TYPE", "conversionType")
    ]


def test_currency_and_units_are_sent_for_purchases_only() -> None:
    signup = build(record(conversionType="signup", conversionValue=-3, unitsSold=4))

    assert signup["value"] == -3.0  # non-monetary values may be negative
    assert "currencyCode" not in signup
    assert "unitsSold" not in signup
    assert problems(record(conversionValue=-3)) == [("VALUE_OUT_OF_RANGE", "conversionValue")]


def test_a_purchase_needs_a_currency() -> None:
    # Amazon's GTM guide for the Events API: "Currency Code: Required for Off-Amazon Purchases"
    # (reference/amazon-ads-api.md §13); no conversion definition supplies one, unlike DSP.
    assert problems(record(currency=None)) == [("MISSING_CURRENCY", "currency")]
    assert problems(record(conversionType="OFF_AMAZON_PURCHASES", currency=None)) == [
        ("MISSING_CURRENCY", "currency")
    ]
    assert build(record(currency=None), defaults={"currency": "gbp"})["currencyCode"] == "GBP"
    assert build(record(currency="usd"))["currencyCode"] == "USD"
    # Other types need none.
    assert "currencyCode" not in build(record(conversionType="lead", currency=None))


def test_value_is_rounded_to_two_decimals() -> None:
    assert build(record(conversionValue="12.345"))["value"] == 12.35


def test_event_source_defaults_to_offline_and_takes_amazons_values() -> None:
    assert build(record())["eventDescription"]["eventSource"] == "OFFLINE"
    assert build(record(eventSource="website"))["eventDescription"]["eventSource"] == "WEBSITE"
    defaults = {"eventSource": "IOS"}
    assert build(record(), defaults=defaults)["eventDescription"]["eventSource"] == "IOS"
    assert problems(record(eventSource="store")) == [("INVALID_EVENT_SOURCE", "eventSource")]


@pytest.mark.parametrize("name", ["1sales", "crm sales", "sales!", "x" * 300])
def test_data_set_name_must_follow_amazons_pattern(name: str) -> None:
    assert problems(record(dataSetName=name)) == [("INVALID_DATA_SET_NAME", "dataSetName")]


def test_limited_data_use_only_when_flagged() -> None:
    assert "dataProcessingOptions" not in build(record(limitedDataUse=False))
    assert build(record(limitedDataUse="yes"))["dataProcessingOptions"] == {
        "options": "LIMITED_DATA_USE"
    }


def test_raw_match_keys_and_hashed_ones_together() -> None:
    event = build(record(maid="AB-CD-12", matchId="LOYALTY-0042", phone="+49 30 1234567"))
    keys = {k["type"]: k["values"][0] for k in event["matchKeys"]}

    assert keys["EMAIL"] == EMAIL_HASH
    assert keys["MATCH_ID"] == "LOYALTY-0042"  # the Events API takes MATCH_ID raw
    assert keys["PHONE"] == hashlib.sha256(b"49301234567").hexdigest()
    assert "MAID" in keys


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        # The Events schema (CreateMatchKey): "REAL_ID, MERKLE_ID, KANTAR_ID, and FIP accept raw
        # identifier values"; FIP is a "Full IP address ... IPv4 and IPv6".
        ({"realId": " AXM-42 "}, {"type": "REAL_ID", "values": ["AXM-42"]}),
        ({"real_id": "AXM-42"}, {"type": "REAL_ID", "values": ["AXM-42"]}),
        ({"merkleId": "MKL-7"}, {"type": "MERKLE_ID", "values": ["MKL-7"]}),
        ({"merkle_id": "MKL-7"}, {"type": "MERKLE_ID", "values": ["MKL-7"]}),
        ({"kantarId": "KAN-9"}, {"type": "KANTAR_ID", "values": ["KAN-9"]}),
        ({"kantar_id": "KAN-9"}, {"type": "KANTAR_ID", "values": ["KAN-9"]}),
        ({"fip": "81.2.69.160"}, {"type": "FIP", "values": ["81.2.69.160"]}),
        (
            {"fip": "2A00:1450:4001:81C::200E"},
            {"type": "FIP", "values": ["2a00:1450:4001:81c::200e"]},
        ),
    ],
)
def test_vendor_ids_and_full_ip_are_raw_match_keys(
    fields: dict[str, Any], key: dict[str, Any]
) -> None:
    event = build(record(email=None, **fields))

    assert event["matchKeys"] == [key]


def test_user_agent_goes_to_device_info_cut_at_512_characters() -> None:
    # CreateDeviceInfo.userAgent: "Raw user agent string ... Max 512 characters."
    agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) " + "x" * 600

    event = build(record(user_agent=agent))

    assert event["deviceInfo"] == {"userAgent": agent[:512]}
    assert "deviceInfo" not in build(record(userAgent="  "))
    assert problems(record(userAgent={"ua": "x"})) == [("INVALID_FIELD", "userAgent")]


def test_ad_event_key_and_measurement_tokens_are_sent_as_given() -> None:
    event = build(record(amazon_ad_event_key=778899, aref_measurement_tokens=AREF_TOKENS))
    assert (event["amazonAdEventKey"], event["arefMeasurementTokens"]) == ("778899", AREF_TOKENS)
    # The pairs may come as a list, and with spaces around the separators.
    pairs = AREF_TOKENS.split("|")
    assert build(record(arefMeasurementTokens=pairs))["arefMeasurementTokens"] == AREF_TOKENS
    spaced = " | ".join(pairs)
    assert build(record(arefMeasurementTokens=spaced))["arefMeasurementTokens"] == AREF_TOKENS


@pytest.mark.parametrize(
    "tokens",
    [
        "a1B2c3D4e.1747742400000",  # a 9-character token
        "a1B2c3D4e5.1747742400",  # epoch seconds, not milliseconds
        "a1B2c3D4e5-1747742400000",
        "a1B2c3D4e5.1747742400000,Z9y8X7w6V5.1747742460000",  # not |-separated
        "a1B2c3D4e5.1747742400000|",
    ],
)
def test_measurement_tokens_amazon_cannot_read_are_refused(tokens: str) -> None:
    assert problems(record(arefMeasurementTokens=tokens)) == [
        ("INVALID_MEASUREMENT_TOKENS", "arefMeasurementTokens")
    ]


@pytest.mark.parametrize("country", ["ZZ", "OTHER", "other_eea", " OTHER_EEA "])
def test_country_pseudo_codes_of_the_events_api(country: str) -> None:
    # CountryCode enum of the Events schema: the ISO codes and ZZ, OTHER, OTHER_EEA.
    event = build(record(countryCode=country, phone="+49 30 1234567"))

    assert event["countryCode"] == country.strip().upper()
    # No country for the match keys: the phone needs its + (identity reads the code as none).
    assert {"type": "PHONE", "values": [hashlib.sha256(b"49301234567").hexdigest()]} in event[
        "matchKeys"
    ]


def test_amazon_ad_tag_source_is_refused() -> None:
    assert problems(record(source="AMAZON_AD_TAG")) == [("UNSUPPORTED_SOURCE", "source")]


def test_event_age_limit_is_21_days() -> None:
    assert build(record(eventTime=(NOW - timedelta(days=20)).isoformat()))
    assert problems(record(eventTime=(NOW - timedelta(days=22)).isoformat())) == [
        ("EVENT_TOO_OLD", "eventTime")
    ]


# --------------------------------------------------------------------------- consent


def test_consent_fields_become_amazons_consent_object() -> None:
    event = build(
        record(
            ipAddress=" 2001:DB8::1 ",
            amazonUserData="granted",
            amazonAdStorage=False,
            tcf="CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
            gpp="DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
        )
    )

    assert event["consent"] == {
        "geo": {"ipAddress": "2001:db8::1"},
        "amazonConsent": {"amznUserData": "GRANTED", "amznAdStorage": "DENIED"},
        "tcf": "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
        "gpp": "DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
    }


@pytest.mark.parametrize(
    ("fields", "consent"),
    [
        ({"ipAddress": "203.0.113.7"}, {"geo": {"ipAddress": "203.0.113.7"}}),
        ({"amazonUserData": True}, {"amazonConsent": {"amznUserData": "GRANTED"}}),
        ({"tcf": "CPXxRfAPXxRfA"}, {"tcf": "CPXxRfAPXxRfA"}),
        ({"gpp": "DBABMA~CPXx"}, {"gpp": "DBABMA~CPXx"}),
    ],
)
def test_eu_events_go_with_any_one_kind_of_consent(
    fields: dict[str, Any], consent: dict[str, Any]
) -> None:
    assert build(record(**fields), region="EU")["consent"] == consent


def test_eu_events_without_consent_are_refused() -> None:
    assert problems(record(), region="EU") == [("MISSING_CONSENT", "consent")]
    # A blank string states nothing, so it is no consent either.
    assert problems(record(tcf="  "), region="EU", defaults={"gpp": " "}) == [
        ("MISSING_CONSENT", "consent")
    ]


def test_consent_is_optional_outside_the_eu() -> None:
    assert "consent" not in build(record(), region="NA")
    assert "consent" not in build(record(), region="FE")


# The table of Amazon's GTM template (conversions_api/events_api_google_tag_manager/docs/
# getting-started/using-the-template.md, "Privacy & Consent"): consent granted / denied.
GTM_CONSENT_WORDS = [
    ("TRUE", "FALSE"),
    ("yes", "no"),
    ("1", "0"),
    ("on", "off"),
    ("enabled", "disabled"),
    ("opted_in", "opted_out"),
    ("optin", "optout"),
    ("granted", "denied"),
]


@pytest.mark.parametrize(("granted", "denied"), GTM_CONSENT_WORDS)
def test_consent_words_of_amazons_gtm_template(granted: str, denied: str) -> None:
    for given, status in ((granted, "GRANTED"), (denied, "DENIED"), (granted.upper(), "GRANTED")):
        event = build(record(amazonUserData=given, amazonAdStorage=f" {given} "))
        assert event["consent"] == {
            "amazonConsent": {"amznUserData": status, "amznAdStorage": status}
        }
    assert build(record(amazonUserData="Opted-In"))["consent"] == {
        "amazonConsent": {"amznUserData": "GRANTED"}
    }


def test_ad_storage_without_user_data_leaves_amazon_consent_out_outside_the_eu() -> None:
    # amznUserData is required inside Amazon's amazonConsent (CreateAmazonConsentFormat).
    event, conversion = build_with_conversion(record(amazonAdStorage="granted"))
    assert "consent" not in event
    assert conversion.notices == (INCOMPLETE_CONSENT_NOTICE,)

    event, conversion = build_with_conversion(
        record(amazonAdStorage="denied", ipAddress="81.2.69.160")
    )
    assert event["consent"] == {"geo": {"ipAddress": "81.2.69.160"}}
    assert conversion.notices == (INCOMPLETE_CONSENT_NOTICE,)
    assert build_with_conversion(record(amazonUserData="yes"))[1].notices == ()


def test_ad_storage_without_user_data_is_refused_in_the_eu() -> None:
    for extra in ({}, {"tcf": "CPXxRfAPXxRfA"}):
        assert problems(record(amazonAdStorage="granted", **extra), region="EU") == [
            ("INVALID_CONSENT", "amazonUserData")
        ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ipAddress": "999.1.1.1"}, "ipAddress"),
        ({"amazonUserData": "maybe"}, "amazonUserData"),
        ({"amazonUserData": "granted", "amazonAdStorage": "perhaps"}, "amazonAdStorage"),
        ({"amazonAdStorage": "perhaps"}, "amazonAdStorage"),
        ({"tcf": 12345}, "tcf"),
    ],
)
def test_unreadable_consent_is_refused(fields: dict[str, Any], field: str) -> None:
    assert problems(record(**fields)) == [("INVALID_CONSENT", field)]


# --------------------------------------------------------------------------- customData


def test_custom_data_from_an_object() -> None:
    event = build(record(customData={"brand": "acme", "store_id": 17, "size": 3.0, "x": None}))

    assert event["customData"] == [
        {"name": "brand", "value": "acme", "dataType": "STRING"},
        {"name": "store_id", "value": "17", "dataType": "INTEGER"},
        {"name": "size", "value": "3", "dataType": "INTEGER"},
    ]


def test_custom_data_numbers_as_the_reader_decodes_them() -> None:
    # Input lines are decoded with parse_float=Decimal: {"qty": 3.0} arrives as Decimal("3.0").
    custom = json.loads('{"qty": 3.0, "big": 1E+2, "neg": -0.0}', parse_float=Decimal)

    assert build(record(customData=custom))["customData"] == [
        {"name": "qty", "value": "3", "dataType": "INTEGER"},
        {"name": "big", "value": "100", "dataType": "INTEGER"},
        {"name": "neg", "value": "0", "dataType": "INTEGER"},
    ]
    assert problems(record(customData={"qty": Decimal("3.5")})) == [
        ("INVALID_CUSTOM_DATA", "customData")
    ]


def test_custom_data_booleans_as_amazon_writes_them() -> None:
    # Amazon's custom-attributes guide (amzn/ads-advanced-tools-docs,
    # custom-attributes-events-apis/docs/custom_attributes_guide.md): Boolean -> STRING
    # "true" / "false".
    custom = {"gift": True, "returned": False}

    assert build(record(customData=custom))["customData"] == [
        {"name": "gift", "value": "true", "dataType": "STRING"},
        {"name": "returned", "value": "false", "dataType": "STRING"},
    ]
    listed = [{"name": "gift", "value": True, "dataType": "STRING"}]
    assert build(record(customData=listed))["customData"][0]["value"] == "true"


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        # DataType INTEGER: "32-bit signed integer" (openapi/events-api.json, DataType).
        (2_147_483_647, {"value": "2147483647", "dataType": "INTEGER"}),
        (2_147_483_648, {"value": "2147483648", "dataType": "STRING"}),
        (3_000_000_000, {"value": "3000000000", "dataType": "STRING"}),
        (Decimal("2147483648.0"), {"value": "2147483648", "dataType": "STRING"}),
        (0, {"value": "0", "dataType": "INTEGER"}),
    ],
)
def test_custom_data_integers_beyond_32_bits_go_as_text(value: Any, sent: dict[str, str]) -> None:
    assert build(record(customData={"n": value}))["customData"] == [{"name": "n", **sent}]


def test_custom_data_declared_integer_must_fit_32_bits() -> None:
    fits = [{"name": "n", "value": "2147483647", "dataType": "INTEGER"}]
    assert build(record(customData=fits))["customData"][0]["dataType"] == "INTEGER"
    for value in ("2147483648", 3_000_000_000, "12a", True):
        beyond = [{"name": "n", "value": value, "dataType": "INTEGER"}]
        assert problems(record(customData=beyond)) == [("INVALID_CUSTOM_DATA", "customData")]


def test_custom_data_from_a_list_keeps_the_given_data_type() -> None:
    items = [
        {"name": "category", "value": "shoes"},
        {"name": "paid_at", "value": "1747742400000", "dataType": "timestamp"},
    ]

    assert build(record(customData=items))["customData"] == [
        {"name": "category", "value": "shoes", "dataType": "STRING"},
        {"name": "paid_at", "value": "1747742400000", "dataType": "TIMESTAMP"},
    ]


def test_custom_data_through_a_dotted_mapping() -> None:
    rec = record(extra={"attributes": {"brand": "acme"}})

    event = build(rec, mapping={"customData": "extra.attributes"})

    assert event["customData"] == [{"name": "brand", "value": "acme", "dataType": "STRING"}]


def test_custom_data_holds_at_most_13_entries() -> None:
    thirteen = {f"attr_{i}": f"v{i}" for i in range(13)}
    assert len(build(record(customData=thirteen))["customData"]) == 13

    fourteen = {f"attr_{i}": f"v{i}" for i in range(14)}
    assert problems(record(customData=fourteen)) == [("INVALID_CUSTOM_DATA", "customData")]


@pytest.mark.parametrize(
    "custom",
    [
        {"product id": "p1"},  # space in the name
        {"brand": "Acme Inc."},  # space and dot in the value
        {"price": 12.5},  # a dot
        [{"name": "brand"}],  # no value
        [{"name": "brand", "value": "acme", "dataType": "DATE"}],
        [{"name": "nested", "value": {"a": 1}}],
        "brand=acme",
    ],
)
def test_custom_data_amazon_would_refuse_is_refused(custom: Any) -> None:
    assert problems(record(customData=custom)) == [("INVALID_CUSTOM_DATA", "customData")]


# --------------------------------------------------------------------------- request


def test_request_shape_and_headers() -> None:
    api = EventsApi()
    events = [build(record(order_id=f"o-{i}")) for i in range(3)]
    encoded = [json.dumps(e, separators=(",", ":")).encode() for e in events]

    request = api.build_request(
        ("1234567890", "SERVER_TO_SERVER"),
        encoded,
        Endpoint(
            "https://advertising-api-eu.amazon.com",
            "amzn1.application-oa2-client.abc",
            "3333333333",
        ),
    )

    assert request.method == "POST"
    assert request.url == "https://advertising-api-eu.amazon.com/adsApi/v1/create/events"
    assert request.headers == {
        "Amazon-Ads-ClientId": "amzn1.application-oa2-client.abc",
        "Amazon-Ads-AccountId": "1234567890",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }  # no profile scope in this API; Authorization is added when sent
    assert json.loads(request.body) == {"events": events}
    assert request.item_count == 3
    assert request_errors("events", json.loads(request.body)) == []


def test_limits_are_the_events_apis() -> None:
    api = EventsApi()
    assert api.name == "events"
    assert api.rules.max_events_per_request == 500
    assert RULES.max_match_keys == 15
    assert RULES.max_event_age == timedelta(days=21)


# --------------------------------------------------------------------------- responses


def _error(index: int, *errors: dict[str, str]) -> dict[str, Any]:
    return {"index": index, "errors": list(errors)}


def test_207_indexes_count_from_zero() -> None:
    body = {
        "success": [
            {"index": 1, "event": build(record(order_id="b"))},
            {"index": 3, "event": build(record(order_id="d"))},
        ],
        "error": [
            _error(
                0,
                {
                    "code": "FIELD_VALUE_IS_INVALID",
                    "message": "eventTime is invalid",
                    "fieldLocation": "events[0].eventTime",
                },
            ),
            _error(2, {"code": "INTERNAL_ERROR", "message": "try later"}),
        ],
    }
    assert schema_errors("events", "EventMultiStatusResponse", body) == []

    results = EventsApi().read_multi_status(body, 4)

    assert results == [
        [Problem("FIELD_VALUE_IS_INVALID", "eventTime is invalid", "events[0].eventTime")],
        ACCEPTED,
        [Problem("INTERNAL_ERROR", "try later", None)],
        ACCEPTED,
    ]


def test_207_keeps_every_error_of_an_item() -> None:
    body = {
        "success": [{"index": 0, "event": build(record())}],
        "error": [
            _error(
                1,
                {"code": "FIELD_VALUE_IS_EMPTY", "message": "consent is required",
                 "fieldLocation": "events[1].consent"},
                {"code": "FIELD_VALUE_IS_INVALID", "message": "bad value",
                 "fieldLocation": "events[1].value"},
            )
        ]
    }  # fmt: skip

    results = EventsApi().read_multi_status(body, 2)

    assert results[0] is ACCEPTED
    assert results[1] == [
        Problem("FIELD_VALUE_IS_EMPTY", "consent is required", "events[1].consent"),
        Problem("FIELD_VALUE_IS_INVALID", "bad value", "events[1].value"),
    ]


def test_207_oddities_never_misplace_an_outcome() -> None:
    body = {
        "error": [
            _error(500, {"code": "BAD_REQUEST", "message": "out of range"}),
            _error(-1, {"code": "BAD_REQUEST", "message": "negative"}),
            {"index": True, "errors": [{"code": "BAD_REQUEST", "message": "bool"}]},
            {"index": "1", "errors": [{"code": "BAD_REQUEST", "message": "text"}]},
            {"index": 1},  # no details given
            "not an object",
        ]
    }

    results = EventsApi().read_multi_status(body, 2)

    # Item 0 is in neither list: not acknowledged, never counted as accepted.
    assert results == [
        NOT_ACKNOWLEDGED,
        [Problem("AMAZON_REJECTED", "rejected by Amazon", None)],
    ]
    assert EventsApi().read_multi_status(None, 2) == [NOT_ACKNOWLEDGED] * 2
    assert EventsApi().read_multi_status({"success": []}, 1) == [NOT_ACKNOWLEDGED]
    assert EventsApi().read_multi_status({"success": "all"}, 1) == [NOT_ACKNOWLEDGED]


def test_207_items_left_out_of_both_lists_are_not_acknowledged() -> None:
    # EventMultiStatusResponse lists each item in `success` ({index, event}) or in `error`
    # ({index, errors}) (openapi/events-api.json); an item in neither was not acknowledged.
    body = {
        "success": [{"index": 0, "event": build(record())}] * 2,  # one item listed twice
        "error": [_error(2, {"code": "BAD_REQUEST", "message": "bad"})],
    }
    assert schema_errors("events", "EventMultiStatusResponse", body) == []

    results = EventsApi().read_multi_status(body, 4)

    assert results == [
        ACCEPTED,
        NOT_ACKNOWLEDGED,
        [Problem("BAD_REQUEST", "bad", None)],
        NOT_ACKNOWLEDGED,
    ]
    # Listed in both: Amazon named a problem, so it is refused.
    both = {
        "success": [{"index": 0, "event": build(record())}],
        "error": [_error(0, {"code": "BAD_REQUEST", "message": "bad"})],
    }
    assert EventsApi().read_multi_status(both, 1) == [[Problem("BAD_REQUEST", "bad", None)]]


def test_a_dry_run_answer_accepts_every_event() -> None:
    endpoint = Endpoint("https://advertising-api.amazon.com", "client", None)
    request = EventsApi().build_request(("1", "SERVER_TO_SERVER"), [b"{}"] * 3, endpoint)
    answer = EventsApi().dry_run_answer(request)
    assert answer.status == 207
    assert EventsApi().read_multi_status(answer.body, 3) == [ACCEPTED] * 3


def test_read_error_states_amazons_code_and_message() -> None:
    api = EventsApi()
    body = {"code": "CONTENT_TOO_LARGE", "message": "Request body too large"}
    assert schema_errors("events", "ContentTooLargeResponseContent", body) == []

    assert api.read_error(413, body) == Problem(
        "HTTP_413", "HTTP 413 CONTENT_TOO_LARGE: Request body too large", None
    )
    assert api.read_error(403, {"code": "FORBIDDEN", "message": "No access"}).message == (
        "HTTP 403 FORBIDDEN: No access"
    )
    assert api.read_error(502, "<html>Bad Gateway</html>") == Problem("HTTP_502", "HTTP 502", None)
