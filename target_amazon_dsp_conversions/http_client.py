"""HTTP: one request with auth, retries and pacing, or a dry-run file instead of the network.
What each answer means is decided in `answers.py`; how fast to send, in `pacing.py`."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import requests

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.answers import (
    CONNECTION_FAILED,
    TIMED_OUT,
    Meaning,
    backoff_delay,
    fresh_token_refused_line,
    meaning,
    proves_token,
    set_up_line,
)
from target_amazon_dsp_conversions.errors import DeliveryError, SetupError
from target_amazon_dsp_conversions.files import OutputFile
from target_amazon_dsp_conversions.http_session import Answer, Sessions, read_json
from target_amazon_dsp_conversions.http_types import OutgoingRequest, Response
from target_amazon_dsp_conversions.pacing import Pace, Ticket

if TYPE_CHECKING:
    from target_amazon_dsp_conversions.auth import AccessTokens

logger = logging.getLogger("target-amazon-dsp-conversions.http")

MAX_RETRY_AFTER_SECONDS = 300.0
STOPPED = "stopped before the request was acknowledged"


class Counters(Protocol):
    """Where the transport reports requests and retries."""

    def count_request(self, *, upload: bool = True) -> None:
        """One HTTP request went out: an upload of events, or a lookup."""
        ...

    def count_retry(self) -> None:
        """One request is being retried."""
        ...

    def count_throttled(self) -> None:
        """Amazon answered 429."""
        ...


class HttpTransport:
    """Sends requests on the run's sessions with a Bearer token, at each account's pace, and
    acts on each answer as `answers.meaning` says until one is final."""

    def __init__(
        self,
        *,
        tokens: AccessTokens,
        counters: Counters,
        timeout: float,
        max_retries: int,
        throttle_timeout: float,
        stopping: threading.Event,
        sessions: Sessions | None = None,
    ) -> None:
        """`stopping` interrupts waits when the run is being shut down (and `sessions.cut_all`
        the requests in flight); `throttle_timeout` is how long Amazon may throttle every
        request to an account before the run fails."""
        self._tokens = tokens
        self._counters = counters
        self._timeout = timeout
        self._max_retries = max_retries
        self._throttle_timeout = throttle_timeout
        self._stopping = stopping
        self._sessions = sessions or Sessions()
        self._paces: dict[str, Pace] = {}
        self._paces_lock = threading.Lock()

    def pace_of(self, account: str) -> Pace:
        """The pace of requests to an account (its `Amazon-Ads-AccountId`)."""
        pace = self._paces.get(account)
        if pace is None:
            with self._paces_lock:
                pace = self._paces.setdefault(account, Pace())
        return pace

    def throttled_accounts(self) -> dict[str, float]:
        """Accounts Amazon throttles, with the requests per second it allows now."""
        return {account: pace.rate for account, pace in self._paces.items() if pace.limited}

    def send(self, request: OutgoingRequest) -> Response:
        """Send at the account's pace until an answer is final (`answers.Meaning`): a 429 waits
        its turn again (as long as the account makes progress), 5xx, timeouts and connection
        errors are retried up to max_retries, a 401 refreshes the token; a set-up answer
        raises SetupError."""
        account = request.headers.get("Amazon-Ads-AccountId", "")
        pace = self.pace_of(account)
        retries = 0
        token = self._tokens.current()
        while True:
            ticket = pace.take(self._stopping.wait)
            if ticket is None or self._stopping.is_set():
                raise DeliveryError(STOPPED)
            headers = dict(request.headers)
            headers["Authorization"] = f"Bearer {token}"
            self._counters.count_request(upload=request.item_count > 0)
            answer: Answer | None = None
            delay: float | None = None
            try:
                answer = self._sessions.request(
                    request.method,
                    request.url,
                    data=request.body,
                    headers=headers,
                    timeout=self._timeout,
                )
            except requests.Timeout:
                status, problem = TIMED_OUT, "timeout"
            except requests.RequestException as exc:
                status, problem = CONNECTION_FAILED, type(exc).__name__
            else:
                status, problem = answer.status_code, f"HTTP {answer.status_code}"
            if answer is None:
                pace.failed(ticket)
                if self._stopping.is_set():  # the stop cut the connection
                    raise DeliveryError(STOPPED)
            found = meaning(request.call, status, items=request.item_count)
            if found is Meaning.SLOW_DOWN:
                assert answer is not None
                self._throttled(request, account, pace, ticket, _retry_after(answer))
                token = self._tokens.current()
                continue
            if answer is not None:
                pace.answered(ticket)
                delay = _retry_after(answer)
            if found is Meaning.REFRESH_TOKEN:
                fresh = self._tokens.refused(token)
                if fresh is None:
                    raise SetupError(fresh_token_refused_line(request.method, _path(request.url)))
                token = fresh
                continue
            if proves_token(request.call, status):
                self._tokens.proven(token)
            if found is Meaning.SET_UP:
                assert answer is not None
                raise SetupError(set_up_line(request.call, status, read_json(answer), account))
            if found is not Meaning.RETRY:
                assert answer is not None
                return Response(status, read_json(answer))
            retries += 1
            if retries > self._max_retries:
                raise DeliveryError(
                    f"{request.method} {_path(request.url)} failed after {self._max_retries} "
                    f"retries (last: {problem})"
                )
            if delay is None:
                delay = backoff_delay(retries)
            self._counters.count_retry()
            logger.info(
                "%s %s: %s; retry %d of %d in %.2f s",
                request.method, _path(request.url), problem, retries, self._max_retries, delay,
            )  # fmt: skip
            if self._stopping.wait(delay):
                raise DeliveryError(STOPPED)
            token = self._tokens.current()

    def _throttled(
        self,
        request: OutgoingRequest,
        account: str,
        pace: Pace,
        ticket: Ticket,
        retry_after: float | None,
    ) -> None:
        """A 429: the pace slows for every request to the account; this one waits its turn
        again, unless Amazon has accepted nothing from the account for too long."""
        first = not pace.limited
        pace.throttled_now(ticket, retry_after)
        self._counters.count_throttled()
        self._counters.count_retry()
        if first:
            logger.warning(
                "Amazon throttles account %s (HTTP 429): pacing requests to what it allows "
                "(%.1f requests/s for now)",
                account or "(none)",
                pace.rate,
            )
        idle = pace.seconds_without_progress()
        # A Retry-After longer than throttle_timeout: fail now, not once it is over.
        asks_too_much = retry_after is not None and retry_after > self._throttle_timeout
        if idle > self._throttle_timeout or asks_too_much:
            asked = f", and it asks to wait {retry_after:.0f} s more" if asks_too_much else ""
            raise DeliveryError(
                f"Amazon kept throttling account {account or '(none)'}: no request was accepted "
                f"for {idle:.0f} s{asked} (throttle_timeout {self._throttle_timeout:.0f} s); "
                f"{request.method} {_path(request.url)} was not delivered. Run again later, or "
                "lower max_concurrent_requests"
            )
        logger.debug(
            "%s %s: HTTP 429; waiting its turn (%.1f requests/s, Retry-After %s)",
            request.method, _path(request.url), pace.rate, retry_after,
        )  # fmt: skip


class DryRunTransport:
    """Writes each request to a JSONL file, secrets redacted, and answers as if all was accepted."""

    def __init__(
        self, path: str, counters: Counters, answer: Callable[[OutgoingRequest], Response]
    ) -> None:
        """Create or empty the file now (start-up): a dry run shows one run's requests. It holds
        what requests carry (raw MAIDs, IP addresses, event names): owner-only (`files.py`).
        `answer` is the API's answer accepting every event of a request."""
        self._file = OutputFile("dry_run_path", path, truncate=True)
        self._lock = threading.Lock()
        self._counters = counters
        self._answer = answer

    def send(self, request: OutgoingRequest) -> Response:
        """Record the request that would have been sent."""
        headers = dict(request.headers)
        headers["Authorization"] = "Bearer <redacted>"
        line = json.dumps(
            {
                "method": request.method,
                "url": request.url,
                "headers": headers,
                "body": json.loads(request.body),
            },
            separators=(",", ":"),
        )
        with self._lock:
            self._counters.count_request()
            self._file.append(redaction.redact(line).encode() + b"\n")  # OutputError: stops
        return self._answer(request)

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _retry_after(answer: Answer) -> float | None:
    value = answer.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None  # unreadable: fall back to backoff rather than fail the request
        seconds = moment.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def _path(url: str) -> str:
    # Log the path only: hosts are configuration, and query strings could carry anything.
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
