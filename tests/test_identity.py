"""Fixed vectors for match-key normalization and hashing (SPEC §4)."""

from __future__ import annotations

from typing import Any

import pytest

from target_amazon_dsp_conversions.identity import (
    MATCH_KEY_TYPES,
    infer_type,
    is_sha256_hex,
    normalize,
    sha256_hex,
)
from tests.match_keys import RAW_TYPES, SUPPORTED_TYPES, prepare

H_EMAIL = "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"
H_PHONE_US = "d6736136ea896c1bfdc553e0e86e702c70d060d805696ca3e4e9e0961353860a"
H_PHONE_DE = "2f9fbc550b12cbc0e6242384cc472bd1e4f058a8b773f189f7acb86d202655ce"
H_ZIP = "e73ac16e69f060ee98b0fda5f66f48c4648ee26950e9bab3a097389853fd859e"

# (type, input, country, normalized, sha256 of normalized or None when dropped)
VECTORS: list[tuple[str, str, str | None, str, str | None]] = [
    # EMAIL
    ("EMAIL", " John.Doe@Example.COM ", None, "john.doe@example.com", H_EMAIL),
    # `+` and `_` go: Amazon's API text keeps only [a-zA-Z0-9] and [.@-] (events-api.json,
    # CreateMatchKey); Amazon's AMC uploader would keep `_` (README: where sources disagree).
    (
        "EMAIL",
        "jane+promo_1@Mail.Example.org",
        None,
        "janepromo1@mail.example.org",
        "9916e64386abea3d93b94d887aa402b05a227b81dc01d7d5c83ada93699f30fe",
    ),
    # A non-ASCII local part is dropped; a non-ASCII domain goes to IDNA (SPEC §4, issue 14).
    ("EMAIL", "Zoë.Ünal@exämple.de", None, "", None),
    (
        "EMAIL",
        "Zoe.Unal@exämple.de",
        None,
        "zoe.unal@xn--exmple-cua.de",
        "030ea35b7b861d09e8ad75a66714c9ab5bdc77688628a184e7de15cdeee40781",
    ),
    ("EMAIL", "  ", None, "", None),
    # PHONE
    ("PHONE", "+1 (555) 123-4567", None, "15551234567", H_PHONE_US),
    ("PHONE", "(555) 123-4567", "US", "15551234567", H_PHONE_US),
    ("PHONE", "555.123.4567", "us", "15551234567", H_PHONE_US),
    ("PHONE", "15551234567", None, "15551234567", H_PHONE_US),
    ("PHONE", "5551234567", None, "", None),
    ("PHONE", "030 1234567", "DE", "49301234567", H_PHONE_DE),
    ("PHONE", "+49 30 1234567", "US", "49301234567", H_PHONE_DE),
    ("PHONE", "0049 30 1234567", None, "49301234567", H_PHONE_DE),
    (
        "PHONE",
        "020 7946 0958",
        "GB",
        "442079460958",
        "35e206e5dec4c89b9e8b71b8c32724a5bb518483ac5a20c6617d738375b3b823",
    ),
    (
        "PHONE",
        "07700 900123",
        "UK",
        "447700900123",
        "033134b911b137918338415ee3d20a064b24773d36a3b02e8b99fdd3fcd6b4cd",
    ),
    ("PHONE", "not a phone", "US", "", None),
    ("PHONE", "123", "US", "", None),
    ("PHONE", "", "US", "", None),
    # FIRST_NAME
    (
        "FIRST_NAME",
        "José",
        None,
        "jose",
        "1ec4ed037766aa181d8840ad04b9fc6e195fd37dedc04c98a5767a67d3758ece",
    ),
    (
        "FIRST_NAME",
        " Mary-Ann ",
        None,
        "maryann",
        "16b3f07f0ec2f9dd127b71dc2e6c791b7d93116a1c3bc99d057eaa7a8a077e73",
    ),
    (
        "FIRST_NAME",
        "Øystein",
        None,
        "oystein",
        "cbb44f7e96dba474f4df987cb6fc4ae7c53ea6a8c1aa7c0b53dc569590a1b898",
    ),
    ("FIRST_NAME", "---", None, "", None),
    # LAST_NAME
    (
        "LAST_NAME",
        "O'Brien",
        None,
        "obrien",
        "b4cb6cb33fe4b865868de825023a1e2790dc12ac01ecc8d7c5afe8254071c8ba",
    ),
    (
        "LAST_NAME",
        "Straße",
        None,
        "strasse",
        "16d96952087774fee069b7585d3991b24d90c181c09b2129b4908c35baa7f0c0",
    ),
    (
        "LAST_NAME",
        "Łukasiewicz",
        None,
        "lukasiewicz",
        "9e8941d8a4b29f2f9d8745bca110bbfb8faea071260cada0009e927d5dec3dfe",
    ),
    (
        "LAST_NAME",
        "Ærøskøbing",
        None,
        "aeroskobing",
        "8afab7734bfd8a3302ad0af0ee13f1effeb7a66a345bdbdf84aee2850233a58c",
    ),
    ("LAST_NAME", "\u0301\u0308", None, "", None),
    # ADDRESS
    (
        "ADDRESS",
        "123 Main St., Apt #4",
        None,
        "123mainstaptnumber4",  # "#" is the word NUMBER in Amazon's address SDK
        "a6fc10c1a1e8c5e5ac999fd3a190b08594e3e97bc0f9d3a609e72e8492303b3f",
    ),
    (
        "ADDRESS",
        "Champs-Élysées 8",
        None,
        "champselysees8",
        "994bfbbed5ca802c29365dc9c341f06fb6b43b4facd04ec60fa5f0a0d5309cc1",
    ),
    (
        "ADDRESS",
        "Hauptstraße 5, 3. OG",
        None,
        "hauptstrasse53og",
        "f9af06071b8c67a43576a00dd9559219e78f1cbba98d0e8005c75ef5ab137c13",
    ),
    ("ADDRESS", "  ", None, "", None),
    # CITY
    (
        "CITY",
        "San Francisco",
        None,
        "sanfrancisco",
        "1a6bd4d9d79dc0a79b53795c70d3349fa9e38968a3fbefbfe8783efb1d2b6aac",
    ),
    (
        "CITY",
        "São Paulo",
        None,
        "saopaulo",
        "8f7f2f7ccd3f2898cf4850905346e8fb333d00aac1c974f8f37326e068cf7b1e",
    ),
    (
        "CITY",
        "Reykjavík",
        None,
        "reykjavik",
        "590986da71c21fe7db5aecccdce73f94adeac832225216782b21383b7091ab48",
    ),
    (
        "CITY",
        "Þórshöfn",
        None,
        "thorshoefn",  # ö -> oe, as Amazon's AMC uploader writes it
        "49ec2251de99e99c3b80154002e70590e7673eafb9a03087977249894b2217da",
    ),
    ("CITY", "東京", None, "", None),
    # STATE
    (
        "STATE",
        "CA",
        None,
        "ca",
        "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126",
    ),
    (
        "STATE",
        "Île-de-France",
        None,
        "iledefrance",
        "e7a0efad69ad8cd77fcd8218439ad69182b24d819222f038eb166fa4139ef159",
    ),
    (
        "STATE",
        "N.Y.",
        None,
        "ny",
        "1b06e2003f8420d6fa42badd8f77ec0f706b976b7a48b13c567dc5a559681683",
    ),
    ("STATE", "..", None, "", None),
    # POSTAL
    ("POSTAL", "94105-1234", None, "94105", H_ZIP),
    ("POSTAL", "94105-1234", "US", "94105", H_ZIP),
    ("POSTAL", "941051234", "US", "94105", H_ZIP),
    (
        "POSTAL",
        "941051234",
        None,
        "941051234",
        "0f5f5669ff2667c30b9f9df50e282aed448ddc9fc1ad9a4e22f249c51910db9d",
    ),
    ("POSTAL", " 94105 ", "US", "94105", H_ZIP),
    (
        "POSTAL",
        "SW1A 1AA",
        "GB",
        "sw1a1aa",
        "830e1d4b9838bab1f5c2acdb23e0b502ff13a9832c4632e8d67a1d43d3b7f614",
    ),
    (
        "POSTAL",
        "K1A 0B1",
        "CA",
        "k1a0b1",
        "3e8d74314dc02166b1ea8c7bd8c2357fb3f9898074395b8c57f8799848b4daa1",
    ),
    (
        "POSTAL",
        "10115",
        "DE",
        "10115",
        "ac7bb74de6884ffce919c15fef4193749d4588026c643973946713ac46da540d",
    ),
    # A German Postleitzahl has 5 digits: nine are no code Amazon can match.
    ("POSTAL", "12345-6789", "DE", "", None),
    ("POSTAL", " - ", None, "", None),
]


