"""Login with Amazon: the refresh-token grant, access tokens cached until shortly before expiry."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests

from target_amazon_dsp_conversions.errors import DeliveryError, SignInError
from target_amazon_dsp_conversions.http_client import backoff_delay, read_json

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


class AccessTokens:
    """Thread-safe source of LwA access tokens."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        timeout: float,
        max_retries: int,
        wait: Callable[[float], bool],
    ) -> None:
        """`wait(seconds)` sleeps and returns True when the run is stopping."""
        self._token_url = token_url
        self._form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._timeout = timeout
        self._max_retries = max_retries
        self._wait = wait
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    @classmethod
    def for_settings(
        cls, settings: Settings, *, max_retries: int, wait: Callable[[float], bool]
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
            wait=wait,
        )

    def current(self) -> str:
        """A valid access token, refreshed when it is about to expire."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._refresh_locked()
            assert self._token is not None
            return self._token

    def refresh_after_401(self, rejected_token: str) -> str:
        """A fresh token, unless another thread already replaced the rejected one."""
        with self._lock:
            if self._token == rejected_token:
                self._refresh_locked()
            assert self._token is not None
            return self._token

    def _refresh_locked(self) -> None:
        # The token call must not carry the API's Bearer header: LwA refuses it.
        attempt = 0
        while True:
            try:
                response = requests.post(self._token_url, data=self._form, timeout=self._timeout)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code == 200:  # noqa: PLR2004
                    self._accept(response)
                    return
                body = read_json(response)
                error = str(body.get("error", "")) if isinstance(body, dict) else ""
                if error == "invalid_grant":
                    raise SignInError(SIGN_IN_AGAIN.format(error=error))
                if error in {"invalid_client", "unauthorized_client"}:
                    raise SignInError(
                        f"Login with Amazon refused client_id/client_secret ({error}); "
                        "check the client_id and client_secret settings"
                    )
                if response.status_code < 500 and response.status_code != 429:  # noqa: PLR2004
                    raise SignInError(
                        f"Login with Amazon refused the token request: HTTP "
                        f"{response.status_code} {error or ''}".rstrip()
                    )
                problem = f"HTTP {response.status_code}"
            attempt += 1
            if attempt > self._max_retries:
                raise DeliveryError(
                    f"could not get an access token from {self._token_url} after "
                    f"{self._max_retries} retries ({problem})"
                )
            logger.warning("Token request failed (%s); retrying", problem)
            if self._wait(backoff_delay(attempt)):
                raise DeliveryError("stopped while waiting for an access token")

    def _accept(self, response: requests.Response) -> None:
        body = read_json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise DeliveryError("Login with Amazon answered without an access token")
        expires_in = body.get("expires_in", 3600)
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) else 3600.0
        self._token = token
        self._expires_at = time.monotonic() + max(0.0, lifetime - EXPIRY_MARGIN_SECONDS)
        logger.debug("Access token refreshed; valid for %.0f s", lifetime)
