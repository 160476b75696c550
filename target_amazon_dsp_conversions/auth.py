"""Login with Amazon: the refresh-token grant, access tokens cached until shortly before expiry,
and the rule for a 401: refresh, unless the refused token is the one a refresh just returned."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

import requests

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.answers import (
    CONNECTION_FAILED,
    TIMED_OUT,
    Meaning,
    backoff_delay,
    meaning,
    set_up_line,
)
from target_amazon_dsp_conversions.errors import DeliveryError, SignInError, UserError
from target_amazon_dsp_conversions.http_session import Answer, Sessions, read_json
from target_amazon_dsp_conversions.http_types import Call

if TYPE_CHECKING:
    from target_amazon_dsp_conversions.settings import Settings

logger = logging.getLogger("target-amazon-dsp-conversions.auth")

# Refresh a minute early so a token never expires while a request is in flight (Amazon's sample).
EXPIRY_MARGIN_SECONDS = 60.0

SIGN_IN_AGAIN = (
    "Login with Amazon refused the refresh token ({error}): it was revoked or is invalid. "
    "Sign in with Amazon again (target-amazon-dsp-conversions-auth login) and update "
    "the refresh_token setting"
)
WRONG_CLIENT = (
    "Login with Amazon refused client_id/client_secret ({error}); check the client_id and "
    "client_secret settings"
)


class AccessTokens:
    """Thread-safe source of LwA access tokens. A sign-in that failed is one answer for every
    thread: the first failure is raised again at once, not retried per thread."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        timeout: float,
        max_retries: int,
        stopping: threading.Event,
        sessions: Sessions | None = None,
    ) -> None:
        """`stopping` ends retry waits and forbids new token requests (the run stops);
        `sessions` are the run's, so that a stop cuts a hung token call too."""
        self._token_url = token_url
        redaction.register(client_secret, refresh_token)
        self._form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._timeout = timeout
        self._max_retries = max_retries
        self._stopping = stopping
        self._sessions = sessions or Sessions()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        # The token a refresh after a 401 returned, until an answer shows Amazon takes it.
        self._unproven: str | None = None
        self._failure: UserError | None = None

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        max_retries: int,
        stopping: threading.Event,
        sessions: Sessions | None = None,
    ) -> AccessTokens:
        """Tokens for the credentials and token host of the target's settings."""
        if not (settings.client_id and settings.client_secret and settings.refresh_token):
            raise SignInError("client_id, client_secret and refresh_token are needed to sign in")
        return cls(
            token_url=settings.auth_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            refresh_token=settings.refresh_token,
            timeout=settings.request_timeout,
            max_retries=max_retries,
            stopping=stopping,
            sessions=sessions,
        )

    def current(self) -> str:
        """A valid access token, refreshed when it is about to expire."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._refresh_locked()
            assert self._token is not None
            return self._token

    def refused(self, token: str) -> str | None:
        """Amazon answered 401 to a request sent with `token`: the token to send it again with,
        or None when `token` is the one a refresh after a 401 just returned and no answer has
        shown Amazon takes it (another refresh cannot help: the sign-in lacks access)."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._token is not None and token != self._token:
                return self._token  # another thread refreshed it already
            if token == self._unproven:
                return None
            self._refresh_locked()
            self._unproven = self._token
            return self._token

    def proven(self, token: str) -> None:
        """An answer shows that Amazon took `token` (`answers.proves_token`)."""
        if token == self._unproven:
            with self._lock:
                if token == self._unproven:
                    self._unproven = None

    def _refresh_locked(self) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            self._request_token()
        except UserError as failure:
            self._failure = failure
            raise

    def _request_token(self) -> None:
        # The token call must not carry the API's Bearer header: LwA refuses it.
        attempt = 0
        while True:
            if self._stopping.is_set():
                raise DeliveryError("stopped before an access token was issued")
            answer: Answer | None = None
            try:
                answer = self._sessions.request(
                    "POST", self._token_url, data=self._form, headers={}, timeout=self._timeout
                )
            except requests.Timeout:
                status, problem = TIMED_OUT, "timeout"
            except requests.RequestException as exc:
                status, problem = CONNECTION_FAILED, type(exc).__name__
            else:
                status, problem = answer.status_code, f"HTTP {answer.status_code}"
            if self._stopping.is_set():
                raise DeliveryError("stopped before an access token was issued")
            found = meaning(Call.TOKEN, status)
            if answer is not None and found is Meaning.DONE:
                self._accept(answer)
                return
            if answer is not None and found is not Meaning.RETRY:
                raise SignInError(_refusal(status, read_json(answer)))
            attempt += 1
            if attempt > self._max_retries:
                raise DeliveryError(
                    f"could not get an access token from {self._token_url} after "
                    f"{self._max_retries} retries ({problem})"
                )
            logger.warning("Token request failed (%s); retrying", problem)
            if self._stopping.wait(backoff_delay(attempt)):
                raise DeliveryError("stopped while waiting for an access token")

    def _accept(self, response: Answer) -> None:
        body = read_json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise DeliveryError("Login with Amazon answered without an access token")
        if not (token.isascii() and token.isprintable()) or " " in token:
            # It goes into a header as it is: no server of Amazon's issues such a token.
            raise DeliveryError("Login with Amazon answered with an access token no header holds")
        expires_in = body.get("expires_in", 3600)
        lifetime = _lifetime(expires_in)
        redaction.register(token)
        self._token = token
        self._expires_at = time.monotonic() + max(0.0, lifetime - EXPIRY_MARGIN_SECONDS)
        logger.debug("Access token refreshed; valid for %.0f s", lifetime)


def _lifetime(expires_in: Any) -> float:
    """An access token's lifetime in seconds; an hour (LwA's) when the answer gives none that is
    a finite number."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
        return 3600.0
    try:
        lifetime = float(expires_in)
    except OverflowError:  # an integer of hundreds of digits
        return 3600.0
    return lifetime if math.isfinite(lifetime) else 3600.0


def _refusal(status: int, body: Any) -> str:
    """The one line for a token request Login with Amazon refused, by its OAuth error."""
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    if error == "invalid_grant":
        return SIGN_IN_AGAIN.format(error=error)
    if error in {"invalid_client", "unauthorized_client"}:
        return WRONG_CLIENT.format(error=error)
    # Only the OAuth error code: a server may echo the request (its secrets) in the rest.
    return set_up_line(Call.TOKEN, status, {"error": error} if error else None, "")
