"""Fast checks of the Amazon Ads emulator with plain ``requests``."""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.emulator import (
    DSP_DEFINITION_TYPE,
    DSP_DELETION_TYPE,
    DSP_EVENT_TYPE,
    AmazonAdsEmulator,
    Faults,
)
from tests.openapi_schemas import request_errors, schema_errors

ADVERTISER = "1234567890"
PROFILE = "3333333333"
REFRESH = "Atzr|test-refresh-token"
EVENT_DATA = f"/accounts/{ADVERTISER}/dsp/conversionDefinitions/eventData"
EVENTS = "/adsApi/v1/create/events"
DELETE = f"/accounts/{ADVERTISER}/dsp/conversionDefinitions/delete"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def dsp_event(n: int, **overrides: Any) -> dict[str, Any]:
    event = {
        "conversionDefinitionId": "cd-purchase",
        "name": "purchase",
        "timestamp": iso(-timedelta(hours=1)),
        "countryCode": "US",
        "matchKeys": [{"type": "EMAIL", "values": [sha(f"user{n}@example.com")]}],
        "value": 19.99,
        "currencyCode": "USD",
        "unitsSold": 1,
        "clientDedupeId": f"order-{n}",
    }
    event.update(overrides)
    return event


def dsp_body(events: list[dict[str, Any]], source: str = "SERVER_TO_SERVER") -> dict[str, Any]:
    body = {"source": source, "eventData": events}
    if len(events) <= 100:
        assert request_errors("dsp", body) == []
    return body


def events_item(n: int, **overrides: Any) -> dict[str, Any]:
    event = {
        "eventDescription": {
            "name": "store_purchase",
            "conversionType": "OFF_AMAZON_PURCHASES",
            "eventSource": "OFFLINE",
            "eventIngestionMethod": "SERVER_TO_SERVER",
        },
        "eventTime": iso(-timedelta(days=2)),
        "countryCode": "US",
        "matchKeys": [{"type": "EMAIL", "values": [sha(f"user{n}@example.com")]}],
        "value": 129.99,
        "currencyCode": "USD",
        "unitsSold": 2,
        "eventId": f"evt-{n}",
    }
    event.update(overrides)
    return event


def events_body(events: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"events": events}
    assert request_errors("events", body) == []
    return body


@pytest.fixture
def emu() -> Iterator[AmazonAdsEmulator]:
    with AmazonAdsEmulator() as emulator:
        yield emulator


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def grant(emu: AmazonAdsEmulator, session: requests.Session, **form: str) -> requests.Response:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
    }
    data.update(form)
    return session.post(emu.token_url, data=data, timeout=5)


@pytest.fixture
def token(emu: AmazonAdsEmulator, session: requests.Session) -> str:
    response = grant(emu, session)
    assert response.status_code == 200
    return response.json()["access_token"]


def dsp_headers(emu: AmazonAdsEmulator, token: str, ctype: str = DSP_EVENT_TYPE) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Amazon-Advertising-API-ClientId": emu.client_id,
        "Amazon-Advertising-API-Scope": PROFILE,
        "Amazon-Ads-AccountId": ADVERTISER,
        "Content-Type": ctype,
        "Accept": ctype,
    }


def events_headers(emu: AmazonAdsEmulator, token: str, account: str = ADVERTISER) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Amazon-Ads-ClientId": emu.client_id,
        "Amazon-Ads-AccountId": account,
        "Content-Type": "application/json",
    }


def post_dsp(emu, session, token, body, path=EVENT_DATA, ctype=DSP_EVENT_TYPE, **kw):
    headers = dsp_headers(emu, token, ctype)
    headers.update(kw.pop("headers", {}))
    kw.setdefault("timeout", 5)
    return session.post(emu.url + path, data=json.dumps(body), headers=headers, **kw)


def post_events(emu, session, token, body, **kw):
    headers = events_headers(emu, token)
    headers.update(kw.pop("headers", {}))
    kw.setdefault("timeout", 5)
    return session.post(emu.url + EVENTS, data=json.dumps(body), headers=headers, **kw)


# ---------------------------------------------------------------- LwA


