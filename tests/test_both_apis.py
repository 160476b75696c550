"""The console script against the emulator in both modes, `api: dsp` and `api: events`.

The same inputs go through both APIs so that the modes stay equal in behaviour; where the
APIs differ (event age, ad-tag source, consent) the tests say so.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEED_SCHEMA, cli_error_lines, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator, Faults
from tests.emulator.server import RecordedRequest
from tests.openapi_schemas import request_errors

APIS = ("dsp", "events")
MAX_EVENTS = {"dsp": 100, "events": 500}
EVENTS_KEY = {"dsp": "eventData", "events": "events"}
DEDUPE_KEY = {"dsp": "clientDedupeId", "events": "eventId"}
TIME_KEY = {"dsp": "timestamp", "events": "eventTime"}
SCHEMA = {
    **SEED_SCHEMA,
    "properties": {
        **SEED_SCHEMA["properties"],
        "dedupeId": {"type": "string"},
        "name": {"type": "string"},
        "eventName": {"type": "string"},
        "state": {"type": "string"},
        "ipAddress": {"type": "string"},
        "amazonUserData": {"type": "string"},
        "tcf": {"type": "string"},
        "gpp": {"type": "string"},
    },
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ago(**delta: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat()


def uploads(emulator: AmazonAdsEmulator, api: str) -> list[RecordedRequest]:
    """Upload requests the emulator answered, each checked as Amazon would see it."""
    found = [
        r
        for r in emulator.requests
        if (r.path.endswith("/eventData") if api == "dsp" else r.path == "/adsApi/v1/create/events")
    ]
    for request in found:
        assert request_errors(api, request.body) == []
        assert 1 <= len(request.body[EVENTS_KEY[api]]) <= MAX_EVENTS[api]
        assert request.headers["Authorization"].startswith("Bearer Atza|")
        assert request.headers["Amazon-Ads-AccountId"] == "1234567890"
        if api == "dsp":
            assert request.headers["Amazon-Advertising-API-ClientId"] == emulator.client_id
            assert request.headers["Amazon-Advertising-API-Scope"] == "3333333333"
        else:
            assert request.headers["Amazon-Ads-ClientId"] == emulator.client_id
            assert "Amazon-Advertising-API-Scope" not in request.headers
            assert request.headers["Content-Type"] == "application/json"
    return found


def accepted_by_id(emulator: AmazonAdsEmulator, api: str) -> dict[str, dict[str, Any]]:
    return {e[DEDUPE_KEY[api]]: e for e in emulator.accepted if e["_api"] == api}


def rejects_by_order(run: Any) -> dict[str, list[dict[str, Any]]]:
    return {r["record"]["order_id"]: r["errors"] for r in run.rejects}


# --------------------------------------------------------------------------- both APIs


@pytest.mark.parametrize("api", APIS)
def test_seed_records_upload_without_mapping(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(1100)]

    run = run_target(
        emulator.target_config(api=api), singer_stream(records, state_every=250), tmp_path
    )

    assert run.returncode == 0, run.stderr
    assert run.report["records_read"] == 1100
    assert run.report["records_accepted"] == 1100
    assert run.report["records_rejected"] == 0
    assert run.report["match_keys"] == {"EMAIL": 1100}
    assert run.rejects == []
    assert sorted(emulator.accepted_ids().values()) == [1] * 1100
    sizes = sorted(len(r.body[EVENTS_KEY[api]]) for r in uploads(emulator, api))
    assert sizes == ([100] * 11 if api == "dsp" else [100, 500, 500])
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 1100}}}
    event = accepted_by_id(emulator, api)
    assert len(event) == 1100
    first = next(iter(event.values()))
    assert first["matchKeys"][0]["type"] == "EMAIL"
    if api == "events":
        assert first["partner"] == "target_amazon_dsp_conversions"
        assert first["eventDescription"]["conversionType"] == "OFF_AMAZON_PURCHASES"
        assert first["eventDescription"]["eventSource"] == "OFFLINE"
        assert first["eventDescription"]["eventIngestionMethod"] == "SERVER_TO_SERVER"
    else:
        assert first["conversionDefinitionId"] == "cd-purchase"


@pytest.mark.parametrize("api", APIS)
def test_mapping_with_dotted_paths_and_defaults(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    plus_two = timezone(timedelta(hours=2))
    placed = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(microsecond=0)
    records = [
        {
            "id": i,
            "meta": {"placed": placed.astimezone(plus_two).isoformat(), "kind": kind},
            "order": {"ref": f"T-{i}", "total": "12.499"},
            "customer": {"contact": {"mail": f" Buyer.{i}@Example.COM "}, "country": country},
        }
        for i, (kind, country) in enumerate(
            [("purchase", "de"), ("signup", None), ("add_to_cart", "en-GB")]
        )
    ]
    nested = {"type": "object"}  # its properties not listed: any path into it may be there
    columns = {"id": {"type": "integer"}, "meta": nested, "order": nested, "customer": nested}
    schema = {"type": "object", "properties": columns}
    config = emulator.target_config(
        api=api,
        mapping={
            "eventTime": "meta.placed",
            "conversionType": "meta.kind",
            "dedupeId": "order.ref",
            "conversionValue": "order.total",
            "email": "customer.contact.mail",
            "countryCode": "customer.country",
        },
        defaults={"countryCode": "US", "currency": "EUR", "unitsSold": 2},
    )

    run = run_target(config, singer_stream(records, schema=schema, key_properties=["id"]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 3
    assert run.rejects == []
    uploads(emulator, api)
    events = accepted_by_id(emulator, api)
    assert sorted(events) == ["T-0", "T-1", "T-2"]
    expected = {  # (conversion type, definition, country) per order
        "T-0": ("OFF_AMAZON_PURCHASES", "cd-purchase", "DE"),
        "T-1": ("SIGN_UP", "cd-signup", "US"),
        "T-2": ("ADD_TO_SHOPPING_CART", "cd-add-to-cart", "GB"),
    }
    for ref, (enum, definition, country) in expected.items():
        event = events[ref]
        assert event[TIME_KEY[api]] == placed.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert event["value"] == 12.5
        assert event["countryCode"] == country
        email = f"buyer.{ref[2:]}@example.com"
        assert event["matchKeys"] == [{"type": "EMAIL", "values": [sha256(email)]}]
        if api == "dsp":
            assert event["conversionDefinitionId"] == definition
        else:
            assert event["eventDescription"]["conversionType"] == enum
        # Amazon takes currency and units for purchases only, in both APIs.
        is_purchase = enum == "OFF_AMAZON_PURCHASES"
        assert ("currencyCode" in event, "unitsSold" in event) == (is_purchase, is_purchase)
    assert (events["T-0"]["currencyCode"], events["T-0"]["unitsSold"]) == ("EUR", 2)


@pytest.mark.parametrize("api", APIS)
def test_good_amazon_rejected_and_locally_invalid_records(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i, dedupeId=f"order-{i}") for i in range(40)]
    emulator.poison_ids["order-5"] = ("FIELD_VALUE_IS_INVALID", "value refused by Amazon", "value")
    emulator.poison_ids["order-17"] = ("INTERNAL_ERROR", "poisoned for the test")
    records += [
        {k: v for k, v in seed_record(100).items() if k != "eventTime"},
        seed_record(101, userIdentifier=None),
        seed_record(102, currency="XXX"),
        seed_record(103, eventTime=ago(days=30)),
        seed_record(104, countryCode="Narnia"),
    ]

    run = run_target(
        emulator.target_config(api=api),
        singer_stream(records, schema=SCHEMA, state_every=10),
        tmp_path,
    )

    assert run.returncode == 0, run.stderr
    report = run.report
    assert report["records_read"] == 45
    assert report["records_accepted"] == 38
    assert report["records_rejected"] == 7
    assert report["rejects_by_code"] == {
        "FIELD_VALUE_IS_INVALID": 1,
        "INTERNAL_ERROR": 1,
        "MISSING_FIELD": 1,
        "MISSING_MATCH_KEY": 1,
        "INVALID_CURRENCY": 1,
        "EVENT_TOO_OLD": 1,
        "INVALID_COUNTRY": 1,
    }
    rejects = rejects_by_order(run)
    assert len(run.rejects) == 7
    for errors in rejects.values():
        for error in errors:
            assert set(error) == {"code", "message", "field"}
            assert error["message"]
    # (code, field) of the first reason, per record.
    assert {k: (v[0]["code"], v[0]["field"]) for k, v in rejects.items()} == {
        "order-000005": (
            "FIELD_VALUE_IS_INVALID",
            "value" if api == "dsp" else "events[5].value",
        ),
        "order-000017": ("INTERNAL_ERROR", None),
        "order-000100": ("MISSING_FIELD", "eventTime"),
        "order-000101": ("MISSING_MATCH_KEY", "matchKeys"),
        "order-000102": ("INVALID_CURRENCY", "currency"),
        "order-000103": ("EVENT_TOO_OLD", "eventTime"),
        "order-000104": ("INVALID_COUNTRY", "countryCode"),
    }
    assert "value refused by Amazon" in rejects["order-000005"][0]["message"]
    accepted = emulator.accepted_ids()
    assert set(accepted) == {f"order-{i}" for i in range(40) if i not in (5, 17)}
    assert all(n == 1 for n in accepted.values())
    uploads(emulator, api)
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 45}}}


@pytest.mark.parametrize("api", APIS)
def test_a_413_splits_the_request_and_every_record_lands(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.faults = Faults(max_body_bytes=12_000)
    records = [seed_record(i) for i in range(300)]

    run = run_target(emulator.target_config(api=api), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 300
    assert run.report["records_rejected"] == 0
    statuses = [r.status for r in emulator.requests if r.path != "/auth/o2/token"]
    assert 413 in statuses
    assert sorted(emulator.accepted_ids().values()) == [1] * 300
    for request in uploads(emulator, api):
        assert (request.status == 207) == (request.raw_size <= 12_000)
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 300}}}


@pytest.mark.parametrize("api", APIS)
def test_event_age_limit_is_7_days_for_dsp_and_21_for_events(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [
        seed_record(1, eventTime=ago(hours=1)),
        seed_record(2, eventTime=ago(days=10)),
        seed_record(3, eventTime=ago(days=22)),
    ]

    run = run_target(emulator.target_config(api=api), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    rejects = rejects_by_order(run)
    too_old = ["order-000002", "order-000003"] if api == "dsp" else ["order-000003"]
    assert sorted(rejects) == too_old
    for errors in rejects.values():
        assert errors[0]["code"] == "EVENT_TOO_OLD"
        assert errors[0]["field"] == "eventTime"
        assert ("7 days" if api == "dsp" else "21 days") in errors[0]["message"]
    assert run.report["records_accepted"] == 3 - len(too_old)
    uploads(emulator, api)


@pytest.mark.parametrize("api", APIS)
def test_amazon_ad_tag_source_goes_to_dsp_only(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [
        seed_record(1),
        seed_record(2, source="AMAZON_AD_TAG", eventName="web_purchase"),
    ]

    run = run_target(
        emulator.target_config(api=api), singer_stream(records, schema=SCHEMA), tmp_path
    )

    assert run.returncode == 0, run.stderr
    if api == "dsp":
        assert run.rejects == []
        sources = sorted(r.body["source"] for r in uploads(emulator, api))
        assert sources == ["AMAZON_AD_TAG", "SERVER_TO_SERVER"]
    else:
        [error] = rejects_by_order(run)["order-000002"]
        assert (error["code"], error["field"]) == ("UNSUPPORTED_SOURCE", "source")
        assert "SERVER_TO_SERVER events only" in error["message"]
        assert run.report["records_accepted"] == 1
        assert len(uploads(emulator, api)) == 1


# --------------------------------------------------------------------------- events only


def test_events_eu_region_needs_consent(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    emulator.add_advertiser("7777777777", country="DE", name="EU Advertiser")
    records = [
        seed_record(1),
        seed_record(2, ipAddress="203.0.113.7"),
        seed_record(3, amazonUserData="granted"),
        seed_record(4, tcf="CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"),
        seed_record(5, gpp="DBABMA~CPXxRfAPXxRfAAfKABENB"),
        seed_record(6, countryCode="DE"),
    ]
    # The EU host is replaced by the emulator; the region still selects the consent rule.
    config = emulator.target_config(api="events", region="EU", advertiser_id="7777777777")

    run = run_target(config, singer_stream(records, schema=SCHEMA), tmp_path)

    assert run.returncode == 0, run.stderr
    rejects = rejects_by_order(run)
    assert sorted(rejects) == ["order-000001", "order-000006"]
    for errors in rejects.values():
        assert [(e["code"], e["field"]) for e in errors] == [("MISSING_CONSENT", "consent")]
    assert run.report["records_accepted"] == 4
    consents = sorted(str(e["consent"]) for e in emulator.accepted)
    assert consents == sorted(
        str(c)
        for c in (
            {"geo": {"ipAddress": "203.0.113.7"}},
            {"amazonConsent": {"amznUserData": "GRANTED"}},
            {"tcf": "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"},
            {"gpp": "DBABMA~CPXxRfAPXxRfAAfKABENB"},
        )
    )
    [request] = [r for r in emulator.requests if r.path == "/adsApi/v1/create/events"]
    assert request.headers["Amazon-Ads-AccountId"] == "7777777777"
    assert request_errors("events", request.body) == []


def test_events_amazons_per_item_errors_use_zero_based_indexes(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Region NA does not check consent locally, so Amazon (the emulator) refuses the EU
    # advertiser's events that lack it: the rejects must name exactly those records.
    emulator.add_advertiser("7777777777", country="DE", name="EU Advertiser")
    records = [seed_record(1), seed_record(2, amazonUserData="granted"), seed_record(3)]
    config = emulator.target_config(api="events", advertiser_id="7777777777")

    run = run_target(config, singer_stream(records, schema=SCHEMA), tmp_path)

    assert run.returncode == 0, run.stderr
    rejects = rejects_by_order(run)
    assert {k: [(e["code"], e["field"]) for e in v] for k, v in rejects.items()} == {
        "order-000001": [("FIELD_VALUE_IS_EMPTY", "events[0].consent")],
        "order-000003": [("FIELD_VALUE_IS_EMPTY", "events[2].consent")],
    }
    assert "consent" in rejects["order-000001"][0]["message"]
    assert [e["eventDescription"]["name"] for e in emulator.accepted] == ["purchase"]
    assert run.report["records_accepted"] == 1
    assert run.report["rejects_by_code"] == {"FIELD_VALUE_IS_EMPTY": 2}


def test_events_request_headers_and_partner(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    records = [seed_record(i) for i in range(3)]

    run = run_target(emulator.target_config(api="events"), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    [request] = uploads(emulator, "events")
    assert request.headers["Amazon-Ads-ClientId"] == "amzn1.application-oa2-client.test"
    assert request.headers["Amazon-Ads-AccountId"] == "1234567890"
    assert "Amazon-Advertising-API-ClientId" not in request.headers
    assert request.method == "POST"
    assert all(e["partner"] == "target_amazon_dsp_conversions" for e in request.body["events"])
    assert "client_secret" not in run.stderr
    assert "test-client-secret" not in run.stderr


# ------------------------------------------------------------------ records as users have them


@pytest.mark.parametrize("api", APIS)
def test_unusable_match_keys_are_dropped_counted_and_explained(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    hashed = sha256("buyer.7@example.com")
    records = [
        # An order table's `state` holds the order status; its `name` the customer's name.
        *[seed_record(i, state="shipped", name="John Roe") for i in range(4)],
        seed_record(4, email="jane@example.com", userIdentifier="a" * 64),
        seed_record(5, userIdentifier=None, email="n/a", state="complete"),
        # user_identifier_type types only what the shape cannot tell.
        seed_record(6, userIdentifier="+1 (201) 555-0123"),
        seed_record(7, userIdentifier=hashed.upper()),
        seed_record(8, userIdentifier="6D92078A-8246-4BA4-AE5B-76104861E7DC"),
    ]
    config = emulator.target_config(api=api, user_identifier_type="EMAIL")

    run = run_target(config, singer_stream(records, schema=SCHEMA), tmp_path)

    assert run.returncode == 0, run.stderr
    report = run.report
    assert (report["records_accepted"], report["records_rejected"]) == (8, 1)
    # Counted per type, and said once per run (without a value).
    assert report["match_keys_dropped"] == {"STATE": 4}
    assert report["match_keys"] == {"EMAIL": 6, "PHONE": 1, "MAID": 1}
    assert run.stderr.count("STATE match keys that cannot be used") == 1
    [reject] = run.rejects
    assert reject["errors"] == [
        {
            "code": "MISSING_MATCH_KEY",
            "message": "no usable match key: email dropped (not an email address "
            "(local@domain.tld)), state dropped (not a region of US)",
            "field": "matchKeys",
        }
    ]
    events = accepted_by_id(emulator, api)
    by_order = {e[DEDUPE_KEY[api]]: e for e in events.values()}
    assert len(by_order) == 8
    keys = [{k["type"]: k["values"][0] for k in e["matchKeys"]} for e in events.values()]
    assert {"PHONE": sha256("12015550123")} in keys
    assert {"EMAIL": hashed} in keys
    assert {"MAID": "6D92078A-8246-4BA4-AE5B-76104861E7DC"} in keys
    # A bare `name` column is a person's name: never sent.
    for request in uploads(emulator, api):
        assert "John Roe" not in str(request.body)
    names = {e["name"] if api == "dsp" else e["eventDescription"]["name"] for e in events.values()}
    assert names == {"purchase"}
    for secret in ("shipped", "n/a", "jane@example.com"):
        assert secret not in run.stderr


@pytest.mark.parametrize("api", APIS)
def test_an_unusable_user_identifier_beside_other_keys_is_counted_and_warned_once(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i, email=f"b{i}@example.com", userIdentifier="a" * 64) for i in range(3)]

    run = run_target(
        emulator.target_config(api=api), singer_stream(records, schema=SCHEMA), tmp_path
    )

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 3
    assert run.report["match_keys_dropped"] == {"userIdentifier": 3}
    assert run.stderr.count("userIdentifier values that cannot be used") == 1
    uploads(emulator, api)


@pytest.mark.parametrize("api", APIS)
def test_values_times_and_ids_as_taps_write_them(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    epoch = int((datetime.now(timezone.utc) - timedelta(hours=2)).timestamp())
    long_id = "order/" + "x" * 300
    records = [
        seed_record(1, eventTime=str(epoch)),  # epoch seconds as text (CSV taps)
        seed_record(2, conversionType="signup", conversionValue=-0.0),
        seed_record(3, dedupeId=long_id + "-a"),
        seed_record(4, dedupeId=long_id + "-b"),  # the same first 256 characters
        seed_record(5, conversionValue=-1.0),  # a purchase cannot be worth less than 0
        seed_record(6, conversionType="signup", conversionValue=-2.5, currency="EUR"),
    ]

    run = run_target(
        emulator.target_config(api=api), singer_stream(records, schema=SCHEMA), tmp_path
    )

    assert run.returncode == 0, run.stderr
    [reject] = run.rejects
    assert reject["record"]["order_id"] == "order-000005"
    assert [(e["code"], e["field"]) for e in reject["errors"]] == [
        ("VALUE_OUT_OF_RANGE", "conversionValue")
    ]
    assert run.report["records_accepted"] == 5
    events = accepted_by_id(emulator, api)
    by_order = {e[DEDUPE_KEY[api]]: e[TIME_KEY[api]] for e in events.values()}  # every ID distinct
    assert len(by_order) == 5
    stamp = datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert stamp in by_order.values()
    values = sorted((e.get("value"), "currencyCode" in e) for e in events.values())
    assert values[:2] == [(-2.5, False), (0.0, False)]  # no currency for a signup
    zero = next(e["value"] for e in events.values() if e.get("value") == 0)
    assert math.copysign(1, zero) == 1  # 0, never -0.0
    hashed_ids = [i for i in events if i.startswith("tadc-") and len(i) == 45]
    assert len(hashed_ids) >= 2
    uploads(emulator, api)


@pytest.mark.parametrize("api", APIS)
def test_flattened_records_find_the_dotted_mapping(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    schema = {
        **SEED_SCHEMA,
        "properties": {
            **SEED_SCHEMA["properties"],
            "customer": {"type": "object", "properties": {"email": {"type": "string"}}},
        },
    }
    records = [
        seed_record(i, userIdentifier=None, customer={"email": f"Flat.{i}@Example.com"})
        for i in range(3)
    ]
    # The SDK flattens `customer.email` to `customer__email`; the README maps `customer.email`.
    config = emulator.target_config(
        api=api,
        flattening_enabled=True,
        flattening_max_depth=2,
        mapping={"email": "customer.email"},
    )

    run = run_target(config, singer_stream(records, schema=schema), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 3, run.rejects
    keys = sorted(e["matchKeys"][0]["values"][0] for e in accepted_by_id(emulator, api).values())
    assert keys == sorted(sha256(f"flat.{i}@example.com") for i in range(3))
    uploads(emulator, api)


@pytest.mark.parametrize("api", APIS)
def test_entity_account_ids_go_to_the_events_api_only(api: str, tmp_path: Path) -> None:
    records = [seed_record(1, advertiserId="ENTITY2X3Y4Z5A6B7C"), seed_record(2)]
    config = {
        "api": api,
        "dry_run": True,
        "advertiser_id": "1234567890",
        "profile_id": "3333333333",
        "conversion_definitions": {"purchase": "cd-purchase"},
    }

    run = run_target(config, singer_stream(records, schema=SCHEMA), tmp_path)

    assert run.returncode == 0, run.stderr
    for request in run.dry_run_requests:
        assert request_errors(api, request["body"]) == []
    accounts = sorted(r["headers"]["Amazon-Ads-AccountId"] for r in run.dry_run_requests)
    if api == "events":
        # Amazon's custom-attributes sample sends an entity ID as Amazon-Ads-AccountId.
        assert accounts == ["1234567890", "ENTITY2X3Y4Z5A6B7C"]
        assert run.rejects == []
    else:
        assert accounts == ["1234567890"]
        [reject] = run.rejects
        assert reject["errors"][0]["code"] == "INVALID_ADVERTISER_ID"
        assert "not an entity ID" in reject["errors"][0]["message"]


@pytest.mark.parametrize("api", APIS)
def test_an_item_a_207_leaves_out_is_undelivered_and_resent_by_the_next_run(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Both OpenAPI files list each item of a 207 in `success` or in `error`; one in neither was
    # not acknowledged: not accepted, not rejected, no STATE past it, the run fails.
    records = [seed_record(i, dedupeId=f"order-{i}") for i in range(30)]
    emulator.omit_ids.update({"order-15", "order-22"})
    config = emulator.target_config(api=api, journal_path=str(tmp_path / "journal"))

    run = run_target(config, singer_stream(records, state_every=5), tmp_path / "first")

    assert run.returncode == 1, run.stderr
    assert cli_error_lines(run.stderr) == [
        "target-amazon-dsp-conversions: error: Amazon's answers listed 2 events neither as "
        "accepted nor as refused; 2 records not delivered (listed in the log and the report); "
        "re-run from the last STATE to resend them"
    ]
    assert "Traceback" not in run.stderr
    report = run.report
    assert (report["records_accepted"], report["records_rejected"]) == (28, 0)
    assert report["records_undelivered"] == 2
    assert sorted(u["dedupe_id"] for u in report["undelivered"]) == ["order-15", "order-22"]
    assert run.rejects == []
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 15}}}  # not past order-15
    assert set(emulator.accepted_ids()) == {f"order-{i}" for i in range(30)} - {
        "order-15",
        "order-22",
    }

    # The next run resends what was not acknowledged; the journal skips what was.
    emulator.omit_ids.clear()
    rerun = run_target(config, singer_stream(records[15:]), tmp_path / "second")

    assert rerun.returncode == 0, rerun.stderr
    assert rerun.report["records_accepted"] == 15
    assert rerun.report["records_already_acknowledged"] == 13  # not sent again
    assert sorted(emulator.accepted_ids().values()) == [1] * 30


@pytest.mark.parametrize("api", APIS)
def test_every_spelling_of_a_type_is_one_event_and_a_purchase_needs_a_currency(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Issue 24: the Events API identifies an event definition by its name (CreateEventDescription:
    # "The composite key that uniquely identifies an event"), so six spellings must be one name;
    # the DSP API finds one definition for them. Amazon's GTM guide for the Events API:
    # "Currency Code: Required for Off-Amazon Purchases".
    spellings = ["purchase", "Purchase", " PURCHASE ", "OFF_AMAZON_PURCHASES",
                 "off-amazon-purchases", "order"]  # fmt: skip
    records = [seed_record(i, conversionType=word) for i, word in enumerate(spellings)]
    records += [
        seed_record(10, conversionType="Sign Up"),
        seed_record(11, conversionType="SIGN_UP", currency=None),
        seed_record(12, currency=None),  # a purchase without a currency
        seed_record(13, currency=None, eventName="Store_Sale"),  # named by the record
    ]

    # DSP: a key spelled otherwise serves `purchase`; sign-ups find the listed `signup`.
    definitions = {"Purchase": "cd-purchase"} if api == "dsp" else {}
    config = emulator.target_config(api=api, conversion_definitions=definitions)

    run = run_target(config, singer_stream(records, schema=SCHEMA), tmp_path)

    assert run.returncode == 0, run.stderr
    events = {e[DEDUPE_KEY[api]]: e for e in emulator.accepted if e["_api"] == api}
    uploads(emulator, api)
    if api == "events":
        names = {
            ref: (e["eventDescription"]["name"], e["eventDescription"]["conversionType"])
            for ref, e in events.items()
        }
        purchases = [ref for ref, (_, kind) in names.items() if kind == "OFF_AMAZON_PURCHASES"]
        assert {names[ref][0] for ref in purchases} == {"purchase"}
        assert len(purchases) == 6
        sign_ups = [name for name, kind in names.values() if kind == "SIGN_UP"]
        assert sign_ups == ["sign_up", "sign_up"]
        assert [r["record"]["order_id"] for r in run.rejects] == ["order-000012", "order-000013"]
        for reject in run.rejects:
            assert reject["errors"] == [
                {
                    "code": "MISSING_CURRENCY",
                    "message": "a purchase needs a currency in the Events API (set currency per "
                    "record or in defaults.currency)",
                    "field": "currency",
                }
            ]
        assert run.report["records_accepted"] == 8
    else:
        assert run.rejects == []  # the DSP definition's currency applies
        assert run.report["records_accepted"] == 10
        by_definition = collections.Counter(
            (e["conversionDefinitionId"], e["name"]) for e in events.values()
        )
        assert by_definition == {
            ("cd-purchase", "purchase"): 7,
            ("cd-signup", "sign_up"): 2,
            ("cd-purchase", "Store_Sale"): 1,  # a name of its own; the type's definition
        }
        created = [r for r in emulator.requests if r.path.endswith("/conversionDefinitions")]
        assert created == []


# --------------------------------------------------------------------------- Events API fields


def test_events_every_field_of_amazons_schema_from_a_record(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    tokens = "a1B2c3D4e5.1747742400000|Z9y8X7w6V5.1747742460000"
    full = seed_record(
        1,
        userIdentifier=None,
        email="Jane.Doe@Example.com",
        realId="AXM-42",
        merkle_id="MKL-7",
        kantarId="KAN-9",
        fip="81.2.69.160",
        countryCode="OTHER_EEA",
        userAgent="Mozilla/5.0 (X11; Linux x86_64)",
        amazonAdEventKey="aek-778899",
        arefMeasurementTokens=tokens,
        amazonUserData="opted_in",
        amazonAdStorage="off",
        # Booleans as Amazon's custom-attributes guide writes them; INTEGER is 32-bit (issue 24).
        customData={"qty": 3.0, "brand": "acme", "gift": True, "max": 2147483647, "big": 2**31},
        eventName="store_purchase",
        limitedDataUse=True,
    )
    # amazonAdStorage alone: amazonConsent would lack its required amznUserData.
    incomplete = [seed_record(i, amazonAdStorage="granted") for i in (2, 3)]
    text = "".join(
        json.dumps(m) + "\n" for m in singer_stream([full, *incomplete], schema=SCHEMA)
    )  # 3.0 stays 3.0 in the input, as a tap writes it

    run = run_target(emulator.target_config(api="events"), text, tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.rejects == []
    assert run.report["records_accepted"] == 3
    assert run.report["match_keys"] == {
        "EMAIL": 3, "REAL_ID": 1, "MERKLE_ID": 1, "KANTAR_ID": 1, "FIP": 1,
    }  # fmt: skip
    events = {e["eventId"]: e for e in emulator.accepted}
    event = next(e for e in events.values() if e["countryCode"] == "OTHER_EEA")
    assert {k["type"]: k["values"][0] for k in event["matchKeys"]} == {
        "EMAIL": sha256("jane.doe@example.com"),
        "REAL_ID": "AXM-42",
        "MERKLE_ID": "MKL-7",
        "KANTAR_ID": "KAN-9",
        "FIP": "81.2.69.160",
    }
    assert event["deviceInfo"] == {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)"}
    assert event["amazonAdEventKey"] == "aek-778899"
    assert event["arefMeasurementTokens"] == tokens
    assert event["consent"] == {
        "amazonConsent": {"amznUserData": "GRANTED", "amznAdStorage": "DENIED"}
    }
    assert event["customData"] == [
        {"name": "qty", "value": "3", "dataType": "INTEGER"},
        {"name": "brand", "value": "acme", "dataType": "STRING"},
        {"name": "gift", "value": "true", "dataType": "STRING"},
        {"name": "max", "value": "2147483647", "dataType": "INTEGER"},
        {"name": "big", "value": "2147483648", "dataType": "STRING"},
    ]
    assert event["eventDescription"]["name"] == "store_purchase"
    assert event["dataProcessingOptions"] == {"options": "LIMITED_DATA_USE"}
    others = [e for e in events.values() if e is not event]
    assert [("consent" in e) for e in others] == [False, False]
    assert run.stderr.count("amazonAdStorage without amazonUserData") == 1
    uploads(emulator, "events")
