"""Settings, each declared once: its field in `Settings` says its name, kind, default, title,
description and whether it is secret. The JSON schema that Meltano and `--about` show and the
checks at start-up both derive from that declaration.

The rest of what settings need lives beside this module: how a value of each kind is read
(`setting_kinds.py`), where values come from (`config_sources.py`: files, the environment,
`.env`), the check at start-up (`startup_checks.py`, the one part that uses the record
pipeline) and the regions' hosts (`endpoints.py`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from singer_sdk import Target
from singer_sdk import typing as th

from target_amazon_dsp_conversions.amazon_fields import SOURCES
from target_amazon_dsp_conversions.apis import API_NAMES, DEFAULT_API, api_summaries
from target_amazon_dsp_conversions.conversion_settings import ConversionSettings
from target_amazon_dsp_conversions.endpoints import REGIONS, Endpoint
from target_amazon_dsp_conversions.errors import UserError
from target_amazon_dsp_conversions.identity import MATCH_KEY_TYPES
from target_amazon_dsp_conversions.setting_kinds import (
    ADVERTISER_ID,
    APPEND_ONLY,
    BOOLEAN,
    DEFAULTS,
    DEFINITIONS,
    LOAD_METHOD,
    MAPPING,
    PROFILE_ID,
    SECONDS,
    STREAM_NAMES,
    TEXT,
    URL,
    Kind,
    Reader,
    choice,
    closest_name,
    integer,
    reader_for,
)

MAX_WORKER_PROCESSES = 64


@dataclass(frozen=True)
class Declared:
    """What the JSON schema says of a setting besides its name and default."""

    kind: Kind
    description: str
    secret: bool = False


def setting(kind: Kind, description: str, *, default: Any = None, secret: bool = False) -> Any:
    """Declare a setting as a field of `Settings` (its title is made from its name)."""
    metadata = {"setting": Declared(kind, description, secret)}
    if isinstance(default, (dict, list)):  # a fresh one per instance
        fresh = type(default)
        return field(default_factory=lambda: fresh(default), repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


def default_of(declared: Field[Any]) -> Any:
    """A declared setting's default value (a fresh one for an object)."""
    if declared.default_factory is not MISSING:
        return declared.default_factory()
    return declared.default


# --- the settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Checked, typed settings; built once at start-up (`startup_checks.check_config`)."""

    client_id: str | None = setting(
        TEXT, "Login with Amazon (LwA) client ID of your Amazon Ads API application."
    )
    client_secret: str | None = setting(TEXT, "Login with Amazon client secret.", secret=True)
    refresh_token: str | None = setting(
        TEXT,
        "LwA refresh token (Atzr|...); the target exchanges it for access tokens.",
        secret=True,
    )
    region: str = setting(
        choice(REGIONS),
        "Amazon Ads region: selects the API host and the LwA token host.",
        default="NA",
    )
    api: str = setting(choice(API_NAMES), api_summaries(), default=DEFAULT_API)
    advertiser_id: str | None = setting(
        ADVERTISER_ID,
        "DSP advertiser ID (numeric; not the entity ID). Default for records without advertiserId.",
    )
    profile_id: str | None = setting(
        PROFILE_ID, "Profile ID sent as Amazon-Advertising-API-Scope (dsp)."
    )
    source: str = setting(
        choice(SOURCES),
        "Conversion source for records that do not carry one.",
        default="SERVER_TO_SERVER",
    )
    mapping: Mapping[str, str] = setting(
        MAPPING,
        "Conversion field -> record property path (dotted for nested objects); overrides the "
        "default column names.",
        default={},
    )
    defaults: Mapping[str, Any] = setting(
        DEFAULTS,
        "Conversion field -> constant used when a record has no value, e.g. "
        '{"countryCode": "US", "currency": "USD"}.',
        default={},
    )
    conversion_definitions: Mapping[str, Any] = setting(
        DEFINITIONS,
        "dsp: conversion name or type -> conversionDefinitionId, or -> "
        "{advertiser ID: conversionDefinitionId}.",
        default={},
    )
    create_missing_definitions: bool = setting(
        BOOLEAN,
        "dsp: create a conversion definition for a name that has none.",
        default=False,
    )
    user_identifier_type: str | None = setting(
        choice(MATCH_KEY_TYPES),
        "Match-key type of userIdentifier when it cannot be inferred "
        "(a 64-hex hash could be an email or a phone).",
    )
    dry_run: bool = setting(
        BOOLEAN,
        "Build and validate every request and write it to dry_run_path; send nothing. "
        "No credentials needed.",
        default=False,
    )
    # The paths of output files default by where the target runs (`files.default_path`).
    dry_run_path: str = setting(
        TEXT,
        "Where dry_run writes the requests, one JSON object per line. Default: "
        "dry-run-requests.jsonl (in a Meltano project: under output/<loader name>/).",
    )
    rejects_path: str = setting(
        TEXT,
        "Every record refused for good is appended here with its reasons. Default: "
        "rejects.jsonl (in a Meltano project: under output/<loader name>/).",
    )
    report_path: str | None = setting(
        TEXT, "When set, a JSON run report is written there at the end."
    )
    max_concurrent_requests: int = setting(
        integer(1, 256),
        "Upper bound on requests in flight.",
        default=64,
    )
    # worker_processes, api_url and auth_url default by machine or region (`startup_checks`).
    worker_processes: int = setting(
        integer(0, MAX_WORKER_PROCESSES),
        "Processes that convert, hash and encode records in parallel with the one that reads "
        "input and uploads. Default: the number of CPUs, at most 4 (0 on one CPU); 0 does all "
        "the work in one process.",
    )
    max_retries: int = setting(
        integer(0, 100),
        "Retries of one request on 5xx, timeouts and connection errors (429s are paced instead; "
        "see throttle_timeout).",
        default=5,
    )
    request_timeout: float = setting(SECONDS, "Per-request timeout in seconds.", default=60.0)
    throttle_timeout: float = setting(
        SECONDS,
        "The run fails when Amazon throttles (429) every request to an account for this many "
        "seconds; while some requests get through, throttled ones wait their turn.",
        default=300.0,
    )
    journal_path: str = setting(
        TEXT,
        "Delivery journal: the events each destination acknowledged, kept while Amazon could "
        "accept them again, so a rerun does not send them again. Default: "
        "delivery-journal.sqlite (in a Meltano project: under output/<loader name>/).",
    )
    opt_out_streams: Sequence[str] = setting(
        STREAM_NAMES,
        "Streams whose records are people who opted out: with api dsp, Amazon is asked to "
        "delete their events (user deletion); with either API, no later conversion of theirs "
        "is sent (see suppression_list_path).",
        default=[],
    )
    suppression_list_path: str = setting(
        TEXT,
        "Suppression list: the hashed match keys of everyone who opted out (never raw values); "
        "conversions carrying them are not sent, in this run or later. Default: "
        "suppression-list.sqlite (in a Meltano project: under output/<loader name>/).",
    )
    api_url: str = setting(URL, "Overrides the API host of the region (sandbox, proxies, tests).")
    auth_url: str = setting(URL, "Overrides the LwA token endpoint of the region (tests).")

    def endpoint(self) -> Endpoint:
        """Where requests go and whose app sends them (a dry run may have no client ID)."""
        return Endpoint(self.api_url, self.client_id or "<client_id>", self.profile_id)

    def conversion(self) -> ConversionSettings:
        """What converting a record needs (and nothing secret): sent to worker processes."""
        return ConversionSettings(
            api=self.api,
            region=self.region,
            mapping=dict(self.mapping),
            defaults=dict(self.defaults),
            source=self.source,
            advertiser_id=self.advertiser_id,
            user_identifier_type=self.user_identifier_type,
            opt_out_streams=frozenset(self.opt_out_streams),
            screen_people=self.screens_people(),
        )

    def screens_people(self) -> bool:
        """Whether conversions are screened against opt-outs: there are opt-out streams, or
        a suppression list from earlier runs."""
        return bool(self.opt_out_streams) or os.path.exists(self.suppression_list_path)


