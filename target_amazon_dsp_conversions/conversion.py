"""Conversion fields -> a checked conversion event, the same for both APIs.

Values are converted to the APIs' types here (UTC timestamps, two-decimal numbers, ISO codes,
Amazon's conversion-type enum, hashed match keys) and every local check that does not depend on
the API's payload shape happens here, so that a bad record is rejected with a reason and never sent.
"""

from __future__ import annotations

import json
import math
import operator
import re
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from target_amazon_dsp_conversions import identity
from target_amazon_dsp_conversions.amazon_fields import (
    CONVERSION_TYPE_ALIASES,
    EVENTS_CONVERSION_TYPES,
    MAX_DEFINITION_NAME_LENGTH,
    MAX_FUTURE_SKEW,
    MAX_VALUE,
    SOURCES,
    ApiRules,
)
from target_amazon_dsp_conversions.errors import Problem, Rejected, reject
from target_amazon_dsp_conversions.mapping import MATCH_KEY_FIELDS

_CENT = Decimal("0.01")
# Python 3.11 reads a trailing Z itself; 3.10 would raise and take the careful path anyway.
_UTC_SUFFIXES = ("+00:00", "Z") if sys.version_info >= (3, 11) else ("+00:00",)
_fromisoformat = datetime.fromisoformat
_prepare = identity.prepare
# A per-value cache of a pure function of one input value; bounded, cleared when full.
_CACHE_LIMIT = 65_536
_conversion_types: dict[str, str | None] = {}
_MAX_VALUE = Decimal(str(MAX_VALUE))
# json.dumps with options builds a new encoder per call; this one is built once (same output).
_seed_json = json.JSONEncoder(sort_keys=True, default=str).encode
_json_text = json.encoder.encode_basestring_ascii
_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "limited_data_use", "ldu"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", ""})
_ZERO = Decimal("0.00")
# Epoch seconds or milliseconds written as text (CSV taps): 9+ digits, so that an ISO basic
# date such as 20261122 stays a date.
_EPOCH_TEXT = re.compile(r"[+-]?[0-9]{9,}(?:\.[0-9]*)?")
# An Amazon Ads account's entity ID (`ENTITY` + letters and digits), which only the Events API
# takes as `Amazon-Ads-AccountId`.
_ENTITY_ID = re.compile(r"ENTITY[0-9A-Z]{1,64}")
# Longer own dedupe IDs are replaced by a hash of them (a cut would make long IDs collide).
MAX_DEDUPE_ID_LENGTH = 256
USER_IDENTIFIER = "userIdentifier"
_NO_DROPS: tuple[str, ...] = ()

# The event name of a record that names no event (no eventName, conversionName or mapped name):
# one per Amazon conversion type however the record spells it (`purchase`, `Purchase`, `order`,
# `OFF_AMAZON_PURCHASES`), so that one conversion is one definition in both APIs (the Events
# API keys its definitions by name). The plain words users and the seeds write.
EVENT_NAMES = {
    "OFF_AMAZON_PURCHASES": "purchase",
    "ADD_TO_SHOPPING_CART": "add_to_cart",
    "APPLICATION": "application",
    "CHECKOUT": "checkout",
    "CONTACT": "contact",
    "LEAD": "lead",
    "MOBILE_APP_FIRST_START": "first_open",
    "OTHER": "other",
    "PAGE_VIEW": "page_view",
    "SEARCH": "search",
    "SIGN_UP": "sign_up",
    "SUBSCRIBE": "subscribe",
}


@dataclass(slots=True)
class Conversion:
    """One conversion event, checked and converted, before it takes an API's payload shape."""

    # build_conversion passes these by position, in this order.
    event_time: str
    conversion_type: str | None
    name: str
    country_code: str
    source: str
    advertiser_id: str
    dedupe_id: str
    match_keys: list[tuple[str, str]]
    definition_id: str | None = None
    value: Decimal | None = None
    currency: str | None = None
    units_sold: int | None = None
    limited_data_use: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # rules.extra_fields the record has
    # Match-key types (and `userIdentifier`) the record had but that cannot be used, while
    # other keys can: left out of the event and counted in the run report.
    dropped_keys: tuple[str, ...] = ()
    # Fixed texts (never record data) that the main process logs once per run; the API's
    # encoder adds one when it leaves something out of the event (see apis/events.py).
    notices: tuple[str, ...] = ()


