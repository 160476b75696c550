"""Match keys: normalization, hashing and type inference (SPEC §4).

Match keys leave the process SHA-256 hashed (lower-case hex), except the types Amazon takes
raw (``MatchKeyTypes.raw``: each API declares its types in ``apis/``). A value that already is
64 hex characters is passed through lower-cased, unless it is the SHA-256 of the empty string,
which identifies nobody and is dropped. This module never logs: it handles personal data.

The rules follow Amazon's own normalizers (``reference/amazon-ads-api.md`` §12); where those
disagree, the choice is made here:

- PHONE is hashed as E.164 digits *without* ``+`` (Amazon's AMC uploader and every shipped
  integration; one 2026 Events API sample keeps the ``+``). A number that is not a complete
  number of its country (too short, local-only, a length the country does not use) is dropped;
  a number of a possible length outside today's allocated ranges is kept (no validity check).
- FIRST_NAME, LAST_NAME, CITY, ADDRESS: ``ä ö ü`` -> ``ae oe ue``, ``ß`` -> ``ss``, ``ø`` ->
  ``o``, ``æ`` -> ``ae`` (Amazon's uploader); other accents are folded (``é`` -> ``e``) where
  Amazon's uploader drops the letter, and cities get the same rules as names (the uploader's
  newest city normalizer drops every non-ASCII letter).
- ADDRESS: street words are rewritten per country as Amazon's address normalization SDK does
  (``address_words``), then only ``a-z 0-9`` are kept (the SDK keeps punctuation and accents).
- STATE: a US state or Canadian province becomes its two-letter code. With the record's country
  US or CA, any other value (``shipped``, ``Bavaria``) is no region of it and is dropped. With
  another country the value is kept as a name (no region list is known) unless it is a status
  word (``regions.NOT_REGIONS``). With no usable country (None, ``ZZ``, ``OTHER``,
  ``OTHER_EEA``), US and Canadian names and codes become codes, status words are dropped and
  anything else is kept as a name: a region of some other country must not be lost.
- EMAIL: a non-ASCII domain goes to its IDNA form (UTS #46, non-transitional), or the address
  is dropped when it has none. A local part that is still non-ASCII after compatibility
  normalization (``müller@...``) is dropped: removing the letters (Amazon's text) or
  transliterating them would hash some other mailbox, and Amazon's rule has no form for it.
- ADDRESS without a country uses the US word list (the SDK's example is a US address).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import idna
import phonenumbers

from target_amazon_dsp_conversions.address_words import ADDRESS_WORDS, words_key
from target_amazon_dsp_conversions.postal_codes import (
    LEADING_ZERO_COUNTRIES,
    NUMERIC_LENGTHS,
    SHAPES,
)
from target_amazon_dsp_conversions.regions import NOT_REGIONS, REGION_CODES

__all__ = [
    "EMPTY_SHA256",
    "MATCH_ID_MAX_LENGTH",
    "MATCH_KEY_TYPES",
    "MatchKeyTypes",
    "drop_reason",
    "infer_type",
    "is_sha256_hex",
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
    "REAL_ID",
    "MERKLE_ID",
    "KANTAR_ID",
    "FIP",
)


@dataclass(frozen=True, slots=True)
class MatchKeyTypes:
    """The match-key types one API takes, and which of them it takes raw (normalized, not
    hashed); each API declares its own (``apis/``)."""

    api: str  # the API's name, for drop reasons
    supported: frozenset[str]
    raw: frozenset[str]
    hashed: frozenset[str] = field(init=False)  # normalized and SHA-256 hashed

    def __post_init__(self) -> None:
        """The hashed types are the supported ones that are not raw."""
        object.__setattr__(self, "hashed", self.supported - self.raw)


MATCH_ID_MAX_LENGTH = 100
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_SHA256_HEX_LENGTH = 64
# Digits of a bare userIdentifier that looks like a phone number (local numbers up to E.164's 15).
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 7, 15
# Digits of a number with no + and no country: only one that carries its country code is usable.
_MIN_INTERNATIONAL_DIGITS = 11
# Bound of the per-value caches (states, addresses, domains, phones, countries).
_CACHE_SIZE = 4096
_PHONE_CACHE_SIZE = _CACHE_SIZE

# Why a key was dropped (drop_reason); none of them carries the value.
_EMPTY = "empty"
_NO_LETTERS = "no letters or digits"
_NOT_EMAIL = "not an email address (local@domain.tld)"
_NO_IDNA = "no IDNA form of the domain"
_NON_ASCII_LOCAL = "a non-ASCII local part"
_NOT_PHONE = "not a phone number"
_NO_PHONE_COUNTRY = "no country code and no known country"
_UNKNOWN_CALLING_CODE = "an unknown country calling code"
_STATUS_WORD = "a status word, not a region"
_PARTIAL_POSTAL = "a partial postal code"
_NOT_IP = "not an IP address"
_NOT_PUBLIC_IP = "not a public IP address"

# --- precompiled patterns -------------------------------------------------------------

# local@domain.tld: a local part and domain labels that start with a letter or digit, a top-level
# domain of 2+ characters that starts with a letter (xn-- included). A junk filter, not RFC 5321:
# kept this simple it costs half again the old check instead of twice.
_EMAIL_SHAPE = re.compile(r"[a-z0-9][a-z0-9.-]*@(?:[a-z0-9][a-z0-9-]*\.)+[a-z][a-z0-9-]*[a-z0-9]")
_EMAIL_DROP = re.compile(r"[^a-z0-9.@-]+")
# ASCII characters Amazon's rule removes, found before a non-ASCII domain goes to IDNA.
_DOMAIN_ASCII_DROP = re.compile(r"[\x00-\x2c/:-@\[-`{-\x7f]+")
_ANGLE_ADDRESS = re.compile(r"<([^<>]*)>")
_EMAIL_COMMENT = re.compile(r"\([^()]*\)")
_ALNUM_DROP = re.compile(r"[^a-z0-9]+")
_POSTAL_DROP = re.compile(r"[\s-]+")
_ZIP_PLUS4_DASH = re.compile(r"[0-9]{5}-[0-9]{4}")
# La Poste's CEDEX (business mail) suffix after the 5 digits: "77304 CEDEX 2".
_CEDEX = re.compile(r"([0-9]{5})cedex[0-9]{0,2}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_MAID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PHONE_SHAPE = re.compile(r"\+?[0-9 .()\-]+")
_NON_DIGITS = re.compile(r"[^0-9]+")
# A North American number in one of its everyday spellings: optional +1 / 1, a 3-digit area code
# that cannot start with 0 or 1, then 3 + 4 digits. phonenumbers parses these to +1 and the same
# ten digits, a possible length (tests/test_identity*.py check that against phonenumbers), at
# ~1/30 of the cost. Only complete 10-digit numbers match: 7-digit local numbers go the slow way.
_NANP_SHAPE = re.compile(r"(\+?1[ .-]?)?(\(?[2-9][0-9]{2}\)?)[ .-]?([0-9]{3})[ .-]?([0-9]{4})")
# Regions whose numbers parse as above without a leading + (country code 1, national prefix 1).
_NANP_FAST_REGIONS = frozenset({"US", "CA"})
# Address words: "c/o" goes (as in the SDK); dots and apostrophes inside a word and a dash after
# a letter join (P.ZZA, N.W., O'Brien, Lieu-dit); the rest separates. "#" is a word of its own.
_CARE_OF = re.compile(r"\bc/o\b")
_ADDRESS_TOKEN = re.compile(r"[a-z0-9]+|#")
_ADDRESS_JOINED_TOKEN = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+|(?<=[a-z])-[a-z0-9]+)*|#")
_ADDRESS_JOINERS = str.maketrans("", "", ".'-")

# Letters NFKD does not decompose, and the German umlauts Amazon writes with an e (lower-case
# forms; NFC first, so a decomposed u + U+0308 is ü too).
_TRANSLITERATION = str.maketrans(
    {
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
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

# Common non-ISO spellings of a country; Events API pseudo-codes name no country.
_COUNTRY_ALIASES = {"UK": "GB"}
_PSEUDO_COUNTRIES = frozenset({"ZZ", "OTHER", "OTHER_EEA"})
_PHONE_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
_E164 = phonenumbers.PhoneNumberFormat.E164
_IS_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE
_TOO_LONG = phonenumbers.ValidationResult.TOO_LONG
_INVALID_COUNTRY_CODE = phonenumbers.ValidationResult.INVALID_COUNTRY_CODE
# A US state or Canadian province when the record's country is not known (no code in both).
_ANY_REGION_CODES = {**REGION_CODES["US"], **REGION_CODES["CA"]}


# --- countries ------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _country(country: str | None) -> str | None:
    """The record's ISO 3166-1 alpha-2 code, upper-case; None when it names no country."""
    if not country:
        return None
    code = country.strip().upper()
    code = _COUNTRY_ALIASES.get(code, code)
    usable = len(code) == 2 and code.isascii() and code.isalpha()  # noqa: PLR2004
    return code if usable and code not in _PSEUDO_COUNTRIES else None


