"""DSP user deletion, the API side (`DspApi.operations[USER_DELETION]`): the requests it builds
are Amazon's (`dspAmazonDeletionRequest`), and it reads Amazon's answers item by item; sent to
the emulator through the real transport, the people it names are deleted."""

from __future__ import annotations

import json
import threading

import pytest

from target_amazon_dsp_conversions.apis import api_for
from target_amazon_dsp_conversions.apis.base import (
    ACCEPTED,
    NOT_ACKNOWLEDGED,
    USER_DELETION,
    BatchOperation,
    Endpoint,
)
from target_amazon_dsp_conversions.errors import Problem
from target_amazon_dsp_conversions.http_types import Call, Response
from target_amazon_dsp_conversions.identity import sha256_hex
from target_amazon_dsp_conversions.report import RunStats
from tests.emulator import DSP_DELETION_TYPE, AmazonAdsEmulator
from tests.openapi_schemas import schema_errors
from tests.test_http_client import transport

ADVERTISER = "1234567890"
ENDPOINT = Endpoint("https://advertising-api.amazon.com", "amzn1.application-oa2-client.x", "33")
REQUEST_SCHEMA = "BatchDeleteUserEventsRequestV1"


@pytest.fixture
def deletion() -> BatchOperation:
    return api_for("dsp").operations[USER_DELETION]


def person(n: int) -> list[tuple[str, str]]:
    return [("EMAIL", sha256_hex(f"user{n}@example.com")), ("PHONE", sha256_hex(f"+1555010{n}"))]


def test_a_request_is_amazon_s_deletion_call(deletion: BatchOperation) -> None:
    items = [deletion.encode_item(person(n)) for n in range(3)]
    request = deletion.build_request((ADVERTISER, ""), items, ENDPOINT)
    assert request.method == "POST"
    assert request.url == (
        f"https://advertising-api.amazon.com/accounts/{ADVERTISER}/dsp/conversionDefinitions/delete"
    )
    assert request.call is Call.USER_DELETION and request.item_count == 3
    assert request.headers == {
        "Amazon-Advertising-API-ClientId": "amzn1.application-oa2-client.x",
        "Amazon-Ads-AccountId": ADVERTISER,
        "Amazon-Advertising-API-Scope": "33",
        "Content-Type": DSP_DELETION_TYPE,
        "Accept": DSP_DELETION_TYPE,
    }
    body = json.loads(request.body)
    assert schema_errors("dsp", REQUEST_SCHEMA, body) == []
    assert body == {
        "deletionRequests": [
            {"matchKeys": [{"type": t, "values": [v]} for t, v in person(n)]} for n in range(3)
        ]
    }
    assert deletion.name == "user deletion"


def test_the_largest_request_amazon_takes(deletion: BatchOperation) -> None:
    """500 people of 9 keys each (a raw MAID among them, escaped as JSON)."""
    keys = [
        ("EMAIL", sha256_hex("a@example.com")), ("PHONE", sha256_hex("+15550100")),
        ("FIRST_NAME", sha256_hex("ann")), ("LAST_NAME", sha256_hex("lee")),
        ("ADDRESS", sha256_hex("1 main st")), ("CITY", sha256_hex("austin")),
        ("STATE", sha256_hex("tx")), ("POSTAL", sha256_hex("78701")), ("MAID", 'dev"ice\\1'),
    ]  # fmt: skip
    assert deletion.max_items_per_request == 500 and deletion.max_match_keys_per_item == 9
    items = [deletion.encode_item(keys)] * deletion.max_items_per_request
    body = json.loads(deletion.build_request((ADVERTISER, ""), items, ENDPOINT).body)
    assert schema_errors("dsp", REQUEST_SCHEMA, body) == []
    assert body["deletionRequests"][0]["matchKeys"][8] == {"type": "MAID", "values": ['dev"ice\\1']}
    too_many = json.loads(
        deletion.build_request((ADVERTISER, ""), [*items, items[0]], ENDPOINT).body
    )
    assert schema_errors("dsp", REQUEST_SCHEMA, too_many) != []


@pytest.mark.parametrize("count", [0, 10])
def test_a_person_is_named_by_1_to_9_keys(deletion: BatchOperation, count: int) -> None:
    keys = [("EMAIL", sha256_hex(str(n))) for n in range(count)]
    with pytest.raises(ValueError, match=f"1 to 9 match keys, not {count}"):
        deletion.encode_item(keys)


def test_a_dry_run_deletes_everyone(deletion: BatchOperation) -> None:
    items = [deletion.encode_item(person(n)) for n in range(4)]
    answer = deletion.dry_run_answer(deletion.build_request((ADVERTISER, ""), items, ENDPOINT))
    assert answer.status == 207
    assert schema_errors("dsp", "BatchDeleteUserEventsResponseV1", answer.body) == []
    assert deletion.read_multi_status(answer.body, 4) == [ACCEPTED] * 4


def test_amazon_s_answer_item_by_item(deletion: BatchOperation) -> None:
    body = {
        "success": [{"index": 1}, {"index": 4}, {"index": 9}],  # 9: no item of the request
        "error": [
            {
                "index": 2,
                "code": "INVALID_ARGUMENT",
                "message": "Invalid match key",
                "errors": [
                    {"errorType": "INVALID_ARGUMENT", "fieldName": "matchKeys", "message": "bad"}
                ],
            },
            {"index": 3, "code": "INTERNAL_ERROR"},
        ],
    }
    assert schema_errors("dsp", "BatchDeleteUserEventsResponseV1", body) == []
    assert deletion.read_multi_status(body, 5) == [
        ACCEPTED,
        [Problem("INVALID_ARGUMENT", "Invalid match key: bad", "matchKeys")],
        [Problem("INTERNAL_ERROR", "INTERNAL_ERROR", None)],
        ACCEPTED,
        NOT_ACKNOWLEDGED,  # listed in neither: nothing says Amazon deleted them
    ]


def test_a_refusal_of_the_whole_request(deletion: BatchOperation) -> None:
    body = {"message": "Request body failed validation", "errors": [{"message": "too many"}]}
    problem = deletion.read_error(400, body)
    assert problem.code == "HTTP_400"
    assert problem.message == "HTTP 400: Request body failed validation; too many"


def test_the_emulator_deletes_the_people_a_request_names(
    emulator: AmazonAdsEmulator, deletion: BatchOperation
) -> None:
    refused = sha256_hex("user1@example.com")
    emulator.refused_match_values[refused] = ("INVALID_ARGUMENT", "refused for the test")
    endpoint = Endpoint(emulator.url, emulator.client_id, "3333333333")
    items = [deletion.encode_item(person(n)) for n in range(3)]
    request = deletion.build_request((ADVERTISER, ""), items, endpoint)
    answer = transport(emulator, threading.Event(), RunStats()).send(request)
    assert isinstance(answer, Response) and answer.status == 207
    results = deletion.read_multi_status(answer.body, 3)
    assert results[0] is ACCEPTED and results[2] is ACCEPTED
    assert results[1] == [Problem("INVALID_ARGUMENT", "refused for the test", "matchKeys")]
    assert emulator.deleted == {ADVERTISER: [tuple(person(0)), tuple(person(2))]}
