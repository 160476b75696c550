"""HTTP: one request with auth and retries, or a dry-run file instead of the network; and the
helpers every HTTP caller of the package shares (the run, `check`, `login`, sign-in)."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

import requests

from target_amazon_dsp_conversions.apis.base import OutgoingRequest, Response
from target_amazon_dsp_conversions.errors import DeliveryError
from target_amazon_dsp_conversions.files import OutputFile
from target_amazon_dsp_conversions.pacing import Pace, Ticket

if TYPE_CHECKING:
    from target_amazon_dsp_conversions.auth import AccessTokens

logger = logging.getLogger("target-amazon-dsp-conversions.http")

RETRIED_STATUSES = frozenset({500, 502, 503, 504})  # and 429, paced instead (pacing.py)
THROTTLED = 429
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 300.0


def read_json(answer: requests.Response) -> Any:
    """The answer's JSON body; None when it has none or it is not JSON."""
    if not answer.content:
        return None
    try:
        return answer.json()
    except ValueError:
        return None


def backoff_delay(attempt: int) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): exponential, capped, with full jitter,
    so that concurrent callers do not retry in lockstep."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))


class Counters(Protocol):
    """Where the transport reports requests and retries."""

    def count_request(self) -> None:
        """One HTTP request went out."""
        ...

    def count_retry(self) -> None:
        """One request is being retried."""
        ...

    def count_throttled(self) -> None:
        """Amazon answered 429."""
        ...


class HttpTransport:
    """requests sessions (one per thread), Bearer auth, retries with backoff, 401 refresh."""

    def __init__(
        self,
        *,
        tokens: AccessTokens,
        counters: Counters,
        timeout: float,
        max_retries: int,
        throttle_timeout: float,
        stopping: threading.Event,
    ) -> None:
        """`stopping` interrupts waits when the run is being shut down; `throttle_timeout`
        is how long Amazon may throttle every request to an account before the run fails."""
        self._tokens = tokens
        self._counters = counters
        self._timeout = timeout
        self._max_retries = max_retries
        self._throttle_timeout = throttle_timeout
        self._stopping = stopping
        self._paces: dict[str, Pace] = {}
        self._paces_lock = threading.Lock()
        self._local = threading.local()
        # requests reads the environment (proxies, netrc, CA bundle) on every request when
        # trust_env is on, which costs more CPU than the request itself; it is read here once,
        # with requests' own rules, and the sessions do not look again.
        self._verify: bool | str = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        self._proxies: dict[str, dict[str, str]] = {}

    def _proxies_for(self, url: str) -> dict[str, str]:
        # Per scheme and host, as no_proxy decides per host.
        origin = url.split("/", 3)[:3]
        key = "/".join(origin)
        proxies = self._proxies.get(key)
        if proxies is None:
            proxies = self._proxies[key] = requests.utils.get_environ_proxies(key + "/")
        return proxies

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.verify = self._verify
            # One session per upload thread, so one kept-alive connection each is enough.
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

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
        """Send at the account's pace; a 429 waits its turn again (as long as the account makes
        progress); retry 5xx, timeouts and connection errors up to max_retries; refresh the
        token once on 401."""
        account = request.headers.get("Amazon-Ads-AccountId", "")
        pace = self.pace_of(account)
        retries = 0
        refreshed = False
        token = self._tokens.current()
        while True:
            ticket = pace.take(self._stopping.wait)
            if ticket is None or self._stopping.is_set():
                raise DeliveryError("stopped before the request was acknowledged")
            headers = dict(request.headers)
            headers["Authorization"] = f"Bearer {token}"
            self._counters.count_request()
            try:
                answer = self._session().request(
                    request.method,
                    request.url,
                    data=request.body,
                    headers=headers,
                    timeout=self._timeout,
                    proxies=self._proxies_for(request.url),
                )
            except requests.RequestException as exc:
                pace.failed(ticket)
                problem, delay = type(exc).__name__, None
            else:
                status = answer.status_code
                if status == THROTTLED:
                    self._throttled(request, account, pace, ticket, _retry_after(answer))
                    token = self._tokens.current()
                    continue
                pace.answered(ticket)
                if status == 401:  # noqa: PLR2004
                    if refreshed:
                        raise DeliveryError(
                            f"{request.method} {_path(request.url)} answered 401 again right "
                            "after a token refresh; check the app's access to this advertiser"
                        )
                    refreshed = True
                    token = self._tokens.refresh_after_401(token)
                    continue
                # Only a 401 *right after* a refresh is fatal; a later one (the token expired
                # again during a long backoff) gets its own refresh.
                refreshed = False
                if status not in RETRIED_STATUSES:
                    return Response(status, read_json(answer))
                problem, delay = f"HTTP {status}", _retry_after(answer)
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
                raise DeliveryError("stopped before the request was acknowledged")
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
        if idle > self._throttle_timeout:
            raise DeliveryError(
                f"Amazon kept throttling account {account or '(none)'}: no request was accepted "
                f"for {idle:.0f} s (throttle_timeout); {request.method} {_path(request.url)} "
                "was not delivered. Run again later, or lower max_concurrent_requests"
            )
        logger.debug(
            "%s %s: HTTP 429; waiting its turn (%.1f requests/s, Retry-After %s)",
            request.method, _path(request.url), pace.rate, retry_after,
        )  # fmt: skip


class DryRunTransport:
    """Writes each request to a JSONL file, secrets redacted, and answers as if all was accepted."""

    def __init__(self, path: str, counters: Counters) -> None:
        """Create or empty the file now (start-up): a dry run shows one run's requests. It holds
        what requests carry (raw MAIDs, IP addresses, event names): owner-only (`files.py`)."""
        self._file = OutputFile("dry_run_path", path, truncate=True)
        self._lock = threading.Lock()
        self._counters = counters

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
            self._file.append(line.encode() + b"\n")  # OutputError: the run stops
        return Response(207, {})

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _retry_after(answer: requests.Response) -> float | None:
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