def build_conversion(
    fields: Mapping[str, Any],
    *,
    rules: ApiRules,
    default_source: str,
    default_advertiser_id: str | None,
    user_identifier_type: str | None,
    dedupe_seed: str,
    now: datetime,
) -> Conversion:
    """Check and convert the mapped fields of one record; raise Rejected with every problem."""
    given = (fields, rules, default_source, default_advertiser_id, user_identifier_type)
    try:
        return _build(_first_problem_raises, given, dedupe_seed, now)
    except Rejected:
        # Once more, to report every problem at once rather than the first.
        problems: list[Problem] = []
        _build(_collecting(problems), given, dedupe_seed, now)
        raise Rejected(*problems) from None


# What build_conversion was given, but for the clock and the dedupe seed.
_Given = tuple[Mapping[str, Any], ApiRules, str, "str | None", "str | None"]


def _build(check: Check, given: _Given, dedupe_seed: str, now: datetime) -> Conversion:
    fields, rules, default_source, default_advertiser_id, user_identifier_type = given
    get = fields.get
    raw_type = get("conversionType")
    conversion_type = check(_conversion_type, raw_type, rules)
    country_code = check(_country_code, get("countryCode"), rules)
    # In this order, so that a rejected record lists its problems in field order.
    event_time = check(_event_time, get("eventTime"), rules, now)
    name = check(_name, get("name"), conversion_type, raw_type)
    source = check(_source, get("source"), default_source)
    advertiser_id = check(_advertiser_id, get("advertiserId"), default_advertiser_id, rules)
    keys = check(_match_keys, fields, rules, country_code, user_identifier_type)
    match_keys, dropped = keys or ([], _NO_DROPS)
    definition_id = get("conversionDefinitionId")
    # Positional: matching sixteen keywords would cost more than building the object.
    return Conversion(
        event_time,
        conversion_type,
        name,
        country_code,
        source,
        advertiser_id,
        dedupe_id(get("dedupeId"), dedupe_seed),
        match_keys,
        str(definition_id).strip() if definition_id is not None else None,
        check(_value, get("conversionValue"), conversion_type, rules),
        check(_currency, get("currency"), rules),
        check(_units_sold, get("unitsSold"), rules),
        check(_flag, get("limitedDataUse"), "limitedDataUse"),
        {k: fields[k] for k in rules.extra_fields if k in fields},
        dropped,
    )


@dataclass(slots=True)
class OptOut:
    """A person who opted out (a record of an `opt_out_streams` stream): every match key of
    theirs as Amazon takes it, and the advertiser whose data they are."""

    advertiser_id: str
    match_keys: list[tuple[str, str]]
    dropped_keys: tuple[str, ...] = ()


def build_opt_out(
    fields: Mapping[str, Any],
    *,
    rules: ApiRules,
    default_advertiser_id: str | None,
    user_identifier_type: str | None,
) -> OptOut:
    """The mapped fields of an opt-out record: its match keys normalized and hashed by the
    rules of a conversion's, all of them (up to the API's limit per person). Raises Rejected
    for a record without a usable key or advertiser; an event's own fields are not needed."""
    get = fields.get
    problems: list[Problem] = []
    check = _collecting(problems)
    # The country only helps to read a phone number without its leading +.
    raw_country = get("countryCode")
    country = None if raw_country is None else check(_country_code, raw_country, rules)
    problems.clear()
    advertiser_id = check(_advertiser_id, get("advertiserId"), default_advertiser_id, rules)
    keys = check(_match_keys, fields, rules, country, user_identifier_type)
    if problems:
        raise Rejected(*problems)
    match_keys, dropped = keys
    return OptOut(advertiser_id, match_keys, dropped)