@functools.lru_cache(maxsize=_PHONE_CACHE_SIZE)
def _phone_region(country: str | None) -> str | None:
    """The record's country as a phonenumbers region, None when phonenumbers has none."""
    region = _country(country)
    return region if region in _PHONE_REGIONS else None


# --- names, cities, addresses ---------------------------------------------------------


def _fold(text: str) -> str:
    """Lower case in ASCII: German umlauts and the letters above transliterated, accents
    dropped, other scripts removed."""
    text = text.lower()
    if text.isascii():
        return text
    text = unicodedata.normalize("NFC", text).translate(_TRANSLITERATION)
    return unicodedata.normalize("NFKD", text).lower().encode("ascii", "ignore").decode()


def _norm_name(value: str, country: str | None) -> str:  # noqa: ARG001 - one signature
    text = value.lower()
    if text.isascii():
        # Most names are plain letters already: skip the substitution.
        return text if text.isalnum() else _ALNUM_DROP.sub("", text)
    return _ALNUM_DROP.sub("", _fold(text))


def _norm_address(value: str, country: str | None) -> str:
    return _address(value, words_key(_country(country)))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _address(value: str, words: str) -> str:
    """Street words in their standard form (ADDRESS_WORDS[words]), joined without spaces."""
    text = _fold(value)
    if "c/o" in text:
        text = _CARE_OF.sub(" ", text)
    table = ADDRESS_WORDS[words]
    return "".join([table.get(token, token) for token in _address_tokens(text)])


