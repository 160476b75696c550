"""Settings: the JSON schema that Meltano and `--about` show, and the checks at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from singer_sdk import typing as th

from target_amazon_dsp_conversions.amazon_fields import SOURCES
from target_amazon_dsp_conversions.errors import SettingError
from target_amazon_dsp_conversions.identity import MATCH_KEY_TYPES
from target_amazon_dsp_conversions.mapping import CONVERSION_FIELDS

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
APIS = ("dsp", "events")

DEFAULT_MAX_CONCURRENT_REQUESTS = 32
MAX_WORKER_PROCESSES = 64
DEFAULT_MAX_RETRIES = 5
DEFAULT_REQUEST_TIMEOUT = 60.0

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType,
        title="Client ID",
        description="Login with Amazon (LwA) client ID of your Amazon Ads API application.",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        title="Client Secret",
        description="Login with Amazon client secret.",
    ),
    th.Property(
        "refresh_token",
        th.StringType,
        secret=True,
        title="Refresh Token",
        description="LwA refresh token (Atzr|...); the target exchanges it for access tokens.",
    ),
    th.Property(
        "region",
        th.StringType,
        allowed_values=list(API_HOSTS),
        default="NA",
        title="Region",
        description="Amazon Ads region: selects the API host and the LwA token host.",
    ),
    th.Property(
        "api",
        th.StringType,
        allowed_values=list(APIS),
        default="dsp",
        title="API",
        description="dsp: DSP Conversions API (100 events per request, one source); "
        "events: Amazon Ads Events API (500 events per request).",
    ),
    th.Property(
        "advertiser_id",
        th.StringType,
        title="Advertiser ID",
        description="DSP advertiser ID (numeric; not the entity ID). Default for records "
        "without advertiserId.",
    ),
    th.Property(
        "profile_id",
        th.StringType,
        title="Profile ID",
        description="Profile ID sent as Amazon-Advertising-API-Scope (dsp).",
    ),
    th.Property(
        "source",
        th.StringType,
        allowed_values=list(SOURCES),
        default="SERVER_TO_SERVER",
        title="Source",
        description="Conversion source for records that do not carry one.",
    ),
    th.Property(
        "mapping",
        th.ObjectType(additional_properties=th.StringType),
        title="Mapping",
        description="Conversion field -> record property path (dotted for nested objects); "
        "overrides the default column names.",
    ),
    th.Property(
        "defaults",
        th.ObjectType(additional_properties=th.AnyType()),
        title="Defaults",
        description="Conversion field -> constant used when a record has no value, e.g. "
        '{"countryCode": "US", "currency": "USD"}.',
    ),
    th.Property(
        "conversion_definitions",
        th.ObjectType(additional_properties=th.AnyType()),
        title="Conversion Definitions",
        description="dsp: conversion name or type -> conversionDefinitionId, or -> "
        "{advertiser ID: conversionDefinitionId}.",
    ),
    th.Property(
        "create_missing_definitions",
        th.BooleanType,
        default=False,
        title="Create Missing Definitions",
        description="dsp: create a conversion definition for a name that has none.",
    ),
    th.Property(
        "user_identifier_type",
        th.StringType,
        allowed_values=list(MATCH_KEY_TYPES),
        title="User Identifier Type",
        description="Match-key type of userIdentifier when it cannot be inferred "
        "(a 64-hex hash could be an email or a phone).",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        title="Dry Run",
        description="Build and validate every request and write it to dry_run_path; "
        "send nothing. No credentials needed.",
    ),
    th.Property(
        "dry_run_path",
        th.StringType,
        default="dry-run-requests.jsonl",
        title="Dry Run Path",
        description="Where dry_run writes the requests, one JSON object per line.",
    ),
    th.Property(
        "rejects_path",
        th.StringType,
        default="rejects.jsonl",
        title="Rejects Path",
        description="Every record refused for good is appended here with its reasons.",
    ),
    th.Property(
        "report_path",
        th.StringType,
        title="Report Path",
        description="When set, a JSON run report is written there at the end.",
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType,
        default=DEFAULT_MAX_CONCURRENT_REQUESTS,
        title="Max Concurrent Requests",
        description="Upper bound on requests in flight.",
    ),
    th.Property(
        "worker_processes",
        th.IntegerType,
        title="Worker Processes",
        description=(
            "Processes that convert, hash and encode records in parallel with the one that "
            "reads input and uploads. Default: the number of CPUs, at most 4 (0 on one CPU); "
            "0 does all the work in one process."
        ),
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=DEFAULT_MAX_RETRIES,
        title="Max Retries",
        description="Retries of one request on 429, 5xx, timeouts and connection errors.",
    ),
    th.Property(
        "request_timeout",
        th.NumberType,
        default=DEFAULT_REQUEST_TIMEOUT,
        title="Request Timeout",
        description="Per-request timeout in seconds.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        title="API URL",
        description="Overrides the API host of the region (sandbox, proxies, tests).",
    ),
    th.Property(
        "auth_url",
        th.StringType,
        title="Auth URL",
        description="Overrides the LwA token endpoint of the region (tests).",
    ),
).to_dict()

_NUMERIC_ID = re.compile(r"^\d{1,40}$")


@dataclass(frozen=True)
class Settings:
    """Checked, typed settings; built once at start-up."""

    api: str = "dsp"
    region: str = "NA"
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    advertiser_id: str | None = None
    profile_id: str | None = None
    source: str = "SERVER_TO_SERVER"
    mapping: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    conversion_definitions: Mapping[str, Any] = field(default_factory=dict)
    create_missing_definitions: bool = False
    user_identifier_type: str | None = None
    dry_run: bool = False
    dry_run_path: str = "dry-run-requests.jsonl"
    rejects_path: str = "rejects.jsonl"
    report_path: str | None = None
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    worker_processes: int = 0
    max_retries: int = DEFAULT_MAX_RETRIES
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    api_url: str = API_HOSTS["NA"]
    auth_url: str = TOKEN_URLS["NA"]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Check every setting; raise SettingError naming the first bad one."""
        region = _choice(config, "region", tuple(API_HOSTS), "NA")
        api = _choice(config, "api", APIS, "dsp")
        dry_run = _boolean(config, "dry_run", default=False)
        if not dry_run:
            for name in ("client_id", "client_secret", "refresh_token"):
                if not _text(config, name):
                    raise SettingError(
                        name, "is required (or set dry_run: true to run without credentials)"
                    )
        advertiser_id = _text(config, "advertiser_id")
        if advertiser_id is not None:
            _check_advertiser_id("advertiser_id", advertiser_id)
        profile_id = _text(config, "profile_id")
        if profile_id is not None and not _NUMERIC_ID.match(profile_id):
            raise SettingError("profile_id", f"must be a numeric profile ID, got {profile_id!r}")
        return cls(
            api=api,
            region=region,
            client_id=_text(config, "client_id"),
            client_secret=_text(config, "client_secret"),
            refresh_token=_text(config, "refresh_token"),
            advertiser_id=advertiser_id,
            profile_id=profile_id,
            source=_choice(config, "source", SOURCES, "SERVER_TO_SERVER"),
            mapping=_mapping(config),
            defaults=_defaults(config),
            conversion_definitions=_conversion_definitions(config),
            create_missing_definitions=_boolean(
                config, "create_missing_definitions", default=False
            ),
            user_identifier_type=_optional_choice(config, "user_identifier_type", MATCH_KEY_TYPES),
            dry_run=dry_run,
            dry_run_path=_text(config, "dry_run_path") or "dry-run-requests.jsonl",
            rejects_path=_text(config, "rejects_path") or "rejects.jsonl",
            report_path=_text(config, "report_path"),
            max_concurrent_requests=_integer(
                config, "max_concurrent_requests", DEFAULT_MAX_CONCURRENT_REQUESTS, 1, 256
            ),
            worker_processes=_integer(
                config, "worker_processes", default_worker_processes(), 0, MAX_WORKER_PROCESSES
            ),
            max_retries=_integer(config, "max_retries", DEFAULT_MAX_RETRIES, 0, 100),
            request_timeout=_number(config, "request_timeout", DEFAULT_REQUEST_TIMEOUT),
            api_url=_url(config, "api_url") or API_HOSTS[region],
            auth_url=_url(config, "auth_url") or TOKEN_URLS[region],
        )


