"""What every answer of Amazon (and of Login with Amazon) means: one table for every kind of
call, read by the transport (`http_client.py`), the sign-in (`auth.py`), delivery, the
definition calls, `check` and `login` alike.

The rule that tells a set-up problem from a data problem (SPEC §5): what the settings decide
for every record — the address (`api_url`, `auth_url`), the credentials, the advertiser and its
profile, a conversion definition named in `conversion_definitions` — is set-up; an answer that
refuses one of these stops the run (exit 1, the records undelivered, no STATE past them), as
resending the same records next time would meet the same answer. What each record says itself —
its time, match keys, values, its conversion name — is data; an answer refusing the request's
content rejects its records (the rejects file), and a 207 rejects the items it names.

How fast to send (the per-account pace after a 429) is not decided here but in `pacing.py`, as
the AWS SDKs keep their adaptive rate limiter apart from their retry handler.
"""

from __future__ import annotations

import random
from enum import Enum
from typing import Any

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.http_types import Call


class Meaning(Enum):
    """What the caller does with an answer."""

    DONE = "the answer is the result"
    READ_ITEMS = "read the answer item by item"
    RETRY = "send again after a backoff"
    SLOW_DOWN = "slow the pace of the account and send again in turn"
    REFRESH_TOKEN = "refresh the access token and send again"  # noqa: S105 - not a secret
    SPLIT = "split the request in halves and send each"
    REJECT = "reject the records of the request"
    SET_UP = "stop the run: a set-up problem"


# Outcomes without an HTTP status, in the table's status column.
CONNECTION_FAILED = -1
TIMED_OUT = -2

_DONE, _ITEMS, _RETRY, _SLOW = Meaning.DONE, Meaning.READ_ITEMS, Meaning.RETRY, Meaning.SLOW_DOWN
_REFRESH, _SPLIT, _REJECT, _SET_UP = (
    Meaning.REFRESH_TOKEN, Meaning.SPLIT, Meaning.REJECT, Meaning.SET_UP,
)  # fmt: skip

COLUMNS = (
    Call.UPLOAD, Call.DEFINITIONS_LIST, Call.DEFINITIONS_CREATE, Call.TOKEN, Call.PROFILES,
    Call.USER_DELETION,
)  # fmt: skip
# status: (upload, definitions list, definitions create, token, profiles, user deletion).
# A user deletion carries people as an upload carries records: its answers mean the same.
TABLE: dict[int, tuple[Meaning, Meaning, Meaning, Meaning, Meaning, Meaning]] = {
    200: (_ITEMS, _DONE, _ITEMS, _DONE, _DONE, _ITEMS),
    207: (_ITEMS, _DONE, _ITEMS, _DONE, _DONE, _ITEMS),
    # The request's content: the records' fault for an upload (or a definition named by them);
    # nothing of a record is in the other calls, so there it is the set-up's.
    400: (_REJECT, _SET_UP, _REJECT, _SET_UP, _SET_UP, _REJECT),
    # LwA answers 401 for a wrong client_id/client_secret: no token refresh can help there.
    401: (_REFRESH, _REFRESH, _REFRESH, _SET_UP, _REFRESH, _REFRESH),
    403: (_SET_UP, _SET_UP, _SET_UP, _SET_UP, _SET_UP, _SET_UP),
    404: (_SET_UP, _SET_UP, _SET_UP, _SET_UP, _SET_UP, _SET_UP),
    405: (_SET_UP, _SET_UP, _SET_UP, _SET_UP, _SET_UP, _SET_UP),
    408: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
    413: (_SPLIT, _SET_UP, _REJECT, _SET_UP, _SET_UP, _SPLIT),
    # The Content-Type the target sends: the same for every request of the call.
    415: (_SET_UP, _SET_UP, _SET_UP, _SET_UP, _SET_UP, _SET_UP),
    422: (_REJECT, _SET_UP, _REJECT, _SET_UP, _SET_UP, _REJECT),
    # The token endpoint is not paced per account: a 429 there is retried with backoff.
    429: (_SLOW, _SLOW, _SLOW, _RETRY, _SLOW, _SLOW),
    500: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
    502: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
    503: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
    504: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
    CONNECTION_FAILED: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
    TIMED_OUT: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
}


def meaning(call: Call, status: int, *, items: int = 1) -> Meaning:
    """What an answer with `status` to a `call` of `items` records means. A status the table
    does not name means what its class does (2xx as 200, 4xx as 400, 5xx as 500); any other
    (a redirect, 1xx) is a set-up problem (the address is wrong)."""
    family = {2: 200, 4: 400, 5: 500}.get(status // 100) if status > 0 else None
    row = TABLE.get(status) or (TABLE[family] if family else None)
    found = row[COLUMNS.index(call)] if row else _SET_UP
    if found is _SPLIT and items <= 1:
        return _REJECT  # one event too large for Amazon: that event's fault
    return found


def proves_token(call: Call, status: int) -> bool:
    """Whether an answer shows that Amazon took the access token it was sent with: anything
    but a refusal of the token and what a gateway may answer before looking at it."""
    return status > 0 and meaning(call, status) not in (_REFRESH, _RETRY, _SLOW)


# --- Retry with backoff --------------------------------------------------------------------

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


def backoff_delay(attempt: int) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): exponential, capped, with full jitter,
    so that concurrent callers do not retry in lockstep."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))


