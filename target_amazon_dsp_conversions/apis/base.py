"""What the rest of the target needs from an API: its rules, how a conversion becomes its event,
how the events of a kind are completed, requests, and how its answers are read."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import Enum
from typing import Any, NamedTuple, Protocol

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.amazon_fields import ApiRules
from target_amazon_dsp_conversions.conversion import Conversion
from target_amazon_dsp_conversions.endpoints import Endpoint
from target_amazon_dsp_conversions.errors import Problem
from target_amazon_dsp_conversions.http_types import Call, OutgoingRequest, Response, Transport

# Events that may share a request: (advertiser ID, source).
BatchKey = tuple[str, str]
# The name of Amazon's user-deletion call among an API's `operations`.
USER_DELETION = "user_deletion"


class ApiSettings(Protocol):
    """The checked settings as an API reads them (`settings.Settings` is one)."""

    @property
    def region(self) -> str: ...
    @property
    def advertiser_id(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def conversion_definitions(self) -> Mapping[str, Any]: ...
    @property
    def create_missing_definitions(self) -> bool: ...
    def endpoint(self) -> Endpoint:
        """Where requests go and whose app sends them."""
        ...


class DefinitionQuery(NamedTuple):
    """What selects a DSP conversion definition (SPEC §2 `conversion_definitions`)."""

    advertiser_id: str
    source: str
    name: str  # the record's own name, else its type's event name (conversion.EVENT_NAMES)
    conversion_type: str | None  # Amazon's enum, when the record says it
    definition_id: str | None  # the record's own conversionDefinitionId


class EncodedEvent(NamedTuple):
    """A conversion in its API's JSON, but for what its kind resolves (see `ResolvedKind`)."""

    batch_key: BatchKey
    body: bytes
    # Fields Amazon takes for purchases only, kept apart while the conversion type is not
    # known yet (a DSP record without one: its definition's type decides); else b"".
    purchase_fields: bytes
    definition: DefinitionQuery | None  # DSP: the definition to resolve; else None


class ResolvedKind(NamedTuple):
    """What completes the events of one kind: the JSON before and after their body."""

    head: bytes
    tail: bytes
    sends_purchase_fields: bool

    def complete(self, body: bytes, purchase_fields: bytes) -> bytes:
        """The event as it is sent."""
        if purchase_fields and self.sends_purchase_fields:
            return self.head + body + purchase_fields + self.tail
        return self.head + body + self.tail


class KindResolver(Protocol):
    """Resolves what events of a kind need from outside the record (DSP: their definition)."""

    def resolve(self, definition: DefinitionQuery | None) -> ResolvedKind:
        """The kind's completion; raises Rejected when its events cannot be sent."""
        ...


class Acknowledgement(Enum):
    """What Amazon's 207 says of an item other than refusing it."""

    ACCEPTED = "accepted"  # listed in `success`
    # Listed neither in `success` nor in `error`: nothing says Amazon has it, so it is neither
    # journaled nor rejected; the run fails and the next one resends it.
    NOT_ACKNOWLEDGED = "not acknowledged"


ACCEPTED = Acknowledgement.ACCEPTED
NOT_ACKNOWLEDGED = Acknowledgement.NOT_ACKNOWLEDGED
# Per item of a request, in request order: ACCEPTED, NOT_ACKNOWLEDGED, or Amazon's problems.
ItemResults = list["list[Problem] | Acknowledgement"]


class CheckCalls(Protocol):
    """One-shot API calls for the `check` command: each answer comes back as it is (after a
    token refresh a 401 asks for), for `answers.meaning` to say what it means."""

    def send(self, request: OutgoingRequest) -> Response:
        """Amazon's answer to one request."""
        ...


