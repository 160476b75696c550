"""What goes over HTTP, as every part of the package sees it: the kind of call, a request, an
answer. A leaf module (no imports from the package, no HTTP client): the APIs build requests,
the transports send them, `answers.py` says what their answers mean."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol


class Call(Enum):
    """The kinds of call the package makes; each reads Amazon's answers its own way
    (`answers.py`)."""

    UPLOAD = "upload"  # conversion events (DSP eventData, Events API create/events)
    DEFINITIONS_LIST = "definitions list"  # DSP conversion definitions of an advertiser
    DEFINITIONS_CREATE = "definitions create"
    TOKEN = "token"  # noqa: S105 - Login with Amazon: refresh or authorization-code grant
    PROFILES = "profiles"  # GET /v2/profiles (`check`)
    USER_DELETION = "user deletion"  # DSP: delete the events of people who opted out


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One HTTP request, complete but for the Authorization header (added at send time)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    item_count: int = 0
    call: Call = Call.UPLOAD


@dataclass(frozen=True, slots=True)
class Response:
    """What the target needs of an answer: its status and its JSON body (None if it has none)."""

    status: int
    body: Any


class Transport(Protocol):
    """Sends one request; returns the final answer, or raises a UserError for an answer that
    stops the run (`answers.Meaning.SET_UP`, retries exhausted, a stop)."""

    def send(self, request: OutgoingRequest) -> Response:
        """Send with whatever retries the transport does."""
        ...
