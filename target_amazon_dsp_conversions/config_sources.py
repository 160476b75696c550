"""Where settings come from: config files (`--config`, repeatable) and the environment
(`TARGET_AMAZON_DSP_CONVERSIONS_*` variables and a `.env` file), as the user wrote them.
`startup_checks.check_config` checks what they give."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values, find_dotenv
from singer_sdk import Target

from target_amazon_dsp_conversions.errors import UserError, json_error_reason
from target_amazon_dsp_conversions.mapping import CONVERSION_FIELDS
from target_amazon_dsp_conversions.setting_kinds import DEFAULTS, MAPPING, closest_name
from target_amazon_dsp_conversions.settings import (
    CONFIG_SCHEMA,
    KNOWN_SETTINGS,
    Settings,
    UnknownSettingError,
)

ENV_PREFIX = "TARGET_AMAZON_DSP_CONVERSIONS_"
# Set by Meltano for every plugin it runs (and so for the companion commands it invokes).
MELTANO_PROJECT_ROOT = "MELTANO_PROJECT_ROOT"
# Set by Meltano for a loader and its commands (`meltano invoke <loader>:login`): its name.
MELTANO_LOADER_NAME = "MELTANO_LOADER_NAME"
# Variables with the prefix that are not settings: the SDK's log level, `login`'s consent page.
_NOT_SETTINGS = frozenset({"LOGLEVEL", "AUTHORIZE_URL"})


def load_config(sources: Sequence[str], *, environment: bool = False) -> dict[str, Any]:
    """The config as the user wrote it, unchecked (`check_config` checks it): the JSON files of
    `sources` merged in order (later files win), then the environment over them when `ENV` is
    among `sources` or `environment` is true. A file that cannot be used is one line, and so is
    a variable with our prefix that is no setting (`check_environment`), read or not."""
    config: dict[str, Any] = {}
    for source in sources:
        if source == "ENV":
            environment = True
        else:
            config.update(read_config_file(source))
    if environment:
        config.update(environment_config())
    else:  # the environment is not read, but a misspelled variable is still refused
        check_environment(config)
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
        where = f"line {exc.lineno}, column {exc.colno}"
        raise problem(f"is not valid JSON: {json_error_reason(exc)} at {where}{hint}") from None
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


def environment_config(dotenv_path: str | None = None) -> dict[str, Any]:
    """Settings set as environment variables (`TARGET_AMAZON_DSP_CONVERSIONS_` + the name in
    capitals) or in a .env file (by default the first found from the working directory up;
    the environment wins), as text (`check_config` reads each as its kind), but for object
    settings as Meltano exports them (`_as_meltano_means`). A variable that is no setting is
    refused (`check_environment`)."""
    variables = _prefixed_variables(dotenv_path)
    config: dict[str, Any] = {
        _SETTING_OF_VARIABLE[rest]: value
        for rest, value in variables.items()
        if rest in _SETTING_OF_VARIABLE
    }
    under_meltano = bool(os.environ.get(MELTANO_PROJECT_ROOT))
    for name in _OBJECT_SETTINGS:
        if isinstance(config.get(name), str):
            config[name] = _as_meltano_means(name, config[name], variables, under_meltano)
    check_environment(config, variables)
    return config


def check_environment(
    config: Mapping[str, Any], variables: Mapping[str, str] | None = None
) -> None:
    """Refuse a `TARGET_AMAZON_DSP_CONVERSIONS_*` variable that is neither a setting nor a key
    Meltano derives from one, however the target was started: Meltano passes the settings in a
    config file and leaves a variable it does not know in the environment, where a typo such
    as `..._DRYRUN=true` would otherwise be ignored and a dry run become a real upload.

    Meltano exports each key of an object setting as its own variable (`{"eventTime": ...}` of
    `mapping` as `..._MAPPING_EVENTTIME`); those of the objects in `config` are known. Names
    starting with `_` are Meltano's extras (`...__DIALECT`); `..._LOGLEVEL` is the SDK's and
    `..._AUTHORIZE_URL` is `login`'s."""
    if variables is None:
        variables = _prefixed_variables(None)
    derived = _derived_variables(config)
    # A loader of another name (`inherit_from`) gets each variable under its own name too.
    loader = os.environ.get(MELTANO_LOADER_NAME)
    own = env_name(loader) + "_" if loader else ENV_PREFIX
    for rest in variables:
        prefix = ENV_PREFIX
        if own != ENV_PREFIX and (ENV_PREFIX + rest).startswith(own):
            prefix, rest = own, (ENV_PREFIX + rest)[len(own) :]
        if rest in _SETTING_OF_VARIABLE or rest in derived or rest in _NOT_SETTINGS:
            continue
        if rest.startswith("_"):
            continue
        raise _unknown_variable(prefix, rest, config)