def _vector_id(vector: tuple[str, str, str | None, str, str | None]) -> str:
    key_type, value, country, _, _ = vector
    return f"{key_type}:{value!r}:{country}"


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_normalize_vectors(vector: tuple[str, str, str | None, str, str | None]) -> None:
    key_type, value, country, normalized, _ = vector
    assert normalize(key_type, value, country) == normalized


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
@pytest.mark.parametrize("api", ["dsp", "events"])
def test_prepare_vectors(vector: tuple[str, str, str | None, str, str | None], api: str) -> None:
    key_type, value, country, normalized, digest = vector
    if normalized:
        assert sha256_hex(normalized) == digest
    assert prepare(key_type, value, api=api, country=country) == digest


def test_every_hashed_type_has_vectors() -> None:
    hashed = set(MATCH_KEY_TYPES) - RAW_TYPES["events"]
    for key_type in hashed:
        kept = [v for v in VECTORS if v[0] == key_type and v[4] is not None]
        dropped = [v for v in VECTORS if v[0] == key_type and v[4] is None]
        assert len(kept) >= 3, key_type
        assert dropped, key_type


def test_spec_examples() -> None:
    assert normalize("EMAIL", " John.Doe@Example.COM ") == "john.doe@example.com"
    assert normalize("PHONE", "+1 (555) 123-4567") == "15551234567"
    assert normalize("FIRST_NAME", "José") == "jose"
    assert normalize("POSTAL", "94105-1234") == "94105"