def default_worker_processes() -> int:
    """One per CPU, up to 4; none on a single CPU, where they would only add overhead."""
    cpus = os.cpu_count() or 1
    return min(cpus, 4) if cpus > 1 else 0


def _check_advertiser_id(setting: str, value: str) -> None:
    if value.upper().startswith("ENTITY"):
        raise SettingError(
            setting, "looks like a DSP entity ID; use the numeric DSP advertiser ID instead"
        )
    if not _NUMERIC_ID.match(value):
        raise SettingError(setting, f"must be a numeric DSP advertiser ID, got {value!r}")


def _text(config: Mapping[str, Any], name: str) -> str | None:
    value = config.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SettingError(name, f"must be a string, got {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _choice(config: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    return _optional_choice(config, name, allowed) or default


def _optional_choice(config: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _text(config, name)
    if value is None:
        return None
    for option in allowed:
        if value.upper() == option.upper():
            return option
    raise SettingError(name, f"must be one of {', '.join(allowed)}, got {value!r}")


def _boolean(config: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = config.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
        return value.strip().lower() in {"true", "1"}
    raise SettingError(name, f"must be true or false, got {value!r}")


def _integer(config: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = config.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingError(name, f"must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or (number != value and str(number) != str(value).strip()):
        raise SettingError(name, f"must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise SettingError(name, f"must be between {low} and {high}, got {number}")
    return number


def _number(config: Mapping[str, Any], name: str, default: float) -> float:
    value = config.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(name, f"must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not 0 < number <= 3600:  # noqa: PLR2004
        raise SettingError(name, f"must be between 0 and 3600 seconds, got {value!r}")
    return number


def _url(config: Mapping[str, Any], name: str) -> str | None:
    value = _text(config, name)
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise SettingError(name, f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _object(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = config.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingError(name, f"must be an object, got {type(value).__name__}")
    return value


def _mapping(config: Mapping[str, Any]) -> dict[str, str]:
    result = {}
    for key, path in _object(config, "mapping").items():
        if key not in CONVERSION_FIELDS:
            raise SettingError(f"mapping.{key}", _unknown_field(key))
        if not isinstance(path, str) or not path.strip():
            raise SettingError(f"mapping.{key}", "must be a record property path (a string)")
        result[key] = path.strip()
    return result


def _defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    result = {}
    for key, value in _object(config, "defaults").items():
        if key not in CONVERSION_FIELDS:
            raise SettingError(f"defaults.{key}", _unknown_field(key))
        result[key] = value
    return result


def _conversion_definitions(config: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in _object(config, "conversion_definitions").items():
        setting = f"conversion_definitions.{key}"
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            result[key] = str(value).strip()
        elif isinstance(value, Mapping) and value:
            per_advertiser = {}
            for advertiser, definition_id in value.items():
                _check_advertiser_id(f"{setting}.{advertiser}", str(advertiser))
                if not isinstance(definition_id, (str, int)) or not str(definition_id).strip():
                    raise SettingError(f"{setting}.{advertiser}", "must be a definition ID")
                per_advertiser[str(advertiser)] = str(definition_id).strip()
            result[key] = per_advertiser
        else:
            raise SettingError(
                setting, "must be a conversionDefinitionId or an object advertiser ID -> ID"
            )
    return result


def _unknown_field(key: str) -> str:
    return f"unknown conversion field {key!r}; known fields: {', '.join(CONVERSION_FIELDS)}"