def person_keys(match_keys: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """A person's match keys as the suppression list compares them: each hashed, also those
    Amazon takes raw (a MAID), so that no raw value is kept."""
    return tuple(
        [(key_type, value if _is_hash(value) else _hash(value)) for key_type, value in match_keys]
    )


_is_hash = identity.is_sha256_hex
_hash = identity.sha256_hex


Check = Callable[..., Any]  # check(convert, *args): convert(*args), or None after a problem


def _call(convert: Callable[..., Any], *args: Any) -> Any:
    return convert(*args)


# The first problem raises: `convert(*args)`, in C where Python has it (3.11+), as it runs for
# every field of every record.
_first_problem_raises: Check = getattr(operator, "call", _call)


def _collecting(problems: list[Problem]) -> Check:
    def check(convert: Callable[..., Any], *args: Any) -> Any:
        try:
            return convert(*args)
        except Rejected as rejected:
            problems.extend(rejected.problems)
            return None

    return check


def parse_time(raw: Any) -> datetime:
    """A timestamp in any common form -> aware UTC datetime; ValueError when it is not one."""
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, date):
        moment = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
        moment = _from_epoch(float(raw))
    elif isinstance(raw, str):
        text = raw.strip()
        if _EPOCH_TEXT.fullmatch(text):
            return _from_epoch(float(text))
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    else:
        raise ValueError(f"a {type(raw).__name__} is not a timestamp")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _from_epoch(seconds: float) -> datetime:
    """Epoch seconds, or milliseconds (common in event stores; no sane epoch second count is
    that big), as an aware UTC datetime."""
    if not math.isfinite(seconds):
        raise ValueError("not a finite number")
    if abs(seconds) > 1e11:  # noqa: PLR2004
        seconds /= 1000
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def format_time(moment: datetime) -> str:
    """UTC ISO 8601 with whole seconds and Z, the form Amazon's own tools send."""
    # isoformat is several times faster than strftime and always writes a 4-digit year.
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _event_time(raw: Any, rules: ApiRules, now: datetime) -> str:
    if type(raw) is str and raw.endswith(_UTC_SUFFIXES):
        # The common form (a tap's UTC ISO timestamp), in the window: no conversions.
        try:
            moment = _fromisoformat(raw)
        except ValueError:
            pass
        else:
            oldest, newest = _time_window(rules, now)
            if oldest <= moment <= newest:
                # YYYY-MM-DDTHH:MM:SS then a fraction or the offset: those 19 characters
                # are what format_time writes (formatting an aware time costs ten times more).
                if raw[10:11] == "T" and raw[19:20] in (".", ",", "+", "Z"):
                    return raw[:19] + "Z"
                return format_time(moment)
    return _checked_event_time(raw, rules, now)


_window: tuple[ApiRules, datetime, datetime, datetime] | None = None


def _time_window(rules: ApiRules, now: datetime) -> tuple[datetime, datetime]:
    """Oldest and newest accepted event times; the same `now` serves a whole block."""
    global _window  # a one-entry cache
    window = _window
    if window is None or window[0] is not rules or window[1] is not now:
        window = _window = (rules, now, now - rules.max_event_age, now + MAX_FUTURE_SKEW)
    return window[2], window[3]


def _checked_event_time(raw: Any, rules: ApiRules, now: datetime) -> str:
    if raw is None:
        raise reject("MISSING_FIELD", "eventTime is required", "eventTime")
    try:
        moment = parse_time(raw)
    except (ValueError, OverflowError, OSError):
        raise reject(
            "INVALID_TIMESTAMP", "eventTime is not an ISO 8601 timestamp", "eventTime"
        ) from None
    if moment < now - rules.max_event_age:
        days = rules.max_event_age.days
        raise reject(
            "EVENT_TOO_OLD",
            f"eventTime {format_time(moment)} is more than {days} days old "
            f"(the {rules.api} API accepts events up to {days} days old)",
            "eventTime",
        )
    if moment > now + MAX_FUTURE_SKEW:
        raise reject(
            "EVENT_IN_FUTURE", f"eventTime {format_time(moment)} is in the future", "eventTime"
        )
    return format_time(moment)


def normalize_conversion_type(raw: Any) -> str | None:
    """Amazon's enum for a conversion type given as the enum or as a plain word; None if unknown."""
    if not isinstance(raw, str):
        return None
    if raw in _conversion_types:
        return _conversion_types[raw]
    if len(_conversion_types) >= _CACHE_LIMIT:
        _conversion_types.clear()
    enum = _conversion_types[raw] = _normalize_conversion_type(raw)
    return enum


