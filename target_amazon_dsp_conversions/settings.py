"""Settings, each declared once: its field in `Settings` says its name, kind, default, title,
description and whether it is secret. The JSON schema that Meltano and `--about` show and the
checks at start-up both derive from that declaration.

`check_config` is the one check at start-up: config files and the environment as the user
wrote them (`load_config`), every name known (ours and the Singer SDK's), every value read as
its kind (text included: environment variables, settings a Meltano project has not declared),
`defaults` checked as records are. Its first problem is one line naming the setting.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

from dotenv import dotenv_values, find_dotenv
from singer_sdk import Target
from singer_sdk import typing as th

from target_amazon_dsp_conversions.amazon_fields import SERVER_TO_SERVER, SOURCES
from target_amazon_dsp_conversions.apis.base import Endpoint
from target_amazon_dsp_conversions.converter import ConversionSettings, Converter, Refused, Stream
from target_amazon_dsp_conversions.errors import SettingError, UserError
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
# The Events API also takes an advertiser's entity ID (Amazon's 2026 samples send one).
_ENTITY_ID = re.compile(r"^ENTITY[0-9A-Z]{1,64}$", re.IGNORECASE)
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


def _integer(low: int, high: int | None = None) -> Kind:
    def read(name: str, value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise SettingError(name, f"must be a whole number, got {value!r}") from None
        if isinstance(value, bool) or (number != value and str(number) != str(value).strip()):
            raise SettingError(name, f"must be a whole number, got {value!r}")
        if high is None and number < low:
            raise SettingError(name, f"must be {low} or more, got {number}")
        if high is not None and not low <= number <= high:
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
    if text is not None and not _ENTITY_ID.match(text):  # an entity ID: see _complete
        check_advertiser_id(name, text)
    return text


def _profile_id(name: str, value: Any) -> str | None:
    text = _text(name, value)
    if text is not None and not _NUMERIC_ID.match(text):
        raise SettingError(name, f"must be a numeric profile ID, got {text!r}")
    return text


def _object(name: str, value: Any) -> Mapping[str, Any]:
    return _structure(name, value, Mapping, "object")


def _array(name: str, value: Any) -> list[Any]:
    return _structure(name, value, list, "array")


def _structure(name: str, value: Any, kind: type, word: str) -> Any:
    """A JSON object or array, or its JSON text (from the environment, or a setting a Meltano
    project has not declared)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SettingError(name, f"must be a JSON {word}") from None
    if not isinstance(value, kind):
        raise SettingError(name, f"must be an {word}, got {type(value).__name__}")
    return value


def _number(name: str, value: Any) -> float | int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(name, f"must be a number, got {value!r}") from None
    if isinstance(value, bool):
        raise SettingError(name, f"must be a number, got {value!r}")
    return int(number) if number.is_integer() else number


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SettingError(name, f"must be text, got {type(value).__name__}")
    return value


