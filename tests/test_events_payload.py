"""Events API (`api: events`): payload building, request shape, 207 and error reading.

Every payload built here is also checked against Amazon's `CreateEventRequest` schema.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from target_amazon_dsp_conversions.amazon_fields import EVENTS_RULES as RULES
from target_amazon_dsp_conversions.apis.base import Endpoint
from target_amazon_dsp_conversions.apis.events import PARTNER, EventsApi
from target_amazon_dsp_conversions.conversion import build_conversion, dedupe_seed
from target_amazon_dsp_conversions.errors import Problem, Rejected
from target_amazon_dsp_conversions.mapping import RecordMapping
from tests.openapi_schemas import request_errors, schema_errors

NOW = datetime(2026, 5, 20, 12, 0, 0, tzinfo=timezone.utc)
EMAIL_HASH = hashlib.sha256(b"jane.doe@example.com").hexdigest()


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
    return event


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
        record(unitsSold=2, dataSetName="crm_offline-sales", limitedDataUse=True, name="store")
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
        "matchKeys": [{"type": "EMAIL", "values": [EMAIL_HASH]}],
        "eventId": event["eventId"],
        "partner": PARTNER,
        "value": 19.99,
        "currencyCode": "EUR",
        "unitsSold": 2,
        "dataProcessingOptions": {"options": "LIMITED_DATA_USE"},
    }


def test_optional_fields_are_left_out_when_the_record_has_none() -> None:
    event = build(record(conversionValue=None, currency=None))

    assert set(event) == {
        "eventDescription", "eventTime", "countryCode", "matchKeys", "eventId", "partner",
    }  # fmt: skip
    assert set(event["eventDescription"]) == {
        "name", "conversionType", "eventSource", "eventIngestionMethod",
    }  # fmt: skip
    assert event["eventDescription"]["name"] == "purchase"  # the type when there is no name


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
    assert problems(record(conversionType=None, name="store")) == [
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


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ipAddress": "999.1.1.1"}, "ipAddress"),
        ({"amazonUserData": "maybe"}, "amazonUserData"),
        ({"amazonUserData": "granted", "amazonAdStorage": "perhaps"}, "amazonAdStorage"),
        ({"amazonAdStorage": "granted"}, "amazonUserData"),
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
        None,
        [Problem("INTERNAL_ERROR", "try later", None)],
        None,
    ]


def test_207_keeps_every_error_of_an_item() -> None:
    body = {
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

    assert results[0] is None
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

    assert results == [None, [Problem("AMAZON_REJECTED", "rejected by Amazon", None)]]
    assert EventsApi().read_multi_status(None, 2) == [None, None]
    assert EventsApi().read_multi_status({"success": []}, 1) == [None]


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