def _prefixed_variables(dotenv_path: str | None) -> dict[str, str]:
    """The environment's variables with our prefix (.env's under them), without the prefix."""
    path = find_dotenv(usecwd=True) if dotenv_path is None else dotenv_path
    found = {k: v for k, v in dotenv_values(path).items() if v is not None} if path else {}
    found.update(os.environ)
    return {
        variable[len(ENV_PREFIX) :]: value
        for variable, value in found.items()
        if variable.startswith(ENV_PREFIX) and len(variable) > len(ENV_PREFIX)
    }


def env_name(*parts: str) -> str:
    """A variable name as Meltano makes it (`to_env_var`): each part with every character but
    letters and digits as `_`, in capitals, joined by `_`."""
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", part).upper() for part in parts if part)


def _as_meltano_means(
    name: str, text: str, variables: Mapping[str, str], under_meltano: bool
) -> Any:
    """An object setting's variable as Meltano writes it: JSON whose nested objects Meltano
    flattened into dotted keys (`{"purchase.1234567890": "cd-1"}` for
    `{"purchase": {"1234567890": "cd-1"}}`), each leaf also exported as its own variable, which
    Meltano reads back onto the key it names. Text that is no JSON object is left as it is, for
    `check_config` to say so."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if not isinstance(value, dict):
        return text
    if under_meltano:
        value = _unflattened(value)
    for path in _leaf_paths(value):
        override = variables.get(env_name(name, *path))
        if override is not None and isinstance(_get(value, path), str):
            _set(value, path, override)
    return value


def _unflattened(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, item in flat.items():
        *parents, last = str(key).split(".")
        target = nested
        for part in parents:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):  # "a" and "a.b" both: keep the key as it is
                target, last = nested, str(key)
                break
            target = child
        target[last] = item
    return nested


def _leaf_paths(value: Mapping[str, Any], parents: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, item in value.items():
        path = (*parents, str(key))
        if isinstance(item, Mapping) and item:
            paths.extend(_leaf_paths(item, path))
        else:
            paths.append(path)
    return paths


def _get(value: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _set(value: dict[str, Any], path: tuple[str, ...], item: Any) -> None:
    for part in path[:-1]:
        value = value[part]
    value[path[-1]] = item


def _derived_variables(config: Mapping[str, Any]) -> set[str]:
    """The variables Meltano exports for the keys of the object settings in `config` (a value
    still JSON text is read for it), nested keys both as they are and as Meltano flattens them."""
    derived: set[str] = set()
    for name in _OBJECT_SETTINGS:
        value = config.get(name)
        if isinstance(value, str):
            try:
                value = _unflattened(json.loads(value))
            except (ValueError, AttributeError):
                value = None
        if isinstance(value, Mapping):
            for path in _leaf_paths(value):
                derived.update({env_name(name, *path), env_name(name, ".".join(path))})
    return derived


def _unknown_variable(prefix: str, rest: str, config: Mapping[str, Any]) -> UserError:
    variable = prefix + rest
    owner = next((n for n in _OBJECT_SETTINGS if rest.startswith(env_name(n) + "_")), None)
    if owner is None:
        where = f"environment variable {variable}"
        if os.environ.get(MELTANO_PROJECT_ROOT):
            # Meltano passes a setting it does not know (`meltano config set`) the same way.
            where += f", or {rest.lower()!r} in the loader's config in meltano.yml"
        return UnknownSettingError(rest.lower(), f" ({where})")
    if owner in _PER_CONVERSION_FIELD:  # its keys are conversion fields
        fields = {env_name(owner, field): field for field in CONVERSION_FIELDS}
        if rest not in fields:
            closest = closest_name(rest, fields)
            hint = (
                f"did you mean {prefix}{closest} ({owner}.{fields[closest]})?"
                if closest is not None
                else f"the keys of {owner} are conversion fields"
            )
            return UserError(
                f"environment variable {variable} names no conversion field of {owner}; {hint}"
            )
    if owner not in config:
        return UserError(
            f"environment variable {variable} sets a key of {owner}, which is not set; set "
            f"{prefix}{env_name(owner)} (a JSON object) instead"
        )
    return UserError(
        f"environment variable {variable} sets a key {owner} does not have (Meltano reads such "
        f"a variable only onto a key the object has); add the key to {owner} instead"
    )


def _object_settings() -> tuple[str, ...]:
    """The settings whose values are JSON objects: ours and the Singer SDK's."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(CONFIG_SCHEMA["properties"])}
    Target.append_builtin_config(schema)
    objects = []
    for name, about in schema["properties"].items():
        declared = about.get("type")
        types = {declared} if isinstance(declared, str) else set(declared or ())
        if "object" in types:
            objects.append(name)
    return tuple(objects)


# Settings by the variable that sets them, without the prefix: `DRY_RUN` -> dry_run.
_SETTING_OF_VARIABLE = {env_name(name): name for name in KNOWN_SETTINGS}
_OBJECT_SETTINGS = _object_settings()
# Object settings whose keys are conversion fields.
_PER_CONVERSION_FIELD = tuple(
    declared.name
    for declared in fields(Settings)
    if any(declared.metadata["setting"].kind is kind for kind in (MAPPING, DEFAULTS))
)
