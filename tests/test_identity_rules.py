"""Fixed vectors for the match-key rules of SPEC §4 / issue 14, each with its source.

Sources named below:
- [SDK] Amazon's address normalization SDK, amzn/amazon-ads-advertiser-audience-normalization-sdk-py
  (README example, AddressHashing/src/AddressHash.py word lists).
- [UPL] Amazon's AMC uploader, aws-solutions/amazon-marketing-cloud-uploader-from-aws,
  source/glue/library/*_normalizer.py.
- [USPS] USPS Publication 28, Appendix C1 (street suffixes), C2 (secondary unit designators),
  Appendix B (state abbreviations), §233 (directionals).
- [CP] Canada Post Addressing Guidelines (province symbols, postal code A1A 1A1).
- [RM] Royal Mail postcode format (outward code + inward code 9AA).
- [SCHEMA] Amazon's Events API schema, tests/schemas/events-api.json (CreateMatchKey,
  MatchKeyType).
- [PN] phonenumbers' metadata (libphonenumber PhoneNumberMetadata.xml), checked in
  tests/test_identity_tables.py.
- [UTS46] IDNA per Unicode TS #46 / RFC 5891 (punycode RFC 3492); cross-checked here with
  Python's own IDNA 2003 codec where both apply.
"""

from __future__ import annotations

from typing import Any

import pytest

from target_amazon_dsp_conversions.identity import (
    EMPTY_SHA256,
    normalize,
    sha256_hex,
)
from tests.match_keys import drop_reason, prepare

# --- EMAIL -------------------------------------------------------------------------------

# (input, normalized or "" when dropped)
EMAIL_VECTORS = [
    # SPEC §4 / [SCHEMA]: lower-case, trim, keep a-z 0-9 . @ -
    (" John.Doe@Example.COM ", "john.doe@example.com"),
    ("jane+promo_1@Mail.Example.org", "janepromo1@mail.example.org"),
    # issue 14: real-world wrappers are unwrapped
    ("John Doe <john@example.com>", "john@example.com"),
    ('"Doe, John" <John@Example.com>', "john@example.com"),
    ("mailto:john@example.com", "john@example.com"),
    ("MAILTO:john@example.com?subject=Order%2042", "john@example.com"),
    ("<mailto:john@example.com>", "john@example.com"),
    ("john@example.com (John Doe)", "john@example.com"),
    # a fully qualified domain's trailing dot
    ("john@example.com.", "john@example.com"),
    # full-width ASCII (NFKC) in the local part, UTS #46 mapping in the domain
    ("\uff4a\uff4f\uff48\uff4e@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "john@example.com"),
    # issue 14 / [UTS46]: internationalized domains go to their IDNA form
    ("mueller@bücher.de", "mueller@xn--bcher-kva.de"),
    ("user@例え.jp", "user@xn--r8jz45g.jp"),
    ("user@例え。jp", "user@xn--r8jz45g.jp"),  # ideographic full stop is a label separator
    ("USER@BÜCHER.DE", "user@xn--bcher-kva.de"),
    ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
    ("user@straße.de", "user@xn--strae-oqa.de"),  # non-transitional: ß is kept, not "ss"
    # dropped: no local@domain.tld shape
    ("john@example", ""),
    ("john.example.com", ""),
    ("n/a", ""),
    ("@@@", ""),
    ("a@b@example.com", ""),
    ("john@1.2.3.4", ""),
    ("john@example..com", ""),
    ("@example.com", ""),
    # dropped: no IDNA form
    ("user@☃.com", ""),
    ("user@-bücher.de", ""),
    # dropped: a non-ASCII local part (our choice, module docstring)
    ("müller@bücher.de", ""),
    ("Zoë.Ünal@example.de", ""),
]


@pytest.mark.parametrize(("value", "normalized"), EMAIL_VECTORS)
def test_email(value: Any, normalized: str) -> None:
    assert normalize("EMAIL", value) == normalized
    expected = sha256_hex(normalized) if normalized else None
    assert prepare("EMAIL", value, api="dsp") == expected
    assert prepare("EMAIL", value, api="events", country="US") == expected


def test_idna_examples_agree_with_python_idna_2003_codec() -> None:
    # [UTS46] vs the standard library's codec (IDNA 2003): the same for these names.
    for name in ("bücher.de", "例え.jp"):
        assert normalize("EMAIL", f"user@{name}") == "user@" + name.encode("idna").decode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("john@example", "not an email address (local@domain.tld)"),
        ("user@☃.com", "no IDNA form of the domain"),
        ("müller@bücher.de", "a non-ASCII local part"),
        ("   ", "empty"),
    ],
)
def test_email_drop_reasons(value: Any, reason: str) -> None:
    assert prepare("EMAIL", value, api="dsp") is None
    assert drop_reason("EMAIL", value, api="dsp") == reason


