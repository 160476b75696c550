"""The HTTP transport against the emulator: Retry-After, 401 refresh once, stop requests."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests

from target_amazon_dsp_conversions.auth import AccessTokens
from target_amazon_dsp_conversions.errors import DeliveryError
from target_amazon_dsp_conversions.http_client import HttpTransport, _retry_after
from target_amazon_dsp_conversions.http_types import Call, OutgoingRequest
from target_amazon_dsp_conversions.report import RunStats
from tests.emulator import AmazonAdsEmulator


def answer_with_retry_after(value: str) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = value
    return response


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("0", 0.0), ("-4", 0.0), ("1e9", 300.0), ("soon", None), ("nan", None),
     ("Mon, 99 Foo 2024 25:61:00 GMT", None), ("", None)],
)  # fmt: skip
def test_retry_after_is_read_safely(value: str, seconds: float | None) -> None:
    assert _retry_after(answer_with_retry_after(value)) == seconds


def test_retry_after_as_an_http_date() -> None:
    moment = datetime.now(timezone.utc) + timedelta(seconds=30)
    wait = _retry_after(answer_with_retry_after(format_datetime(moment, usegmt=True)))
    assert wait is not None and 25 < wait <= 30


def access_tokens(
    emulator: AmazonAdsEmulator, stopping: threading.Event, timeout: float = 5
) -> AccessTokens:
    """Tokens from the emulator's token endpoint with its default credentials."""
    return AccessTokens(
        token_url=emulator.token_url,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        refresh_token="Atzr|test-refresh-token",
        timeout=timeout,
        max_retries=1,
        stopping=stopping,
    )


def transport(emulator: AmazonAdsEmulator, stopping: threading.Event, stats: RunStats,
              max_retries: int = 3) -> HttpTransport:  # fmt: skip
    return HttpTransport(
        tokens=access_tokens(emulator, stopping), counters=stats, timeout=5,
        max_retries=max_retries, throttle_timeout=300, stopping=stopping,
    )  # fmt: skip


def profiles(emulator: AmazonAdsEmulator) -> OutgoingRequest:
    return OutgoingRequest(
        "GET",
        emulator.url + "/v2/profiles",
        {"Amazon-Advertising-API-ClientId": emulator.client_id},
        b"",
        call=Call.PROFILES,
    )  # fmt: skip


def test_retries_then_answers(emulator: AmazonAdsEmulator) -> None:
    emulator.faults.fail_first_n = 2
    emulator.faults.fail_status = 429
    emulator.faults.retry_after = "0"
    stats = RunStats()
    answer = transport(emulator, threading.Event(), stats).send(profiles(emulator))
    assert answer.status == 200
    assert (stats.lookup_requests, stats.retries) == (3, 2)


def test_gives_up_after_max_retries(emulator: AmazonAdsEmulator) -> None:
    emulator.faults.fail_first_n = 100
    emulator.faults.fail_status = 503
    stats = RunStats()
    with pytest.raises(DeliveryError, match=r"failed after 2 retries \(last: HTTP 503\)"):
        transport(emulator, threading.Event(), stats, max_retries=2).send(profiles(emulator))
    assert stats.lookup_requests == 3


def test_a_401_refreshes_the_token_once(emulator: AmazonAdsEmulator) -> None:
    emulator.faults.token_expires_after_requests = 1
    stats = RunStats()
    send = transport(emulator, threading.Event(), stats).send
    assert send(profiles(emulator)).status == 200
    assert send(profiles(emulator)).status == 200  # 401, refresh, 200
    tokens = [r for r in emulator.requests if r.path == "/auth/o2/token"]
    assert len(tokens) == 2
    assert stats.retries == 0  # a refresh is not a retry


def test_a_stop_request_ends_a_backoff_wait_at_once(emulator: AmazonAdsEmulator) -> None:
    emulator.faults.fail_first_n = 100
    emulator.faults.fail_status = 429
    emulator.faults.retry_after = "300"
    stopping = threading.Event()
    send = transport(emulator, stopping, RunStats()).send
    threading.Timer(0.3, stopping.set).start()
    with pytest.raises(DeliveryError, match="stopped before the request was acknowledged"):
        send(profiles(emulator))