# --- names ------------------------------------------------------------------------------------


class UnknownSettingError(UserError):
    """A setting name neither this target nor the Singer SDK knows. Never ignored: a typo such
    as `dryrun` would turn a dry run into a real upload."""

    def __init__(self, name: str, where: str = "") -> None:
        """Name it (and where it was set) with the closest known name."""
        closest = closest_name(name, KNOWN_SETTINGS)
        hint = (
            f"did you mean {closest!r}?"
            if closest is not None
            else "`target-amazon-dsp-conversions --about` lists the settings"
        )
        super().__init__(f"unknown setting {name!r}{where}; {hint}")
        self.setting = name


def _title(name: str) -> str:
    """`max_retries` -> "Max Retries", `api_url` -> "API URL"."""
    words = [_ACRONYMS.get(word, word.capitalize()) for word in name.split("_")]
    return " ".join(words)


_ACRONYMS = {"api": "API", "id": "ID", "url": "URL"}


def _json_schema() -> dict[str, Any]:
    properties = []
    for declared in fields(Settings):
        about: Declared = declared.metadata["setting"]
        default = default_of(declared)
        properties.append(
            th.Property(
                declared.name,
                about.kind.schema,
                secret=about.secret or None,
                default=default if isinstance(default, (str, bool, int, float)) else None,
                allowed_values=list(about.kind.allowed_values or []) or None,
                title=_title(declared.name),
                description=about.description,
            )
        )
    return th.PropertiesList(*properties).to_dict()


CONFIG_SCHEMA = _json_schema()


def _sdk_settings() -> dict[str, Reader]:
    """The Singer SDK's own settings, as the SDK adds them to a target's schema after ours
    (`--about` lists both): `Target.append_builtin_config` for the SDK's default target
    capabilities, which are this target's (`tests/test_settings_check.py` compares them with
    `--about`)."""
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    Target.append_builtin_config(schema)
    return {name: reader_for(about) for name, about in schema["properties"].items()}


# The SDK's settings whose values this target narrows, declared with what they mean here:
# `--about` and Meltano show these instead of the SDK's own words.
_NARROWED_SDK_SETTINGS: dict[str, tuple[Kind, str]] = {
    "load_method": (
        LOAD_METHOD,
        "append-only, the only value: a conversions API only appends events.",
    ),
    "batch_size_rows": (
        integer(1),
        "Upper bound on events per request (never above the API's own limit: 100 dsp, "
        "500 events); default: the API's limit.",
    ),
}
for _name, (_kind, _description) in _NARROWED_SDK_SETTINGS.items():
    CONFIG_SCHEMA["properties"][_name] = th.Property(
        _name,
        _kind.schema,
        title=_title(_name),
        description=_description,
        allowed_values=list(_kind.allowed_values or []) or None,
        default=APPEND_ONLY if _name == "load_method" else None,
    ).to_dict()[_name]
SDK_SETTINGS = {
    **_sdk_settings(),
    **{name: kind.read for name, (kind, _) in _NARROWED_SDK_SETTINGS.items()},
}
KNOWN_SETTINGS: tuple[str, ...] = (*(declared.name for declared in fields(Settings)), *SDK_SETTINGS)
KNOWN = frozenset(KNOWN_SETTINGS)
