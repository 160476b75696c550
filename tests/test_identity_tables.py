"""The identity tables against their sources, and the fast paths against the general code.

- Match-key types: Amazon's schemas in tests/schemas (Events ``MatchKeyType``, DSP
  ``ConversionMatchKeyTypeV1``).
- Phone lengths: phonenumbers' metadata (libphonenumber), which the PHONE rule relies on.
- Address words: USPS Publication 28 Appendix C1/C2 spot checks, and the shape of every entry.
- Regions: USPS Publication 28 Appendix B (62 codes), Canada Post (13 symbols).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from target_amazon_dsp_conversions import identity
from target_amazon_dsp_conversions.address_words import (
    ADDRESS_WORDS,
    USPS_SECONDARY_UNITS,
    USPS_STREET_SUFFIXES,
    words_key,
)
from target_amazon_dsp_conversions.regions import (
    CA_PROVINCES,
    NOT_REGIONS,
    REGION_CODES,
    US_STATES,
)
from tests.match_keys import RAW_TYPES, SUPPORTED_TYPES

SCHEMAS = Path(__file__).resolve().parent / "schemas"


def _enum(file: str, name: str) -> set[str]:
    schema = json.loads((SCHEMAS / file).read_text())
    return set(schema["components"]["schemas"][name]["enum"])


# --- types against Amazon's schemas ----------------------------------------------------------


def test_match_key_types_are_the_events_schema_enum() -> None:
    assert set(identity.MATCH_KEY_TYPES) == _enum("events-api.json", "MatchKeyType")
    assert SUPPORTED_TYPES["events"] == _enum("events-api.json", "MatchKeyType")


def test_dsp_types_are_the_dsp_schema_enum() -> None:
    assert SUPPORTED_TYPES["dsp"] == _enum("dsp-conversions-api.json", "ConversionMatchKeyTypeV1")


def test_raw_types() -> None:
    # Amazon's Events schema, CreateMatchKey.description (the structure-only copy in
    # tests/schemas drops descriptions; ../shared/reference/openapi/events-api.json has it):
    # "REAL_ID, MERKLE_ID, KANTAR_ID, and FIP accept raw identifier values."
    events_only = {"REAL_ID", "MERKLE_ID", "KANTAR_ID", "FIP"}
    assert events_only <= RAW_TYPES["events"]
    assert not events_only & SUPPORTED_TYPES["dsp"]


# --- phonenumbers metadata the PHONE rule relies on --------------------------------------


def test_phone_lengths_in_phonenumbers_metadata() -> None:
    # US: 10 national digits; 7 are a local-only number (dialled within an area code).
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("US")
    assert metadata is not None
    us = metadata.general_desc
    assert us is not None
    assert tuple(us.possible_length) == (10,)
    assert tuple(us.possible_length_local_only) == (7,)
    result = phonenumbers.is_possible_number_with_reason(phonenumbers.parse("1234567", "US"))
    assert result == phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY
    # is_possible_number counts local-only numbers as possible: the old rule's bug.
    assert phonenumbers.is_possible_number(phonenumbers.parse("1234567", "US"))


def _reference_phone(value: str, country: str | None) -> str:
    """SPEC §4 PHONE through phonenumbers alone: IS_POSSIBLE only."""
    text, region = identity._phone_text(value, country)
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    result = phonenumbers.is_possible_number_with_reason(number)
    if result != phonenumbers.ValidationResult.IS_POSSIBLE:
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _spellings(count: int) -> list[str]:
    rnd = random.Random(20261214)
    spellings = []
    for _ in range(count):
        digits = rnd.choice([7, 9, 10, 10, 10, 11])
        number = "".join(rnd.choice("0123456789") for _ in range(digits))
        if digits >= 10 and rnd.random() < 0.7:
            number = rnd.choice("23456789") + number[1:]
        sep = rnd.choice(["", " ", ".", "-"])
        if digits == 10 and rnd.random() < 0.5:
            number = f"({number[:3]}){sep}{number[3:6]}{sep}{number[6:]}"
        elif digits == 7:
            number = f"{number[:3]}{sep}{number[3:]}"
        prefix = rnd.choice(["", "", "1", "+1", "1 ", "+1 ", "+", "001 ", "+44 ", "0"])
        spellings.append(prefix + number)
    return spellings


@pytest.mark.parametrize("country", [None, "US", "CA", "PR", "GB", "DE", "ZZ"])
def test_phone_fast_path_agrees_with_phonenumbers(country: str | None) -> None:
    # The NANP regex only takes complete 10-digit numbers, so it never keeps what
    # phonenumbers would call local-only or too short.
    for spelling in _spellings(2000):
        expected = _reference_phone(spelling, country)
        assert identity.normalize("PHONE", spelling, country) == expected, (spelling, country)


def test_nanp_fast_path_never_takes_seven_digits() -> None:
    for spelling in ("555-1234", "5551234", "(555) 1234", "+1 555 1234", "1 555 1234"):
        assert identity._NANP_SHAPE.fullmatch(spelling) is None, spelling


# --- email and postal fast paths -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "john.doe@example.com",
        "a@b.co",
        "x-y.z@mail.my-shop.co.uk",
        "user@xn--bcher-kva.de",
        "j@e.xn--p1ai",
        "0@0.io",
    ],
)
def test_plain_email_fast_path_is_the_general_rule(value: Any) -> None:
    assert identity._EMAIL_SHAPE.fullmatch(value)
    assert identity._email(value) == (value, "")


@pytest.mark.parametrize(
    ("value", "country"), [("94105", "US"), ("10115", "DE"), ("1000001", "JP")]
)
def test_numeric_postal_fast_path_is_the_general_rule(value: Any, country: str | None) -> None:
    assert identity._postal(value, country) == (value, "")


def test_caches_stay_bounded() -> None:
    identity._address.cache_clear()
    identity._state.cache_clear()
    for n in range(identity._CACHE_SIZE + 10):
        identity.normalize("ADDRESS", f"{n} Main Street", "US")
        identity.normalize("STATE", f"Region {n}", "DE")
    assert identity._address.cache_info().currsize == identity._CACHE_SIZE
    assert identity._state.cache_info().currsize == identity._CACHE_SIZE


def test_country_caches_stay_bounded_and_agree_with_the_uncached_rule() -> None:
    identity._country.cache_clear()
    identity._phone_region.cache_clear()
    for n in range(identity._CACHE_SIZE + 10):
        identity.normalize("POSTAL", "94105", f"x{n}")
        identity.normalize("PHONE", "030 1234567", f"y{n}")
    assert identity._country.cache_info().currsize == identity._CACHE_SIZE
    assert identity._phone_region.cache_info().currsize == identity._PHONE_CACHE_SIZE
    for given, code, region in [
        ("us", "US", "US"), (" UK ", "GB", "GB"), ("ZZ", None, None), ("OTHER_EEA", None, None),
        ("AQ", "AQ", None), ("", None, None), (None, None, None), ("USA", None, None),
    ]:  # fmt: skip
        assert identity._country(given) == code, given
        assert identity._phone_region(given) == region, given


# --- address words ---------------------------------------------------------------------------

_FOLDED = re.compile(r"[a-z0-9]+|#")


@pytest.mark.parametrize("country", sorted(ADDRESS_WORDS))
def test_address_words_are_folded(country: str) -> None:
    for word, standard in ADDRESS_WORDS[country].items():
        assert _FOLDED.fullmatch(word), (country, word)
        assert re.fullmatch(r"[a-z0-9]+", standard), (country, standard)
        assert word != standard


@pytest.mark.parametrize(
    ("word", "standard"),
    [
        # USPS Publication 28 Appendix C1 (primary name or common spelling -> standard)
        ("alley", "aly"),
        ("avenue", "ave"),
        ("boulevard", "blvd"),
        ("center", "ctr"),
        ("crossing", "xing"),
        ("expressway", "expy"),
        ("heights", "hts"),
        ("junction", "jct"),
        ("parkway", "pkwy"),
        ("stravenue", "stra"),
        ("street", "st"),
        ("terrace", "ter"),
        ("turnpike", "tpke"),
        ("viaduct", "via"),
        # Appendix C2
        ("apartment", "apt"),
        ("building", "bldg"),
        ("floor", "fl"),
        ("suite", "ste"),
        ("penthouse", "ph"),
        # Publication 28 §233, and the SDK's number indicators
        ("east", "e"),
        ("northwest", "nw"),
        ("#", "number"),
        ("no", "number"),
    ],
)
def test_us_address_words(word: str, standard: str) -> None:
    assert ADDRESS_WORDS["US"][word] == standard


def test_usps_tables_size() -> None:
    # Appendix C1 lists about 200 primary street suffixes, C2 24 secondary unit designators.
    assert len(USPS_STREET_SUFFIXES) > 190
    assert len(USPS_SECONDARY_UNITS) == 24


def test_words_key() -> None:
    assert words_key(None) == "US"
    assert words_key("US") == "US"
    assert words_key("GB") == "GB"
    for country in ("CA", "DE", "JP", "IN", "NL"):
        assert words_key(country) == ""


# --- regions ---------------------------------------------------------------------------------


def test_region_tables() -> None:
    # USPS Appendix B: 50 states, DC, 5 territories, 3 freely associated states, AA AE AP.
    assert len(US_STATES) == 62
    assert len(CA_PROVINCES) == 13
    for country, codes in REGION_CODES.items():
        for spelling, code in codes.items():
            assert re.fullmatch(r"[a-z0-9]+", spelling), (country, spelling)
            assert re.fullmatch(r"[a-z]{2}", code), (country, code)
    assert not set(REGION_CODES["US"]) & set(REGION_CODES["CA"])
    for words in (REGION_CODES["US"], REGION_CODES["CA"]):
        assert not set(words) & NOT_REGIONS