def _normalize_conversion_type(raw: str) -> str | None:
    word = raw.strip().replace("-", "_").replace(" ", "_")
    if word.upper() in EVENTS_CONVERSION_TYPES:
        return word.upper()
    return CONVERSION_TYPE_ALIASES.get(word.lower())


def _conversion_type(raw: Any, rules: ApiRules) -> str | None:
    if raw is None:
        return None
    enum = normalize_conversion_type(raw)
    if enum is None or enum not in rules.conversion_types:
        raise reject(
            "INVALID_CONVERSION_TYPE",
            f"conversionType {str(raw)[:64]!r} is not one of Amazon's conversion types "
            f"({', '.join(sorted(rules.conversion_types))}) or a known word for one",
            "conversionType",
        )
    return enum


def canonical_name(name: str) -> str:
    """The form names are matched in: a spelling of a conversion type (`Purchase`, `order`,
    `OFF_AMAZON_PURCHASES`) is that type's event name (`purchase`); any other name as it is."""
    text = name.strip()
    conversion_type = normalize_conversion_type(text)
    return EVENT_NAMES[conversion_type] if conversion_type is not None else text


def _name(raw: Any, conversion_type: str | None, raw_type: Any) -> str:
    """The record's own name as it is given, else its conversion type's event name."""
    if raw is None and conversion_type is not None:
        return EVENT_NAMES[conversion_type]
    # No type either, or one that is not Amazon's (rejected as such): nothing to name it by.
    name = raw if raw is not None else raw_type
    if name is None:
        raise reject("MISSING_FIELD", "name or conversionType is required", "name")
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise reject("INVALID_NAME", "name must be text", "name")
    text = str(name).strip()
    if len(text) > MAX_DEFINITION_NAME_LENGTH:
        raise reject("INVALID_NAME", "name is longer than 256 characters", "name")
    return text


def _decimal(raw: Any, field_name: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, Decimal, str)):
        raise reject("INVALID_NUMBER", f"{field_name} must be a number", field_name)
    try:
        number = Decimal(str(raw).strip()) if not isinstance(raw, Decimal) else raw
    except InvalidOperation:
        raise reject("INVALID_NUMBER", f"{field_name} must be a number", field_name) from None
    if not number.is_finite():
        raise reject("INVALID_NUMBER", f"{field_name} must be a finite number", field_name)
    return number


def _value(raw: Any, conversion_type: str | None, rules: ApiRules) -> Decimal | None:
    if raw is None:
        return None
    # A JSON number is read as a Decimal already (`converter._decoder`).
    number = raw if type(raw) is Decimal and raw.is_finite() else _decimal(raw, "conversionValue")
    if abs(number) > _MAX_VALUE:
        raise reject(
            "VALUE_OUT_OF_RANGE",
            "conversionValue is beyond Amazon's range of ±9,999,999,999,999.99",
            "conversionValue",
        )
    rounded = number.quantize(_CENT, ROUND_HALF_UP)
    if not rounded:
        return _ZERO  # -0.0 (or -0.001) is sent as 0
    # Both APIs: a purchase's value is money, 0 or more. Without a type (a DSP record whose
    # definition decides) it is left to Amazon.
    if rounded < 0 and conversion_type == "OFF_AMAZON_PURCHASES":
        raise reject(
            "VALUE_OUT_OF_RANGE",
            f"conversionValue of a purchase cannot be negative (the {rules.api} API takes 0 "
            "or more)",
            "conversionValue",
        )
    return rounded


def enum_value(
    raw: Any, allowed: Collection[str], code: str, field: str, message: Callable[[str], str]
) -> str:
    """`raw` as text in capitals, when it is one of `allowed`; else Rejected with `code` and
    the message for that text."""
    text = str(raw).strip().upper()
    if text not in allowed:
        raise reject(code, message(text), field)
    return text


def _currency(raw: Any, rules: ApiRules) -> str | None:
    if raw is None:
        return None
    if type(raw) is str and raw in rules.currencies:
        return raw  # the code itself, as most records give it
    return enum_value(
        raw,
        rules.currencies,
        "INVALID_CURRENCY",
        "currency",
        lambda code: f"currency {code[:16]!r} is not accepted by the {rules.api} API",
    )


