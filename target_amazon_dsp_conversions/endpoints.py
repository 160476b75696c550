"""Where requests go: each region's API host and Login with Amazon token host."""

from __future__ import annotations

from typing import NamedTuple

API_HOSTS = {
    "NA": "https://advertising-api.amazon.com",
    "EU": "https://advertising-api-eu.amazon.com",
    "FE": "https://advertising-api-fe.amazon.com",
}
TOKEN_URLS = {
    "NA": "https://api.amazon.com/auth/o2/token",
    "EU": "https://api.amazon.co.uk/auth/o2/token",
    "FE": "https://api.amazon.co.jp/auth/o2/token",
}
REGIONS = tuple(API_HOSTS)


class Endpoint(NamedTuple):
    """Where requests go and whose app sends them (`Settings.endpoint`)."""

    api_url: str
    client_id: str
    profile_id: str | None  # DSP: the profile scope
