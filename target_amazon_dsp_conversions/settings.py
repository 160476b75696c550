"""Settings, each declared once: its field in `Settings` says its name, kind, default, title,
description and whether it is secret. The JSON schema that Meltano and `--about` show and the
checks at start-up both derive from that declaration.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any
from urllib.parse import urlparse

from dotenv import dotenv_values
from singer_sdk import typing as th

from target_amazon_dsp_conversions.amazon_fields import SOURCES
from target_amazon_dsp_conversions.apis.base import Endpoint
from target_amazon_dsp_conversions.converter import ConversionSettings
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
MAX_WORKER_PROCESSES = 64
_NUMERIC_ID = re.compile(r"^\d{1,40}$")


# --- kinds: how a value is read and how the JSON schema describes it ----------------------

# (setting name, value as configured) -> the checked value; raises SettingError.
Reader = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Kind:
    """A setting's JSON-schema type and how a configured value is checked and converted."""

    schema: th.JSONTypeHelper[Any]
    read: Reader
    allowed_values: tuple[str, ...] | None = None


def _text(name: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SettingError(name, f"must be a string, got {type(value).__name__}")
    return str(value).strip() or None


def _choice(options: tuple[str, ...]) -> Kind:
    def read(name: str, value: Any) -> str | None:
        text = _text(name, value)
        if text is None:
            return None
        for option in options:
            if text.upper() == option.upper():
                return option
        raise SettingError(name, f"must be one of {', '.join(options)}, got {text!r}")

    return Kind(th.StringType(), read, options)


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
        return value.strip().lower() in {"true", "1"}
    raise SettingError(name, f"must be true or false, got {value!r}")


def _integer(low: int, high: int) -> Kind:
    def read(name: str, value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise SettingError(name, f"must be a whole number, got {value!r}") from None
        if isinstance(value, bool) or (number != value and str(number) != str(value).strip()):
            raise SettingError(name, f"must be a whole number, got {value!r}")
        if not low <= number <= high:
            raise SettingError(name, f"must be between {low} and {high}, got {number}")
        return number

    return Kind(th.IntegerType(), read)


def _seconds(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(name, f"must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not 0 < number <= 3600:  # noqa: PLR2004
        raise SettingError(name, f"must be between 0 and 3600 seconds, got {value!r}")
    return number


def _url(name: str, value: Any) -> str | None:
    text = _text(name, value)
    if text is None:
        return None
    parsed = urlparse(text)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise SettingError(name, f"must be an http(s) URL, got {text!r}")
    return text.rstrip("/")


def _advertiser_id(name: str, value: Any) -> str | None:
    text = _text(name, value)
    if text is not None:
        check_advertiser_id(name, text)
    return text


def _profile_id(name: str, value: Any) -> str | None:
    text = _text(name, value)
    if text is not None and not _NUMERIC_ID.match(text):
        raise SettingError(name, f"must be a numeric profile ID, got {text!r}")
    return text


def _object(name: str, value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):  # from the environment, or a setting Meltano does not know
        try:
            value = json.loads(value)
        except ValueError:
            raise SettingError(name, "must be a JSON object") from None
    if not isinstance(value, Mapping):
        raise SettingError(name, f"must be an object, got {type(value).__name__}")
    return value


def _per_conversion_field(read_value: Reader) -> Reader:
    """An object conversion field -> value, each value read by `read_value`."""

    def read(name: str, value: Any) -> dict[str, Any]:
        result = {}
        for key, item in _object(name, value).items():
            if key not in CONVERSION_FIELDS:
                raise SettingError(f"{name}.{key}", _unknown_field(key))
            result[key] = read_value(f"{name}.{key}", item)
        return result

    return read


def _property_path(name: str, path: Any) -> str:
    if not isinstance(path, str) or not path.strip():
        raise SettingError(name, "must be a record property path (a string)")
    return path.strip()


def _constant(name: str, value: Any) -> Any:  # noqa: ARG001 - a Reader
    return value


def _conversion_definitions(name: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, definition in _object(name, value).items():
        setting = f"{name}.{key}"
        if (
            isinstance(definition, (str, int))
            and not isinstance(definition, bool)
            and str(definition).strip()
        ):
            result[key] = str(definition).strip()
        elif isinstance(definition, Mapping) and definition:
            per_advertiser = {}
            for advertiser, definition_id in definition.items():
                check_advertiser_id(f"{setting}.{advertiser}", str(advertiser))
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


def check_advertiser_id(setting: str, value: str) -> None:
    """A numeric DSP advertiser ID, not an entity ID; raises SettingError naming `setting`."""
    if value.upper().startswith("ENTITY"):
        raise SettingError(
            setting, "looks like a DSP entity ID; use the numeric DSP advertiser ID instead"
        )
    if not _NUMERIC_ID.match(value):
        raise SettingError(setting, f"must be a numeric DSP advertiser ID, got {value!r}")


TEXT = Kind(th.StringType(), _text)
BOOLEAN = Kind(th.BooleanType(), _boolean)
SECONDS = Kind(th.NumberType(), _seconds)
URL = Kind(th.StringType(), _url)
ADVERTISER_ID = Kind(th.StringType(), _advertiser_id)
PROFILE_ID = Kind(th.StringType(), _profile_id)
MAPPING = Kind(
    th.ObjectType(additional_properties=th.StringType), _per_conversion_field(_property_path)
)
DEFAULTS = Kind(th.ObjectType(additional_properties=th.AnyType()), _per_conversion_field(_constant))
DEFINITIONS = Kind(th.ObjectType(additional_properties=th.AnyType()), _conversion_definitions)


@dataclass(frozen=True)
class Declared:
    """What the JSON schema says of a setting besides its name and default."""

    kind: Kind
    description: str
    secret: bool = False


def setting(kind: Kind, description: str, *, default: Any = None, secret: bool = False) -> Any:
    """Declare a setting as a field of `Settings` (its title is made from its name)."""
    metadata = {"setting": Declared(kind, description, secret)}
    if isinstance(default, dict):  # a fresh one per instance
        return field(default_factory=lambda: dict(default), repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


def _default(declared: Field[Any]) -> Any:
    if declared.default_factory is not MISSING:
        return declared.default_factory()
    return declared.default


# --- the settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Checked, typed settings; built once at start-up by `from_config`."""

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
        _choice(tuple(API_HOSTS)),
        "Amazon Ads region: selects the API host and the LwA token host.",
        default="NA",
    )
    api: str = setting(
        _choice(APIS),
        "dsp: DSP Conversions API (100 events per request, one source); "
        "events: Amazon Ads Events API (500 events per request).",
        default="dsp",
    )
    advertiser_id: str | None = setting(
        ADVERTISER_ID,
        "DSP advertiser ID (numeric; not the entity ID). Default for records without advertiserId.",
    )
    profile_id: str | None = setting(
        PROFILE_ID, "Profile ID sent as Amazon-Advertising-API-Scope (dsp)."
    )
    source: str = setting(
        _choice(SOURCES),
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
        _choice(MATCH_KEY_TYPES),
        "Match-key type of userIdentifier when it cannot be inferred "
        "(a 64-hex hash could be an email or a phone).",
    )
    dry_run: bool = setting(
        BOOLEAN,
        "Build and validate every request and write it to dry_run_path; send nothing. "
        "No credentials needed.",
        default=False,
    )
    dry_run_path: str = setting(
        TEXT,
        "Where dry_run writes the requests, one JSON object per line.",
        default="dry-run-requests.jsonl",
    )
    rejects_path: str = setting(
        TEXT,
        "Every record refused for good is appended here with its reasons.",
        default="rejects.jsonl",
    )
    report_path: str | None = setting(
        TEXT, "When set, a JSON run report is written there at the end."
    )
    max_concurrent_requests: int = setting(
        _integer(1, 256),
        "Upper bound on requests in flight.",
        default=32,
    )
    # worker_processes, api_url and auth_url default by machine or region (`from_config`).
    worker_processes: int = setting(
        _integer(0, MAX_WORKER_PROCESSES),
        "Processes that convert, hash and encode records in parallel with the one that reads "
        "input and uploads. Default: the number of CPUs, at most 4 (0 on one CPU); 0 does all "
        "the work in one process.",
    )
    max_retries: int = setting(
        _integer(0, 100),
        "Retries of one request on 429, 5xx, timeouts and connection errors.",
        default=5,
    )
    request_timeout: float = setting(SECONDS, "Per-request timeout in seconds.", default=60.0)
    api_url: str = setting(URL, "Overrides the API host of the region (sandbox, proxies, tests).")
    auth_url: str = setting(URL, "Overrides the LwA token endpoint of the region (tests).")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Check every setting; raise SettingError naming the first bad one."""
        values: dict[str, Any] = {}
        for declared in fields(cls):
            raw = config.get(declared.name)
            value = (
                None if raw is None else declared.metadata["setting"].kind.read(declared.name, raw)
            )
            values[declared.name] = _default(declared) if value is None else value
        if not values["dry_run"]:
            for name in ("client_id", "client_secret", "refresh_token"):
                if not values[name]:
                    raise SettingError(
                        name, "is required (or set dry_run: true to run without credentials)"
                    )
        # Defaults that depend on other settings or on the machine.
        region = values["region"]
        values["api_url"] = values["api_url"] or API_HOSTS[region]
        values["auth_url"] = values["auth_url"] or TOKEN_URLS[region]
        if values["worker_processes"] is None:
            values["worker_processes"] = default_worker_processes()
        return cls(**values)

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
        )


def settings_in_environment(prefix: str, dotenv_path: str | None) -> dict[str, str]:
    """Settings set as environment variables (`prefix` + the name in capitals) or in a .env
    file (the environment wins), as text: `Settings.from_config` reads each as its kind."""
    found = dict(dotenv_values(dotenv_path)) if dotenv_path else {}
    found.update(os.environ)
    names = {prefix + declared.name.upper(): declared.name for declared in fields(Settings)}
    return {
        names[variable]: value
        for variable, value in found.items()
        if variable in names and value is not None
    }


def default_worker_processes() -> int:
    """One per CPU, up to 4; none on a single CPU, where they would only add overhead."""
    cpus = os.cpu_count() or 1
    return min(cpus, 4) if cpus > 1 else 0


def _title(name: str) -> str:
    """`max_retries` -> "Max Retries", `api_url` -> "API URL"."""
    words = [_ACRONYMS.get(word, word.capitalize()) for word in name.split("_")]
    return " ".join(words)


_ACRONYMS = {"api": "API", "id": "ID", "url": "URL"}


def _json_schema() -> dict[str, Any]:
    properties = []
    for declared in fields(Settings):
        about: Declared = declared.metadata["setting"]
        default = _default(declared)
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