def _address_tokens(text: str) -> list[str]:
    """The words of a folded address, joined across . ' - as the comment above says."""
    if "." in text or "'" in text or "-" in text:
        # The joining pattern costs half again as much: only for text that needs it.
        tokens = _ADDRESS_JOINED_TOKEN.findall(text)
        return [token.translate(_ADDRESS_JOINERS) for token in tokens]
    return _ADDRESS_TOKEN.findall(text)


# --- states ---------------------------------------------------------------------------


def _norm_state(value: str, country: str | None) -> str:
    return _state(value, _country(country))[0]


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _state(value: str, country: str | None) -> tuple[str, str]:
    """(normalized state, "") or ("", why it is dropped); see the module docstring."""
    name = _norm_name(value, None)
    if not name:
        return "", _NO_LETTERS
    if country in REGION_CODES:
        code = REGION_CODES[country].get(name)
        return (code, "") if code else ("", f"not a region of {country}")
    if country is None:
        code = _ANY_REGION_CODES.get(name)
        if code:
            return code, ""
    if name in NOT_REGIONS:
        return "", _STATUS_WORD
    return name, ""


# --- postal codes ---------------------------------------------------------------------


def _norm_postal(value: str, country: str | None) -> str:
    text = value.strip()
    region = _country(country)
    length = NUMERIC_LENGTHS.get(region) if region else None
    if length is not None and len(text) == length and text.isdigit() and text.isascii():
        return text  # the common case: a complete numeric code as it is written
    if region == "US" and _ZIP_PLUS4_DASH.fullmatch(text):
        return text[:5]  # the next most common: ZIP+4 as USPS writes it
    return _postal(text, region)[0]


