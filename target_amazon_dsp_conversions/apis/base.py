"""What the rest of the target needs from an API: its rules, how a conversion becomes its event,
how the events of a kind are completed, requests, and how its answers are read."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from target_amazon_dsp_conversions.amazon_fields import ApiRules
from target_amazon_dsp_conversions.conversion import Conversion
from target_amazon_dsp_conversions.errors import Problem

if TYPE_CHECKING:
    from target_amazon_dsp_conversions.settings import Settings

# Events that may share a request: (advertiser ID, source).
BatchKey = tuple[str, str]


class Endpoint(NamedTuple):
    """Where requests go and whose app sends them (`Settings.endpoint`)."""

    api_url: str
    client_id: str
    profile_id: str | None  # DSP: the profile scope


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One HTTP request, complete but for the Authorization header (added at send time)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    item_count: int = 0


@dataclass(frozen=True, slots=True)
class Response:
    """What the target needs of an answer: its status and its JSON body (None if it has none)."""

    status: int
    body: Any


class Transport(Protocol):
    """Sends one request; returns the final answer or raises DeliveryError."""

    def send(self, request: OutgoingRequest) -> Response:
        """Send with whatever retries the transport does."""
        ...


class DefinitionQuery(NamedTuple):
    """What selects a DSP conversion definition (SPEC §2 `conversion_definitions`)."""

    advertiser_id: str
    source: str
    name: str
    conversion_type: str | None  # Amazon's enum, when the record says it
    type_as_given: str | None  # the record's own word for it, a key of the setting too
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


# Per item of a request, in request order: None when Amazon accepted it, else its problems.
ItemResults = list[list[Problem] | None]


class ConversionApi(Protocol):
    """An Amazon conversions API as the converter and the delivery code see it."""

    name: str
    rules: ApiRules

    def encode(self, conversion: Conversion) -> EncodedEvent:
        """The event as this API takes it; raises Rejected for API-specific problems."""
        ...

    def kind_resolver(self, settings: Settings, lookups: Transport | None) -> KindResolver:
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


def error_items(body: Any, base: int, count: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """The `error[]` entries of a 207 body with their 0-based item index; others are skipped."""
    errors = body.get("error") if isinstance(body, dict) else None
    for item in errors or []:
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
    if code:
        text += f" {code}"
    if message:
        text += f": {message}"
    return Problem(f"HTTP_{status}", text[:1000], None)


def json_request(url: str, headers: dict[str, str], body: Any) -> OutgoingRequest:
    """A POST of a JSON body (definition calls, the connection check)."""
    return OutgoingRequest("POST", url, headers, json.dumps(body).encode())