def _units_sold(raw: Any, rules: ApiRules) -> int | None:
    if raw is None:
        return None
    number = _decimal(raw, "unitsSold")
    if number != number.to_integral_value() or not 1 <= number <= rules.max_units_sold:
        raise reject(
            "INVALID_UNITS_SOLD",
            f"unitsSold must be a whole number from 1 to {rules.max_units_sold}",
            "unitsSold",
        )
    return int(number)


def _required(value: Any, field_name: str, elsewhere: str) -> Any:
    """`value`, unless it is None: Rejected, saying where else it can be set."""
    if value is None:
        raise reject(
            "MISSING_FIELD",
            f"{field_name} is required (set it per record or {elsewhere})",
            field_name,
        )
    return value


def _country_code(raw: Any, rules: ApiRules) -> str:
    if type(raw) is str and raw in rules.country_codes:
        return raw  # the code itself, as most records give it
    text = str(_required(raw, "countryCode", "in defaults.countryCode")).strip()
    code = text.upper()
    if code in rules.country_codes:  # US, or an Events API pseudo-code such as OTHER_EEA
        return code
    text = text.replace("_", "-")
    # A locale such as en-US carries the country last.
    code = text.rsplit("-", 1)[-1] if "-" in text else text
    return enum_value(
        code,
        rules.country_codes,
        "INVALID_COUNTRY",
        "countryCode",
        lambda _: (
            f"countryCode {text[:16]!r} is not an ISO 3166-1 alpha-2 code"
            + (" (nor ZZ, OTHER or OTHER_EEA)" if "ZZ" in rules.country_codes else "")
        ),
    )


def _source(raw: Any, default: str) -> str:
    if raw is None:
        return default
    return enum_value(
        raw,
        SOURCES,
        "INVALID_SOURCE",
        "source",
        lambda text: f"source {text[:32]!r} must be SERVER_TO_SERVER or AMAZON_AD_TAG",
    )


def _advertiser_id(raw: Any, default: str | None, rules: ApiRules) -> str:
    value = raw if raw is not None else default
    if type(value) is str and value.isdigit() and value.isascii():
        return value  # digits only, as the setting and most records give it
    value = _required(value, "advertiserId", "with the advertiser_id setting")
    text = str(value).strip()
    if not isinstance(value, bool):
        if text.isdigit() and text.isascii():
            return text
        if rules.entity_account_ids and _ENTITY_ID.fullmatch(text):
            return text
    if rules.entity_account_ids:
        wanted = "a numeric DSP advertiser ID or an ENTITY... account ID"
    elif text.upper().startswith("ENTITY"):
        wanted = f"a numeric DSP advertiser ID, not an entity ID (the {rules.api} API)"
    else:
        wanted = "a numeric DSP advertiser ID"
    raise reject(
        "INVALID_ADVERTISER_ID", f"advertiserId {text[:32]!r} must be {wanted}", "advertiserId"
    )


def dedupe_id(raw: Any, seed: str) -> str:
    """The record's own dedupe ID (its mapped `dedupeId`), else the one derived from `seed`."""
    if raw is not None and not isinstance(raw, (bool, dict, list)):
        text = str(raw).strip()
        if len(text) > MAX_DEDUPE_ID_LENGTH:
            # Cut, two long IDs with the same start would be one ID; their hashes differ.
            return "tadc-" + identity.sha256_hex(text)[:40]
        if text:
            return text
    return "tadc-" + identity.sha256_hex(seed)[:40]


def dedupe_seed(stream: str, record: Mapping[str, Any], key_properties: Sequence[str]) -> str:
    """What the derived dedupe ID hashes: stream + key values, or stream + content.

    `_sdc_*` metadata changes from run to run, so it never takes part.
    """
    if len(key_properties) == 1:
        value = record.get(key_properties[0])
        if type(value) is str:  # the usual key: as below, without the list
            return f"{stream}\x1f[{_json_text(value)}]"
    if key_properties:
        content: Any = [record.get(k) for k in key_properties]
        if all(type(v) is str for v in content):
            # What the encoder below writes for a list of text, without building an encoder.
            return stream + "\x1f[" + ", ".join(map(_json_text, content)) + "]"
    else:
        content = {k: v for k, v in record.items() if not k.startswith("_sdc_")}
    return stream + "\x1f" + _seed_json(content)


