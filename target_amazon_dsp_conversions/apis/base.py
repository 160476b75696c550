"""What the rest of the target needs from an API: rules, payloads, requests, and 207 reading."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from target_amazon_dsp_conversions.conversion import ApiRules, Conversion
from target_amazon_dsp_conversions.errors import Problem


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One HTTP request, complete but for the Authorization header (added at send time)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    item_count: int = 0


# Per item of a request, in request order: None when Amazon accepted it, else its problems.
ItemResults = list[list[Problem] | None]


class ConversionApi(Protocol):
    """An Amazon conversions API as the delivery code sees it."""

    name: str
    rules: ApiRules
    max_events_per_request: int

    def batch_key(self, conversion: Conversion) -> tuple[str, str]:
        """Events that may share a request have the same key: (advertiser, source)."""
        ...

    def event_payload(self, conversion: Conversion) -> dict[str, Any]:
        """The event as this API takes it; raises Rejected for API-specific problems."""
        ...

    def encode_event(self, conversion: Conversion) -> bytes:
        """`event_payload` as compact UTF-8 JSON, the form requests are assembled from."""
        ...

    def build_request(
        self,
        key: tuple[str, str],
        encoded_events: list[bytes],
        *,
        api_url: str,
        client_id: str,
        profile_id: str | None,
    ) -> OutgoingRequest:
        """One upload request for events already encoded as JSON."""
        ...

    def read_multi_status(self, body: Any, count: int) -> ItemResults:
        """Per-item outcomes of a 2xx response to a request of `count` events."""
        ...

    def read_error(self, status: int, body: Any) -> Problem:
        """The problem a non-2xx response states, for the rejects file."""
        ...


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
