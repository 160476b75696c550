"""Match keys: normalization, hashing and type inference (SPEC §4).

Match keys leave the process SHA-256 hashed (lower-case hex), except the types
Amazon takes raw (``RAW_TYPES``). A value that already is 64 hex characters is
passed through lower-cased. This module never logs: it handles personal data.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import re
import unicodedata
from collections.abc import Callable

import phonenumbers

__all__ = [
    "MATCH_ID_MAX_LENGTH",
    "MATCH_KEY_TYPES",
    "RAW_TYPES",
    "SUPPORTED_TYPES",
    "infer_type",
    "is_sha256_hex",
    "key_type_for_field",
    "normalize",
    "prepare",
    "sha256_hex",
]

MATCH_KEY_TYPES: tuple[str, ...] = (
    "EMAIL",
    "PHONE",
    "FIRST_NAME",
    "LAST_NAME",
    "ADDRESS",
    "CITY",
    "STATE",
    "POSTAL",
    "MAID",
    "RAMP_ID",
    "MATCH_ID",
)

SUPPORTED_TYPES: dict[str, frozenset[str]] = {
    "dsp": frozenset(t for t in MATCH_KEY_TYPES if t != "MATCH_ID"),
    "events": frozenset(MATCH_KEY_TYPES),
}

RAW_TYPES: dict[str, frozenset[str]] = {
    "dsp": frozenset({"MAID"}),
    "events": frozenset({"MAID", "RAMP_ID", "MATCH_ID"}),
}

# Per API, the types that are normalized and hashed.
_HASHED_TYPES: dict[str, frozenset[str]] = {
    api: types - RAW_TYPES[api] for api, types in SUPPORTED_TYPES.items()
}

MATCH_ID_MAX_LENGTH = 100
_SHA256_HEX_LENGTH = 64
# Digits of a bare userIdentifier that looks like a phone number (local numbers up to E.164's 15).
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 7, 15

# --- precompiled patterns -------------------------------------------------------------

_EMAIL_DROP = re.compile(r"[^a-z0-9.@-]+")
# An address with nothing to drop: checking that is a third of the cost of the substitution.
_PLAIN_EMAIL = re.compile(r"[a-z0-9.-]+@[a-z0-9.-]+")
_ALNUM_DROP = re.compile(r"[^a-z0-9]+")
_POSTAL_DROP = re.compile(r"[\s-]+")
_ZIP_PLUS4_DASH = re.compile(r"[0-9]{5}-[0-9]{4}")
_ZIP_PLUS4_BARE = re.compile(r"[0-9]{9}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_MAID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PHONE_SHAPE = re.compile(r"\+?[0-9 .()\-]+")
_NON_DIGITS = re.compile(r"[^0-9]+")
# A North American number in one of its everyday spellings: optional +1 / 1, a 3-digit area code
# that cannot start with 0 or 1, then 3 + 4 digits. phonenumbers parses these to +1 and the same
# ten digits (tests/test_identity.py checks that against phonenumbers), at ~1/30 of the cost.
_NANP_SHAPE = re.compile(r"(\+?1[ .-]?)?(\(?[2-9][0-9]{2}\)?)[ .-]?([0-9]{3})[ .-]?([0-9]{4})")
# Regions whose numbers parse as above without a leading + (country code 1, national prefix 1).
_NANP_FAST_REGIONS = frozenset({"US", "CA"})
# Repeat customers bring the same phone again; phonenumbers costs ~30 us per parse.
_PHONE_CACHE_SIZE = 4096

# Letters NFKD does not decompose (lower-case forms; input is lower-cased first).
_TRANSLITERATION = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "đ": "d",
        "ł": "l",
        "þ": "th",
        "ð": "d",
        "\u0131": "i",  # dotless i
    }
)

# Common non-ISO spellings of a region accepted for phone parsing.
_REGION_ALIASES = {"UK": "GB"}
_PHONE_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
_E164 = phonenumbers.PhoneNumberFormat.E164


# --- normalizers ----------------------------------------------------------------------


def _norm_email(value: str, country: str | None) -> str:  # noqa: ARG001 - one signature
    email = value.strip().lower()
    if _PLAIN_EMAIL.fullmatch(email):
        return email
    email = _EMAIL_DROP.sub("", email)
    # Hashing "@@@" or "n/a" would only send Amazon a key that can never match anyone.
    local, at, domain = email.partition("@")
    return email if at and local and domain and "@" not in domain else ""


def _norm_text(value: str, country: str | None) -> str:  # noqa: ARG001 - one signature
    text = value.lower()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION)).lower()
    return _ALNUM_DROP.sub("", text)


def _norm_postal(value: str, country: str | None) -> str:
    text = value.strip()
    region = country.upper() if country else None
    if region is None:
        if _ZIP_PLUS4_DASH.fullmatch(text):
            return text[:5]
    elif region == "US" and (_ZIP_PLUS4_DASH.fullmatch(text) or _ZIP_PLUS4_BARE.fullmatch(text)):
        return text[:5]
    return _POSTAL_DROP.sub("", text.lower())


def _phone_region(country: str | None) -> str | None:
    if not country:
        return None
    known = _phone_regions.get(country, _UNKNOWN)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    region = country.strip().upper()
    region = _REGION_ALIASES.get(region, region)
    result = region if region in _PHONE_REGIONS else None
    if len(_phone_regions) < _PHONE_CACHE_SIZE:
        _phone_regions[country] = result
    return result


_UNKNOWN = object()
_phone_regions: dict[str, str | None] = {}


def _norm_phone(value: str, country: str | None) -> str:
    text = value.strip()
    if not text:
        return ""
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        region = None
    else:
        region = _phone_region(country)
        if region is None:
            # No country: only a number long enough to carry its country code is usable.
            digits = _NON_DIGITS.sub("", text)
            if not 11 <= len(digits) <= 15:  # noqa: PLR2004
                return ""
            text = "+" + digits
    fast = _NANP_SHAPE.fullmatch(text)
    # A leading + here always is +1 (the pattern allows no other); without it, the region decides.
    if fast is not None and (region is None or region in _NANP_FAST_REGIONS):
        _, area, exchange, line = fast.groups()
        return "1" + area.strip("()") + exchange + line
    return _parse_phone(text, region)


@functools.lru_cache(maxsize=_PHONE_CACHE_SIZE)
def _parse_phone(text: str, region: str | None) -> str:
    """E.164 digits by phonenumbers, "" when the number is not a possible one."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(number):
        return ""
    return phonenumbers.format_number(number, _E164).lstrip("+")