class CheckReport(Protocol):
    """What the `check` command prints: lines, tables, and one line per problem at the end."""

    def line(self, text: str = "") -> None:
        """Print one line."""
        ...

    def table(self, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        """Print rows under a header, in columns."""
        ...

    def problem(self, text: str) -> None:
        """A problem, said with what to fix."""
        ...


class AccountCheck(NamedTuple):
    """What `check` hands an API to ask Amazon about the advertiser (the profiles passed)."""

    calls: CheckCalls
    settings: ApiSettings
    report: CheckReport
    probe_upload: bool  # whether to send one upload Amazon must refuse (a permission check)


class BatchOperation(Protocol):
    """An API call besides the conversion upload, on items batched as events are (DSP's user
    deletion): items in, a 207 with per-item outcomes back. Its answers mean what an upload's
    do (`answers.py`, the request's `call`)."""

    name: str  # the call in log lines, e.g. "user deletion"
    max_items_per_request: int
    max_match_keys_per_item: int

    def encode_item(self, match_keys: Sequence[tuple[str, str]]) -> bytes:
        """One item: a person by their match keys (type, value), already normalized and hashed,
        1 to `max_match_keys_per_item` of them; ValueError for another number."""
        ...

    def build_request(
        self, key: BatchKey, encoded_items: list[bytes], endpoint: Endpoint
    ) -> OutgoingRequest:
        """One request for items already encoded (`encode_item`); `key` is (advertiser ID, "")."""
        ...

    def read_multi_status(self, body: Any, count: int) -> ItemResults:
        """Per-item outcomes of a 2xx response to a request of `count` items."""
        ...

    def read_error(self, status: int, body: Any) -> Problem:
        """The problem a non-2xx response states, for the rejects file."""
        ...

    def dry_run_answer(self, request: OutgoingRequest) -> Response:
        """The answer of a dry run: every item of `request` accepted, as Amazon lists it."""
        ...


class ConversionApi(Protocol):
    """Everything the target knows of one Amazon API: its name and rules (limits, codes,
    match-key types), how a conversion becomes its event and requests, how its answers read,
    what it checks in the settings and in `check`, and its calls besides the upload. The
    registry (`apis/__init__.py`) finds it by the `api` setting."""

    name: str
    summary: str  # for the `api` setting's description
    rules: ApiRules
    # Calls besides the conversion upload, by name (`USER_DELETION`); an API without one has
    # no entry.
    operations: Mapping[str, BatchOperation]

    def check_settings(self, settings: ApiSettings) -> None:
        """Raise a SettingError for a setting this API cannot work with."""
        ...

    def check_account(self, check: AccountCheck) -> None:
        """What `check` asks Amazon about the advertiser, after the profiles check passed."""
        ...

    def encode(self, conversion: Conversion) -> EncodedEvent:
        """The event as this API takes it; raises Rejected for API-specific problems."""
        ...

    def kind_resolver(self, settings: ApiSettings, lookups: Transport | None) -> KindResolver:
        """How this run completes events; `lookups` is None when nothing may be looked up."""
        ...

    def build_request(
        self, key: BatchKey, encoded_events: list[bytes], endpoint: Endpoint
    ) -> OutgoingRequest:
        """One upload request for events already encoded as JSON."""
        ...

    def read_multi_status(self, body: Any, count: int) -> ItemResults:
        """Per-item outcomes of a 2xx response to a request of `count` events."""
        ...

    def dry_run_answer(self, request: OutgoingRequest) -> Response:
        """The answer of a dry run: every item of `request` accepted, as Amazon lists it."""
        ...

    def read_error(self, status: int, body: Any) -> Problem:
        """The problem a non-2xx response states, for the rejects file."""
        ...


def purchase_fields_sent(conversion_type: str | None) -> bool | None:
    """Whether the fields Amazon takes for purchases only go with a conversion of this type
    (None: the type is not known yet)."""
    if conversion_type is None:
        return None
    return conversion_type == "OFF_AMAZON_PURCHASES"


def _encoder() -> Callable[[Any], str]:
    # One C encoder object for every event: json.JSONEncoder.encode builds a new one per call.
    # No circular check: an event is built by this package and is never circular.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    chunks = make(
        None, json.JSONEncoder().default, json.encoder.encode_basestring,
        None, ":", ",", False, False, True,
    )  # fmt: skip
    return lambda value: "".join(chunks(value, 0))


# Same text as json.dumps(value, separators=(",", ":"), ensure_ascii=False).
encode_json = _encoder()


def join_events(prefix: bytes, encoded_events: list[bytes], suffix: bytes) -> bytes:
    """Assemble a body from pre-encoded events, so no event is encoded twice."""
    return prefix + b",".join(encoded_events) + suffix


def item_results(
    body: Any, base: int, count: int, problems_of: Callable[[dict[str, Any]], list[Problem]]
) -> ItemResults:
    """A multi-status body item by item: in `success` ACCEPTED, in `error` the problems
    `problems_of` reads from its entry (an item in both is refused: Amazon named a problem),
    in neither NOT_ACKNOWLEDGED. Both APIs' OpenAPI files list each item of a 207 in `success`
    (`index` + message or the echoed event) or in `error` (`index` + errors); `base` is the
    index of the first item (DSP 1, Events API 0)."""
    results: ItemResults = [NOT_ACKNOWLEDGED] * count
    # `_indexed` and `item_index` written out for `success`, which lists nearly every item of
    # nearly every answer: no generator resumed and no function called per item.
    accepted = body.get("success") if isinstance(body, dict) else None
    for item in accepted if isinstance(accepted, list) else []:
        raw = item.get("index") if isinstance(item, dict) else None
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw - base < count:
            results[raw - base] = ACCEPTED
    for index, item in _indexed(body, "error", base, count):
        earlier = results[index]
        # An index listed twice keeps the problems of both entries.
        results[index] = (earlier if isinstance(earlier, list) else []) + problems_of(item)
    return results


def accepting_all(count: int, base: int) -> Response:
    """A 207 listing `count` items, indexed from `base`, all in `success`."""
    return Response(207, {"success": [{"index": base + i} for i in range(count)]})


def _indexed(body: Any, key: str, base: int, count: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """The entries of `body[key]` with their 0-based item index; entries naming no item of
    the request are skipped."""
    entries = body.get(key) if isinstance(body, dict) else None
    for item in entries if isinstance(entries, list) else []:
        if isinstance(item, dict):
            index = item_index(item.get("index"), base, count)
            if index is not None:
                yield index, item


def item_index(raw: Any, base: int, count: int) -> int | None:
    """A response index turned 0-based, or None when it names no item of the request."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        return None
    index = raw - base
    return index if 0 <= index < count else None


def http_problem(status: int, code: str | None, message: str | None) -> Problem:
    """A whole-request refusal, e.g. HTTP_403, with Amazon's own code and words when given."""
    text = f"HTTP {status}"
    if code and str(code) != str(status):  # some answers repeat the status as their code
        text += f" {code}"
    if message and message != code:
        text += f": {message}"
    return Problem(f"HTTP_{status}", redaction.redacted_start(text, 1000), None)


def json_request(url: str, headers: dict[str, str], body: Any, call: Call) -> OutgoingRequest:
    """A POST of a JSON body (definition calls, the connection check)."""
    return OutgoingRequest("POST", url, headers, json.dumps(body).encode(), call=call)


def answer_message(body: Any) -> str:
    """The words of an error answer's body ("" when it has none), for a line of `check`."""
    if isinstance(body, dict):
        return str(body.get("message") or body.get("details") or body.get("code") or "")
    return ""