def _postal(text: str, country: str | None) -> tuple[str, str]:
    """(normalized code, "") or ("", why it is dropped), for a stripped value."""
    if country is None and _ZIP_PLUS4_DASH.fullmatch(text):
        return text[:5], ""  # only the dashed ZIP+4 is told apart without a country
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # full-width digits and letters
    # str.replace is a fifth of the cost of the substitution, which only other spaces need.
    code = text.lower().replace(" ", "").replace("-", "")
    if not code.isalnum():
        code = _POSTAL_DROP.sub("", code)
    if not code:
        return "", _NO_LETTERS
    cedex = _CEDEX.fullmatch(code) if "cedex" in code else None
    if cedex is not None:
        code = cedex.group(1)
    if country is None:
        return code, ""
    length = NUMERIC_LENGTHS.get(country)
    if length is not None:
        return _numeric_postal(code, country, length)
    shape = SHAPES.get(country)
    if shape is None or shape[0].fullmatch(code):
        return code, ""
    if shape[1].fullmatch(code):
        return "", _PARTIAL_POSTAL
    return "", f"not a postal code of {country}"


def _numeric_postal(code: str, country: str, length: int) -> tuple[str, str]:
    digits = code.isascii() and code.isdigit()
    if country == "US" and digits and len(code) == 9:  # noqa: PLR2004 - ZIP+4
        return code[:5], ""
    if not digits or len(code) > length:
        return "", f"not a postal code of {country}"
    if len(code) == length:
        return code, ""
    if len(code) == length - 1 and country in LEADING_ZERO_COUNTRIES:
        return "0" + code, ""  # a leading zero lost to a numeric column
    return "", _PARTIAL_POSTAL


# --- email ----------------------------------------------------------------------------


def _norm_email(value: str, country: str | None) -> str:  # noqa: ARG001 - one signature
    email = value.strip().lower()
    if _EMAIL_SHAPE.fullmatch(email):
        return email  # nothing to unwrap, convert or remove: a third of the cost
    return _email(value)[0]


def _email(value: str) -> tuple[str, str]:
    """(normalized address, "") or ("", why it is dropped)."""
    text = value.strip()
    if "<" in text or ":" in text or "(" in text:
        text = _unwrap_email(text)
    local, at, domain = text.lower().partition("@")
    if not at:
        return "", _NOT_EMAIL
    domain = domain.rstrip(".")  # a fully qualified domain's trailing dot
    if not domain.isascii():
        domain = _idna_domain(_DOMAIN_ASCII_DROP.sub("", domain))
        if not domain:
            return "", _NO_IDNA
    if not local.isascii():
        local = _ascii_local_part(local)
        if not local.isascii():
            return "", _NON_ASCII_LOCAL
    email = _EMAIL_DROP.sub("", local + "@" + domain)
    # Hashing "@@@" or "n/a" would only send Amazon a key that can never match anyone.
    return (email, "") if _EMAIL_SHAPE.fullmatch(email) else ("", _NOT_EMAIL)


def _unwrap_email(text: str) -> str:
    """The address of ``Name <addr>``, ``mailto:addr?subject=...`` or ``addr (comment)``."""
    angle = _ANGLE_ADDRESS.search(text)
    if angle is not None:
        text = angle.group(1).strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].partition("?")[0]
    if "(" in text:
        text = _EMAIL_COMMENT.sub("", text)
    return text.strip()


def _ascii_local_part(local: str) -> str:
    """Full-width and other compatibility forms as ASCII; spaces and invisible marks gone."""
    local = unicodedata.normalize("NFKC", local)
    return "".join(c for c in local if not (c.isspace() or unicodedata.category(c) == "Cf"))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _idna_domain(domain: str) -> str:
    """The IDNA (punycode) form of a domain, "" when it has none."""
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return ""


# --- phone ----------------------------------------------------------------------------


def _norm_phone(value: str, country: str | None) -> str:
    # _phone_text inlined: a call and a tuple are 5% of this hot path. Tests compare the two.
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text:
        return ""
    if text.startswith("+"):
        region = None
    else:
        region = _phone_region(country)
        if region is None:
            digits = _NON_DIGITS.sub("", text)
            if not _MIN_INTERNATIONAL_DIGITS <= len(digits) <= _MAX_PHONE_DIGITS:
                return ""
            text = "+" + digits
    fast = _NANP_SHAPE.fullmatch(text)
    # A leading + here always is +1 (the pattern allows no other); without it, the region decides.
    if fast is not None and (region is None or region in _NANP_FAST_REGIONS):
        _, area, exchange, line = fast.groups()
        return "1" + area.strip("()") + exchange + line
    return _parse_phone(text, region)