# --- PHONE -------------------------------------------------------------------------------

PHONE_VECTORS = [
    # SPEC §4: E.164 digits without "+" ([UPL] phone_normalizer.py strips the "+")
    ("+1 (555) 123-4567", None, "15551234567"),
    ("(555) 123-4567", "US", "15551234567"),
    # issue 14: possible but outside allocated ranges is kept (555 test numbers)
    ("555 010 9999", "US", "15550109999"),
    ("+1 999 123 4567", None, "19991234567"),  # area code 999 is not in service
    ("030 1234567", "DE", "49301234567"),
    ("0049 30 1234567", None, "49301234567"),
    ("+44 20 7946 0958", None, "442079460958"),
    ("+800 1234 5678", None, "80012345678"),  # a non-geographic (freephone) number
    # issue 14 / [PN]: US numbers have 10 national digits, 7 are local-only -> dropped
    ("1234567", "US", ""),
    ("555-1234", "US", ""),
    ("2345678", "CA", ""),
    # too short / too long for the country
    ("+1 555 123 456", None, ""),
    ("+1 555 123 45678", None, ""),
    ("+49 30", None, ""),  # [PN] local-only in DE
    # no country code and no country
    ("5551234567", None, ""),
    ("5551234567", "ZZ", ""),
    # not a number / unknown calling code
    ("call me", "US", ""),
    ("+999 1234567", None, ""),
]


@pytest.mark.parametrize(("value", "country", "normalized"), PHONE_VECTORS)
def test_phone(value: Any, country: str | None, normalized: str) -> None:
    assert normalize("PHONE", value, country) == normalized
    expected = sha256_hex(normalized) if normalized else None
    assert prepare("PHONE", value, api="dsp", country=country) == expected


def test_phone_1234567_us_is_no_longer_hashed_as_11234567() -> None:
    # The bug of issue 14.
    assert prepare("PHONE", "1234567", api="dsp", country="US") is None
    assert prepare("PHONE", 1234567, api="events", country="US") is None
    assert drop_reason("PHONE", "1234567", api="dsp", country="US") == (
        "not a complete phone number of US"
    )


@pytest.mark.parametrize(
    ("value", "country", "reason"),
    [
        ("1234567", "US", "not a complete phone number of US"),
        ("+1 555 123 456", None, "not a complete phone number of US"),
        ("+1 555 123 45678", None, "too long for a phone number of US"),
        ("+49 30", None, "not a complete phone number of DE"),
        ("5551234567", None, "no country code and no known country"),
        ("+999 1234567", None, "an unknown country calling code"),
        ("call me", "US", "not a phone number"),
        ("+", None, "not a phone number"),
    ],
)
def test_phone_drop_reasons(value: Any, country: str | None, reason: str) -> None:
    assert drop_reason("PHONE", value, api="dsp", country=country) == reason


# --- FIRST_NAME, LAST_NAME, CITY ---------------------------------------------------------

NAME_VECTORS = [
    # SPEC §4 / [UPL] default_normalizer.py: ä ö ü -> ae oe ue, ß -> ss, ø -> o, æ -> ae
    ("LAST_NAME", "Müller", "mueller"),
    ("LAST_NAME", "MÜLLER", "mueller"),
    ("LAST_NAME", "Mu\u0308ller", "mueller"),  # decomposed ü (NFD) is the same name
    ("FIRST_NAME", "Jürgen", "juergen"),
    ("LAST_NAME", "Größe", "groesse"),
    ("LAST_NAME", "Bjørn", "bjorn"),
    ("LAST_NAME", "Ærø", "aero"),
    ("CITY", "München", "muenchen"),
    ("CITY", "Köln", "koeln"),
    # SPEC §4 (our choice, not [UPL]): other accents folded
    ("FIRST_NAME", "José", "jose"),
    ("CITY", "Saint-Étienne", "saintetienne"),
    ("CITY", "Mitsukaidō", "mitsukaido"),
    ("FIRST_NAME", "Zoë", "zoe"),
    # keep a-z 0-9 only
    ("LAST_NAME", "O'Brien-Smith", "obriensmith"),
    ("FIRST_NAME", "---", ""),
    ("CITY", "東京", ""),
]


