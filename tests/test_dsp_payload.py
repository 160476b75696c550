"""Unit tests: DSP payload, request and 207 reading, against Amazon's schema (test-tree copy)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from target_amazon_dsp_conversions.apis.base import ACCEPTED, NOT_ACKNOWLEDGED, DefinitionQuery
from target_amazon_dsp_conversions.apis.dsp import DefinitionKinds, DspApi
from target_amazon_dsp_conversions.apis.dsp_definitions import DefinitionResolver
from target_amazon_dsp_conversions.conversion import Conversion
from target_amazon_dsp_conversions.endpoints import Endpoint
from target_amazon_dsp_conversions.errors import SettingError
from target_amazon_dsp_conversions.identity import sha256_hex
from target_amazon_dsp_conversions.startup_checks import checked_settings
from tests.openapi_schemas import request_errors

API = DspApi()


class ListedDefinitions:
    """The definitions calls, answered from a list (as `DefinitionCalls` would)."""

    def __init__(self, *definitions: dict[str, Any]) -> None:
        self.definitions = list(definitions)

    def list_all(self, advertiser: str) -> list[dict[str, Any]]:
        return self.definitions

    def create(self, definition: dict[str, Any], advertiser: str) -> Any:
        raise AssertionError("nothing is created here")


def event_bytes(c: Conversion, *listed: dict[str, Any]) -> bytes:
    """The event as the run sends it: encoded, then completed with its resolved definition
    (looked up in `listed`; without any, as in a dry run)."""
    calls = ListedDefinitions(*listed) if listed else None
    kinds = DefinitionKinds(
        DefinitionResolver(configured={}, create_missing=False, calls=calls)  # type: ignore[arg-type]
    )
    encoded = API.encode(c)
    return kinds.resolve(encoded.definition).complete(encoded.body, encoded.purchase_fields)


def event_of(c: Conversion, *listed: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(event_bytes(c, *listed))
    return event


def conversion(**overrides: object) -> Conversion:
    fields: dict[str, object] = {
        "event_time": "2026-11-22T12:00:00Z",
        "conversion_type": "OFF_AMAZON_PURCHASES",
        "name": "store_purchase",
        "country_code": "US",
        "source": "SERVER_TO_SERVER",
        "advertiser_id": "1234567890",
        "dedupe_id": "order-778899",
        "match_keys": [("EMAIL", sha256_hex("jane.doe@example.com")), ("MAID", "abc-123")],
        "definition_id": "cd-0001",
        "value": Decimal("129.99"),
        "currency": "USD",
        "units_sold": 2,
    }
    fields.update(overrides)
    return Conversion(**fields)  # type: ignore[arg-type]


def body_of(*conversions: Conversion) -> dict[str, object]:
    encoded = [event_bytes(c) for c in conversions]
    request = API.build_request(
        ("1234567890", "SERVER_TO_SERVER"),
        encoded,
        Endpoint("https://advertising-api.amazon.com", "client", "333"),
    )
    return json.loads(request.body)


def test_event_payload_matches_amazons_field_names() -> None:
    event = event_of(conversion(limited_data_use=True))
    assert event == {
        "conversionDefinitionId": "cd-0001",
        "name": "store_purchase",
        "timestamp": "2026-11-22T12:00:00Z",
        "countryCode": "US",
        "matchKeys": [
            {"type": "EMAIL", "values": [sha256_hex("jane.doe@example.com")]},
            {"type": "MAID", "values": ["abc-123"]},
        ],
        "clientDedupeId": "order-778899",
        "value": 129.99,
        "currencyCode": "USD",
        "unitsSold": 2,
        "dataProcessingOptions": "LIMITED_DATA_USE",
    }


def test_currency_and_units_sold_only_for_purchases() -> None:
    # ConversionEventDataV1.unitsSold: "Only applicable for OFF_AMAZON_PURCHASES conversion
    # type"; the same for currencyCode (reference/amazon-ads-api.md §12), as in events mode.
    signup = event_of(conversion(conversion_type="SIGN_UP", value=Decimal("-2.50")))
    assert "unitsSold" not in signup
    assert "currencyCode" not in signup
    assert signup["value"] == -2.5  # a non-monetary value "can be negative"


def test_without_a_conversion_type_the_definitions_type_decides_on_purchase_fields() -> None:
    untyped = conversion(conversion_type=None)
    listed = {"conversionDefinitionId": "cd-0001", "conversionType": "SIGN_UP"}
    signup = event_of(untyped, listed)
    assert ("unitsSold" in signup, "currencyCode" in signup) == (False, False)
    purchase = event_of(untyped, {**listed, "conversionType": "OFF_AMAZON_PURCHASES"})
    assert (purchase["currencyCode"], purchase["unitsSold"]) == ("USD", 2)
    unknown = event_of(untyped)  # a type nobody knows (dry run): left to Amazon
    assert (unknown["currencyCode"], unknown["unitsSold"]) == ("USD", 2)
    assert request_errors("dsp", body_of(untyped)) == []


def test_currency_alone_waits_for_the_type_too() -> None:
    untyped = conversion(conversion_type=None, units_sold=None)
    encoded = API.encode(untyped)
    assert b"currencyCode" not in encoded.body
    assert encoded.purchase_fields == b',"currencyCode":"USD"'
    listed = {"conversionDefinitionId": "cd-0001", "conversionType": "LEAD"}
    assert "currencyCode" not in event_of(untyped, listed)


def test_request_body_validates_against_amazons_schema() -> None:
    body = body_of(conversion(), conversion(value=None, currency=None, units_sold=None))
    assert body["source"] == "SERVER_TO_SERVER"
    assert request_errors("dsp", body) == []


def test_request_headers_and_url() -> None:
    request = API.build_request(
        ("1234567890", "AMAZON_AD_TAG"),
        [b"{}"],
        Endpoint("https://advertising-api-eu.amazon.com", "amzn1.application-oa2-client.x", None),
    )
    assert request.url == (
        "https://advertising-api-eu.amazon.com/accounts/1234567890/dsp/"
        "conversionDefinitions/eventData"
    )
    assert request.headers["Content-Type"] == "application/vnd.dspconversioneventimport.v1+json"
    assert request.headers["Amazon-Advertising-API-ClientId"] == "amzn1.application-oa2-client.x"
    assert request.headers["Amazon-Ads-AccountId"] == "1234567890"
    assert "Amazon-Advertising-API-Scope" not in request.headers
    assert json.loads(request.body)["source"] == "AMAZON_AD_TAG"


def test_multi_status_indexes_count_from_one() -> None:
    body = {
        "success": [{"index": 1, "message": "ok"}, {"index": 3, "message": "ok"}],
        "error": [
            {
                "index": 2,
                "code": "INVALID_ARGUMENT",
                "message": "bad event",
                "errors": [
                    {"errorType": "INVALID_ARGUMENT", "fieldName": "timestamp", "message": "old"}
                ],
            },
            {"index": 99, "code": "X", "message": "not an item of this request"},
        ],
    }
    results = API.read_multi_status(body, 3)
    assert results[0] is ACCEPTED
    assert results[2] is ACCEPTED
    assert isinstance(results[1], list)
    assert [(p.code, p.field) for p in results[1]] == [("INVALID_ARGUMENT", "timestamp")]
    assert "bad event" in results[1][0].message


def test_multi_status_items_in_neither_list_are_not_acknowledged() -> None:
    # BatchImportConversionEventDataResponseV1 lists items in `success` ({index, message}) or
    # `error` ({index, code, message, errors}), indexed from 1 (openapi/dsp-conversions-api.json).
    body = {"success": [{"index": 1, "message": "ok"}, {"index": 0, "message": "no item"}]}
    assert API.read_multi_status(body, 3) == [ACCEPTED, NOT_ACKNOWLEDGED, NOT_ACKNOWLEDGED]
    assert API.read_multi_status({}, 2) == [NOT_ACKNOWLEDGED] * 2
    request = API.build_request(
        ("1234567890", "SERVER_TO_SERVER"), [b"{}"] * 4, Endpoint("https://x", "client", None)
    )
    dry_run = API.dry_run_answer(request)
    assert dry_run.body == {"success": [{"index": i} for i in (1, 2, 3, 4)]}
    assert API.read_multi_status(dry_run.body, 4) == [ACCEPTED] * 4


def test_error_response_keeps_amazons_message() -> None:
    problem = API.read_error(403, {"message": "Forbidden", "errors": [{"message": "no access"}]})
    assert problem.code == "HTTP_403"
    assert "Forbidden" in problem.message
    assert "no access" in problem.message


# --------------------------------------------------------------------------- definitions by name
# Issue 24: a record without a name of its own is named after its type (`purchase`), and the
# keys of `conversion_definitions` and the definitions Amazon lists are matched in that form.


def _lookup(configured: dict[str, Any], *listed: dict[str, Any], **query: Any) -> str:
    resolver = DefinitionResolver(
        configured=configured,
        create_missing=False,
        calls=ListedDefinitions(*listed),  # type: ignore[arg-type]
    )
    fields = {
        "advertiser_id": "1234567890",
        "source": "SERVER_TO_SERVER",
        "name": "purchase",
        "conversion_type": "OFF_AMAZON_PURCHASES",
        "definition_id": None,
        **query,
    }
    return resolver.lookup(DefinitionQuery(**fields)).id


@pytest.mark.parametrize("key", ["purchase", "Purchase", "OFF_AMAZON_PURCHASES", "order"])
def test_setting_keys_match_in_the_canonical_form(key: str) -> None:
    # The advertiser has both IDs (a configured ID it lacks stops the run).
    ids = [{"conversionDefinitionId": i, "source": "SERVER_TO_SERVER"} for i in ("cd-1", "cd-2")]
    assert _lookup({key: "cd-1"}, *ids) == "cd-1"
    # A record's own name that spells the type finds it too; a name of its own comes first.
    assert _lookup({key: "cd-1"}, *ids, name="Purchase") == "cd-1"
    both = {key: "cd-1", "Store Purchase": "cd-2"}
    assert _lookup(both, *ids, name="Store Purchase") == "cd-2"
    assert _lookup({key: "cd-1"}, *ids, name="Store Purchase") == "cd-1"  # then the type's name


@pytest.mark.parametrize("listed_name", ["purchase", "Purchase", "OFF_AMAZON_PURCHASES", "Order"])
def test_listed_definitions_match_in_the_canonical_form(listed_name: str) -> None:
    listed = {
        "conversionDefinitionId": "cd-9",
        "name": listed_name,
        "source": "SERVER_TO_SERVER",
        "conversionType": "OFF_AMAZON_PURCHASES",
    }
    # Another purchase definition: the name, not the type alone, picks cd-9.
    store_sale = {**listed, "conversionDefinitionId": "cd-8", "name": "store_sale"}
    assert _lookup({}, store_sale, listed) == "cd-9"


def test_a_listed_definition_spelled_the_same_comes_first() -> None:
    listed = [
        {"conversionDefinitionId": f"cd-{name}", "name": name, "source": "SERVER_TO_SERVER"}
        for name in ("OFF_AMAZON_PURCHASES", "Purchase", "purchase")
    ]
    assert _lookup({}, *listed) == "cd-purchase"
    assert _lookup({}, *listed, name="Purchase") == "cd-Purchase"


def test_two_setting_keys_for_one_conversion_stop_the_run() -> None:
    with pytest.raises(SettingError) as caught:
        checked_settings(
            {"dry_run": True, "conversion_definitions": {"purchase": "cd-1", "Order": "cd-2"}}
        )
    assert str(caught.value) == (
        "setting 'conversion_definitions.Order': names the same conversion as 'purchase' "
        "(both are 'purchase'); keep one of the two keys"
    )