def _norm_raw(value: str, country: str | None) -> str:  # noqa: ARG001 - one signature
    return value.strip()


_NORMALIZERS: dict[str, Callable[[str, str | None], str]] = {
    "EMAIL": _norm_email,
    "PHONE": _norm_phone,
    "FIRST_NAME": _norm_text,
    "LAST_NAME": _norm_text,
    "ADDRESS": _norm_text,
    "CITY": _norm_text,
    "STATE": _norm_text,
    "POSTAL": _norm_postal,
    "MAID": _norm_raw,
    "RAMP_ID": _norm_raw,
    "MATCH_ID": _norm_raw,
}


# --- public API -----------------------------------------------------------------------


def normalize(key_type: str, value: str, country: str | None = None) -> str:
    """Normalized form per SPEC §4 ("" when nothing is left).

    ``country`` is the ISO alpha-2 code of the record, used for PHONE (region when the
    number has no leading ``+``) and POSTAL (US ZIP+4). Raw types (MAID, RAMP_ID,
    MATCH_ID) are only trimmed. Raises ``ValueError`` for an unknown key type.
    """
    try:
        normalizer = _NORMALIZERS[key_type]
    except KeyError:
        raise ValueError(f"unknown match key type: {key_type!r}") from None
    return normalizer(value, country)


def _builtin_sha256() -> Callable[[bytes], hashlib._Hash]:
    # CPython's own SHA-256 (the private module `_sha2` since 3.12, `_sha256` before) skips
    # the per-call set-up of OpenSSL's, which is most of the cost for inputs as short as match
    # keys (a fifth less per hash). Same function, same digests.
    for module in ("_sha2", "_sha256"):
        with contextlib.suppress(ImportError, AttributeError):
            return importlib.import_module(module).sha256
    return hashlib.sha256