@pytest.mark.parametrize(("key_type", "value", "normalized"), NAME_VECTORS)
def test_names_and_cities(key_type: str, value: Any, normalized: str) -> None:
    assert normalize(key_type, value) == normalized
    expected = sha256_hex(normalized) if normalized else None
    assert prepare(key_type, value, api="dsp", country="DE") == expected


def test_name_drop_reason() -> None:
    assert drop_reason("CITY", "東京", api="dsp") == "no letters or digits"


# --- ADDRESS -----------------------------------------------------------------------------

ADDRESS_VECTORS = [
    # [SDK] README example
    ("03646 Nicholas Stravenue Mooretown", "US", "03646nicholasstramooretown"),
    # SPEC §4 example
    ("123 East Main Street", "US", "123emainst"),
    ("123 East Main Street", None, "123emainst"),
    # [USPS] C1 street suffixes (primary name and common spellings)
    ("8 Bluestem Terrace", "US", "8bluestemter"),
    ("4 Cody Junction", "US", "4codyjct"),
    ("744 Messerschmidt Avenue", "US", "744messerschmidtave"),
    ("12 Oak Av", "US", "12oakave"),
    ("1 Sunset Boulevard", "US", "1sunsetblvd"),
    ("9 Elm Crossing", "US", "9elmxing"),
    ("77 Lake Shore Drive", "US", "77lkshrdr"),  # every word is looked up, as in the SDK
    # [USPS] directionals, C2 secondary unit designators
    ("500 North West Avenue", "US", "500nwave"),
    ("12 Oak Avenue Apartment 5", "US", "12oakaveapt5"),
    ("1 Market St Suite 300", "US", "1marketstste300"),
    ("1 Market St Floor 3", "US", "1marketstfl3"),
    ("3 Harbor Key", "US", "3hbrkey"),  # KEY: the C2 designator wins over the C1 suffix KY
    # [SDK] "#" and "No" are the word NUMBER; dots and commas separate
    ("123 Main St., Apt #4", "US", "123mainstaptnumber4"),
    ("Apt#4 12 Main St", "US", "aptnumber412mainst"),
    ("12 Main St No. 4", "US", "12mainstnumber4"),
    ("N.W. 12th St.", "US", "nw12thst"),
    ("c/o Jane Roe, 5 Main St", "US", "janeroe5mainst"),
    # [SDK] Canada, Germany, Japan, India and others: default suffixes only
    ("2 Pawling Junction", "CA", "2pawlingjunction"),
    ("12 Oak Avenue Apartment 5", "CA", "12oakaveapartment5"),
    ("Hauptstraße 5, 3. OG", "DE", "hauptstrasse53og"),
    ("Haupt Str. 5", "DE", "hauptst5"),
    ("12 Queen Street West", "NL", "12queenstw"),
    # [SDK] Great Britain
    ("7914 CORSCOT STREET", "GB", "7914corscotst"),
    ("5 Abbey Close", "GB", "5abbeyclose"),
    ("5 Abbey Cl", "UK", "5abbeyclose"),
    ("10 Berkeley Square", "GB", "10berkeleysquare"),
    ("10 Berkeley Sq", "GB", "10berkeleysquare"),
    # [SDK] France: abbreviations written out, then the default suffixes
    ("552 Ronald Regan Place", "FR", "552ronaldreganpl"),
    ("12 Rte de Lyon", "FR", "12routedelyon"),
    ("3 Imp. des Lilas", "FR", "3impassedeslilas"),
    ("Allée des Roses", "FR", "alleedesroses"),
    ("8 Avenue des Champs-Élysées", "FR", "8avedeschampselysees"),
    # [SDK] Spain: street types written out, PLAZA not PLZ
    ("C/ Mayor 5", "ES", "callemayor5"),
    ("Avda. de la Constitución 3", "ES", "avenidadelaconstitucion3"),
    ("990 Transport Plaza", "ES", "990transportplaza"),
    ("Pl. Mayor 1", "ES", "plazamayor1"),
    ("Núm. 7", "ES", "number7"),
    # [SDK] Italy
    ("P.zza Garibaldi 3", "IT", "piazzagaribaldi3"),
    ("V.le Europa 12", "IT", "vialeeuropa12"),
    ("C.so Vittorio Emanuele 5", "IT", "corsovittorioemanuele5"),
    ("52 Muir Plaza", "IT", "52muirplz"),
    # nothing left
    ("  ", "US", ""),
    ("#", "US", "number"),
]