def test_sha256_hex() -> None:
    assert sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex("john.doe@example.com") == H_EMAIL


def test_is_sha256_hex() -> None:
    assert is_sha256_hex(H_EMAIL)
    assert is_sha256_hex(H_EMAIL.upper())
    assert not is_sha256_hex(H_EMAIL[:-1])
    assert not is_sha256_hex(H_EMAIL + "0")
    assert not is_sha256_hex("g" * 64)
    assert not is_sha256_hex("")


def test_transliteration_upper_case() -> None:
    assert normalize("LAST_NAME", "STRAẞE") == "strasse"
    assert normalize("LAST_NAME", "ŒUVRE") == "oeuvre"
    assert normalize("CITY", "ĐAKOVO") == "dakovo"
    assert normalize("FIRST_NAME", "Ðóra") == "dora"
    assert normalize("CITY", "Diyarbak\u0131r") == "diyarbakir"
    assert normalize("CITY", "\uff34\uff4f\uff4b\uff59\uff4f") == "tokyo"


def test_phone_int_and_float_input() -> None:
    assert prepare("PHONE", 15551234567, api="dsp") == H_PHONE_US
    assert prepare("PHONE", 5551234567, api="events", country="US") == H_PHONE_US
    assert prepare("PHONE", 15551234567.0, api="dsp") == H_PHONE_US
    assert prepare("PHONE", 5551234567, api="dsp") is None


def test_postal_int_input() -> None:
    assert prepare("POSTAL", 94105, api="dsp", country="US") == H_ZIP


@pytest.mark.parametrize("value", [True, False, None, {}, [], {"a": 1}, ["x@y.z"], b"x@y.z"])
def test_prepare_rejects_non_scalar(value: Any) -> None:
    assert prepare("EMAIL", value, api="dsp") is None
    assert prepare("MAID", value, api="events") is None


