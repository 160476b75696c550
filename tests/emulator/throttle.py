"""Throttling as Amazon does it: a token bucket per account, 429 above it, with or without
`Retry-After`; changeable mid-run (`AmazonAdsEmulator.throttle`, or `POST /_emulator/throttle`
with `{"rate": 20, "burst": 10, "retry_after": null}`; `{"rate": null}` lifts it)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class Throttle:
    """Requests per second per account (None: no limit), the burst a full bucket allows, and
    the `Retry-After` seconds sent with a 429 (None: no header, as some Amazon routes do)."""

    rate: float | None = None
    burst: float = 10.0
    retry_after: float | None = None
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(
        self, *, rate: float | None, burst: float = 10.0, retry_after: float | None = None
    ) -> None:
        """A new limit from now on; buckets keep what they hold, up to the new burst."""
        with self._lock:
            self.rate, self.burst, self.retry_after = rate, burst, retry_after
            for bucket in self._buckets.values():
                bucket.tokens = min(bucket.tokens, burst)

    def configure_from(self, doc: Any) -> None:
        """`configure` from a control request's JSON body; ValueError when it is not one."""
        if not isinstance(doc, dict):
            raise ValueError("expected a JSON object")
        rate, burst, retry_after = doc.get("rate"), doc.get("burst", 10), doc.get("retry_after")
        for name, value in (("rate", rate), ("retry_after", retry_after)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise ValueError(f"{name} must be a number or null")
        if not _is_number(burst) or burst < 1:
            raise ValueError("burst must be a number of at least 1")
        self.configure(rate=rate, burst=float(burst), retry_after=retry_after)

    def admit(self, account: str) -> bool:
        """Take a token for a request to `account`; False: answer 429."""
        with self._lock:
            if self.rate is None:
                return True
            now = time.monotonic()
            bucket = self._buckets.get(account)
            if bucket is None:
                bucket = self._buckets[account] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens < 1:
                return False
            bucket.tokens -= 1
            return True

    def retry_after_header(self) -> list[tuple[str, str]]:
        """The headers of a 429 this throttle answers."""
        if self.retry_after is None:
            return []
        return [("Retry-After", f"{self.retry_after:g}")]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