@pytest.mark.parametrize(("value", "country", "normalized"), ADDRESS_VECTORS)
def test_address(value: Any, country: str | None, normalized: str) -> None:
    assert normalize("ADDRESS", value, country) == normalized
    expected = sha256_hex(normalized) if normalized else None
    assert prepare("ADDRESS", value, api="dsp", country=country) == expected


# --- STATE -------------------------------------------------------------------------------

STATE_VECTORS = [
    # SPEC §4 / issue 14, [USPS] Appendix B, [CP]
    ("California", "US", "ca"),
    ("New York", "US", "ny"),
    ("NEW YORK", "US", "ny"),
    ("ca", "US", "ca"),
    ("CA", "US", "ca"),
    ("N.Y.", "US", "ny"),
    ("District of Columbia", "US", "dc"),
    ("Washington, D.C.", "US", "dc"),
    ("Washington", "US", "wa"),
    ("Puerto Rico", "US", "pr"),
    ("Calif.", "US", "ca"),  # GPO abbreviation
    ("W. Va.", "US", "wv"),
    ("US-TX", "US", "tx"),  # ISO 3166-2
    ("Alberta", "CA", "ab"),
    ("British Columbia", "CA", "bc"),
    ("Québec", "CA", "qc"),
    ("Quebec", "CA", "qc"),
    ("QC", "CA", "qc"),
    ("PQ", "CA", "qc"),
    ("Terre-Neuve-et-Labrador", "CA", "nl"),
    ("Île-du-Prince-Édouard", "CA", "pe"),
    ("CA-ON", "CA", "on"),
    # no region of the record's country: dropped
    ("shipped", "US", ""),
    ("complete", "US", ""),
    ("Ontario", "US", ""),
    ("CA", "CA", ""),  # California is no Canadian province
    ("Texas", "CA", ""),
    # another country: kept as a name unless a status word
    ("Bayern", "DE", "bayern"),
    ("Île-de-France", "FR", "iledefrance"),
    ("Baden-Württemberg", "DE", "badenwuerttemberg"),
    ("complete", "DE", ""),
    ("Shipped", "GB", ""),
    # unknown country (None, ZZ, OTHER): US and Canadian names and codes become codes
    ("California", None, "ca"),
    ("Québec", None, "qc"),
    ("QC", "ZZ", "qc"),
    ("NY", "OTHER", "ny"),
    ("Île-de-France", None, "iledefrance"),
    ("complete", None, ""),
    ("on hold", None, ""),
    ("..", None, ""),
]


@pytest.mark.parametrize(("value", "country", "normalized"), STATE_VECTORS)
def test_state(value: Any, country: str | None, normalized: str) -> None:
    assert normalize("STATE", value, country) == normalized
    expected = sha256_hex(normalized) if normalized else None
    assert prepare("STATE", value, api="events", country=country) == expected


@pytest.mark.parametrize(
    ("value", "country", "reason"),
    [
        ("shipped", "US", "not a region of US"),
        ("Texas", "CA", "not a region of CA"),
        ("complete", "DE", "a status word, not a region"),
        ("complete", None, "a status word, not a region"),
        ("..", None, "no letters or digits"),
    ],
)
def test_state_drop_reasons(value: Any, country: str | None, reason: str) -> None:
    assert drop_reason("STATE", value, api="dsp", country=country) == reason