def _phone_text(value: str, country: str | None) -> tuple[str, str | None]:
    """(text to parse, region to parse it with); text "" when it cannot be read."""
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text or text.startswith("+"):
        return text, None
    region = _phone_region(country)
    if region is None:
        # No country: only a number long enough to carry its country code is usable.
        digits = _NON_DIGITS.sub("", text)
        if not _MIN_INTERNATIONAL_DIGITS <= len(digits) <= _MAX_PHONE_DIGITS:
            return "", None
        return "+" + digits, None
    return text, region


@functools.lru_cache(maxsize=_PHONE_CACHE_SIZE)
def _parse_phone(text: str, region: str | None) -> str:
    """E.164 digits by phonenumbers, "" when the number is not a complete one of its country.

    Only the length is checked (IS_POSSIBLE): local-only, too short and lengths the country does
    not use are dropped; is_valid_number's allocation ranges go stale and are not consulted.
    """
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    if phonenumbers.is_possible_number_with_reason(number) != _IS_POSSIBLE:
        return ""
    return phonenumbers.format_number(number, _E164).lstrip("+")


def _phone_reason(value: str, country: str | None) -> str:
    text, region = _phone_text(value, country)
    if not text:
        return _NO_PHONE_COUNTRY
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return _UNKNOWN_CALLING_CODE
        return _NOT_PHONE
    result = phonenumbers.is_possible_number_with_reason(number)
    if result == _INVALID_COUNTRY_CODE:
        return _UNKNOWN_CALLING_CODE
    calling_code = number.country_code or 0
    where = phonenumbers.region_code_for_country_code(calling_code)
    if not (len(where) == 2 and where.isalpha()) or where == "ZZ":  # noqa: PLR2004
        where = f"+{calling_code}"  # a non-geographic code such as +800
    if result == _TOO_LONG:
        return f"too long for a phone number of {where}"
    return f"not a complete phone number of {where}"


# --- raw types ------------------------------------------------------------------------


def _norm_raw(value: str, country: str | None) -> str:  # noqa: ARG001 - one signature
    return value.strip()


def _norm_fip(value: str, country: str | None) -> str:  # noqa: ARG001 - one signature
    address = _ip_address(value)
    return str(address) if address is not None and address.is_global else ""


def _ip_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``1.2.3.4``, ``2001:db8::1``, ``[2001:db8::1]`` or ``fe80::1%eth0``."""
    text = value.strip().removeprefix("[").removesuffix("]").partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:1.2.3.4 is the IPv4 address
    return address


def _fip_reason(value: str) -> str:
    return _NOT_IP if _ip_address(value) is None else _NOT_PUBLIC_IP


_NORMALIZERS: dict[str, Callable[[str, str | None], str]] = {
    "EMAIL": _norm_email,
    "PHONE": _norm_phone,
    "FIRST_NAME": _norm_name,
    "LAST_NAME": _norm_name,
    "ADDRESS": _norm_address,
    "CITY": _norm_name,
    "STATE": _norm_state,
    "POSTAL": _norm_postal,
    "MAID": _norm_raw,
    "RAMP_ID": _norm_raw,
    "MATCH_ID": _norm_raw,
    "REAL_ID": _norm_raw,
    "MERKLE_ID": _norm_raw,
    "KANTAR_ID": _norm_raw,
    "FIP": _norm_fip,
}


def _email_reason(value: str, country: str | None) -> str:  # noqa: ARG001 - one signature
    return _email(value)[1]


def _state_reason(value: str, country: str | None) -> str:
    return _state(value, _country(country))[1]


def _postal_reason(value: str, country: str | None) -> str:
    return _postal(value.strip(), _country(country))[1]


# Why a hashed type's value normalized to nothing; types not listed: nothing was left of it.
_REASONS: dict[str, Callable[[str, str | None], str]] = {
    "EMAIL": _email_reason,
    "PHONE": _phone_reason,
    "STATE": _state_reason,
    "POSTAL": _postal_reason,
}


# --- public API -----------------------------------------------------------------------


def normalize(key_type: str, value: str, country: str | None = None) -> str:
    """Normalized form per SPEC §4 ("" when the key is dropped).

    ``country`` is the ISO alpha-2 code of the record (``UK`` is read as ``GB``; None, ``ZZ``,
    ``OTHER`` and ``OTHER_EEA`` as unknown). It decides PHONE's region when the number has no
    leading ``+``, the ADDRESS word list, which STATE values are regions, and the POSTAL shape.
    Raw types are only trimmed, FIP is the address in its standard form when it is a public
    IPv4/IPv6 address. Raises ``ValueError`` for an unknown key type.
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


