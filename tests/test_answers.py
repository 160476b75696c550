"""What every answer means (`answers.py`), for every kind of call, as the transport and the
sign-in act on it against the emulator: each status of the table, scripted once for one call."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from target_amazon_dsp_conversions.amazon_fields import DSP_DEFINITION_MEDIA_TYPE
from target_amazon_dsp_conversions.answers import Meaning, meaning
from target_amazon_dsp_conversions.apis.base import USER_DELETION, Endpoint, json_request
from target_amazon_dsp_conversions.apis.dsp import DspApi
from target_amazon_dsp_conversions.apis.dsp_definitions import dsp_headers
from target_amazon_dsp_conversions.errors import SetupError, SignInError
from target_amazon_dsp_conversions.http_client import HttpTransport
from target_amazon_dsp_conversions.http_types import Call, OutgoingRequest, Response
from target_amazon_dsp_conversions.report import RunStats
from tests.conftest import seed_record
from tests.emulator import AmazonAdsEmulator
from tests.test_http_client import access_tokens

ADVERTISER = "1234567890"
STATUSES: list[int | str] = [
    200, 207, 400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 500, 502, 503, 504, "drop", "hang",
]  # fmt: skip
CALLS = [
    Call.UPLOAD, Call.DEFINITIONS_LIST, Call.DEFINITIONS_CREATE, Call.TOKEN, Call.PROFILES,
    Call.USER_DELETION,
]  # fmt: skip

# What the caller sees, per status: upload, definitions list, definitions create, token, profiles,
# user deletion.
#   answer    the answer comes back at once (the caller reads it: per item, split, reject)
#   retry     sent again after a backoff, then answered
#   paced     sent again in the account's pace (counted as throttled), then answered
#   refresh   a new access token, sent again, answered
#   set-up    the run stops: one line what to fix (SetupError; SignInError for the token call)
ANSWER, RETRY, PACED, REFRESH, SET_UP = "answer", "retry", "paced", "refresh", "set-up"
EXPECTED: dict[int | str, tuple[str, str, str, str, str, str]] = {
    200: (ANSWER, ANSWER, ANSWER, ANSWER, ANSWER, ANSWER),
    207: (ANSWER, ANSWER, ANSWER, ANSWER, ANSWER, ANSWER),
    400: (ANSWER, SET_UP, ANSWER, SET_UP, SET_UP, ANSWER),
    401: (REFRESH, REFRESH, REFRESH, SET_UP, REFRESH, REFRESH),
    403: (SET_UP, SET_UP, SET_UP, SET_UP, SET_UP, SET_UP),
    404: (SET_UP, SET_UP, SET_UP, SET_UP, SET_UP, SET_UP),
    405: (SET_UP, SET_UP, SET_UP, SET_UP, SET_UP, SET_UP),
    408: (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY),
    413: (ANSWER, SET_UP, ANSWER, SET_UP, SET_UP, ANSWER),
    415: (SET_UP, SET_UP, SET_UP, SET_UP, SET_UP, SET_UP),
    422: (ANSWER, SET_UP, ANSWER, SET_UP, SET_UP, ANSWER),
    429: (PACED, PACED, PACED, RETRY, PACED, PACED),
    500: (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY),
    502: (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY),
    503: (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY),
    504: (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY),
    "drop": (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY),  # the connection is lost
    "hang": (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY),  # no answer within request_timeout
}
CASES = [
    pytest.param(call, status, EXPECTED[status][CALLS.index(call)], id=f"{call.value}-{status}")
    for call in CALLS
    for status in STATUSES
]


def request_for(call: Call, emulator: AmazonAdsEmulator) -> OutgoingRequest:
    endpoint = Endpoint(emulator.url, emulator.client_id, "3333333333")
    if call is Call.UPLOAD:
        event = {
            "conversionDefinitionId": "cd-purchase",
            "name": "purchase",
            "timestamp": seed_record(0)["eventTime"][:19] + "Z",
            "countryCode": "US",
            "matchKeys": [{"type": "EMAIL", "values": ["a" * 64]}],
            "clientDedupeId": "table-test",
        }
        key = (ADVERTISER, "SERVER_TO_SERVER")
        return DspApi().build_request(key, [json.dumps(event).encode()], endpoint)
    if call is Call.USER_DELETION:
        deletion = DspApi().operations[USER_DELETION]
        person = deletion.encode_item([("EMAIL", "a" * 64), ("PHONE", "b" * 64)])
        return deletion.build_request((ADVERTISER, ""), [person], endpoint)
    if call is Call.PROFILES:
        headers = {"Amazon-Advertising-API-ClientId": emulator.client_id}
        return OutgoingRequest("GET", emulator.url + "/v2/profiles", headers, b"", call=call)
    headers = dsp_headers(endpoint, ADVERTISER, DSP_DEFINITION_MEDIA_TYPE)
    url = f"{emulator.url}/accounts/{ADVERTISER}/dsp/conversionDefinitions"
    if call is Call.DEFINITIONS_LIST:
        return json_request(url + "/list", headers, {"maxResults": 10}, call)
    definition = {
        "name": "table test", "conversionType": "LEAD", "source": "SERVER_TO_SERVER",
        "sourceType": "OFFLINE", "countingMethod": "EVERY", "value": 0,
    }  # fmt: skip
    return json_request(url, headers, [definition], call)


def count(emulator: AmazonAdsEmulator, call: Call, *, at_least: int = 0) -> int:
    """Requests of a kind the emulator recorded; a hung one is recorded when it ends, so wait
    for `at_least` of them (up to 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        found = sum(emulator.call_kind(r.method, r.path) == call.value for r in emulator.requests)
        if found >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.parametrize(("call", "status", "expected"), CASES)
def test_every_status_of_every_call(
    emulator: AmazonAdsEmulator, call: Call, status: int | str, expected: str
) -> None:
    emulator.faults.retry_after = "0"
    emulator.faults.hang_seconds = 3
    emulator.script(call.value, status)
    stats = RunStats()
    tokens = access_tokens(emulator, threading.Event(), timeout=1)
    send: Callable[[], object]
    if call is Call.TOKEN:
        send = tokens.current
    else:
        transport = HttpTransport(
            tokens=tokens, counters=stats, timeout=1, max_retries=1, throttle_timeout=60,
            stopping=threading.Event(),
        )  # fmt: skip
        request = request_for(call, emulator)
        send = lambda: transport.send(request)  # noqa: E731

    if expected == SET_UP:
        with pytest.raises(SignInError if call is Call.TOKEN else SetupError) as stopped:
            send()
        assert str(stopped.value).count("check") >= 1, "the line says what to check"
        assert count(emulator, call) == 1, "a set-up answer is not retried"
        return
    answer = send()
    sent = count(emulator, call, at_least=1 if expected == ANSWER else 2)
    if call is not Call.TOKEN:
        assert isinstance(answer, Response)
        normal = answer.status in (200, 207)
        assert answer.status == (status if expected == ANSWER else answer.status)
        assert expected == ANSWER or normal
    assert sent == (1 if expected == ANSWER else 2)
    assert stats.retries == (1 if expected in (RETRY, PACED) and call is not Call.TOKEN else 0)
    assert stats.requests_throttled == (1 if expected == PACED else 0)
    if call is not Call.TOKEN:
        assert count(emulator, Call.TOKEN) == (2 if expected == REFRESH else 1)


@pytest.mark.parametrize(
    ("status", "items", "expected"),
    [(207, 2, Meaning.READ_ITEMS), (200, 2, Meaning.READ_ITEMS), (400, 2, Meaning.REJECT),
     (413, 2, Meaning.SPLIT), (413, 1, Meaning.REJECT), (422, 2, Meaning.REJECT)],
)  # fmt: skip
@pytest.mark.parametrize("call", [Call.UPLOAD, Call.USER_DELETION])
def test_what_delivery_does_with_an_upload_answer(
    call: Call, status: int, items: int, expected: Meaning
) -> None:
    """The answers the transport hands back to delivery: per item, halves, rejects; a user
    deletion's people as an upload's records."""
    assert meaning(call, status, items=items) is expected


@pytest.mark.parametrize("status", [201, 299, 302, 418, 451, 507, 599, 100])
def test_statuses_outside_the_table_mean_what_their_class_does(status: int) -> None:
    for call in CALLS:
        family = {2: 200, 4: 400, 5: 500}.get(status // 100)
        expected = meaning(call, family) if family else Meaning.SET_UP
        assert meaning(call, status) is expected
