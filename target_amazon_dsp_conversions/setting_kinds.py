"""Kinds of settings: how a configured value is read and checked, and how the JSON schema
describes it. A value can come as its JSON type or as text (environment variables, settings a
Meltano project has not declared); either is read as the kind says, or a SettingError names
the setting."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from singer_sdk import typing as th

from target_amazon_dsp_conversions.conversion import canonical_name
from target_amazon_dsp_conversions.errors import SettingError
from target_amazon_dsp_conversions.mapping import CONVERSION_FIELDS

# The Events API also takes an advertiser's entity ID (Amazon's 2026 samples send one).
ENTITY_ID = re.compile(r"^ENTITY[0-9A-Z]{1,64}$", re.IGNORECASE)
_NUMERIC_ID = re.compile(r"^\d{1,40}$")

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


def choice(options: tuple[str, ...]) -> Kind:
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


def integer(low: int, high: int | None = None) -> Kind:
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
        raise SettingError(name, f"must be more than 0 and at most 3600 seconds, got {value!r}")
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
    if text is not None and not ENTITY_ID.match(text):  # an entity ID: the API decides
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


def _stream_names(name: str, value: Any) -> list[str]:
    """Stream names: a JSON array of them, or (from the environment) its JSON text or names
    separated by commas."""
    if isinstance(value, str) and not value.lstrip().startswith("["):
        value = value.split(",")
    names = _array(name, value)
    for stream in names:
        if not isinstance(stream, str) or not stream.strip():
            raise SettingError(name, f"must list stream names, got {stream!r}")
    return list(dict.fromkeys(stream.strip() for stream in names))


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


def reader_for(schema: Mapping[str, Any]) -> Reader:
    """How a value of a setting declared as JSON schema is read (the SDK's own settings)."""
    # Enum members (the SDK's load methods) as the plain text the JSON schema compares.
    options = tuple(
        str(getattr(option, "value", option))
        for option in schema.get("enum") or ()
        if option is not None
    )
    if options:
        return choice(options).read
    declared = schema.get("type")
    types = {declared} if isinstance(declared, str) else set(declared or ())
    readers: tuple[tuple[str, Reader], ...] = (
        ("boolean", _boolean),
        ("integer", integer(0).read),
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
    keys_by_name: dict[str, str] = {}  # canonical form -> the key that has it
    for key, definition in _object(name, value).items():
        setting = f"{name}.{key}"
        # Keys are matched in their canonical form: `Purchase` and `order` are one conversion.
        same = keys_by_name.setdefault(canonical_name(key), key)
        if same != key:
            raise SettingError(
                setting,
                f"names the same conversion as {same!r} (both are {canonical_name(key)!r}); "
                "keep one of the two keys",
            )
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
    # A column name the target reads for a field (`value`, `quantity`): keys are fields.
    column = closest_name(key, _FIELD_OF_COLUMN)
    if column is not None:
        field = _FIELD_OF_COLUMN[column]
        return (
            f"unknown conversion field {key!r}; did you mean {field!r}? ({column!r} is a "
            f"column the target reads for {field})"
        )
    return f"unknown conversion field {key!r}; known fields: {', '.join(CONVERSION_FIELDS)}"


# Each column name the target looks for, and the conversion field it reads it for.
_FIELD_OF_COLUMN = {name: field for field, names in CONVERSION_FIELDS.items() for name in names}


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


APPEND_ONLY = "append-only"


def _append_only(name: str, value: Any) -> str | None:
    text = _text(name, value)
    if text is not None and text.lower() != APPEND_ONLY:
        raise SettingError(
            name,
            f"must be {APPEND_ONLY}, got {text!r}: a conversions API only appends events; it "
            "cannot update or delete the ones it was sent",
        )
    return text and APPEND_ONLY


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
STREAM_NAMES = Kind(th.ArrayType(th.StringType), _stream_names)
# The SDK's `load_method`, narrowed to the one a conversions API can do.
LOAD_METHOD = Kind(th.StringType(), _append_only, (APPEND_ONLY,))
