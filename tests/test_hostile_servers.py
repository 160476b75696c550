"""Servers that are not what they should be (a proxy, a wrong address, a broken gateway): the
target never follows a redirect (the request, its secrets included, would go wherever the server
says, and the answer there would count as Amazon's), never waits forever for an answer that
trickles in, and never reads an endless one into memory, nor an endless list of definitions.
Each stops the run in one line, with nothing lost: no STATE, the records undelivered
(`http_session.py`, `apis/dsp_definitions.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from target_amazon_dsp_conversions.apis.base import DefinitionQuery
from target_amazon_dsp_conversions.apis.dsp_definitions import (
    MAX_PAGES,
    DefinitionCalls,
    DefinitionResolver,
    DefinitionsUnavailableError,
)
from target_amazon_dsp_conversions.endpoints import Endpoint
from target_amazon_dsp_conversions.errors import Rejected
from target_amazon_dsp_conversions.http_types import Call, OutgoingRequest, Response
from tests.conftest import TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

SECRETS = ("test-client-secret", "Atzr|test-refresh-token")


def run_records(
    emulator: AmazonAdsEmulator, tmp_path: Path, records: int = 5, **config: object
) -> TargetRun:
    """The target on `records` seed records against the emulator, with these settings."""
    stream = singer_stream([seed_record(i) for i in range(records)])
    return run_target(emulator.target_config(**config), stream, tmp_path)


def assert_stopped_with_nothing_lost(run: TargetRun, records: int) -> None:
    assert run.returncode == 1, run.stderr[-3000:]
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert run.states == []
    report = run.report
    assert report["records_accepted"] == 0
    assert report["records_undelivered"] == records
    assert not any(secret in run.stderr for secret in SECRETS)


@pytest.mark.parametrize(("call", "records"), [("upload", 150), ("token", 5)])
def test_a_redirect_elsewhere_stops_the_run_and_sends_nothing_there(
    emulator: AmazonAdsEmulator, tmp_path: Path, call: str, records: int
) -> None:
    """An upload: its events; the token call: the client secret and refresh token."""
    with AmazonAdsEmulator() as elsewhere:
        emulator.faults.redirect_calls = frozenset({call})
        emulator.faults.redirect_to = elsewhere.url
        run = run_records(emulator, tmp_path, records)

    assert_stopped_with_nothing_lost(run, records)
    assert "HTTP 307" in run.error_lines[0]
    assert elsewhere.requests == []
    assert emulator.accepted == []


def test_a_redirect_with_an_endless_body_or_a_broken_location_stops_in_one_line(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # requests reads a redirect's body and parses its Location even when it does not follow.
    emulator.faults.redirect_calls = frozenset({"upload"})
    emulator.faults.redirect_to = "http://[::1"  # no URL: ValueError where it is parsed
    emulator.faults.pad_calls = frozenset({"upload"})
    emulator.faults.pad_bytes = 40 << 20
    run = run_records(emulator, tmp_path, max_retries=1)

    assert_stopped_with_nothing_lost(run, 5)
    assert "failed after 1 retries (last: ConnectionError)" in run.error_lines[0]


def test_an_answer_that_trickles_in_times_out(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    # A byte every half second: each read gets something well within request_timeout, and the
    # whole answer would take minutes.
    emulator.faults.trickle_calls = frozenset({"upload"})
    emulator.faults.trickle_seconds = 0.5
    run = run_records(emulator, tmp_path, request_timeout=3, max_retries=1)

    assert_stopped_with_nothing_lost(run, 5)
    assert "failed after 1 retries (last: timeout)" in run.error_lines[0]


def test_a_status_line_and_headers_that_trickle_in_time_out(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Each read of the status line and headers gets a byte well within request_timeout; they
    # would take a minute. The whole answer is due two timeouts after sending.
    emulator.faults.trickle_calls = frozenset({"upload"})
    emulator.faults.trickle_head = True
    emulator.faults.trickle_seconds = 0.3
    started = time.monotonic()
    run = run_records(emulator, tmp_path, request_timeout=2, max_retries=1)

    assert_stopped_with_nothing_lost(run, 5)
    assert "failed after 1 retries (last: timeout)" in run.error_lines[0]
    assert time.monotonic() - started < 30, "the headers held the run"


def test_an_endless_answer_is_not_read_into_memory(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.faults.pad_calls = frozenset({"upload"})
    emulator.faults.pad_bytes = 40 << 20  # valid JSON, then 40 MiB of spaces
    run = run_records(emulator, tmp_path, max_retries=1)

    assert_stopped_with_nothing_lost(run, 5)
    assert "failed after 1 retries (last: ConnectionError)" in run.error_lines[0]


@pytest.mark.parametrize(
    ("call", "status", "raw", "line"),
    [
        ("upload", 207, b'{"success": [], "error": [{"index": 1, "errors": 5}]}',
         "an answer to an upload (HTTP 207) is in no shape of Amazon's"),
        ("upload", 400, b'{"message": "bad", "errors": 5}',
         "an answer to an upload (HTTP 400) is in no shape of Amazon's"),
        ("upload", 400, b"<html><body>400 Bad Request</body></html>",
         "an answer to an upload (HTTP 400) is in no shape of Amazon's (no JSON error)"),
        ("upload", 422, b"",
         "an answer to an upload (HTTP 422) is in no shape of Amazon's (no JSON error)"),
        ("upload", 451, b"<html>blocked</html>",
         "an answer to an upload (HTTP 451) is in no shape of Amazon's (no JSON error)"),
        ("upload", 207, b"[" * 100_000 + b"]" * 100_000,
         "HTTP 207 listed 5 of 5 events neither as accepted nor as refused"),  # unreadable
        ("token", 200, '{"access_token": "Atza|tökén-✓", "expires_in": 3600}'.encode(),
         "answered with an access token no header holds"),
        ("definitions list", 200, b"<html>maintenance</html>",
         "HTTP 200 without a list of definitions, which is no answer of Amazon's"),
    ],
    ids=["207-errors-not-a-list", "400-errors-not-a-list", "400-html", "422-empty", "451-html",
         "207-nested-too-deeply", "token",
         "definitions-list-html"],
)  # fmt: skip
def test_an_answer_in_no_shape_of_amazons_stops_the_run_in_one_line(
    emulator: AmazonAdsEmulator, tmp_path: Path, call: str, status: int, raw: bytes, line: str
) -> None:
    emulator.faults.raw_answers = {call: (status, raw)}
    run = run_records(emulator, tmp_path, max_retries=0)

    assert_stopped_with_nothing_lost(run, 5)
    assert line in run.stderr


def test_a_413_without_amazons_error_still_splits_down_to_the_event_too_large(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # A front end's size limit, in its own words: each event it still refuses alone is that
    # event's fault (rejected), not the set-up's.
    emulator.faults.raw_answers = {"upload": (413, b"<html>Request Entity Too Large</html>")}
    run = run_records(emulator, tmp_path, records=2)

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.report["records_rejected"] == 2
    assert {r["errors"][0]["code"] for r in run.rejects} == {"HTTP_413"}


@pytest.mark.parametrize(
    "next_token",
    [lambda page: "again", lambda page: f"page-{page}"],
    ids=["a-token-that-comes-again", "pages-without-end"],
)
def test_a_definitions_list_that_does_not_end_stops_instead_of_reading_forever(
    next_token: Callable[[int], str],
) -> None:
    pages: list[int] = []

    def send(request: OutgoingRequest) -> Response:
        pages.append(len(pages))
        return Response(200, {"conversionDefinitions": [], "nextToken": next_token(len(pages))})

    calls = DefinitionCalls(send, Endpoint("https://api.example", "client", "333"))
    with pytest.raises(DefinitionsUnavailableError, match="the list did not end"):
        calls.list_all("1234567890")
    assert len(pages) <= MAX_PAGES + 1


def test_a_page_of_definitions_without_its_list_is_an_empty_page() -> None:
    """Amazon's schema does not require `conversionDefinitions`: an advertiser without any."""
    calls = DefinitionCalls(
        lambda request: Response(200, {"maxResults": 100}),
        Endpoint("https://api.example", "client", "333"),
    )
    assert calls.list_all("1234567890") == []


def test_definitions_in_no_shape_of_amazons_are_no_definitions() -> None:
    """A listed definition without an ID is left out, and a create answer without one refuses
    the records it was for (DEFINITION_NOT_CREATED), with no traceback."""

    def send(request: OutgoingRequest) -> Response:
        if request.call is Call.DEFINITIONS_LIST:
            return Response(200, {"conversionDefinitions": [{"name": "purchase"}]})
        return Response(200, {"success": ["cd-new"], "error": "boom"})

    resolver = DefinitionResolver(
        configured={},
        create_missing=True,
        calls=DefinitionCalls(send, Endpoint("https://api.example", "client", "333")),
    )
    query = DefinitionQuery(
        "1234567890", "SERVER_TO_SERVER", "purchase", "OFF_AMAZON_PURCHASES", None
    )
    with pytest.raises(Rejected) as refused:
        resolver.lookup(query)
    assert [problem.code for problem in refused.value.problems] == ["DEFINITION_NOT_CREATED"]