@pytest.mark.parametrize("api", ["dsp", "events"])
@pytest.mark.parametrize("key_type", ["EMAIL", "PHONE", "FIRST_NAME", "POSTAL"])
def test_existing_hash_passes_through_lower_cased(api: str, key_type: str) -> None:
    assert prepare(key_type, H_EMAIL.upper(), api=api) == H_EMAIL
    assert prepare(key_type, f"  {H_PHONE_US}  ", api=api) == H_PHONE_US


def test_constants() -> None:
    assert MATCH_KEY_TYPES == (
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
    events_only = {"MATCH_ID", "REAL_ID", "MERKLE_ID", "KANTAR_ID", "FIP"}
    assert frozenset(MATCH_KEY_TYPES) - SUPPORTED_TYPES["dsp"] == events_only
    assert frozenset(MATCH_KEY_TYPES) == SUPPORTED_TYPES["events"]
    assert RAW_TYPES["dsp"] == {"MAID"}
    assert RAW_TYPES["events"] == {"MAID", "RAMP_ID"} | events_only


MAID = "EA7583CD-A667-48BC-B806-42ECB2B48606"


@pytest.mark.parametrize("api", ["dsp", "events"])
def test_maid_raw_in_both_apis(api: str) -> None:
    assert prepare("MAID", f" {MAID} ", api=api) == MAID
    assert prepare("MAID", "   ", api=api) is None


def test_ramp_id_raw_in_events_hashed_in_dsp() -> None:
    assert prepare("RAMP_ID", " XY1234abcd ", api="events") == "XY1234abcd"
    assert (
        prepare("RAMP_ID", " XY1234abcd ", api="dsp")
        == "475884e6979066fe2bd752fdc365df2fb9fe97c4f87fa4af521ed6170a46df10"
    )
    assert prepare("RAMP_ID", "", api="dsp") is None


def test_match_id() -> None:
    assert prepare("MATCH_ID", "crm-42", api="dsp") is None
    assert prepare("MATCH_ID", " crm-42 ", api="events") == "crm-42"
    assert prepare("MATCH_ID", 42, api="events") == "42"
    assert prepare("MATCH_ID", "x" * 100, api="events") == "x" * 100
    assert prepare("MATCH_ID", "x" * 101, api="events") is None
    assert prepare("MATCH_ID", " ", api="events") is None


def test_raw_hash_like_value_is_not_lower_cased() -> None:
    assert prepare("MATCH_ID", H_EMAIL.upper(), api="events") == H_EMAIL.upper()


def test_unknown_type_and_api() -> None:
    assert prepare("IP_ADDRESS", "1.2.3.4", api="events") is None
    with pytest.raises(ValueError, match="unknown api"):
        prepare("EMAIL", "a@b.c", api="other")
    with pytest.raises(ValueError, match="unknown match key type"):
        normalize("IP_ADDRESS", "1.2.3.4")


def test_unknown_country_for_phone_falls_back_to_no_country() -> None:
    assert normalize("PHONE", "15551234567", "XX") == "15551234567"
    assert normalize("PHONE", "5551234567", "XX") == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("john@example.com", "EMAIL"),
        (" JOHN@EXAMPLE.COM ", "EMAIL"),
        ("not-an-email@", "EMAIL"),
        ("+1 (555) 123-4567", "PHONE"),
        ("555-1234", "PHONE"),
        ("555.123.4567", "PHONE"),
        ("004930123456", "PHONE"),
        ("+123456789012345", "PHONE"),
        ("123456", None),
        ("+1234567890123456", None),
        ("555-CALL-NOW", None),
        (MAID, "MAID"),
        (MAID.lower(), "MAID"),
        ("38400000-8cf0-11bd-b23e-10b96e40000d", "MAID"),
        (H_EMAIL, None),
        (H_EMAIL.upper(), None),
        ("crm-customer-42", None),
        ("", None),
        ("   ", None),
    ],
)
def test_infer_type(value: Any, expected: str | None) -> None:
    assert infer_type(value) == expected