# --- POSTAL ------------------------------------------------------------------------------

POSTAL_VECTORS = [
    # SPEC §4: lower-case, no spaces or dashes; US ZIP+4 -> 5 digits
    ("94105", "US", "94105"),
    ("94105-1234", "US", "94105"),
    ("94105 1234", "US", "94105"),
    ("941051234", "US", "94105"),
    (94105, "US", "94105"),
    # a ZIP read as a number lost its leading zero (our choice; [UPL] drops it)
    ("2134", "US", "02134"),
    (2134, "US", "02134"),
    # [UPL] zip_normalizer.py / issue 14: French CEDEX suffixes removed
    ("77304 CEDEX 2", "FR", "77304"),
    ("77304 CEDEX", "FR", "77304"),
    ("42014 Cedex 12", "FR", "42014"),
    ("77304 CEDEX 2", None, "77304"),
    # [CP] A1A 1A1; the forward sortation area alone is partial
    ("K1A 0B1", "CA", "k1a0b1"),
    ("k1a-0b1", "CA", "k1a0b1"),
    ("J9T", "CA", ""),
    ("J9T 2", "CA", ""),
    # [RM] outward + inward code; the outward code alone is partial
    ("SW1A 1AA", "GB", "sw1a1aa"),
    ("OX12 9AB", "GB", "ox129ab"),
    ("M1 1AE", "UK", "m11ae"),
    ("GIR 0AA", "GB", "gir0aa"),
    ("OX12", "GB", ""),
    ("WF9", "GB", ""),
    # fixed-length numeric codes (Deutsche Post, Japan Post, India Post)
    ("10115", "DE", "10115"),
    ("1067", "DE", "01067"),
    ("12345-6789", "DE", ""),
    ("100-0001", "JP", "1000001"),
    ("110001", "IN", "110001"),
    ("11000", "IN", ""),
    ("\uff11\uff10\uff11\uff11\uff15", "DE", "10115"),  # full-width digits
    # other countries and no country: as written
    ("1234 AB", "NL", "1234ab"),
    ("SW1A 1AA", None, "sw1a1aa"),
    ("941051234", None, "941051234"),
    ("94105-1234", None, "94105"),
    (" - ", None, ""),
]


@pytest.mark.parametrize(("value", "country", "normalized"), POSTAL_VECTORS)
def test_postal(value: Any, country: str | None, normalized: str) -> None:
    if isinstance(value, str):
        assert normalize("POSTAL", value, country) == normalized
    expected = sha256_hex(normalized) if normalized else None
    assert prepare("POSTAL", value, api="dsp", country=country) == expected


@pytest.mark.parametrize(
    ("value", "country", "reason"),
    [
        ("J9T", "CA", "a partial postal code"),
        ("OX12", "GB", "a partial postal code"),
        ("941", "US", "a partial postal code"),
        ("SW1A 1AA", "US", "not a postal code of US"),
        ("12345-6789", "DE", "not a postal code of DE"),
        ("12345", "CA", "not a postal code of CA"),
        (" - ", None, "no letters or digits"),
    ],
)
def test_postal_drop_reasons(value: Any, country: str | None, reason: str) -> None:
    assert drop_reason("POSTAL", value, api="dsp", country=country) == reason


# --- pre-hashed values -------------------------------------------------------------------


@pytest.mark.parametrize("api", ["dsp", "events"])
@pytest.mark.parametrize("key_type", ["EMAIL", "PHONE", "FIRST_NAME", "ADDRESS", "POSTAL"])
def test_sha256_of_empty_value_is_dropped(api: str, key_type: str) -> None:
    # issue 14: the example hash of the connector documentation identifies nobody.
    assert sha256_hex("") == EMPTY_SHA256
    for value in (EMPTY_SHA256, EMPTY_SHA256.upper(), f"  {EMPTY_SHA256} "):
        assert prepare(key_type, value, api=api) is None
        assert drop_reason(key_type, value, api=api) == "the SHA-256 of an empty value"
    other = sha256_hex("john@example.com")
    assert prepare(key_type, other.upper(), api=api) == other


# --- Events-API-only raw types -----------------------------------------------------------