def _flag(raw: Any, field_name: str) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise reject("INVALID_FLAG", f"{field_name} must be true or false", field_name)


# The match-key fields among a record's fields, per set of field names (a handful per run).
_match_key_plans: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}


def _match_key_fields(fields: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    names = tuple(fields)
    plan = _match_key_plans.get(names)
    if plan is None:
        if len(_match_key_plans) >= _CACHE_LIMIT:
            _match_key_plans.clear()
        plan = tuple((name, kind) for name, kind in MATCH_KEY_FIELDS.items() if name in fields)
        _match_key_plans[names] = plan
    return plan


def _match_keys(
    fields: Mapping[str, Any],
    rules: ApiRules,
    country: str | None,
    user_identifier_type: str | None,
) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """The match keys as sent, and the types (or `userIdentifier`) dropped beside them."""
    keys: dict[str, str] = {}
    dropped: list[str] = []
    api = rules.match_keys
    for field_name, key_type in _match_key_fields(fields):
        raw = fields[field_name]
        if raw is not None and key_type not in keys:
            prepared = _prepare(key_type, raw, api=api, country=country)
            if prepared is not None:
                keys[key_type] = prepared
            elif key_type in api.supported:
                dropped.append(key_type)  # a type the API does not take goes unmentioned
    identifier = fields.get(USER_IDENTIFIER)
    identifier_type = None
    if identifier is not None:
        # The setting only types what cannot be told by its shape (a bare 64-hex hash, say).
        identifier_type = _identifier_type(identifier) or user_identifier_type
        if identifier_type is None:
            if not keys:
                raise _no_match_key(fields, rules, country, "UNKNOWN_IDENTIFIER_TYPE")
            dropped.append(USER_IDENTIFIER)
        elif identifier_type not in keys:
            prepared = _prepare(identifier_type, identifier, api=api, country=country)
            if prepared is not None:
                keys[identifier_type] = prepared
            else:
                dropped.append(USER_IDENTIFIER)
    if not keys:
        why = ""
        if identifier_type is not None:
            reason = identity.drop_reason(identifier_type, identifier, api=api, country=country)
            why = f"read as {identifier_type}: {reason}"
        raise _no_match_key(fields, rules, country, "MISSING_MATCH_KEY", why)
    pairs = list(keys.items())
    if len(pairs) > rules.max_match_keys:
        dropped.extend(key_type for key_type, _ in pairs[rules.max_match_keys :])
        pairs = pairs[: rules.max_match_keys]
    return pairs, tuple(dropped) if dropped else _NO_DROPS


def _identifier_type(identifier: Any) -> str | None:
    """The match-key type of a bare userIdentifier by its shape, None when it cannot be told."""
    if isinstance(identifier, str):
        return identity.infer_type(identifier)
    if isinstance(identifier, int) and not isinstance(identifier, bool):
        return "PHONE"  # a number column of phone numbers
    return None


def _no_match_key(
    fields: Mapping[str, Any], rules: ApiRules, country: str | None, code: str, why: str = ""
) -> Rejected:
    """The reject of a record with no usable match key, naming each key it had and why that
    was dropped (identity.drop_reason: never the value); `why` the userIdentifier's reason."""
    dropped = [
        f"{name} dropped "
        f"({identity.drop_reason(key_type, fields[name], api=rules.match_keys, country=country)})"
        for name, key_type in _match_key_fields(fields)
    ]
    if code == "UNKNOWN_IDENTIFIER_TYPE":
        message = "the type of userIdentifier cannot be inferred; set user_identifier_type"
        if dropped:
            message += "; no other match key is usable: " + ", ".join(dropped)
        return reject(code, message, USER_IDENTIFIER)
    if why:
        dropped.append(f"{USER_IDENTIFIER} dropped ({why})")
    if not dropped:
        return reject(
            code,
            "no match key: the record has none of email, phone, firstName, lastName, address, "
            "city, state, postalCode, maid, rampId, userIdentifier, ... (or a mapping to one)",
            "matchKeys",
        )
    return reject(code, "no usable match key: " + ", ".join(dropped), "matchKeys")