def _reader_for(schema: Mapping[str, Any]) -> Reader:
    """How a value of a setting declared as JSON schema is read (the SDK's own settings)."""
    # Enum members (the SDK's load methods) as the plain text the JSON schema compares.
    options = tuple(
        str(getattr(option, "value", option))
        for option in schema.get("enum") or ()
        if option is not None
    )
    if options:
        return _choice(options).read
    declared = schema.get("type")
    types = {declared} if isinstance(declared, str) else set(declared or ())
    readers: tuple[tuple[str, Reader], ...] = (
        ("boolean", _boolean),
        ("integer", _integer(0).read),
        ("number", _number),
        ("object", lambda name, value: dict(_object(name, value))),
        ("array", _array),
        ("string", _string),
    )
    return next((read for kind, read in readers if kind in types), _constant)


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
    if path is None:
        return ""  # as "": the field is looked up in no column
    if not isinstance(path, str):
        raise SettingError(name, 'must be a record property path (a string), or "" for none')
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
    closest = closest_name(key, CONVERSION_FIELDS)
    if closest is not None:
        return f"unknown conversion field {key!r}; did you mean {closest!r}?"
    return f"unknown conversion field {key!r}; known fields: {', '.join(CONVERSION_FIELDS)}"


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` most likely misspells: the same but for case, `_` and `-`
    (`dryrun`, `DRY_RUN`, `countrycode`), else the closest by spelling; None if none is close."""

    def squash(text: str) -> str:
        return text.replace("_", "").replace("-", "").lower()

    for candidate in known:
        if squash(candidate) == squash(name):
            return candidate
    by_lower = {candidate.lower(): candidate for candidate in known}
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[matches[0]] if matches else None


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
        default=64,
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
        "Delivery journal: events Amazon acknowledged that no written STATE covers yet, so "
        "a rerun after a crash does not send them again.",
        default="delivery-journal.jsonl",
    )
    api_url: str = setting(URL, "Overrides the API host of the region (sandbox, proxies, tests).")
    auth_url: str = setting(URL, "Overrides the LwA token endpoint of the region (tests).")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Check every setting; raise a UserError naming the first bad one (`check_config`)."""
        return check_config(config).settings

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


# --- the check at start-up --------------------------------------------------------------------


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


class CheckedConfig(NamedTuple):
    """What `check_config` found."""

    settings: Settings
    # The config with each value read as its kind: what the Singer SDK checks against the JSON
    # schema and uses itself (`batch_size_rows`, `stream_maps`, ...).
    config: dict[str, Any]


def check_config(config: Mapping[str, Any]) -> CheckedConfig:
    """Check the config at start-up; raise a UserError naming the first bad setting.

    Unknown names stop the run (`_`-prefixed ones are left alone, as Meltano's extras and
    comments are). Every value is read as its kind, text included: `"true"`, `"8"`, JSON text
    for objects and arrays, enums in any case, a numeric advertiser ID as a number. Empty text
    counts as not set. `defaults` are checked by the rules records get.
    """
    for name in config:
        if name not in _KNOWN and not name.startswith("_"):
            raise UnknownSettingError(name)
    typed: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for declared in fields(Settings):
        name = declared.name
        value = _read(declared.metadata["setting"].kind.read, name, config.get(name))
        if name in config:
            typed[name] = value
        values[name] = _default(declared) if value is None else value
    for name, read in SDK_SETTINGS.items():
        if name in config:
            typed[name] = _read(read, name, config[name])
    if typed.get("flattening_enabled") and typed.get("flattening_max_depth") is None:
        raise SettingError("flattening_max_depth", "is required when flattening_enabled is true")
    typed.update({name: value for name, value in config.items() if name.startswith("_")})
    settings = _complete(values)
    _check_defaults(settings)
    return CheckedConfig(settings, typed)


def _read(read: Reader, name: str, raw: Any) -> Any:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, Enum):  # the SDK's defaults, once it has filled them in
        raw = raw.value
    return read(name, raw)


def _complete(values: dict[str, Any]) -> Settings:
    """Checks across settings, and the defaults that depend on other settings or the machine."""
    if not values["dry_run"]:
        for name in ("client_id", "client_secret", "refresh_token"):
            if not values[name]:
                raise SettingError(
                    name, "is required (or set dry_run: true to run without credentials)"
                )
    advertiser = values["advertiser_id"]
    if advertiser is not None and _ENTITY_ID.match(advertiser) and values["api"] != "events":
        check_advertiser_id("advertiser_id", advertiser)  # the DSP API takes numeric IDs only
    if values["api"] == "events" and values["source"] != SERVER_TO_SERVER:
        raise SettingError(
            "source", f"the Events API takes {SERVER_TO_SERVER} events only (api: events)"
        )
    region = values["region"]
    values["api_url"] = values["api_url"] or API_HOSTS[region]
    values["auth_url"] = values["auth_url"] or TOKEN_URLS[region]
    if values["worker_processes"] is None:
        values["worker_processes"] = default_worker_processes()
    return Settings(**values)


# What a record needs besides the defaults to become an event, for checking the defaults.
_PROBE_STREAM = Stream("defaults", None, ())
_PROBE_FIELDS = {
    "countryCode": "US",
    "conversionType": "OTHER",
    "email": "probe@example.com",
    "advertiserId": "1",
    "amazonUserData": "GRANTED",  # consent, for EU events
}


def _check_defaults(settings: Settings) -> None:
    """Each constant of `defaults`, checked as it would be in every record that lacks the field:
    a default that gets every such record rejected stops the run at start-up instead. A record
    made of the defaults (and valid values for the fields they lack) goes through the records'
    own conversion; a problem in a field the defaults set names that default."""
    defaults = {name: value for name, value in settings.defaults.items() if value is not None}
    if not defaults:
        return
    if "dedupeId" in defaults:
        raise SettingError(
            "defaults.dedupeId",
            "a constant gives every record the same dedupe ID, and Amazon keeps only the first",
        )
    now = datetime.now(timezone.utc)
    probe = {"eventTime": now.isoformat(), **_PROBE_FIELDS, **defaults}
    converter = Converter(replace(settings.conversion(), mapping={}, defaults=probe))
    result = converter.convert(_PROBE_STREAM, {}, now)
    if type(result) is Refused:
        for problem in result.problems:
            if problem.field in defaults:
                raise SettingError(f"defaults.{problem.field}", problem.message)


# --- where settings come from ------------------------------------------------------------------

ENV_PREFIX = "TARGET_AMAZON_DSP_CONVERSIONS_"
# Variables with the prefix that are not settings: the SDK's log level, `login`'s consent page.
_NOT_SETTINGS = frozenset({"LOGLEVEL", "AUTHORIZE_URL"})


def load_config(sources: Sequence[str], *, environment: bool = False) -> dict[str, Any]:
    """The config as the user wrote it, unchecked (`check_config` checks it): the JSON files of
    `sources` merged in order (later files win), then the environment over them when `ENV` is
    among `sources` or `environment` is true. A file that cannot be used is one line."""
    config: dict[str, Any] = {}
    for source in sources:
        if source == "ENV":
            environment = True
        else:
            config.update(read_config_file(source))
    if environment:
        config.update(environment_config())
    return config


def read_config_file(path: str) -> dict[str, Any]:
    """A config file's settings; a UserError naming the file and what is wrong with it."""

    def problem(what: str) -> UserError:
        return UserError(f"config file '{path}' {what}")

    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise problem("does not exist") from None
    except IsADirectoryError:
        raise problem("is a directory, not a file") from None
    except PermissionError:
        raise problem("cannot be read: permission denied") from None
    except OSError as exc:
        raise problem(f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise problem("is not UTF-8 text; it must hold a JSON object of settings") from None
    if not text.strip():
        raise problem('is empty; it must hold a JSON object of settings, e.g. {"dry_run": true}')
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        if path.lower().endswith((".yml", ".yaml")) or text.lstrip()[0] not in "{[":
            raise problem("is not JSON; it must hold a JSON object of settings") from None
        hint = " (a trailing comma?)" if text[: exc.pos].rstrip().endswith(",") else ""
        raise problem(
            f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}{hint}"
        ) from None
    if not isinstance(loaded, dict):
        raise problem(f"holds {_json_kind(loaded)}; it must hold a JSON object of settings")
    return loaded


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if value is None:
        return "null"
    return "true" if value is True else "false" if value is False else "a number"


def environment_config(dotenv_path: str | None = None) -> dict[str, str]:
    """Settings set as environment variables (`TARGET_AMAZON_DSP_CONVERSIONS_` + the name in
    capitals) or in a .env file (by default the first found from the working directory up;
    the environment wins), as text: `check_config` reads each as its kind. Any other variable
    with the prefix is an unknown setting, but for the SDK's `..._LOGLEVEL`, `login`'s
    `..._AUTHORIZE_URL` and names starting with `_` (Meltano's extras)."""
    path = find_dotenv(usecwd=True) if dotenv_path is None else dotenv_path
    found = {k: v for k, v in dotenv_values(path).items() if v is not None} if path else {}
    found.update(os.environ)
    names = {ENV_PREFIX + name.upper(): name for name in KNOWN_SETTINGS}
    config: dict[str, str] = {}
    for variable, value in found.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        name = names.get(variable)
        rest = variable[len(ENV_PREFIX) :]
        if name is not None:
            config[name] = value
        elif rest and not rest.startswith("_") and rest not in _NOT_SETTINGS:
            raise UnknownSettingError(rest.lower(), f" (environment variable {variable})")
    return config


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


def _sdk_settings() -> dict[str, Reader]:
    """The Singer SDK's own settings, as the SDK adds them to a target's schema after ours
    (`--about` lists both): `Target.append_builtin_config` for the SDK's default target
    capabilities, which are this target's (`tests/test_settings_check.py` compares them with
    `--about`)."""
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    Target.append_builtin_config(schema)
    return {name: _reader_for(about) for name, about in schema["properties"].items()}


SDK_SETTINGS = _sdk_settings()
KNOWN_SETTINGS: tuple[str, ...] = (*(declared.name for declared in fields(Settings)), *SDK_SETTINGS)
_KNOWN = frozenset(KNOWN_SETTINGS)