# --- What to check when an answer stops the run ---------------------------------------------

_API_ROUTE = "Amazon has no such route: check api_url (the API host only) and region"
_HINTS: dict[tuple[Call, int], str] = {
    (Call.UPLOAD, 403): (
        "the sign-in has no access to this advertiser or profile, or lacks the Events Manager "
        "permission 'View and Edit' (event_manager_edit); check advertiser_id (and with api: "
        "dsp, profile_id), and run target-amazon-dsp-conversions-auth check"
    ),
    (Call.DEFINITIONS_LIST, 403): (
        "the user who signed in needs Events Manager permission (event_manager_view to list, "
        "event_manager_edit to upload) on this advertiser; check advertiser_id and profile_id"
    ),
    (Call.DEFINITIONS_CREATE, 403): (
        "the user who signed in needs Events Manager permission 'View and Edit' "
        "(event_manager_edit) on this advertiser to create definitions; check advertiser_id"
    ),
    (Call.USER_DELETION, 403): (
        "the sign-in has no access to this advertiser or profile, or lacks the Events Manager "
        "permission 'View and Edit' (event_manager_edit) that deleting people's events needs; "
        "check advertiser_id and profile_id, and run target-amazon-dsp-conversions-auth check"
    ),
    (Call.PROFILES, 403): "check that the app has Amazon Ads API access",
    (Call.TOKEN, 403): "check client_id, client_secret and refresh_token",
    (Call.TOKEN, 404): "Login with Amazon has no such route: check auth_url",
    (Call.TOKEN, 405): "Login with Amazon has no such route: check auth_url",
    (Call.TOKEN, 415): "Login with Amazon does not take the request there: check auth_url",
}
_HINT_BY_STATUS = {
    404: _API_ROUTE,
    405: _API_ROUTE,
    415: "Amazon does not take this request's Content-Type there: check api_url",
}
_HINT_BY_CALL = {
    Call.TOKEN: "check auth_url, client_id, client_secret and refresh_token",
    Call.PROFILES: "check api_url and region",
}
_WHAT = {
    Call.UPLOAD: "Amazon refused the upload for advertiser {account}",
    Call.DEFINITIONS_LIST: "Amazon refused to list the conversion definitions of advertiser "
    "{account}",
    Call.DEFINITIONS_CREATE: "Amazon refused to create a conversion definition for advertiser "
    "{account}",
    Call.TOKEN: "Login with Amazon refused the token request",
    Call.PROFILES: "Amazon refused to list the profiles",
    Call.USER_DELETION: "Amazon refused the user deletion for advertiser {account}",
}


def what_to_check(call: Call, status: int) -> str:
    """The settings (or permissions) to look at when `status` stops a `call`."""
    return (
        _HINTS.get((call, status))
        or _HINT_BY_STATUS.get(status)
        or _HINT_BY_CALL.get(call)
        or "check api_url, region and advertiser_id"
    )


def set_up_line(call: Call, status: int, body: Any, account: str) -> str:
    """The one line a set-up answer stops the run with: what was refused, Amazon's own words,
    what to check."""
    says = amazon_says(body)
    what = _WHAT[call].format(account=account or "(none)")
    return f"{what} (HTTP {status}{': ' + says if says else ''}): {what_to_check(call, status)}"


def fresh_token_refused_line(method: str, path: str) -> str:
    """A 401 for the token a refresh just returned: the token is not the problem."""
    return (
        f"{method} {path} answered 401 again right after a token refresh; check the app's "
        "access to this advertiser (and region: tokens are refused by another region's host)"
    )


def amazon_says(body: Any) -> str:
    """The message of an error body in any of the shapes Amazon answers with (DSP
    `{message, errors[]}`, Events `{code, message}`, profiles `{code, details}`, LwA
    `{error, error_description}`), at most 300 characters."""
    if not isinstance(body, dict):
        return ""
    parts = [
        str(body.get(key))
        for key in ("message", "details", "error_description")
        if isinstance(body.get(key), str) and body.get(key)
    ]
    for item in body.get("errors") or []:
        if isinstance(item, dict) and item.get("message") and str(item["message"]) not in parts:
            parts.append(str(item["message"]))
    if not parts:
        parts = [str(body.get(key)) for key in ("code", "error") if body.get(key)][:1]
    return redaction.redacted_start("; ".join(parts), 300)
