"""Property-based: whatever a record holds, the target never crashes on it; a record it cannot
send lands in the rejects file with a reason, and every request it builds is valid for Amazon."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from target_amazon_dsp_conversions.converter import Stream, StreamSpec
from target_amazon_dsp_conversions.errors import Rejected
from target_amazon_dsp_conversions.run import Run
from target_amazon_dsp_conversions.startup_checks import checked_settings
from tests.conftest import run_target
from tests.emulator import AmazonAdsEmulator
from tests.openapi_schemas import request_errors

NOW = datetime.now(timezone.utc)

# Lone surrogates ("\ud800") cannot reach the pipeline: the reader replaces them (see
# test_hostile_input), so they are not generated here.
ODD_TEXT = [
    "", " ", "\u0000", "\uff11\uff12\uff13", "\u0663\u066b\u0665", "NaN", "-Infinity", "-0",
    "1e309", "null", "true",
    "0x1F", "1,234.56", "€12", "😀", "ǅ", "İ", "ß", "a" * 300, "\n\r\t", "<script>", "' OR 1=1",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(ODD_TEXT),
)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    """Good times in every form, times out of range, and malformed ones."""
    moment = NOW - timedelta(seconds=draw(st.integers(min_value=-7200, max_value=30 * 86400)))
    offset = timezone(timedelta(minutes=draw(st.integers(min_value=-14 * 60, max_value=14 * 60))))
    local = moment.astimezone(offset)
    return draw(
        st.sampled_from(
            [
                local.isoformat(),
                local.isoformat().replace("+00:00", "Z"),
                local.replace(tzinfo=None).isoformat(),  # naive
                local.strftime("%Y-%m-%d"),
                local.strftime("%d/%m/%Y %H:%M"),
                int(moment.timestamp()),
                moment.timestamp() * 1000,
                "2024-02-30T00:00:00Z",
                "2024-01-01T25:00:00+00:00",
                "9999-12-31T23:59:59Z",
                "0001-01-01T00:00:00Z",
                "yesterday",
            ]
        )
        | json_like
    )


def _looks_like_an_account_id(value: Any) -> bool:
    text = str(value).strip()
    return not isinstance(value, bool) and text.isascii() and (text.isdigit() or "ENTITY" in text)


def field(
    good: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any] = json_like
) -> st.SearchStrategy[Any]:
    """Mostly plausible values, often hostile ones."""
    return st.one_of(good, good, hostile)


RECORD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "order_id": st.text(min_size=1, max_size=12),
    "eventTime": timestamps(),
    "conversionType": field(
        st.sampled_from(
            [
                "purchase",
                "signup",
                "lead",
                "OFF_AMAZON_PURCHASES",
                "add_to_cart",
                "PURCHASE ",
                "refund",
            ]
        )
    ),
    "name": field(st.text(max_size=60)),
    "conversionValue": field(st.floats(min_value=-1e12, max_value=1e12) | st.decimals(places=4)),
    "currency": field(st.sampled_from(["USD", "usd", "EUR", "JPY", "XXX", "US"])),
    "unitsSold": field(st.integers(min_value=-5, max_value=10**12)),
    "countryCode": field(st.sampled_from(["US", "us", "en-US", "GB", "ZZ", "USA"])),
    "source": field(st.sampled_from(["SERVER_TO_SERVER", "AMAZON_AD_TAG", "server_to_server"])),
    # ENTITY1TESTADVERTISER: the emulator's entity ID of 1234567890 (the Events API takes it).
    # Never another advertiser's ID: Amazon refuses a request for an advertiser the sign-in
    # cannot reach as a whole (403), which stops the run (a set-up error, not a bad record).
    "advertiserId": field(
        st.sampled_from(["1234567890", "ENTITY1TESTADVERTISER", " 1234567890 ", "12.5"]),
        hostile=json_like.filter(lambda value: not _looks_like_an_account_id(value)),
    ),
    "dedupeId": field(st.text(max_size=300)),
    "email": field(st.emails()),
    "phone": field(st.from_regex(r"\+?[0-9 ()-]{4,20}", fullmatch=True)),
    "userIdentifier": field(st.emails() | st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True)),
    "firstName": field(st.text(max_size=20)),
    "postalCode": field(st.from_regex(r"[0-9]{5}(-[0-9]{4})?", fullmatch=True)),
    "maid": field(st.uuids().map(str)),
    "limitedDataUse": field(st.booleans()),
    "customData": json_like,
    "eventSource": field(st.sampled_from(["OFFLINE", "WEBSITE", "APP", "bogus"])),
}
# A sendable record...
GOOD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "order_id": st.text(min_size=1, max_size=12),
    "eventTime": st.integers(min_value=60, max_value=6 * 86400).map(
        lambda s: (NOW - timedelta(seconds=s)).isoformat()
    ),
    "conversionType": st.sampled_from(["purchase", "signup"]),
    "conversionValue": st.floats(min_value=0, max_value=1e9) | st.decimals("0", "1e9", places=2),
    "currency": st.just("USD"),
    "countryCode": st.just("US"),
    "email": st.emails(),
}


@st.composite
def damaged(draw: st.DrawFn) -> dict[str, Any]:
    """...with a few of its fields dropped, replaced by hostile values, or added."""
    record = draw(st.fixed_dictionaries(GOOD_FIELDS))
    for name in draw(st.lists(st.sampled_from(sorted(RECORD_FIELDS)), max_size=3, unique=True)):
        if draw(st.booleans()) and name in record:
            del record[name]
        else:
            record[name] = draw(RECORD_FIELDS[name])
    return record


# Random records are nearly always refused; damaged good ones also exercise the send path.
records = st.one_of(st.fixed_dictionaries({}, optional=RECORD_FIELDS), damaged())


def make_run(tmp_path: Path, api: str) -> Run:
    config = {
        "api": api,
        "dry_run": True,
        "dry_run_path": str(tmp_path / "dry-run-requests.jsonl"),
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "advertiser_id": "1234567890",
        "conversion_definitions": {"purchase": "cd-purchase", "signup": "cd-signup"},
    }
    return Run(checked_settings(config), emit_state=lambda state: None)


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    # JSON Lines end at "\n" only; text may hold U+2028 and other breaks str.splitlines sees.
    return [json.loads(line) for line in path.read_text().split("\n") if line]


@pytest.mark.parametrize("api", ["dsp", "events"])
def test_pipeline_settles_every_hostile_record_without_crashing(api: str, tmp_path: Path) -> None:
    run = make_run(tmp_path, api)
    stats = run.stats
    seen: list[dict[str, Any]] = []
    streams = {
        keyed: Stream.compile("conversions", StreamSpec(None, ("order_id",) if keyed else ()))
        for keyed in (True, False)
    }

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(record=records, keyed=st.booleans())
    def check(record: dict[str, Any], keyed: bool) -> None:
        seen.append(_jsonable(record))
        read, rejected = stats.records_read, stats.records_rejected
        run.process(streams[keyed and "order_id" in record], record)
        assert stats.records_read == read + 1
        assert stats.records_rejected in (rejected, rejected + 1)

    check()
    run.finish()
    assert stats.records_read == stats.records_accepted + stats.records_rejected
    assert stats.records_undelivered == 0
    rejects = lines(tmp_path / "rejects.jsonl")
    assert len(rejects) == stats.records_rejected > 0
    for entry in rejects:
        assert entry["errors"], entry
        for problem in entry["errors"]:
            assert isinstance(problem["code"], str) and problem["code"]
            assert isinstance(problem["message"], str) and problem["message"]
    requests = lines(tmp_path / "dry-run-requests.jsonl")
    assert stats.records_accepted > 0, "no hostile-but-valid record got through"
    for request in requests:
        assert request_errors(api, request["body"]) == []

    # The same hypothesis-generated records, once more through the console script and the
    # emulator (the wire format, the reader, the sink, real uploads).
    console_script_settles(api, seen, tmp_path / "console")


def console_script_settles(api: str, batch: list[dict[str, Any]], workdir: Path) -> None:
    """No crash, every record accounted for, no request refused as a whole."""
    schema = {"type": "object", "properties": {}}
    messages: list[dict[str, Any]] = [
        {"type": "SCHEMA", "stream": "hostile", "schema": schema, "key_properties": []}
    ]
    messages += [{"type": "RECORD", "stream": "hostile", "record": r} for r in batch]
    messages.append({"type": "STATE", "value": {"done": True}})
    with AmazonAdsEmulator() as emulator:
        config = emulator.target_config(
            api=api, conversion_definitions={"purchase": "cd-purchase", "signup": "cd-signup"}
        )
        run = run_target(config, messages, workdir)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
        report = run.report
        assert report["records_read"] == len(batch)
        assert report["records_read"] == report["records_accepted"] + report["records_rejected"]
        assert len(lines(workdir / "rejects.jsonl")) == report["records_rejected"]
        assert report["records_accepted"] == len(emulator.accepted) > 0
        refused = [r.status for r in emulator.requests if r.status >= 400]
        assert refused == [], "the target sent a request Amazon refuses"
        assert run.states == [{"done": True}]


@settings(max_examples=200, deadline=None)
@given(fields=records)
def test_build_conversion_returns_or_rejects_with_reasons(fields: dict[str, Any]) -> None:
    from target_amazon_dsp_conversions.apis import api_for
    from target_amazon_dsp_conversions.conversion import build_conversion

    rules = api_for("dsp").rules
    try:
        conversion = build_conversion(
            fields,
            rules=rules,
            default_source="SERVER_TO_SERVER",
            default_advertiser_id="1234567890",
            user_identifier_type=None,
            dedupe_seed="s\x1f[]",
            now=datetime.now(timezone.utc),
        )
    except Rejected as rejected:
        assert rejected.problems
        assert all(p.code and p.message for p in rejected.problems)
        return
    assert conversion.match_keys
    assert conversion.event_time.endswith("Z")
    if conversion.value is not None:
        assert conversion.value.is_finite()
        assert conversion.value == conversion.value.quantize(Decimal("0.01"))


def _jsonable(value: Any) -> Any:
    # What a tap can put on the wire: JSON, with Python's NaN/Infinity extension.
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() and math.isfinite(float(value)) else str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
