"""The hot path's shortcuts give exactly what the general code gives.

The phone fast path (North American numbers without phonenumbers), the phonenumbers result
cache, the mapping's per-property-set plans and the straight-line conversion path are there
for speed only; these tests compare each with the general path it short-cuts.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import phonenumbers
import pytest

from target_amazon_dsp_conversions import identity
from target_amazon_dsp_conversions.apis import api_for
from target_amazon_dsp_conversions.conversion import build_conversion
from target_amazon_dsp_conversions.errors import Rejected
from target_amazon_dsp_conversions.mapping import CONVERSION_FIELDS, RecordMapping


def _by_phonenumbers(value: str, country: str | None) -> str:
    """SPEC §4 PHONE through phonenumbers alone (the code before the fast path)."""
    text = value.strip()
    if not text:
        return ""
    if text.startswith("00"):
        text = "+" + text[2:]
    region = None
    if not text.startswith("+"):
        region = identity._phone_region(country)
        if region is None:
            digits = "".join(c for c in text if c.isdigit())
            if not 11 <= len(digits) <= 15:
                return ""
            text = "+" + digits
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    # A complete number of its country; a local-only one (no area code) cannot match.
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _phone_spellings(count: int) -> list[str]:
    rnd = random.Random(20240611)
    spellings = []
    for _ in range(count):
        area = f"{rnd.randint(0, 999):03d}"  # 0xx and 1xx are not area codes: slow path
        area = rnd.choice([area, f"({area})"])
        prefix = rnd.choice(["", "1", "+1", "1 ", "+1 ", "+1-", "1.", "+", "001 ", "01", "11"])
        sep = rnd.choice(["", " ", ".", "-"])
        number = f"{prefix}{area}{sep}{rnd.randint(0, 999):03d}{sep}{rnd.randint(0, 9999):04d}"
        spellings.append(rnd.choice([number, f" {number} "]))
    return spellings


@pytest.mark.parametrize("country", [None, "US", "us", "CA", "PR", "MX", "GB", "DE", "XX"])
def test_phone_fast_path_agrees_with_phonenumbers(country: str | None) -> None:
    for spelling in _phone_spellings(1500):
        assert identity.normalize("PHONE", spelling, country) == _by_phonenumbers(
            spelling, country
        ), (spelling, country)


def test_phone_fast_path_takes_everyday_north_american_spellings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_parsing(*_: Any) -> str:
        raise AssertionError("phonenumbers was used")

    monkeypatch.setattr(identity, "_parse_phone", no_parsing)
    for spelling in ("(555) 123-4567", "555.123.4567", "555-123-4567", "1 555 123 4567"):
        assert identity.normalize("PHONE", spelling, "US") == "15551234567"
    assert identity.normalize("PHONE", "+1 555 123 4567", "DE") == "15551234567"
    assert identity.normalize("PHONE", "15551234567", None) == "15551234567"


def test_phone_cache_answers_repeats_and_stays_bounded() -> None:
    identity._parse_phone.cache_clear()
    for _ in range(3):
        assert identity.normalize("PHONE", "030 1234567", "DE") == "49301234567"
    info = identity._parse_phone.cache_info()
    assert (info.hits, info.misses) == (2, 1)
    for n in range(identity._PHONE_CACHE_SIZE + 10):
        identity.normalize("PHONE", f"+44 20 7946 {n % 10000:04d}", None)
        identity.normalize("PHONE", f"+49 30 {n:07d}", None)
    assert identity._parse_phone.cache_info().currsize == identity._PHONE_CACHE_SIZE


def _reference_extract(
    record: dict[str, Any], mapping: dict[str, str], defaults: dict[str, Any]
) -> dict[str, Any]:
    """SPEC §3 lookup, field by field, with no plan."""

    def missing(value: Any) -> bool:
        return value is None or (isinstance(value, str) and not value.strip())

    fields = {}
    for field, candidates in CONVERSION_FIELDS.items():
        value = None
        if field in mapping:
            path = mapping[field]
            if not path:
                value = None  # "" turns the lookup off
            elif path in record:
                value = record[path]
            elif path.replace(".", "__") in record:  # flattened by the SDK
                value = record[path.replace(".", "__")]
            else:
                value = record
                for part in path.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
        else:
            value = next((record[c] for c in candidates if not missing(record.get(c))), None)
        if missing(value):
            value = defaults.get(field)
        if value is not None:
            fields[field] = value
    return fields


def test_mapping_plans_agree_with_field_by_field_lookup() -> None:
    rnd = random.Random(7)
    names = [n for candidates in CONVERSION_FIELDS.values() for n in candidates] + ["other", "x"]
    values: list[Any] = [None, "", "  ", "value", 0, 12.5, False, {"a": 1}]
    configs = [
        ({}, {}),
        ({}, {"countryCode": "US", "currency": "USD"}),
        ({"email": "contact.email", "eventTime": "ts"}, {"countryCode": "US"}),
        ({"email": "contact.email", "state": "", "countryCode": ""}, {"countryCode": "US"}),
    ]
    for mapping, defaults in configs:
        compiled = RecordMapping(mapping, defaults)
        for _ in range(400):
            # Few distinct property sets, as in a real stream, plus odd ones.
            chosen = rnd.sample(names, rnd.randint(0, 12))
            record: dict[str, Any] = {name: rnd.choice(values) for name in chosen}
            if rnd.random() < 0.3:
                record["contact"] = {"email": rnd.choice(values)}
            if rnd.random() < 0.2:
                record["contact.email"] = rnd.choice(values)
            if rnd.random() < 0.2:
                record["contact__email"] = rnd.choice(values)
            expected = _reference_extract(record, mapping, defaults)
            assert compiled.extract(record) == expected, record
            assert compiled.extract(dict(record)) == expected  # the cached plan, again


def test_rejected_record_still_lists_every_problem() -> None:
    api = api_for("dsp", region="NA")
    now = datetime.now(timezone.utc)
    fields = {
        "eventTime": (now - timedelta(days=30)).isoformat(),
        "conversionType": "purchase",
        "conversionValue": "lots",
        "currency": "XXX",
        "countryCode": "US",
        "email": "a@example.com",
    }
    with pytest.raises(Rejected) as caught:
        build_conversion(
            fields,
            rules=api.rules,
            default_source="SERVER_TO_SERVER",
            default_advertiser_id="1234567890",
            user_identifier_type=None,
            dedupe_seed="s",
            now=now,
        )
    codes = sorted(p.code for p in caught.value.problems)
    assert codes == ["EVENT_TOO_OLD", "INVALID_CURRENCY", "INVALID_NUMBER"]


def test_dsp_event_bytes_are_the_payload_amazon_reads() -> None:
    """DspApi.encode writes JSON by hand; it must read back as the event, escapes and all."""
    import json
    from decimal import Decimal

    from target_amazon_dsp_conversions.conversion import Conversion
    from tests.test_dsp_payload import event_bytes

    def reference(c: Conversion) -> dict[str, Any]:
        event: dict[str, Any] = {
            "conversionDefinitionId": c.definition_id,
            "name": c.name,
            "timestamp": c.event_time,
            "countryCode": c.country_code,
            "matchKeys": [{"type": t, "values": [v]} for t, v in c.match_keys],
            "clientDedupeId": c.dedupe_id,
        }
        if c.value is not None:
            event["value"] = float(c.value)
        purchase = c.conversion_type in (None, "OFF_AMAZON_PURCHASES")
        if c.currency is not None and purchase:
            event["currencyCode"] = c.currency
        if c.units_sold is not None and purchase:
            event["unitsSold"] = c.units_sold
        if c.limited_data_use:
            event["dataProcessingOptions"] = "LIMITED_DATA_USE"
        return event

    base: dict[str, Any] = {
        "event_time": "2026-11-22T12:00:00Z",
        "conversion_type": "OFF_AMAZON_PURCHASES",
        "name": "store purchase",
        "country_code": "US",
        "source": "SERVER_TO_SERVER",
        "advertiser_id": "1234567890",
        "dedupe_id": "order-1",
        "match_keys": [("EMAIL", "a" * 64), ("PHONE", "b" * 64)],
        "definition_id": "cd-1",
    }
    variants: list[dict[str, Any]] = [
        {},
        {"value": Decimal("129.99"), "currency": "USD", "units_sold": 2},
        {"value": Decimal("-0.50"), "units_sold": 3, "conversion_type": "SIGN_UP"},
        {"value": Decimal("5"), "currency": "EUR", "units_sold": 3, "conversion_type": "LEAD"},
        {"currency": "EUR", "conversion_type": None},
        {"value": Decimal("9999999999999.99"), "limited_data_use": True, "units_sold": 1},
        {"definition_id": 'cd "2" \\', "conversion_type": None, "units_sold": 5},
        {"name": 'Kauf "Ä" \\ \u2028 \x01 😀', "dedupe_id": "ß\n", "match_keys": []},
        {"value": Decimal("0.00"), "match_keys": [("MAID", "abc-123")]},
    ]
    for overrides in variants:
        conversion = Conversion(**{**base, **overrides})
        encoded = event_bytes(conversion)
        assert json.loads(encoded) == reference(conversion)


def test_dedupe_seed_of_text_keys_is_the_json_encoding() -> None:
    """The seed fast path (text key values) writes what the JSON encoder wrote before it."""
    import json

    from target_amazon_dsp_conversions.conversion import dedupe_seed

    encode = json.JSONEncoder(sort_keys=True, default=str).encode
    for values in (["order-1"], ["a", 'b\u00e9"\\'], ["😀", ""], ["x", "1"]):
        keys = [f"k{i}" for i in range(len(values))]
        record = dict(zip(keys, values, strict=True))
        assert dedupe_seed("s", record, keys) == "s\x1f" + encode(values)
    assert dedupe_seed("s", {"k": 7}, ["k"]) == "s\x1f[7]"
    assert dedupe_seed("s", {}, ["k"]) == "s\x1f[null]"


def test_timestamp_fast_path_agrees_with_the_general_parse() -> None:
    from target_amazon_dsp_conversions.conversion import parse_time

    for text in (
        "2026-11-22T10:00:00+00:00",
        "2026-11-22T10:00:00.123456+00:00",
        "2026-11-22T10:00:00Z",
        "2026-11-22 10:00:00Z",
        "2026-11-22T10:00:00.5Z",
        " 2026-11-22T10:00:00Z",
    ):
        assert parse_time(text) == datetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc).replace(
            microsecond=parse_time(text).microsecond
        )
        assert parse_time(text).tzinfo is timezone.utc
    with pytest.raises(ValueError):
        parse_time("2026-13-22T10:00:00Z")