_sha256 = _builtin_sha256()


def sha256_hex(text: str) -> str:
    """Lower-case hex SHA-256 of the UTF-8 encoding of ``text``."""
    return _sha256(text.encode()).hexdigest()


def is_sha256_hex(value: str) -> bool:
    """True when ``value`` is exactly 64 hex characters (any case)."""
    return len(value) == _SHA256_HEX_LENGTH and _HEX64.fullmatch(value) is not None


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or isinstance(
        value, (bool, dict, list, tuple, set, frozenset, bytes, bytearray)
    ):
        return None
    if isinstance(value, float) and value.is_integer():
        # A phone number read as a float (15551234567.0) keeps its digits.
        return str(int(value))
    return str(value)


def prepare(key_type: str, value: object, *, api: str, country: str | None = None) -> str | None:
    """The value as it leaves the process, or None when the key is to be dropped.

    Hashed types: an existing 64-hex hash passes through lower-cased; otherwise the value
    is normalized and SHA-256 hashed. Raw types (``RAW_TYPES[api]``) are trimmed and sent
    as they are (MATCH_ID longer than 100 characters gives None). None when the key is
    empty after normalization or the type is not supported by ``api``. Non-str values are
    converted with ``str()``; bool, None and containers give None. Raises ``ValueError``
    for an unknown ``api``.
    """
    hashed = _HASHED_TYPES.get(api)
    if hashed is None:
        raise ValueError(f"unknown api: {api!r}")
    if type(value) is str and key_type in hashed and len(value) < _SHA256_HEX_LENGTH:
        # The common case: text too short to be a hash already.
        normalized = _NORMALIZERS[key_type](value, country)
        return sha256_hex(normalized) if normalized else None
    if key_type not in SUPPORTED_TYPES[api]:
        return None
    text = _as_text(value)
    if text is None:
        return None
    if key_type in RAW_TYPES[api]:
        text = text.strip()
        if not text or (key_type == "MATCH_ID" and len(text) > MATCH_ID_MAX_LENGTH):
            return None
        return text
    stripped = text.strip()
    if len(stripped) == _SHA256_HEX_LENGTH and _HEX64.fullmatch(stripped):
        return stripped.lower()
    normalized = _NORMALIZERS[key_type](text, country)
    if not normalized:
        return None
    return sha256_hex(normalized)


def infer_type(value: str) -> str | None:
    """Match-key type of a bare ``userIdentifier``, or None when it cannot be told.

    EMAIL when it contains ``@``; MAID for a UUID/IDFA/ADID (8-4-4-4-12 hex); PHONE for an
    optional leading ``+`` then digits, spaces, dots, dashes and parentheses with 7-15
    digits. A 64-hex hash (email or phone?) and anything else give None.
    """
    text = value.strip()
    if not text:
        return None
    if "@" in text:
        return "EMAIL"
    if _MAID.fullmatch(text):
        return "MAID"
    if _PHONE_SHAPE.fullmatch(text):
        digits = sum(c.isdigit() for c in text)
        if _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS:
            return "PHONE"
    return None


_FIELD_TYPES: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "firstName": "FIRST_NAME",
    "first_name": "FIRST_NAME",
    "lastName": "LAST_NAME",
    "last_name": "LAST_NAME",
    "address": "ADDRESS",
    "city": "CITY",
    "state": "STATE",
    "postalCode": "POSTAL",
    "postal_code": "POSTAL",
    "zip": "POSTAL",
    "zipCode": "POSTAL",
    "zip_code": "POSTAL",
    "maid": "MAID",
    "rampId": "RAMP_ID",
    "ramp_id": "RAMP_ID",
    "matchId": "MATCH_ID",
    "match_id": "MATCH_ID",
}


def key_type_for_field(field: str) -> str | None:
    """Match key type of a record property name (case-sensitive), else None."""
    return _FIELD_TYPES.get(field)