def prepare(
    key_type: str, value: object, *, api: MatchKeyTypes, country: str | None = None
) -> str | None:
    """The value as it leaves the process, or None when the key is to be dropped.

    Hashed types: an existing 64-hex hash passes through lower-cased (None for the SHA-256 of
    the empty string); otherwise the value is normalized and SHA-256 hashed. Raw types
    (``api.raw``) are normalized and sent as they are (MATCH_ID longer than 100
    characters gives None). None when the key is empty after normalization or the type is not
    supported by ``api`` (``drop_reason`` says why). Non-str values are converted with
    ``str()``; bool, None and containers give None.
    """
    hashed = api.hashed
    if type(value) is str and key_type in hashed and len(value) < _SHA256_HEX_LENGTH:
        # The common case: text too short to be a hash already.
        normalized = _NORMALIZERS[key_type](value, country)
        return _sha256(normalized.encode()).hexdigest() if normalized else None  # sha256_hex
    if key_type not in api.supported:
        return None
    text = _as_text(value)
    if text is None:
        return None
    if key_type in api.raw:
        raw = _NORMALIZERS[key_type](text, country)
        if not raw or (key_type == "MATCH_ID" and len(raw) > MATCH_ID_MAX_LENGTH):
            return None
        return raw
    stripped = text.strip()
    if len(stripped) == _SHA256_HEX_LENGTH and _HEX64.fullmatch(stripped):
        digest = stripped.lower()
        return None if digest == EMPTY_SHA256 else digest
    normalized = _NORMALIZERS[key_type](text, country)
    return sha256_hex(normalized) if normalized else None


def drop_reason(
    key_type: str, value: object, *, api: MatchKeyTypes, country: str | None = None
) -> str:
    """Why ``prepare`` drops this key: one short lower-case phrase that never holds the value.

    For the rare path, after ``prepare`` returned None (it redoes the work). "" when ``prepare``
    keeps the key. Phrases: "empty", "not a text or number value", "not a match key type",
    "not supported by the dsp API", "the SHA-256 of an empty value", "longer than 100
    characters", "no letters or digits", "not an email address (local@domain.tld)", "no IDNA
    form of the domain", "a non-ASCII local part", "not a phone number", "no country code and
    no known country", "an unknown country calling code", "not a complete phone number of US",
    "too long for a phone number of US", "not a region of US", "a status word, not a region",
    "a partial postal code", "not a postal code of DE", "not an IP address", "not a public IP
    address".
    """
    if prepare(key_type, value, api=api, country=country) is not None:
        return ""
    if key_type not in MATCH_KEY_TYPES:
        return "not a match key type"
    if key_type not in api.supported:
        return f"not supported by the {api.api} API"
    text = _as_text(value)
    if text is None:
        return _EMPTY if value is None else "not a text or number value"
    if not text.strip():
        return _EMPTY
    if key_type in api.raw:
        if key_type == "FIP":
            return _fip_reason(text)
        if key_type == "MATCH_ID":
            return f"longer than {MATCH_ID_MAX_LENGTH} characters"
        return _EMPTY
    if is_sha256_hex(text.strip()):
        return "the SHA-256 of an empty value"  # the one hash that is dropped
    reason = _REASONS.get(key_type)
    return reason(text, country) if reason is not None else _NO_LETTERS


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
