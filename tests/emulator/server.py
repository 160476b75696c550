"""An in-process HTTP emulator of the Amazon Ads APIs the target talks to.

It serves Login with Amazon (token + authorize), ``GET /v2/profiles``, the DSP
Conversions API (eventData, list, create definitions, user deletion) and the Events API, checks
requests against the test-tree copies of Amazon's OpenAPI schemas, records what it
received and accepted, and injects faults (429, 5xx, drops, hangs, expiring tokens).
Behaviour follows ``shared/reference/amazon-ads-api.md``; where Amazon is silent the
choices are documented on the method that makes them.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import json
import re
import secrets
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from requests.structures import CaseInsensitiveDict

from ..openapi_schemas import validator
from .throttle import Throttle

DSP_EVENT_TYPE = "application/vnd.dspconversioneventimport.v1+json"
DSP_DEFINITION_TYPE = "application/vnd.dspconversiondefinition.v1+json"
DSP_DEFINITION_TYPE_V2 = "application/vnd.dspconversiondefinition.v2+json"
DSP_DELETION_TYPE = "application/vnd.dspuserdeletionrequest.v1+json"
JSON_TYPE = "application/json"
LWA_SCOPE = "advertising::campaign_management"
PERM_VIEW = "event_manager_view"
PERM_EDIT = "event_manager_edit"

INVALID_GRANT_MESSAGE = (
    "The request has an invalid grant parameter : refresh_token. "
    "User may have revoked or didn't grant the permission."
)

# DSP: every match key type except MAID is SHA-256 hashed (RAMP_ID too, per SPEC §4).
DSP_HASHED_TYPES = frozenset(
    {"ADDRESS", "CITY", "EMAIL", "FIRST_NAME", "LAST_NAME", "PHONE", "POSTAL", "RAMP_ID", "STATE"}
)
# Events API: raw types (MAID, RAMP_ID, MATCH_ID, REAL_ID, ...) are not checked.
EVENTS_HASHED_TYPES = frozenset(
    {"ADDRESS", "CITY", "EMAIL", "FIRST_NAME", "LAST_NAME", "PHONE", "POSTAL", "STATE"}
)
HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NO_DEFINITION: dict[str, Any] = {"source": None}
# Events API rules the schema cannot state: CreateCustomData names/values allow letters,
# digits and _ only; dataSetName's pattern is meant whole; MATCH_ID is at most 100 characters.
CUSTOM_DATA_TEXT = re.compile(r"^[A-Za-z0-9_]+$")
DATA_SET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
MATCH_ID_MAX = 100
# Advertisers here count as "EU advertisers", whose events need consent (CreateConsent).
EU_CONSENT_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR", "HU",
     "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"}
)  # fmt: skip

DSP_MAX_AGE = timedelta(days=7)
DSP_MAX_FUTURE = timedelta(hours=1)
EVENTS_MAX_AGE = timedelta(days=21)

_DSP_PATH = re.compile(
    r"^/accounts/([^/]+)/dsp/conversionDefinitions(/eventData|/list|/delete)?/?$"
)
# The kinds of call, in the target's words (its `Call` values): what `script`, `arrivals` and
# `Faults.hang_calls` name.
CALL_KINDS = (
    "token", "profiles", "upload", "definitions list", "definitions create", "user deletion",
)  # fmt: skip
_DSP_CALL_KINDS = {"/eventData": "upload", "/list": "definitions list", "/delete": "user deletion"}
_DSP_MEDIA_TYPES = {
    "/eventData": DSP_EVENT_TYPE,
    "/list": DSP_DEFINITION_TYPE,
    "": DSP_DEFINITION_TYPE,
    "/delete": DSP_DELETION_TYPE,
}

# Events API ErrorCode enum values per HTTP status (5xx bodies take any string).
_EVENTS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "CONTENT_TOO_LARGE",
    415: "BAD_REQUEST",  # the spec's ErrorCode enum has no media-type code
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

_MARKETPLACES = {
    "US": ("ATVPDKIKX0DER", "USD", "America/Los_Angeles"),
    "CA": ("A2EUQ1WTGCTBG2", "CAD", "America/Los_Angeles"),
    "MX": ("A1AM78C64UM0Y8", "MXN", "America/Los_Angeles"),
    "GB": ("A1F83G8C2ARO7P", "GBP", "Europe/London"),
    "DE": ("A1PA6795UKMFR9", "EUR", "Europe/Paris"),
    "FR": ("A13V1IB3VIYZZH", "EUR", "Europe/Paris"),
    "IT": ("APJ6JRA9NG5V4", "EUR", "Europe/Paris"),
    "ES": ("A1RKKUPIHCS9HS", "EUR", "Europe/Paris"),
    "JP": ("A1VC38T7YXB528", "JPY", "Asia/Tokyo"),
}


@dataclass
class Faults:
    """Fault injection settings; all off by default. Counters run over API requests only."""

    latency_seconds: float = 0.0
    every_nth_429: int = 0
    retry_after: str | None = "1"
    every_nth_5xx: int = 0
    status_5xx: int = 503
    drop_every_nth: int = 0
    hang_every_nth: int = 0
    hang_seconds: float = 30.0
    token_expires_after_requests: int | None = None
    max_body_bytes: int | None = None
    fail_first_n: int = 0
    fail_status: int = 503
    # Kinds of call (see `call_kind`) whose every request hangs for `hang_seconds`, then 504.
    hang_calls: frozenset[str] = frozenset()
    # A careless server: error answers quote the request (the token endpoint its form, with
    # the client secret and refresh token; the API its Authorization header).
    echo_request: bool = False
    # A server that is not what it should be (a proxy, a wrong address), per kind of call:
    # answers 307 to `redirect_to` + the path; sends its answers' bodies (or, with
    # `trickle_head`, their headers, after the status line) a byte every `trickle_seconds`;
    # pads its answers' JSON with `pad_bytes` spaces.
    redirect_calls: frozenset[str] = frozenset()
    redirect_to: str = ""
    trickle_calls: frozenset[str] = frozenset()
    trickle_seconds: float = 0.5
    trickle_head: bool = False
    pad_calls: frozenset[str] = frozenset()
    pad_bytes: int = 0
    # Per kind of call: this status and raw body instead of the answer (a broken gateway).
    raw_answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    """One request as received, with the status answered (0 = connection dropped)."""

    method: str
    path: str
    headers: CaseInsensitiveDict[str]
    body: Any
    status: int
    query: dict[str, list[str]] = field(default_factory=dict)
    raw_size: int = 0
    received_at: float = 0.0


@dataclass
class Advertiser:
    """A DSP advertiser account with its profile and Events Manager permissions."""

    advertiser_id: str
    profile_id: str | None
    country: str = "US"
    permissions: frozenset[str] = frozenset({PERM_VIEW, PERM_EDIT})
    name: str = ""


@dataclass
class _AccessToken:
    refresh_token: str
    expires_at: float
    uses: int = 0


@dataclass
class _Incoming:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict[str]
    raw: bytes


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False


def _json_response(
    status: int, doc: Any, content_type: str = JSON_TYPE, headers: Iterable[tuple[str, str]] = ()
) -> _Response:
    body = json.dumps(doc).encode()
    return _Response(status, body, [("Content-Type", content_type), *headers])


_ECHOED_FIELDS = frozenset({"error", "error_description", "message", "details"})


def _echo_request(req: _Incoming, response: _Response) -> _Response:
    """The answer with the request quoted in each of its error texts (the token endpoint's
    `error`/`error_description`, the APIs' `message`/`details`, per-event messages too)."""
    if (response.status < 400 and response.status != 207) or not response.body:
        return response
    if req.path == "/auth/o2/token":
        form = parse_qs(req.raw.decode("utf-8", "replace"))
        quote = f"request: {req.raw.decode('utf-8', 'replace')}; fields: {form}"
    else:
        quote = f"request: Authorization: {req.headers.get('Authorization', '')}"

    def quoted(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: f"{item} ({quote})" if key in _ECHOED_FIELDS and isinstance(item, str)
                else quoted(item)
                for key, item in value.items()
            }  # fmt: skip
        if isinstance(value, list):
            return [quoted(item) for item in value]
        return value

    try:
        doc = json.loads(response.body)
    except ValueError:
        return response
    return _Response(response.status, json.dumps(quoted(doc)).encode(), response.headers)


def _media_type(headers: CaseInsensitiveDict[str]) -> str:
    """Content-Type without parameters such as charset, lower-cased."""
    return (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 string with offset, else None."""
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # Amazon's date-time needs an offset; a naive time is ambiguous
    return parsed.astimezone(timezone.utc)


def _schema_violations(api: str, schema: str, body: Any) -> list[Any]:
    """jsonschema errors of ``body`` (numbers as Decimal, formats unchecked)."""
    doc = json.loads(json.dumps(body), parse_float=Decimal)
    return list(validator(api, schema, False).iter_errors(doc))


def _dsp_multi_status(
    success: list[dict[str, Any]], failures: list[dict[str, Any]], ctype: str
) -> _Response:
    """A DSP 207: both arrays have minItems 1 in Amazon's schema, so an empty one is left out."""
    doc: dict[str, Any] = {}
    if success:
        doc["success"] = success
    if failures:
        doc["error"] = failures
    return _json_response(207, doc, ctype)


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many concurrent client connections in load tests

    def __init__(self, address: tuple[str, int], emulator: AmazonAdsEmulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, lets the emulator answer it, writes the answer (keep-alive)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY each answer waits ~40 ms
    # for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: test output should not be flooded with access logs."""

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        incoming = _Incoming(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=CaseInsensitiveDict(self.headers.items()),
            raw=self._read_body(),
        )
        try:
            response = self.server.emulator._handle(incoming)
        except Exception as exc:  # an emulator bug must show up as a 500, not a hang-up
            traceback.print_exc()
            body = json.dumps({"message": f"emulator error: {exc!r}"}).encode()
            response = _Response(500, body, [("Content-Type", JSON_TYPE)])
        if response.drop:
            # Simulate a connection lost mid-request: no status line at all.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        emulator = self.server.emulator
        trickle = emulator.call_kind(self.command, split.path) in emulator.faults.trickle_calls
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if trickle and emulator.faults.trickle_head:
                # The status line at once, then the headers byte by byte.
                self._headers_buffer.append(b"\r\n")
                status_line, *headers = self._headers_buffer
                self._headers_buffer = []
                self.wfile.write(status_line)
                if not self._trickle(b"".join(headers)):
                    return
            else:
                self.end_headers()
            if trickle and not emulator.faults.trickle_head:
                self._trickle(response.body)
            else:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout fired)

    def _trickle(self, data: bytes) -> bool:
        """Each byte on its own, within every read timeout, never all at once; False when the
        emulator stopped meanwhile."""
        emulator = self.server.emulator
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if emulator._stopping.wait(emulator.faults.trickle_seconds):
                self.close_connection = True
                return False
        return True

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
    do_PATCH = _dispatch


class AmazonAdsEmulator:
    """Amazon Ads API emulator on 127.0.0.1; see the module docstring."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", with_defaults: bool = True):
        self.host = host
        self.port = port
        self.client_id = "amzn1.application-oa2-client.test"
        self.client_secret = "test-client-secret"
        self.refresh_tokens: set[str] = {"Atzr|test-refresh-token"}
        self.revoked_refresh_tokens: set[str] = set()
        self.token_ttl_seconds: float = 3600
        # What access tokens expire by; a test moves it on instead of sleeping.
        self.clock: Callable[[], float] = time.time
        self.faults = Faults()
        # Amazon's rate limit per account (off by default); see throttle.py.
        self.throttle = Throttle()
        # dedupe id -> (code, message) or (code, message, field): a per-item error in the 207.
        self.poison_ids: dict[str, tuple[str, ...]] = {}
        # dedupe ids a 207 leaves out of both `success` and `error` (and that are not kept):
        # an answer that acknowledges an item neither way.
        self.omit_ids: set[str] = set()
        # User deletion: a match-key value -> (code, message): a person with a key of this value
        # is refused (a per-item error in the 207, not deleted).
        self.refused_match_values: dict[str, tuple[str, str]] = {}
        # User deletion: a person with a key of one of these values is left out of both lists.
        self.omit_match_values: set[str] = set()
        self.authorize_denied = False
        # False: accepted events are not kept (long benchmark runs; constant memory).
        self.keep_ledger = True
        self.advertisers: dict[str, Advertiser] = {}
        self.entity_ids: dict[str, str] = {}  # ENTITY... -> advertiser ID
        self.definitions: dict[str, list[dict[str, Any]]] = {}

        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._access_tokens: dict[str, _AccessToken] = {}
        self._auth_codes: dict[str, dict[str, str]] = {}
        self._requests: list[RecordedRequest] = []
        self._accepted: list[dict[str, Any]] = []
        self._rejected: list[dict[str, Any]] = []
        # User deletion: (advertiser, the person's match keys) deleted, and the refused items.
        self._deleted: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        self._refused_deletions: list[dict[str, Any]] = []
        self._api_count = 0
        self._api_in_flight = 0
        self.peak_api_in_flight = 0  # the most API requests handled at once
        self._definition_seq = 0
        self._scripts: dict[str, collections.deque[int | str]] = {}
        # Requests per kind of call as they arrive (`requests` records them once answered).
        self._arrivals: collections.Counter[str] = collections.Counter()
        self._arrived = threading.Condition(self._lock)
        if with_defaults:
            self._add_defaults()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> AmazonAdsEmulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"amazon-ads-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging handlers are woken so they end quickly."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> AmazonAdsEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (use as the target's ``api_url``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        """LwA token endpoint (use as the target's ``auth_url``)."""
        return self.url + "/auth/o2/token"

    @property
    def authorize_url(self) -> str:
        """LwA consent page that issues authorization codes."""
        return self.url + "/ap/oa"

    # ------------------------------------------------------------------ fixtures
    def _add_defaults(self) -> None:
        self.add_advertiser("1234567890", profile_id="3333333333", name="Test Advertiser")
        # The Events API also takes the advertiser's entity ID (Amazon's 2026 samples send one).
        self.entity_ids["ENTITY1TESTADVERTISER"] = "1234567890"
        for name, ctype, source, stype, def_id in (
            ("purchase", "OFF_AMAZON_PURCHASES", "SERVER_TO_SERVER", "OFFLINE", "cd-purchase"),
            ("signup", "SIGN_UP", "SERVER_TO_SERVER", "OFFLINE", "cd-signup"),
            ("lead", "LEAD", "SERVER_TO_SERVER", "OFFLINE", "cd-lead"),
            (
                "add_to_cart",
                "ADD_TO_SHOPPING_CART",
                "SERVER_TO_SERVER",
                "OFFLINE",
                "cd-add-to-cart",
            ),
            ("web_purchase", "OFF_AMAZON_PURCHASES", "AMAZON_AD_TAG", "WEBSITE", "cd-web-purchase"),
        ):
            self.add_definition("1234567890", name, ctype, source, stype, definition_id=def_id)
        self.add_advertiser("2222222222", profile_id="4444444444", name="Second Advertiser")
        self.add_definition("2222222222", "purchase", definition_id="cd-2222-purchase")
        self.add_advertiser(
            "5555555555", profile_id="6666666666", permissions=(PERM_VIEW,), name="View Only"
        )
        self.add_definition("5555555555", "purchase", definition_id="cd-5555-purchase")

    def add_advertiser(
        self,
        advertiser_id: str,
        profile_id: str | None = None,
        country: str = "US",
        permissions: Iterable[str] = (PERM_VIEW, PERM_EDIT),
        name: str = "",
    ) -> Advertiser:
        """Register a DSP advertiser (numeric string) and, optionally, its profile."""
        adv = Advertiser(
            advertiser_id=str(advertiser_id),
            profile_id=None if profile_id is None else str(profile_id),
            country=country.upper(),
            permissions=frozenset(permissions),
            name=name or f"Advertiser {advertiser_id}",
        )
        with self._lock:
            self.advertisers[adv.advertiser_id] = adv
            self.definitions.setdefault(adv.advertiser_id, [])
        return adv

    def add_definition(
        self,
        advertiser_id: str,
        name: str,
        conversion_type: str = "OFF_AMAZON_PURCHASES",
        source: str = "SERVER_TO_SERVER",
        source_type: str = "OFFLINE",
        *,
        definition_id: str | None = None,
        counting_method: str = "EVERY",
        value: float = 0.0,
    ) -> str:
        """Add a conversion definition (``ConversionDefinitionV1``); returns its id."""
        with self._lock:
            if definition_id is None:
                self._definition_seq += 1
                definition_id = f"cd-{self._definition_seq:06d}"
            now = _now_iso()
            self.definitions.setdefault(str(advertiser_id), []).append(
                {
                    "conversionDefinitionId": definition_id,
                    "name": name,
                    "conversionType": conversion_type,
                    "source": source,
                    "sourceType": source_type,
                    "countingMethod": counting_method,
                    "value": float(value),
                    "createTime": now,
                    "lastUpdatedTime": now,
                    "createdBy": {"accountId": str(advertiser_id), "name": "emulator"},
                }
            )
        return definition_id

    def issue_access_token(self, refresh_token: str = "Atzr|test-refresh-token") -> str:
        """Mint a valid access token directly (skips the token endpoint in tests)."""
        token = "Atza|" + secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[token] = _AccessToken(
                refresh_token, self.clock() + self.token_ttl_seconds
            )
        return token

    def target_config(self, **overrides: Any) -> dict[str, Any]:
        """A target config pointing at this emulator with the default credentials."""
        config: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": next(iter(sorted(self.refresh_tokens)), ""),
            "api_url": self.url,
            "auth_url": self.token_url,
            "advertiser_id": "1234567890",
            "profile_id": "3333333333",
        }
        config.update(overrides)
        return config

    # ------------------------------------------------------------------ ledger
    @property
    def api_in_flight(self) -> int:
        """API requests being handled right now (received, not yet answered)."""
        with self._lock:
            return self._api_in_flight

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (faulted ones too), in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Accepted event payloads, tagged with ``_api`` and ``_advertiser``."""
        with self._lock:
            return list(self._accepted)

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """Per-item errors returned in 207 responses."""
        with self._lock:
            return list(self._rejected)

    def accepted_ids(self) -> collections.Counter[str | None]:
        """Dedupe id (clientDedupeId / eventId) -> number of times accepted."""
        with self._lock:
            return collections.Counter(
                e.get("clientDedupeId") if e["_api"] == "dsp" else e.get("eventId")
                for e in self._accepted
            )

    @property
    def deleted(self) -> dict[str, list[tuple[tuple[str, str], ...]]]:
        """The people a user deletion deleted, per advertiser, in arrival order: each as its
        match keys (type, value) in request order; a person deleted twice is listed twice."""
        found: dict[str, list[tuple[tuple[str, str], ...]]] = {}
        with self._lock:
            for advertiser, person in self._deleted:
                found.setdefault(advertiser, []).append(person)
        return found

    def deleted_values(self, advertiser: str | None = None) -> set[str]:
        """Every match-key value of the people deleted (of one advertiser, or of all)."""
        with self._lock:
            return {
                value
                for owner, person in self._deleted
                if advertiser is None or owner == advertiser
                for _, value in person
            }

    @property
    def refused_deletions(self) -> list[dict[str, Any]]:
        """Per-item errors of user-deletion 207s: advertiser, index, code, message, match_keys."""
        with self._lock:
            return list(self._refused_deletions)

    def reset_ledger(self) -> None:
        """Forget recorded requests, accepted and rejected events, deleted people, and restart
        fault counters."""
        with self._lock:
            self._requests.clear()
            self._accepted.clear()
            self._rejected.clear()
            self._deleted.clear()
            self._refused_deletions.clear()
            self._api_count = 0

    def _configure_throttle(self, body: Any) -> _Response:
        """``POST /_emulator/throttle``: the test's or benchmark's control of the rate limit."""
        try:
            self.throttle.configure_from(body)
        except ValueError as exc:
            return _json_response(400, {"code": "BAD_REQUEST", "message": str(exc)})
        return _json_response(200, {"rate": self.throttle.rate, "burst": self.throttle.burst})

    def _stats(self) -> _Response:
        """``GET /_emulator/stats``: what a benchmark in another process needs to know."""
        with self._lock:
            statuses = collections.Counter(r.status for r in self._requests)
            accepted = self.accepted_ids()
        return _json_response(
            200,
            {
                "requests": sum(statuses.values()),
                "throttled": statuses[429],
                "accepted": sum(accepted.values()),
                "accepted_ids": dict(accepted),
                "deleted": len(self._deleted),
            },
        )

    def script(self, call: str, *answers: int | str) -> None:
        """The next answers to requests of a kind of call (`CALL_KINDS`), before any other
        fault: a status (2xx: the normal answer under that status; else an error body in the
        call's shape), "drop" (the connection is lost) or "hang" (`hang_seconds`, then 504)."""
        _check_call_kind(call)
        with self._lock:
            self._scripts.setdefault(call, collections.deque()).extend(answers)

    # ------------------------------------------------------------------ dispatch
    @staticmethod
    def call_kind(method: str, path: str) -> str | None:
        """The kind of call a request is, in the target's words (one of `CALL_KINDS`; None:
        another route)."""
        if path == "/auth/o2/token":
            return "token"
        if path == "/v2/profiles":
            return "profiles"
        if path == "/adsApi/v1/create/events":
            return "upload"
        match = _DSP_PATH.match(path) if method == "POST" else None
        if match is None:
            return None
        return _DSP_CALL_KINDS.get(match.group(2) or "", "definitions create")

    def arrivals(self, call: str) -> int:
        """Requests of a kind of call received so far, answered or not (a hung one too)."""
        _check_call_kind(call)
        with self._lock:
            return self._arrivals[call]

    def wait_for_arrivals(self, call: str, count: int, timeout: float = 60) -> None:
        """Block until `count` requests of a kind of call have arrived."""
        _check_call_kind(call)
        with self._arrived:
            if not self._arrived.wait_for(lambda: self._arrivals[call] >= count, timeout):
                raise AssertionError(f"{count} {call} requests did not arrive in {timeout} s")

    def _scripted(self, req: _Incoming) -> int | str | None:
        kind = self.call_kind(req.method, req.path)
        with self._arrived:
            self._arrivals[kind or "other"] += 1
            self._arrived.notify_all()
        if kind in self.faults.hang_calls:
            return "hang"
        with self._lock:
            queue = self._scripts.get(kind or "")
            return queue.popleft() if queue else None

    def _scripted_error(self, req: _Incoming, answer: int | str) -> _Response:
        """An error answer a script asked for, in the shape of the call's own errors."""
        if answer == "drop":
            return _Response(0, drop=True)
        if answer == "hang":
            self._sleep(self.faults.hang_seconds)
            answer = 504
        status = int(answer)
        if req.path == "/auth/o2/token":
            error = {401: "invalid_client", 400: "invalid_request"}.get(status, "server_error")
            return _json_response(status, {"error": error, "error_description": "scripted"})
        api = "dsp" if _DSP_PATH.match(req.path) else self._api_kind(req) or "profiles"
        return self._error(api, status, f"scripted HTTP {status}")

    def _sleep(self, seconds: float) -> None:
        # Interruptible so stop() is not held up by a hanging handler.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _handle(self, req: _Incoming) -> _Response:
        body = self._parse_body(req)
        path = req.path
        scripted = self._scripted(req)
        kind = self.call_kind(req.method, path)
        if scripted is not None and not (isinstance(scripted, int) and 200 <= scripted < 300):
            response = self._scripted_error(req, scripted)
        elif kind in self.faults.redirect_calls:
            response = _Response(307, b"", [("Location", self.faults.redirect_to + path)])
        elif kind in self.faults.raw_answers:
            status, raw = self.faults.raw_answers[kind]
            response = _Response(status, raw, [("Content-Type", JSON_TYPE)])
        elif path == "/auth/o2/token" and req.method == "POST":
            response = self._token(req, body)
        elif path == "/ap/oa" and req.method == "GET":
            response = self._authorize(req)
        elif path == "/_emulator/throttle" and req.method == "POST":
            response = self._configure_throttle(body)
        elif path == "/_emulator/stats" and req.method == "GET":
            response = self._stats()
        else:
            api = self._api_kind(req)
            response = (
                self._counted_api(req, body, api)
                if api
                else _json_response(404, {"code": "NOT_FOUND", "message": f"No route {path}"})
            )
        if isinstance(scripted, int) and 200 <= scripted < 300:
            response.status = scripted  # the normal answer, under the scripted status
        if self.faults.echo_request and not path.startswith("/_emulator/"):
            response = _echo_request(req, response)
        if kind in self.faults.pad_calls:
            response.body += b" " * self.faults.pad_bytes
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=req.method,
                    path=req.path,
                    headers=req.headers,
                    body=body,
                    status=0 if response.drop else response.status,
                    query=req.query,
                    raw_size=len(req.raw),
                    received_at=time.time(),
                )
            )
        return response

    @staticmethod
    def _parse_body(req: _Incoming) -> Any:
        """Parsed JSON, a dict of form fields (first values), or None."""
        if not req.raw:
            return None
        if _media_type(req.headers) == "application/x-www-form-urlencoded":
            form = parse_qs(req.raw.decode("utf-8", "replace"), keep_blank_values=True)
            return {k: v[0] for k, v in form.items()}
        try:
            return json.loads(req.raw)
        except ValueError:
            return None

    @staticmethod
    def _api_kind(req: _Incoming) -> str | None:
        if req.path == "/v2/profiles" and req.method == "GET":
            return "profiles"
        if req.path == "/adsApi/v1/create/events" and req.method == "POST":
            return "events"
        if req.method == "POST" and _DSP_PATH.match(req.path):
            return "dsp"
        return None

    # ------------------------------------------------------------------ error bodies
    def _error(
        self,
        api: str,
        status: int,
        message: str | None = None,
        *,
        content_type: str = JSON_TYPE,
        errors: list[dict[str, str]] | None = None,
        code: str | None = None,
        retry_after: list[tuple[str, str]] | None = None,
    ) -> _Response:
        """An error body in the API's own shape (DspErrorV1, Events *ResponseContent, v2);
        a 429 carries `retry_after` headers, by default the faults' `Retry-After`."""
        text = message or HTTPStatus(status).phrase
        headers: list[tuple[str, str]] = []
        if retry_after is not None:
            headers.extend(retry_after)
        elif status == 429 and self.faults.retry_after is not None:
            headers.append(("Retry-After", self.faults.retry_after))
        doc: dict[str, Any]
        if api == "dsp":
            doc = {"message": text, "requestId": str(uuid.uuid4())}
            if errors:
                doc["errors"] = errors[:100]
            return _json_response(status, doc, content_type, headers)
        if api == "events":
            default = "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST"
            doc = {"code": code or _EVENTS_CODES.get(status, default), "message": text}
            return _json_response(status, doc, JSON_TYPE, headers)
        doc = {"code": code or HTTPStatus(status).name, "details": text}
        return _json_response(status, doc, JSON_TYPE, headers)

    # ------------------------------------------------------------------ LwA
    def _token(self, req: _Incoming, form: Any) -> _Response:
        """``POST /auth/o2/token``: refresh_token and authorization_code grants."""

        def oauth_error(status: int, error: str, description: str) -> _Response:
            return _json_response(status, {"error": error, "error_description": description})

        auth = req.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer"):
            # Amazon rejects the token call when an API Bearer header leaks into it.
            return oauth_error(400, "invalid_request", "Authorization header must not be Bearer")
        if _media_type(req.headers) != "application/x-www-form-urlencoded" or not isinstance(
            form, dict
        ):
            return oauth_error(400, "invalid_request", "Expected a form-encoded body")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip()).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return oauth_error(400, "invalid_request", "Malformed Basic credentials")
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant!r}")
        if client_id != self.client_id or client_secret != self.client_secret:
            return oauth_error(401, "invalid_client", "Client authentication failed")

        with self._lock:
            if grant == "refresh_token":
                refresh = form.get("refresh_token")
                if not refresh:
                    return oauth_error(400, "invalid_request", "Missing refresh_token")
                if refresh not in self.refresh_tokens or refresh in self.revoked_refresh_tokens:
                    return oauth_error(400, "invalid_grant", INVALID_GRANT_MESSAGE)
            else:
                code = self._auth_codes.pop(form.get("code") or "", None)
                if (
                    code is None
                    or code["client_id"] != client_id
                    or code["redirect_uri"] != form.get("redirect_uri")
                ):
                    return oauth_error(
                        400,
                        "invalid_grant",
                        "The request has an invalid grant parameter : code",
                    )
                refresh = "Atzr|" + secrets.token_urlsafe(32)
                self.refresh_tokens.add(refresh)
            token = self.issue_access_token(refresh)
        doc = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(self.token_ttl_seconds),
            "refresh_token": refresh,
        }
        return _json_response(200, doc, headers=[("Cache-Control", "no-store")])

    def _authorize(self, req: _Incoming) -> _Response:
        """``GET /ap/oa``: the consent page; redirects back with a code or an error."""
        params = {k: v[0] for k, v in req.query.items()}
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            html = b"<html><body><h1>400 Bad Request</h1>missing redirect_uri</body></html>"
            return _Response(400, html, [("Content-Type", "text/html; charset=utf-8")])
        answer: dict[str, str]
        scopes = set((params.get("scope") or "").split())
        if params.get("client_id") != self.client_id:
            answer = {"error": "invalid_client", "error_description": "Unknown client_id"}
        elif params.get("response_type") != "code":
            answer = {"error": "unsupported_response_type", "error_description": "Use code"}
        elif LWA_SCOPE not in scopes or not scopes <= {LWA_SCOPE, "profile"}:
            answer = {"error": "invalid_scope", "error_description": f"Scope must be {LWA_SCOPE}"}
        elif self.authorize_denied:
            answer = {"error": "access_denied", "error_description": "The user denied access"}
        else:
            code = "ANcode" + secrets.token_urlsafe(16)
            with self._lock:
                self._auth_codes[code] = {
                    "client_id": self.client_id,
                    "redirect_uri": redirect_uri,
                    "scope": params.get("scope", ""),
                }
            answer = {"code": code, "scope": params.get("scope", "")}
        if "state" in params:
            answer["state"] = params["state"]
        parts = urlsplit(redirect_uri)
        query = "&".join(q for q in (parts.query, urlencode(answer)) if q)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        return _Response(302, b"", [("Location", location), ("Content-Type", "text/html")])

    # ------------------------------------------------------------------ API common
    def _counted_api(self, req: _Incoming, body: Any, api: str) -> _Response:
        """`_api`, counting the requests in flight."""
        with self._lock:
            self._api_in_flight += 1
            self.peak_api_in_flight = max(self.peak_api_in_flight, self._api_in_flight)
        try:
            return self._api(req, body, api)
        finally:
            with self._lock:
                self._api_in_flight -= 1

    def _api(self, req: _Incoming, body: Any, api: str) -> _Response:
        """Faults first (like a gateway would), then auth, then the operation."""
        faults = self.faults
        with self._lock:
            self._api_count += 1
            n = self._api_count
        ctype = JSON_TYPE
        match = _DSP_PATH.match(req.path)
        if api == "dsp" and match:
            ctype = _DSP_MEDIA_TYPES[match.group(2) or ""]

        self._sleep(faults.latency_seconds)
        account = req.headers.get("Amazon-Ads-AccountId") or (match.group(1) if match else "")
        if not self.throttle.admit(account):
            return self._error(
                api,
                429,
                "Too Many Requests",
                content_type=ctype,
                retry_after=self.throttle.retry_after_header(),
            )
        if faults.drop_every_nth and n % faults.drop_every_nth == 0:
            return _Response(0, drop=True)
        if faults.hang_every_nth and n % faults.hang_every_nth == 0:
            # Answer (if anyone still listens) with 504 so a hung request is never accepted.
            self._sleep(faults.hang_seconds)
            return self._error(api, 504, content_type=ctype)
        if n <= faults.fail_first_n:
            return self._error(api, faults.fail_status, content_type=ctype)
        if faults.every_nth_429 and n % faults.every_nth_429 == 0:
            return self._error(api, 429, "Too Many Requests", content_type=ctype)
        if faults.every_nth_5xx and n % faults.every_nth_5xx == 0:
            return self._error(api, faults.status_5xx, content_type=ctype)
        if faults.max_body_bytes is not None and len(req.raw) > faults.max_body_bytes:
            message = f"Request body of {len(req.raw)} bytes exceeds {faults.max_body_bytes}"
            return self._error(api, 413, message, content_type=ctype)

        problem = self._check_access_token(req.headers, faults)
        if problem:
            if api == "dsp":
                err = [{"errorType": "UNAUTHORIZED", "message": problem}]
                return self._error(api, 401, "Unauthorized", content_type=ctype, errors=err)
            return self._error(api, 401, problem)

        if api == "profiles":
            return self._profiles(req)
        if api == "events":
            return self._events(req, body)
        assert match is not None
        return self._dsp(req, body, match.group(1), match.group(2) or "", ctype)

    def _check_access_token(self, headers: CaseInsensitiveDict[str], faults: Faults) -> str | None:
        """None when the Bearer token is ours and still valid, else why not."""
        auth = headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer "):
            return "Missing or malformed Authorization header"
        with self._lock:
            token = self._access_tokens.get(auth[7:].strip())
            if token is None:
                return "Invalid access token"
            token.uses += 1
            if self.clock() >= token.expires_at:
                return "Access token has expired"
            limit = faults.token_expires_after_requests
            if limit is not None and token.uses > limit:
                return "Access token has expired"
        return None

    def _client_header(self, headers: CaseInsensitiveDict[str], name: str) -> tuple[int, str]:
        """(0, "") when the client id header is right, else (status, message)."""
        value = headers.get(name)
        if not value:
            return 400, f"Missing required header {name}"
        if value != self.client_id:
            return 401, f"{name} does not match the access token's client"
        return 0, ""

    # ------------------------------------------------------------------ profiles
    def _profiles(self, req: _Incoming) -> _Response:
        """``GET /v2/profiles``: one agency profile per advertiser that has one."""
        status, message = self._client_header(req.headers, "Amazon-Advertising-API-ClientId")
        if status:
            return self._error("profiles", status, message)
        with self._lock:
            advertisers = list(self.advertisers.values())
        profiles = []
        for adv in advertisers:
            if adv.profile_id is None:
                continue
            marketplace, currency, tz = _MARKETPLACES.get(adv.country, _MARKETPLACES["US"])
            profiles.append(
                {
                    "profileId": int(adv.profile_id),
                    "countryCode": adv.country,
                    "currencyCode": currency,
                    "timezone": tz,
                    "accountInfo": {
                        "marketplaceStringId": marketplace,
                        "id": adv.advertiser_id,
                        "type": "agency",
                        "name": adv.name,
                        "validPaymentMethod": True,
                    },
                }
            )
        return _json_response(200, profiles)

    # ------------------------------------------------------------------ DSP
    def _dsp(self, req: _Incoming, body: Any, account_id: str, op: str, ctype: str) -> _Response:
        """Header, account, permission and media-type checks shared by the DSP operations."""

        def fail(status: int, message: str, error_type: str = "INVALID_ARGUMENT") -> _Response:
            err = [{"errorType": error_type, "message": message}]
            return self._error("dsp", status, message, content_type=ctype, errors=err)

        status, message = self._client_header(req.headers, "Amazon-Advertising-API-ClientId")
        if status:
            return fail(status, message, "UNAUTHORIZED" if status == 401 else "INVALID_ARGUMENT")
        if account_id.upper().startswith("ENTITY"):
            return fail(
                400,
                "DSP entity IDs are not supported for accountId; use the DSP advertiser ID.",
            )
        header_account = req.headers.get("Amazon-Ads-AccountId")
        if header_account is not None and header_account != account_id:
            return fail(400, "Amazon-Ads-AccountId header does not match the accountId in the path")
        with self._lock:
            adv = self.advertisers.get(account_id)
        if adv is None:
            return fail(403, f"No access to advertiser {account_id}", "FORBIDDEN")
        scope = req.headers.get("Amazon-Advertising-API-Scope")
        if scope is not None and scope != adv.profile_id:
            return fail(
                403, f"Profile {scope} has no access to advertiser {account_id}", "FORBIDDEN"
            )
        allowed = {ctype} if op else {DSP_DEFINITION_TYPE, DSP_DEFINITION_TYPE_V2}
        if _media_type(req.headers) not in allowed:
            return fail(
                415,
                f"Unsupported Content-Type {req.headers.get('Content-Type')!r}; "
                f"use {' or '.join(sorted(allowed))}",
                "UNSUPPORTED_MEDIA_TYPE",
            )
        if req.raw and body is None:
            return fail(400, "Request body is not valid JSON")
        needed = {PERM_EDIT} if op in ("/eventData", "", "/delete") else {PERM_VIEW, PERM_EDIT}
        schema = {
            "/eventData": "BatchImportConversionEventDataRequestV1",
            "/list": "ListConversionDefinitionsRequestV1",
            "": "BatchCreateConversionDefinitionsRequestV1",
            "/delete": "BatchDeleteUserEventsRequestV1",
        }[op]
        if op == "/list" and body is None:
            body = {}
        problems = [
            {
                "errorType": "INVALID_ARGUMENT",
                "fieldName": ".".join(map(str, err.absolute_path)) or "body",
                "message": err.message,
            }
            for err in _schema_violations("dsp", schema, body)
        ]
        if problems:
            return self._error(
                "dsp", 400, "Request body failed validation", content_type=ctype, errors=problems
            )
        if not adv.permissions & needed:
            return fail(403, f"Missing permission {' or '.join(sorted(needed))}", "FORBIDDEN")
        if op == "/eventData":
            return self._dsp_event_data(adv, body, ctype)
        if op == "/list":
            return self._dsp_list(adv, body, ctype)
        if op == "/delete":
            return self._dsp_delete(adv, body, ctype)
        return self._dsp_create(adv, body, ctype)

    def _dsp_delete(self, adv: Advertiser, body: dict[str, Any], ctype: str) -> _Response:
        """``dspAmazonDeletionRequest``: each person (1-based index) deleted or refused. The
        schema leaves an item's ``matchKeys`` optional and the hashing unsaid; Amazon's
        description asks for both, so an item without keys or with an unhashed value (MAID is
        sent raw) is refused here. Accepted events stay in `accepted` (what Amazon took)."""
        success: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        with self._lock:
            for index, item in enumerate(body["deletionRequests"], start=1):
                person = tuple((key["type"], key["values"][0]) for key in item.get("matchKeys", []))
                values = {value for _, value in person}
                if values & self.omit_match_values:
                    continue
                errs = self._deletion_item_errors(person, values)
                if errs:
                    code, message = errs[0]["errorType"], errs[0]["message"]
                    failures.append(
                        {"index": index, "code": code, "message": message, "errors": errs}
                    )
                    self._refused_deletions.append(
                        {
                            "advertiser": adv.advertiser_id,
                            "index": index,
                            "code": code,
                            "message": message,
                            "match_keys": person,
                        }
                    )
                    continue
                success.append({"index": index})
                if self.keep_ledger:
                    self._deleted.append((adv.advertiser_id, person))
        return _dsp_multi_status(success, failures, ctype)

    def _deletion_item_errors(
        self, person: tuple[tuple[str, str], ...], values: set[str]
    ) -> list[dict[str, str]]:
        """`DspSubErrorV1`s of one person of a user deletion."""
        errs: list[dict[str, str]] = []
        if not person:
            errs.append(
                {
                    "errorType": "INVALID_ARGUMENT",
                    "fieldName": "matchKeys",
                    "message": "matchKeys is required: supply all match keys of the user",
                }
            )
        for value in sorted(values & self.refused_match_values.keys()):
            code, message = self.refused_match_values[value]
            errs.append({"errorType": code, "fieldName": "matchKeys", "message": message})
        for key_type, value in person:
            if key_type in DSP_HASHED_TYPES and not HEX64.match(value):
                errs.append(
                    {
                        "errorType": "INVALID_ARGUMENT",
                        "fieldName": "matchKeys",
                        "message": f"matchKeys {key_type} value must be a lower-case SHA-256 "
                        "hex digest",
                    }
                )
        return errs

    def _dsp_event_data(self, adv: Advertiser, body: dict[str, Any], ctype: str) -> _Response:
        """Per-item checks (1-based indexes); the ledger records only this 207's outcome."""
        source = body["source"]
        now = datetime.now(timezone.utc)
        success: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        with self._lock:
            by_id = {
                d["conversionDefinitionId"]: d for d in self.definitions.get(adv.advertiser_id, [])
            }
            for index, item in enumerate(body["eventData"], start=1):
                dedupe = item.get("clientDedupeId")
                if dedupe in self.omit_ids:
                    continue
                errs = self._dsp_item_errors(item, by_id, source, now)
                if errs:
                    code = errs[0].pop("code")
                    for extra in errs[1:]:
                        extra.pop("code")
                    failures.append(
                        {
                            "index": index,
                            "code": code,
                            "message": errs[0]["message"],
                            "errors": errs,
                        }
                    )
                    self._rejected.append(
                        {
                            "api": "dsp",
                            "dedupe_id": dedupe,
                            "code": code,
                            "message": errs[0]["message"],
                            "field": errs[0].get("fieldName"),
                            "index": index,
                            "advertiser": adv.advertiser_id,
                        }
                    )
                    continue
                success.append({"index": index, "message": "Success"})
                if self.keep_ledger:
                    self._accepted.append(
                        {**item, "source": source, "_api": "dsp", "_advertiser": adv.advertiser_id}
                    )
        return _dsp_multi_status(success, failures, ctype)

    def _is_plainly_valid_dsp_item(
        self,
        item: dict[str, Any],
        by_id: dict[str, dict[str, Any]],
        source: str,
        now: datetime,
    ) -> bool:
        """The common valid item, checked in one pass (benchmarks send millions of them);
        anything else takes `_dsp_item_errors`' checks, which say what is wrong."""
        if self.poison_ids:
            return False
        if by_id.get(item["conversionDefinitionId"], _NO_DEFINITION)["source"] != source:
            return False
        for key in item["matchKeys"]:
            if key["type"] in DSP_HASHED_TYPES:
                for value in key["values"]:
                    if type(value) is not str or not HEX64.match(value):
                        return False
        stamp = parse_timestamp(item["timestamp"])
        return stamp is not None and -DSP_MAX_FUTURE <= now - stamp <= DSP_MAX_AGE

    def _dsp_item_errors(
        self,
        item: dict[str, Any],
        by_id: dict[str, dict[str, Any]],
        source: str,
        now: datetime,
    ) -> list[dict[str, str]]:
        """Sub-errors of one eventData item, each with a ``code`` to lift to the item."""
        if self._is_plainly_valid_dsp_item(item, by_id, source, now):
            return []

        errs: list[dict[str, str]] = []

        def add(code: str, field_name: str | None, message: str) -> None:
            err = {"code": code, "errorType": code, "message": message}
            if field_name:
                err["fieldName"] = field_name
            errs.append(err)

        dedupe = item.get("clientDedupeId")
        if dedupe is not None and dedupe in self.poison_ids:
            code, message, *where = self.poison_ids[dedupe]
            add(code, where[0] if where else None, message)
        definition = by_id.get(item["conversionDefinitionId"])
        if definition is None:
            add(
                "CONVERSION_DEFINITION_NOT_FOUND",
                "conversionDefinitionId",
                f"Conversion definition {item['conversionDefinitionId']} not found",
            )
        elif definition["source"] != source:
            add(
                "SOURCE_MISMATCH",
                "source",
                f"Conversion definition source {definition['source']} does not match "
                f"request source {source}",
            )
        stamp = parse_timestamp(item["timestamp"])
        if stamp is None:
            add("INVALID_ARGUMENT", "timestamp", "timestamp is not a valid ISO 8601 date-time")
        elif now - stamp > DSP_MAX_AGE:
            add("INVALID_ARGUMENT", "timestamp", "timestamp is older than 7 days")
        elif stamp - now > DSP_MAX_FUTURE:
            add("INVALID_ARGUMENT", "timestamp", "timestamp is in the future")
        for key in item["matchKeys"]:
            if key["type"] in DSP_HASHED_TYPES and not all(
                isinstance(v, str) and HEX64.match(v) for v in key["values"]
            ):
                add(
                    "INVALID_ARGUMENT",
                    "matchKeys",
                    f"matchKeys {key['type']} value must be a lower-case SHA-256 hex digest",
                )
        return errs

    def _dsp_list(self, adv: Advertiser, body: dict[str, Any], ctype: str) -> _Response:
        """List definitions, filtered by id only, paged with an opaque ``nextToken``."""
        max_results = int(body.get("maxResults", 10))
        offset = 0
        if body.get("nextToken"):
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(body["nextToken"]))["offset"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                err = [
                    {
                        "errorType": "INVALID_ARGUMENT",
                        "fieldName": "nextToken",
                        "message": "Invalid nextToken",
                    }
                ]
                return self._error("dsp", 400, "Invalid nextToken", content_type=ctype, errors=err)
        with self._lock:
            items = [dict(d) for d in self.definitions.get(adv.advertiser_id, [])]
        for flt in body.get("filters", []):
            wanted = set(flt["values"])
            items = [d for d in items if d["conversionDefinitionId"] in wanted]
        page = items[offset : offset + max_results]
        doc: dict[str, Any] = {"conversionDefinitions": page, "maxResults": max_results}
        if offset + max_results < len(items):
            token = json.dumps({"offset": offset + max_results}).encode()
            doc["nextToken"] = base64.urlsafe_b64encode(token).decode()
        return _json_response(200, doc, ctype)

    def _dsp_create(self, adv: Advertiser, body: list[dict[str, Any]], ctype: str) -> _Response:
        """Create 1..10 definitions; duplicates (name + source) fail per item, 1-based."""
        success: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        with self._lock:
            taken = {(d["name"], d["source"]) for d in self.definitions.get(adv.advertiser_id, [])}
            for index, item in enumerate(body, start=1):
                problem: tuple[str, str, str] | None = None
                if (item["name"], item["source"]) in taken:
                    problem = (
                        "DUPLICATE_NAME",
                        "name",
                        f"A definition named {item['name']!r} already exists for this source",
                    )
                elif item["source"] == "AMAZON_AD_TAG" and item["sourceType"] != "WEBSITE":
                    problem = (
                        "INVALID_ARGUMENT",
                        "sourceType",
                        "AMAZON_AD_TAG definitions must have sourceType WEBSITE",
                    )
                if problem:
                    code, field_name, message = problem
                    failures.append(
                        {
                            "index": index,
                            "code": code,
                            "message": message,
                            "errors": [
                                {"errorType": code, "fieldName": field_name, "message": message}
                            ],
                        }
                    )
                    continue
                taken.add((item["name"], item["source"]))
                new_id = self.add_definition(
                    adv.advertiser_id,
                    item["name"],
                    item["conversionType"],
                    item["source"],
                    item["sourceType"],
                    counting_method=item["countingMethod"],
                    value=float(item["value"]),
                )
                success.append({"index": index, "conversionDefinitionId": new_id})
        return _json_response(207, {"success": success, "error": failures}, ctype)

    # ------------------------------------------------------------------ Events API
    def _events(self, req: _Incoming, body: Any) -> _Response:
        """``POST /adsApi/v1/create/events``; per-item results use 0-based indexes."""
        status, message = self._client_header(req.headers, "Amazon-Ads-ClientId")
        if status:
            return self._error("events", status, message)
        account = req.headers.get("Amazon-Ads-AccountId")
        if not account:
            return self._error("events", 400, "Missing required header Amazon-Ads-AccountId")
        if not (account.isdigit() or account.upper().startswith("ENTITY")):
            return self._error(
                "events", 400, "Amazon-Ads-AccountId must be an advertiser or entity ID"
            )
        with self._lock:
            adv = self.advertisers.get(self.entity_ids.get(account, account))
        if adv is None:
            return self._error("events", 403, f"No access to advertiser {account}")
        if not adv.permissions & {PERM_VIEW, PERM_EDIT}:
            return self._error("events", 403, "Missing permission event_manager_view/edit")
        if _media_type(req.headers) != JSON_TYPE:
            return self._error(
                "events", 415, f"Unsupported Content-Type {req.headers.get('Content-Type')!r}"
            )
        if body is None:
            return self._error("events", 400, "Request body is not valid JSON")
        # Formats are not checked here: a bad eventTime is a per-item error in a 207.
        problems = [
            f"{'.'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
            for e in _schema_violations("events", "CreateEventRequest", body)
        ]
        if problems:
            return self._error("events", 400, "; ".join(problems[:20]))

        now = datetime.now(timezone.utc)
        success: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        with self._lock:
            for index, event in enumerate(body["events"]):
                if event.get("eventId") in self.omit_ids:
                    continue
                errs = self._event_item_errors(index, event, now, adv)
                if errs:
                    failures.append({"index": index, "errors": errs[:20]})
                    self._rejected.append(
                        {
                            "api": "events",
                            "dedupe_id": event.get("eventId"),
                            "code": errs[0]["code"],
                            "message": errs[0]["message"],
                            "field": errs[0].get("fieldLocation"),
                            "index": index,
                            "advertiser": account,
                        }
                    )
                    continue
                # EventCreate carries every field Event requires, so the echo is the item.
                success.append({"index": index, "event": event})
                if self.keep_ledger:
                    self._accepted.append({**event, "_api": "events", "_advertiser": account})
        return _json_response(207, {"success": success, "error": failures})

    def _event_item_errors(
        self, index: int, event: dict[str, Any], now: datetime, adv: Advertiser
    ) -> list[dict[str, str]]:
        """Errors (``Error`` objects) of one Events API item."""
        errs: list[dict[str, str]] = []
        where = f"events[{index}]"

        def add(code: str, field_name: str, message: str) -> None:
            errs.append(
                {"code": code, "message": message, "fieldLocation": f"{where}.{field_name}"}
            )

        event_id = event.get("eventId")
        if event_id is not None and event_id in self.poison_ids:
            code, message, *field_name = self.poison_ids[event_id]
            if field_name:
                add(code, field_name[0], message)
            else:
                errs.append({"code": code, "message": message})
        description = event["eventDescription"]
        data_set = description.get("dataSetName")
        if data_set is not None and not DATA_SET_NAME.match(data_set):
            add(
                "FIELD_VALUE_CONTAINS_INVALID_CHARACTERS",
                "eventDescription.dataSetName",
                "dataSetName must match [A-Za-z][A-Za-z0-9_-]*",
            )
        value = event.get("value")
        is_purchase = description["conversionType"] == "OFF_AMAZON_PURCHASES"
        if is_purchase and value is not None and value < 0:
            add("FIELD_VALUE_IS_INVALID", "value", "value of a purchase must be 0 or more")
        if value is not None and Decimal(str(value)) != Decimal(str(value)).quantize(
            Decimal("0.01")
        ):
            add("FIELD_VALUE_IS_INVALID", "value", "value has more than 2 decimals")
        for j, item in enumerate(event.get("customData", [])):
            if not (CUSTOM_DATA_TEXT.match(item["name"]) and CUSTOM_DATA_TEXT.match(item["value"])):
                add(
                    "FIELD_VALUE_CONTAINS_INVALID_CHARACTERS",
                    f"customData[{j}]",
                    "customData name and value may hold only letters, digits and _",
                )
            # DataType: "`INTEGER` | 32-bit signed integer data type."
            elif item.get("dataType") == "INTEGER" and not (
                item["value"].isdigit() and int(item["value"]) < 2**31
            ):
                add(
                    "FIELD_VALUE_IS_INVALID",
                    f"customData[{j}].value",
                    "customData INTEGER value must be a 32-bit signed integer",
                )
        if adv.country in EU_CONSENT_COUNTRIES and not event.get("consent"):
            add(
                "FIELD_VALUE_IS_EMPTY",
                "consent",
                "consent (geo, amazonConsent, tcf or gpp) is required for EU advertisers",
            )
        stamp = parse_timestamp(event["eventTime"])
        if stamp is None:
            errs.append(
                {
                    "code": "FIELD_VALUE_IS_INVALID",
                    "message": "eventTime is invalid",
                    "fieldLocation": f"{where}.eventTime",
                }
            )
        elif now - stamp > EVENTS_MAX_AGE:
            errs.append(
                {
                    "code": "FIELD_VALUE_IS_INVALID",
                    "message": "eventTime is more than 21 days in the past",
                    "fieldLocation": f"{where}.eventTime",
                }
            )
        if event["eventDescription"].get("eventIngestionMethod") != "SERVER_TO_SERVER":
            errs.append(
                {
                    "code": "FIELD_VALUE_IS_INVALID",
                    "message": "eventIngestionMethod must be SERVER_TO_SERVER",
                    "fieldLocation": f"{where}.eventDescription.eventIngestionMethod",
                }
            )
        for j, key in enumerate(event["matchKeys"]):
            if key["type"] in EVENTS_HASHED_TYPES and not all(
                isinstance(v, str) and HEX64.match(v) for v in key["values"]
            ):
                errs.append(
                    {
                        "code": "FIELD_VALUE_IS_INVALID",
                        "message": f"{key['type']} must be a lower-case SHA-256 hex digest",
                        "fieldLocation": f"{where}.matchKeys[{j}].values",
                    }
                )
            if key["type"] == "MATCH_ID" and len(key["values"][0]) > MATCH_ID_MAX:
                add(
                    "FIELD_SIZE_IS_ABOVE_MAXIMUM_LIMIT",
                    f"matchKeys[{j}].values",
                    "MATCH_ID is longer than 100 characters",
                )
        return errs


def _check_call_kind(call: str) -> None:
    """A test naming a kind of call the emulator never sees would wait or script in vain."""
    if call not in CALL_KINDS:
        raise ValueError(f"unknown kind of call {call!r}; one of {', '.join(CALL_KINDS)}")
