"""Where settings come from: config files (`--config`, repeatable) and the environment
(`TARGET_AMAZON_DSP_CONVERSIONS_*` variables and a `.env` file), as the user wrote them.
`startup_checks.check_config` checks what they give."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dotenv import dotenv_values, find_dotenv

from target_amazon_dsp_conversions.errors import UserError
from target_amazon_dsp_conversions.settings import KNOWN_SETTINGS, UnknownSettingError

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