def test_refresh_grant_returns_access_token(emu, session):
    response = grant(emu, session)
    assert response.status_code == 200
    doc = response.json()
    assert doc["access_token"].startswith("Atza|")
    assert doc["token_type"] == "bearer"
    assert doc["expires_in"] == 3600
    assert doc["refresh_token"] == REFRESH


def test_refresh_grant_accepts_basic_auth(emu, session):
    response = session.post(
        emu.token_url,
        data={"grant_type": "refresh_token", "refresh_token": REFRESH},
        auth=(emu.client_id, emu.client_secret),
        timeout=5,
    )
    assert response.status_code == 200


def test_revoked_refresh_token_is_invalid_grant(emu, session):
    emu.revoked_refresh_tokens.add(REFRESH)
    response = grant(emu, session)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The request has an invalid grant parameter : refresh_token. "
        "User may have revoked or didn't grant the permission.",
    }


def test_token_call_with_bearer_header_is_rejected(emu, session, token):
    response = session.post(
        emu.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": REFRESH,
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_unknown_client_is_invalid_client(emu, session):
    response = grant(emu, session, client_secret="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_authorization_code_flow(emu, session):
    redirect = "http://localhost:9999/callback"
    response = session.get(
        emu.authorize_url,
        params={
            "client_id": emu.client_id,
            "scope": "advertising::campaign_management",
            "response_type": "code",
            "redirect_uri": redirect,
            "state": "xyz",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
    }
    exchanged = session.post(emu.token_url, data=form, timeout=5)
    assert exchanged.status_code == 200
    new_refresh = exchanged.json()["refresh_token"]
    assert new_refresh in emu.refresh_tokens and new_refresh != REFRESH
    assert grant(emu, session, refresh_token=new_refresh).status_code == 200
    # Codes are single use.
    again = session.post(emu.token_url, data=form, timeout=5)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("params", "denied", "error"),
    [
        ({"scope": "profile"}, False, "invalid_scope"),
        ({"client_id": "amzn1.application-oa2-client.other"}, False, "invalid_client"),
        ({}, True, "access_denied"),
    ],
)
def test_authorize_errors_redirect(emu, session, params, denied, error):
    emu.authorize_denied = denied
    query = {
        "client_id": emu.client_id,
        "scope": "advertising::campaign_management",
        "response_type": "code",
        "redirect_uri": "http://localhost:9999/cb",
        **params,
    }
    response = session.get(emu.authorize_url, params=query, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == [error]


def test_authorize_without_redirect_uri_is_plain_400(emu, session):
    response = session.get(emu.authorize_url, params={"client_id": emu.client_id}, timeout=5)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")


# ---------------------------------------------------------------- profiles


def test_profiles(emu, session, token):
    response = session.get(
        emu.url + "/v2/profiles",
        headers={
            "Authorization": f"Bearer {token}",
            "Amazon-Advertising-API-ClientId": emu.client_id,
        },
        timeout=5,
    )
    assert response.status_code == 200
    by_id = {p["profileId"]: p for p in response.json()}
    assert by_id[int(PROFILE)]["accountInfo"]["id"] == ADVERTISER
    assert by_id[int(PROFILE)]["accountInfo"]["type"] == "agency"
    assert by_id[4444444444]["accountInfo"]["id"] == "2222222222"


# ---------------------------------------------------------------- DSP eventData


def test_event_data_happy_path(emu, session, token):
    body = dsp_body([dsp_event(i) for i in range(3)])
    response = post_dsp(emu, session, token, body)
    assert response.status_code == 207
    assert response.headers["Content-Type"] == DSP_EVENT_TYPE
    doc = response.json()
    assert schema_errors("dsp", "BatchImportConversionEventDataResponseV1", doc) == []
    assert [s["index"] for s in doc["success"]] == [1, 2, 3]
    assert "error" not in doc  # minItems 1: an empty array is omitted
    assert emu.accepted_ids() == {"order-0": 1, "order-1": 1, "order-2": 1}
    first = emu.accepted[0]
    assert first["_api"] == "dsp" and first["_advertiser"] == ADVERTISER
    assert first["source"] == "SERVER_TO_SERVER"
    assert emu.requests[-1].status == 207
    assert emu.requests[-1].headers["amazon-ads-accountid"] == ADVERTISER


def test_event_data_can_leave_items_out_of_both_lists(emu, session, token):
    emu.omit_ids.add("order-1")
    response = post_dsp(emu, session, token, dsp_body([dsp_event(i) for i in range(3)]))
    doc = response.json()
    assert schema_errors("dsp", "BatchImportConversionEventDataResponseV1", doc) == []
    assert [s["index"] for s in doc["success"]] == [1, 3]
    assert "error" not in doc
    assert emu.accepted_ids() == {"order-0": 1, "order-2": 1}


def test_event_data_reuses_keep_alive_connection(emu, token):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        for i in range(3):
            payload = json.dumps(dsp_body([dsp_event(i)]))
            conn.request("POST", EVENT_DATA, body=payload, headers=dsp_headers(emu, token))
            response = conn.getresponse()
            response.read()
            assert response.status == 207
            assert response.getheader("Content-Length")
            assert not response.will_close
    finally:
        conn.close()


def test_event_data_over_100_is_400(emu, session, token):
    body = dsp_body([dsp_event(i) for i in range(101)])
    assert request_errors("dsp", body) != []
    response = post_dsp(emu, session, token, body)
    assert response.status_code == 400
    doc = response.json()
    assert schema_errors("dsp", "DspErrorV1", doc) == []
    assert doc["errors"][0]["fieldName"] == "eventData"
    assert emu.accepted == []


def test_event_data_mixed_results(emu, session, token):
    emu.poison_ids["order-4"] = ("INTERNAL_ERROR", "poisoned for the test")
    events = [
        dsp_event(0),
        dsp_event(1, timestamp=iso(-timedelta(days=8))),
        dsp_event(2, matchKeys=[{"type": "EMAIL", "values": ["not-hashed@example.com"]}]),
        dsp_event(3, conversionDefinitionId="cd-unknown"),
        dsp_event(4),
        dsp_event(5, conversionDefinitionId="cd-web-purchase"),
        dsp_event(6, timestamp=iso(timedelta(hours=3))),
        dsp_event(7, matchKeys=[{"type": "MAID", "values": ["raw-device-id"]}]),
    ]
    response = post_dsp(emu, session, token, dsp_body(events))
    assert response.status_code == 207
    doc = response.json()
    assert schema_errors("dsp", "BatchImportConversionEventDataResponseV1", doc) == []
    assert [s["index"] for s in doc["success"]] == [1, 8]
    errors = {e["index"]: e for e in doc["error"]}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7]
    assert errors[2]["errors"][0]["fieldName"] == "timestamp"
    assert errors[3]["errors"][0]["fieldName"] == "matchKeys"
    assert errors[4]["errors"][0]["fieldName"] == "conversionDefinitionId"
    assert errors[5]["code"] == "INTERNAL_ERROR"
    assert errors[6]["code"] == "SOURCE_MISMATCH"
    assert errors[7]["errors"][0]["fieldName"] == "timestamp"
    assert set(emu.accepted_ids()) == {"order-0", "order-7"}
    rejected = {r["dedupe_id"]: r for r in emu.rejected}
    assert rejected["order-1"]["field"] == "timestamp"
    assert rejected["order-4"]["code"] == "INTERNAL_ERROR"


def test_event_data_wrong_content_type_is_415(emu, session, token):
    response = post_dsp(emu, session, token, dsp_body([dsp_event(0)]), ctype="application/json")
    assert response.status_code == 415
    assert schema_errors("dsp", "DspErrorV1", response.json()) == []


def test_event_data_missing_client_id_header(emu, session, token):
    headers = dsp_headers(emu, token)
    del headers["Amazon-Advertising-API-ClientId"]
    body = json.dumps(dsp_body([dsp_event(0)]))
    response = session.post(emu.url + EVENT_DATA, data=body, headers=headers, timeout=5)
    assert response.status_code == 400
    assert "Amazon-Advertising-API-ClientId" in response.json()["message"]


@pytest.mark.parametrize(
    ("account", "extra", "status"),
    [
        ("ENTITY1ABCDEF", {"Amazon-Ads-AccountId": "ENTITY1ABCDEF"}, 400),
        ("9999999999", {"Amazon-Ads-AccountId": "9999999999"}, 403),
        (ADVERTISER, {"Amazon-Ads-AccountId": "2222222222"}, 400),
        (ADVERTISER, {"Amazon-Advertising-API-Scope": "4444444444"}, 403),
        (
            "5555555555",
            {"Amazon-Ads-AccountId": "5555555555", "Amazon-Advertising-API-Scope": "6666666666"},
            403,
        ),
    ],
)
def test_event_data_account_checks(emu, session, token, account, extra, status):
    body = dsp_body([dsp_event(0, conversionDefinitionId="cd-5555-purchase")])
    path = f"/accounts/{account}/dsp/conversionDefinitions/eventData"
    response = post_dsp(emu, session, token, body, path=path, headers=extra)
    assert response.status_code == status
    assert schema_errors("dsp", "DspErrorV1", response.json()) == []
    if account.startswith("ENTITY"):
        assert "advertiser ID" in response.json()["message"]


def test_unknown_token_is_401(emu, session):
    response = post_dsp(emu, session, "Atza|forged", dsp_body([dsp_event(0)]))
    assert response.status_code == 401
    assert response.json()["message"] == "Unauthorized"


# ---------------------------------------------------------------- DSP user deletion


def person(n: int, *extra: tuple[str, str]) -> dict[str, Any]:
    """A deletion item: the person's hashed email, and any further (type, value) keys."""
    keys = [("EMAIL", sha(f"user{n}@example.com")), *extra]
    return {"matchKeys": [{"type": t, "values": [v]} for t, v in keys]}


def post_deletion(emu, session, token, people, **kw):
    kw.setdefault("path", DELETE)
    kw.setdefault("ctype", DSP_DELETION_TYPE)
    return post_dsp(emu, session, token, {"deletionRequests": people}, **kw)


def test_user_deletion_deletes_each_person(emu, session, token):
    people = [person(0), person(1, ("PHONE", sha("+15550100")), ("MAID", "raw-device-id"))]
    assert (
        schema_errors("dsp", "BatchDeleteUserEventsRequestV1", {"deletionRequests": people}) == []
    )
    response = post_deletion(emu, session, token, people)
    assert response.status_code == 207
    assert response.headers["Content-Type"] == DSP_DELETION_TYPE
    doc = response.json()
    assert schema_errors("dsp", "BatchDeleteUserEventsResponseV1", doc) == []
    assert doc == {"success": [{"index": 1}, {"index": 2}]}
    assert emu.deleted == {
        ADVERTISER: [
            (("EMAIL", sha("user0@example.com")),),
            (
                ("EMAIL", sha("user1@example.com")),
                ("PHONE", sha("+15550100")),
                ("MAID", "raw-device-id"),
            ),
        ]
    }
    assert sha("+15550100") in emu.deleted_values(ADVERTISER)
    assert emu.deleted_values("2222222222") == set()
    assert emu.call_kind("POST", DELETE) == "user deletion"
    assert emu.arrivals("user deletion") == 1
    assert emu.accepted == []  # a deletion is no event
    emu.reset_ledger()
    assert emu.deleted == {} and emu.deleted_values() == set()


def test_user_deletion_refuses_items_it_cannot_take(emu, session, token):
    emu.refused_match_values[sha("user2@example.com")] = ("INTERNAL_ERROR", "refused for the test")
    emu.omit_match_values.add(sha("user4@example.com"))
    people = [
        person(0),
        {"matchKeys": [{"type": "EMAIL", "values": ["not-hashed@example.com"]}]},
        person(2),
        {},  # the schema leaves matchKeys optional; Amazon asks for the user's keys
        person(4),
        person(5),
    ]
    response = post_deletion(emu, session, token, people)
    assert response.status_code == 207
    doc = response.json()
    assert schema_errors("dsp", "BatchDeleteUserEventsResponseV1", doc) == []
    assert [s["index"] for s in doc["success"]] == [1, 6]
    errors = {e["index"]: e for e in doc["error"]}
    assert sorted(errors) == [2, 3, 4]
    assert errors[2]["code"] == "INVALID_ARGUMENT"
    assert "SHA-256" in errors[2]["message"]
    assert errors[3] == {
        "index": 3,
        "code": "INTERNAL_ERROR",
        "message": "refused for the test",
        "errors": [
            {
                "errorType": "INTERNAL_ERROR",
                "fieldName": "matchKeys",
                "message": "refused for the test",
            }
        ],
    }
    assert "matchKeys is required" in errors[4]["message"]
    assert [p[0][1] for p in emu.deleted[ADVERTISER]] == [
        sha("user0@example.com"),
        sha("user5@example.com"),
    ]
    refused = {r["index"]: r for r in emu.refused_deletions}
    assert sorted(refused) == [2, 3, 4]
    assert refused[3]["match_keys"] == (("EMAIL", sha("user2@example.com")),)
    assert refused[3]["advertiser"] == ADVERTISER


@pytest.mark.parametrize(
    ("people", "field"),
    [
        ([], "deletionRequests"),  # 1 to 500 people
        ([person(i) for i in range(501)], "deletionRequests"),
        ([{"matchKeys": []}], "deletionRequests.0.matchKeys"),  # 1 to 9 keys each
        (
            [{"matchKeys": [{"type": "EMAIL", "values": [sha(str(i))]} for i in range(10)]}],
            "deletionRequests.0.matchKeys",
        ),
        (
            [{"matchKeys": [{"type": "IP", "values": ["1.2.3.4"]}]}],
            "deletionRequests.0.matchKeys.0.type",
        ),
        (
            [{"matchKeys": [{"type": "EMAIL", "values": []}]}],
            "deletionRequests.0.matchKeys.0.values",
        ),
        ([{"matchKeys": [{"type": "EMAIL"}]}], "deletionRequests.0.matchKeys.0"),
    ],
)
def test_user_deletion_schema_violation_is_400(emu, session, token, people, field):
    assert (
        schema_errors("dsp", "BatchDeleteUserEventsRequestV1", {"deletionRequests": people}) != []
    )
    response = post_deletion(emu, session, token, people)
    assert response.status_code == 400
    doc = response.json()
    assert schema_errors("dsp", "DspErrorV1", doc) == []
    assert doc["errors"][0]["fieldName"] == field
    assert emu.deleted == {}


def test_user_deletion_body_must_be_an_object_with_deletion_requests(emu, session, token):
    response = post_dsp(emu, session, token, {"users": []}, path=DELETE, ctype=DSP_DELETION_TYPE)
    assert response.status_code == 400
    assert "deletionRequests" in response.json()["errors"][0]["message"]


def test_user_deletion_takes_only_its_media_type(emu, session, token):
    for ctype in (DSP_EVENT_TYPE, "application/json"):
        response = post_deletion(emu, session, token, [person(0)], ctype=ctype)
        assert response.status_code == 415
        assert DSP_DELETION_TYPE in response.json()["message"]
    assert emu.deleted == {}


@pytest.mark.parametrize(
    ("account", "extra", "status"),
    [
        ("9999999999", {"Amazon-Ads-AccountId": "9999999999"}, 403),  # no access
        (ADVERTISER, {"Amazon-Advertising-API-Scope": "4444444444"}, 403),  # another's profile
        (  # view only: deleting needs event_manager_edit
            "5555555555",
            {"Amazon-Ads-AccountId": "5555555555", "Amazon-Advertising-API-Scope": "6666666666"},
            403,
        ),
        (ADVERTISER, {"Amazon-Ads-AccountId": "2222222222"}, 400),
        (ADVERTISER, {"Amazon-Advertising-API-ClientId": "someone-else"}, 401),
    ],
)
def test_user_deletion_account_checks(emu, session, token, account, extra, status):
    path = f"/accounts/{account}/dsp/conversionDefinitions/delete"
    response = post_deletion(emu, session, token, [person(0)], path=path, headers=extra)
    assert response.status_code == status
    assert schema_errors("dsp", "DspErrorV1", response.json()) == []
    assert emu.deleted == {}


def test_user_deletion_needs_a_valid_token(emu, session):
    response = post_deletion(emu, session, "Atza|forged", [person(0)])
    assert response.status_code == 401
    assert emu.deleted == {}


def test_user_deletion_can_be_scripted_and_throttled(emu, session, token):
    emu.faults.retry_after = "0"
    emu.script("user deletion", 429, 503)
    statuses = [post_deletion(emu, session, token, [person(i)]).status_code for i in range(3)]
    assert statuses == [429, 503, 207]
    assert emu.arrivals("user deletion") == 3 and emu.arrivals("upload") == 0
    emu.throttle.configure(rate=0.001, burst=1)
    statuses = [post_deletion(emu, session, token, [person(i)]).status_code for i in range(2)]
    assert statuses == [207, 429]  # one account's pace, as for uploads
    assert len(emu.deleted[ADVERTISER]) == 2


def test_an_unknown_kind_of_call_is_refused(emu):
    with pytest.raises(ValueError, match="unknown kind of call 'user_deletion'"):
        emu.script("user_deletion", 429)


# ---------------------------------------------------------------- DSP definitions


def test_list_definitions_pages(emu, session, token):
    for i in range(10):
        emu.add_definition(ADVERTISER, f"extra_{i}")
    seen: list[str] = []
    next_token = None
    pages = 0
    while True:
        body: dict[str, Any] = {"maxResults": 4}
        if next_token:
            body["nextToken"] = next_token
        assert schema_errors("dsp", "ListConversionDefinitionsRequestV1", body) == []
        path = f"/accounts/{ADVERTISER}/dsp/conversionDefinitions/list"
        response = post_dsp(emu, session, token, body, path=path, ctype=DSP_DEFINITION_TYPE)
        assert response.status_code == 200
        doc = response.json()
        assert schema_errors("dsp", "ListConversionDefinitionsResponseV1", doc) == []
        seen += [d["conversionDefinitionId"] for d in doc["conversionDefinitions"]]
        pages += 1
        next_token = doc.get("nextToken")
        if not next_token:
            break
    assert pages == 4 and len(seen) == 15 == len(set(seen))
    assert "cd-purchase" in seen


def test_list_definitions_filter_by_id(emu, session, token):
    body = {"filters": [{"field": "CONVERSION_DEFINITION_ID", "values": ["cd-lead"]}]}
    path = f"/accounts/{ADVERTISER}/dsp/conversionDefinitions/list"
    response = post_dsp(emu, session, token, body, path=path, ctype=DSP_DEFINITION_TYPE)
    names = [d["name"] for d in response.json()["conversionDefinitions"]]
    assert names == ["lead"]


def test_create_definitions(emu, session, token):
    body = [
        {
            "name": "newsletter",
            "conversionType": "SUBSCRIBE",
            "countingMethod": "EVERY",
            "source": "SERVER_TO_SERVER",
            "sourceType": "OFFLINE",
            "value": 0,
        },
        {
            "name": "purchase",
            "conversionType": "OFF_AMAZON_PURCHASES",
            "countingMethod": "EVERY",
            "source": "SERVER_TO_SERVER",
            "sourceType": "OFFLINE",
            "value": 0,
        },
    ]
    assert schema_errors("dsp", "BatchCreateConversionDefinitionsRequestV1", body) == []
    path = f"/accounts/{ADVERTISER}/dsp/conversionDefinitions"
    response = post_dsp(emu, session, token, body, path=path, ctype=DSP_DEFINITION_TYPE)
    assert response.status_code == 207
    doc = response.json()
    assert schema_errors("dsp", "ConversionDefinitionsBatchResponseV1", doc) == []
    assert doc["success"][0]["index"] == 1
    new_id = doc["success"][0]["conversionDefinitionId"]
    assert doc["error"][0]["index"] == 2
    assert any(d["conversionDefinitionId"] == new_id for d in emu.definitions[ADVERTISER])


# ---------------------------------------------------------------- Events API


def test_events_happy_path_and_item_errors(emu, session, token):
    events = [
        events_item(0),
        events_item(1, eventTime=iso(-timedelta(days=22))),
        events_item(2, matchKeys=[{"type": "PHONE", "values": ["+15551234567"]}]),
        events_item(3, matchKeys=[{"type": "MATCH_ID", "values": ["LOYALTY-1"]}]),
    ]
    response = post_events(emu, session, token, events_body(events))
    assert response.status_code == 207
    doc = response.json()
    assert schema_errors("events", "EventMultiStatusResponse", doc) == []
    assert [s["index"] for s in doc["success"]] == [0, 3]
    assert doc["success"][0]["event"]["eventId"] == "evt-0"
    errors = {e["index"]: e["errors"][0] for e in doc["error"]}
    assert errors[1] == {
        "code": "FIELD_VALUE_IS_INVALID",
        "message": "eventTime is more than 21 days in the past",
        "fieldLocation": "events[1].eventTime",
    }
    assert errors[2]["code"] == "FIELD_VALUE_IS_INVALID"
    assert emu.accepted_ids() == {"evt-0": 1, "evt-3": 1}
    assert emu.accepted[0]["_api"] == "events"


def test_events_can_leave_items_out_of_both_lists(emu, session, token):
    emu.omit_ids.add("evt-0")
    emu.poison_ids["evt-2"] = ("BAD_REQUEST", "poisoned")
    response = post_events(emu, session, token, events_body([events_item(i) for i in range(3)]))
    doc = response.json()
    assert schema_errors("events", "EventMultiStatusResponse", doc) == []
    assert [s["index"] for s in doc["success"]] == [1]
    assert [e["index"] for e in doc["error"]] == [2]
    assert emu.accepted_ids() == {"evt-1": 1}


def test_events_custom_data_integer_is_32_bits(emu, session, token):
    # DataType: "`INTEGER` | 32-bit signed integer data type." (openapi/events-api.json)
    events = [
        events_item(i, customData=[{"name": "n", "value": value, "dataType": "INTEGER"}])
        for i, value in enumerate(["2147483647", "2147483648", "12a"])
    ]
    doc = post_events(emu, session, token, events_body(events)).json()
    assert [s["index"] for s in doc["success"]] == [0]
    assert [(e["index"], e["errors"][0]["fieldLocation"]) for e in doc["error"]] == [
        (1, "events[1].customData[0].value"),
        (2, "events[2].customData[0].value"),
    ]


def test_events_unparsable_time_is_item_error(emu, session, token):
    body = {"events": [events_item(0, eventTime="yesterday")]}
    assert request_errors("events", body) != []  # the target must never send this
    response = post_events(emu, session, token, body)
    assert response.status_code == 207
    assert response.json()["error"][0]["errors"][0]["fieldLocation"] == "events[0].eventTime"


@pytest.mark.parametrize("missing", ["Amazon-Ads-ClientId", "Amazon-Ads-AccountId"])
def test_events_missing_header_is_400(emu, session, token, missing):
    headers = events_headers(emu, token)
    del headers[missing]
    body = json.dumps(events_body([events_item(0)]))
    response = session.post(emu.url + EVENTS, data=body, headers=headers, timeout=5)
    assert response.status_code == 400
    assert schema_errors("events", "BadRequestResponseContent", response.json()) == []


def test_events_wrong_content_type_is_415(emu, session, token):
    response = post_events(
        emu, session, token, events_body([events_item(0)]), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_events_schema_violation_is_400(emu, session, token):
    response = post_events(emu, session, token, {"events": []})
    assert response.status_code == 400
    assert schema_errors("events", "BadRequestResponseContent", response.json()) == []


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(("retry_after", "expected"), [("0.05", "0.05"), (None, None)])
def test_every_nth_429(emu, session, token, retry_after, expected):
    emu.faults = Faults(every_nth_429=2, retry_after=retry_after)
    statuses, retry = [], []
    for i in range(4):
        response = post_dsp(emu, session, token, dsp_body([dsp_event(i)]))
        statuses.append(response.status_code)
        retry.append(response.headers.get("Retry-After"))
        if response.status_code == 429:
            assert schema_errors("dsp", "DspErrorV1", response.json()) == []
    assert statuses == [207, 429, 207, 429]
    assert retry[1] == expected
    assert set(emu.accepted_ids()) == {"order-0", "order-2"}
    assert [r.status for r in emu.requests if r.path == EVENT_DATA] == statuses


def test_events_429_body(emu, session, token):
    emu.faults = Faults(every_nth_429=1)
    response = post_events(emu, session, token, events_body([events_item(0)]))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert schema_errors("events", "TooManyRequestsResponseContent", response.json()) == []


def test_max_body_bytes_413(emu, session, token):
    emu.faults = Faults(max_body_bytes=2000)
    small = post_events(emu, session, token, events_body([events_item(0)]))
    assert small.status_code == 207
    big = post_events(emu, session, token, events_body([events_item(i) for i in range(20)]))
    assert big.status_code == 413
    assert schema_errors("events", "ContentTooLargeResponseContent", big.json()) == []
    dsp_big = post_dsp(emu, session, token, dsp_body([dsp_event(i) for i in range(20)]))
    assert dsp_big.status_code == 413
    assert emu.accepted_ids() == {"evt-0": 1}


def test_token_expires_after_requests(emu, session, token):
    emu.faults = Faults(token_expires_after_requests=2)
    statuses = [
        post_dsp(emu, session, token, dsp_body([dsp_event(i)])).status_code for i in range(3)
    ]
    assert statuses == [207, 207, 401]
    fresh = grant(emu, session).json()["access_token"]
    assert post_dsp(emu, session, fresh, dsp_body([dsp_event(9)])).status_code == 207


def test_token_expires_by_wall_clock(emu, session):
    emu.token_ttl_seconds = 60
    granted = grant(emu, session).json()
    assert granted["expires_in"] == 60
    short = granted["access_token"]
    assert post_dsp(emu, session, short, dsp_body([dsp_event(0)])).status_code == 207
    a_minute_later = time.time() + 61
    emu.clock = lambda: a_minute_later
    assert post_dsp(emu, session, short, dsp_body([dsp_event(1)])).status_code == 401


def test_every_nth_5xx_and_fail_first_n(emu, session, token):
    emu.faults = Faults(every_nth_5xx=2, status_5xx=502)
    statuses = [
        post_events(emu, session, token, events_body([events_item(i)])).status_code
        for i in range(2)
    ]
    assert statuses == [207, 502]
    emu.reset_ledger()
    emu.faults = Faults(fail_first_n=2, fail_status=500)
    statuses = [
        post_events(emu, session, token, events_body([events_item(i)])).status_code
        for i in range(3)
    ]
    assert statuses == [500, 500, 207]
    assert emu.accepted_ids() == {"evt-2": 1}


def test_drop_every_nth(emu, session, token):
    emu.faults = Faults(drop_every_nth=1)
    with pytest.raises(requests.ConnectionError):
        post_dsp(emu, session, token, dsp_body([dsp_event(0)]))
    assert emu.accepted == []
    assert emu.requests[-1].status == 0


def test_hang_makes_client_time_out(emu, session, token):
    emu.faults = Faults(hang_every_nth=1, hang_seconds=2)
    with pytest.raises(requests.Timeout):
        post_dsp(emu, session, token, dsp_body([dsp_event(0)]), timeout=0.3)
    emu.faults = Faults()
    assert post_dsp(emu, session, token, dsp_body([dsp_event(1)])).status_code == 207
    assert set(emu.accepted_ids()) == {"order-1"}


def test_latency_overlaps_for_concurrent_clients(emu, token):
    emu.faults = Faults(latency_seconds=1)
    statuses: list[int] = []
    all_ready = threading.Barrier(5)

    def send(i: int) -> None:
        with requests.Session() as s:
            all_ready.wait()
            statuses.append(post_dsp(emu, s, token, dsp_body([dsp_event(i)])).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [207] * 5
    assert emu.peak_api_in_flight > 1  # handled side by side, not one after the other
    assert len(emu.accepted_ids()) == 5


def test_unknown_route_is_404(emu, session):
    assert session.get(emu.url + "/nope", timeout=5).status_code == 404
