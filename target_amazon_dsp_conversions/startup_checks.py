"""The check at start-up: the config as the user wrote it becomes the run's `Settings`, once.

`check_config` is the one check: every name known (ours and the Singer SDK's), every value read
as its kind (text included: environment variables, settings a Meltano project has not
declared), what the selected API needs of the settings, and `defaults` checked as records are
(through the run's own `Converter`, built here once and handed on). Its first problem is one
line naming the setting. The one settings module that uses the record pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime, timezone
from enum import Enum
from typing import Any, NamedTuple

from target_amazon_dsp_conversions.apis import api_for
from target_amazon_dsp_conversions.converter import Converter
from target_amazon_dsp_conversions.endpoints import API_HOSTS, TOKEN_URLS
from target_amazon_dsp_conversions.errors import SettingError
from target_amazon_dsp_conversions.files import DEFAULT_FILE_NAMES, default_path
from target_amazon_dsp_conversions.mapping import CONVERSION_FIELDS
from target_amazon_dsp_conversions.setting_kinds import ENTITY_ID, Reader, check_advertiser_id
from target_amazon_dsp_conversions.settings import (
    KNOWN,
    SDK_SETTINGS,
    Settings,
    UnknownSettingError,
    default_of,
)


class CheckedConfig(NamedTuple):
    """What `check_config` found."""

    settings: Settings
    # The config with each value read as its kind: what the Singer SDK checks against the JSON
    # schema and uses itself (`batch_size_rows`, `stream_maps`, ...).
    config: dict[str, Any]
    converter: Converter  # the run's, which checked `defaults`


def check_config(config: Mapping[str, Any]) -> CheckedConfig:
    """Check the config at start-up; raise a UserError naming the first bad setting.

    Unknown names stop the run (`_`-prefixed ones are left alone, as Meltano's extras and
    comments are). Every value is read as its kind, text included: `"true"`, `"8"`, JSON text
    for objects and arrays, enums in any case, a numeric advertiser ID as a number. Empty text
    counts as not set. `defaults` are checked by the rules records get.
    """

    for name in config:
        if name not in KNOWN and not name.startswith("_"):
            raise UnknownSettingError(name)
    typed: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for declared in fields(Settings):
        name = declared.name
        value = _read(declared.metadata["setting"].kind.read, name, config.get(name))
        if name in config:
            typed[name] = value
        values[name] = default_of(declared) if value is None else value
    for name, read in SDK_SETTINGS.items():
        if name in config:
            typed[name] = _read(read, name, config[name])
    if typed.get("flattening_enabled") and typed.get("flattening_max_depth") is None:
        raise SettingError("flattening_max_depth", "is required when flattening_enabled is true")
    typed.update({name: value for name, value in config.items() if name.startswith("_")})
    settings = _complete(values)
    converter = Converter(settings.conversion())
    _check_defaults(settings, converter)
    return CheckedConfig(settings, typed, converter)


def checked_settings(config: Mapping[str, Any]) -> Settings:
    """The settings of `config` (`check_config`), for commands that convert no records."""
    return check_config(config).settings


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
    region = values["region"]
    values["api_url"] = values["api_url"] or API_HOSTS[region]
    values["auth_url"] = values["auth_url"] or TOKEN_URLS[region]
    if values["worker_processes"] is None:
        values["worker_processes"] = default_worker_processes()
    for name, file_name in DEFAULT_FILE_NAMES.items():
        values[name] = values[name] or default_path(file_name)
    settings = Settings(**values)
    api = api_for(settings.api, region=region)
    advertiser = settings.advertiser_id
    if advertiser is not None and ENTITY_ID.match(advertiser) and not api.rules.entity_account_ids:
        check_advertiser_id("advertiser_id", advertiser)  # this API takes numeric IDs only
    api.check_settings(settings)
    return settings


# What a record needs besides the defaults to become an event, for checking the defaults.
_PROBE_FIELDS = {
    "countryCode": "US",
    "conversionType": "OTHER",
    "email": "probe@example.com",
    "advertiserId": "1",
    "amazonUserData": "GRANTED",  # consent, for EU events
}


def _check_defaults(settings: Settings, converter: Converter) -> None:
    """Each constant of `defaults`, checked as it would be in every record that lacks the field:
    a default that gets every such record rejected stops the run at start-up instead. A record
    made of the defaults (and valid values for the fields they lack) goes through the records'
    own conversion (`converter`, the run's); a problem in a field the defaults set names that
    default."""
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
    # The conversion fields as a record without columns would get them, in the same order.
    fields = {name: probe[name] for name in CONVERSION_FIELDS if probe.get(name) is not None}
    for problem in converter.refusal(fields, now):
        if problem.field in defaults:
            raise SettingError(f"defaults.{problem.field}", problem.message)


def default_worker_processes() -> int:
    """One per CPU, up to 4; none on a single CPU, where they would only add overhead."""
    cpus = os.cpu_count() or 1
    return min(cpus, 4) if cpus > 1 else 0