@pytest.mark.parametrize("key_type", ["REAL_ID", "MERKLE_ID", "KANTAR_ID"])
def test_vendor_ids_raw_in_events_only(key_type: str) -> None:
    # [SCHEMA] CreateMatchKey: "REAL_ID, MERKLE_ID, KANTAR_ID, and FIP accept raw values".
    assert prepare(key_type, " AbC-123 ", api="events") == "AbC-123"
    assert prepare(key_type, 12345, api="events") == "12345"
    assert prepare(key_type, "   ", api="events") is None
    assert drop_reason(key_type, "   ", api="events") == "empty"
    assert prepare(key_type, "AbC-123", api="dsp") is None
    assert drop_reason(key_type, "AbC-123", api="dsp") == "not supported by the dsp API"


FIP_VECTORS = [
    # [SCHEMA] MatchKeyType FIP: "Full IP address ... Supports IPv4 and IPv6."
    ("8.8.8.8", "8.8.8.8"),
    (" 1.1.1.1 ", "1.1.1.1"),
    ("2607:F8B0:4005:80A::200E", "2607:f8b0:4005:80a::200e"),
    ("[2606:4700:4700::1111]", "2606:4700:4700::1111"),
    ("::ffff:8.8.8.8", "8.8.8.8"),  # IPv4-mapped: the IPv4 address
    # our choice: addresses that name no device on the internet are dropped
    ("10.0.0.1", ""),
    ("192.168.1.20", ""),
    ("127.0.0.1", ""),
    ("fe80::1%eth0", ""),
    ("192.0.2.1", ""),  # documentation range
    ("1.2.3", ""),
    ("8.8.8.8:443", ""),
    ("example.com", ""),
]


@pytest.mark.parametrize(("value", "normalized"), FIP_VECTORS)
def test_fip(value: Any, normalized: str) -> None:
    assert normalize("FIP", value) == normalized
    assert prepare("FIP", value, api="events") == (normalized or None)
    assert prepare("FIP", value, api="dsp") is None


def test_fip_drop_reasons() -> None:
    assert drop_reason("FIP", "10.0.0.1", api="events") == "not a public IP address"
    assert drop_reason("FIP", "example.com", api="events") == "not an IP address"


# --- drop_reason -------------------------------------------------------------------------


def test_drop_reason_general() -> None:
    assert drop_reason("EMAIL", None, api="dsp") == "empty"
    assert drop_reason("EMAIL", "", api="dsp") == "empty"
    assert drop_reason("EMAIL", True, api="dsp") == "not a text or number value"
    assert drop_reason("EMAIL", ["a@b.co"], api="dsp") == "not a text or number value"
    assert drop_reason("MATCH_ID", "crm-1", api="dsp") == "not supported by the dsp API"
    assert drop_reason("MATCH_ID", "x" * 101, api="events") == "longer than 100 characters"
    assert drop_reason("IP_ADDRESS", "8.8.8.8", api="events") == "not a match key type"
    with pytest.raises(ValueError, match="unknown api"):
        drop_reason("EMAIL", "x", api="other")


def test_drop_reason_is_empty_for_a_kept_key() -> None:
    assert drop_reason("EMAIL", "john@example.com", api="dsp") == ""
    assert drop_reason("STATE", "California", api="dsp", country="US") == ""


DROPPED = [
    (key_type, value, country)
    for key_type, vectors in (
        ("EMAIL", [(v, None, n) for v, n in EMAIL_VECTORS]),
        ("PHONE", PHONE_VECTORS),
        ("ADDRESS", ADDRESS_VECTORS),
        ("STATE", STATE_VECTORS),
        ("POSTAL", POSTAL_VECTORS),
        ("FIP", [(v, None, n) for v, n in FIP_VECTORS]),
    )
    for value, country, normalized in vectors
    if not normalized
]


@pytest.mark.parametrize(("key_type", "value", "country"), DROPPED)
def test_every_drop_has_a_short_reason_without_the_value(
    key_type: str, value: Any, country: str | None
) -> None:
    reason = drop_reason(key_type, value, api="events", country=country)
    assert reason
    assert reason == reason.strip()
    assert len(reason) <= 60
    assert reason[0].islower()
    text = str(value).strip().lower()
    assert len(text) < 3 or text not in reason.lower()
