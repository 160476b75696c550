"""The settings that decide how a record becomes an event: below both the settings module
(which makes them) and the record pipeline (which uses them), so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConversionSettings:
    """The settings that decide how a record becomes an event (`Settings.conversion()`); sent
    to each worker process once (nothing secret among them)."""

    api: str
    region: str
    mapping: dict[str, str]
    defaults: dict[str, Any]
    source: str
    advertiser_id: str | None
    user_identifier_type: str | None
    # Streams whose records are people who opted out (`opt_out_streams`).
    opt_out_streams: frozenset[str] = frozenset()
    # Whether conversions carry their person keys, for the suppression list to screen them:
    # only when there are opt-outs (the cost of a column per record otherwise).
    screen_people: bool = False
