"""The console script against the emulator, DSP Conversions API (api: dsp)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.openapi_schemas import request_errors


def test_seed_columns_upload_without_mapping(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    records = [seed_record(i) for i in range(250)]
    run = run_target(emulator.target_config(), singer_stream(records, state_every=100), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 250
    assert run.report["records_rejected"] == 0
    assert sorted(emulator.accepted_ids().values()) == [1] * 250
    uploads = [r for r in emulator.requests if r.path.endswith("/eventData")]
    assert sorted(len(r.body["eventData"]) for r in uploads) == [50, 100, 100]
    for request in uploads:
        assert request.status == 207
        assert request_errors("dsp", request.body) == []
        assert request.headers["Authorization"].startswith("Bearer Atza|")
        assert request.headers["Amazon-Advertising-API-Scope"] == "3333333333"
        assert request.headers["Amazon-Ads-AccountId"] == "1234567890"
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 250}}}


def test_definitions_resolve_by_name_and_are_listed_once(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    kinds = ["purchase", "signup", "lead", "add_to_cart"]
    records = [seed_record(i, conversionType=kinds[i % 4]) for i in range(40)]
    run = run_target(emulator.target_config(), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 40
    lists = [r for r in emulator.requests if r.path.endswith("/conversionDefinitions/list")]
    assert len(lists) == 1
    used = {e["conversionDefinitionId"] for e in emulator.accepted}
    assert used == {"cd-purchase", "cd-signup", "cd-lead", "cd-add-to-cart"}
    token_calls = [r for r in emulator.requests if r.path == "/auth/o2/token"]
    assert len(token_calls) == 1  # the access token is reused


def test_configured_definitions_and_record_ids_win(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    other = emulator.add_definition("1234567890", "crm_purchase")
    records = [
        seed_record(0, eventName="anything", conversionType="purchase"),
        seed_record(1, conversionDefinitionId="cd-lead", conversionType="lead"),
    ]
    config = emulator.target_config(conversion_definitions={"purchase": {"1234567890": other}})
    run = run_target(config, singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    by_id = {e["clientDedupeId"]: e["conversionDefinitionId"] for e in emulator.accepted}
    assert sorted(by_id.values()) == sorted([other, "cd-lead"])


def test_missing_definition_is_rejected_or_created(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [
        seed_record(i, eventName="newsletter_signup", conversionType="signup") for i in range(3)
    ]
    refused = run_target(emulator.target_config(), singer_stream(records), tmp_path / "a")
    assert refused.returncode == 0
    assert [r["errors"][0]["code"] for r in refused.rejects] == ["DEFINITION_NOT_FOUND"] * 3
    assert "create_missing_definitions" in refused.rejects[0]["errors"][0]["message"]

    created = run_target(
        emulator.target_config(create_missing_definitions=True),
        singer_stream(records),
        tmp_path / "b",
    )
    assert created.returncode == 0, created.stderr
    assert created.report["records_accepted"] == 3
    made = [d for d in emulator.definitions["1234567890"] if d["name"] == "newsletter_signup"]
    assert len(made) == 1
    assert made[0]["conversionType"] == "SIGN_UP"
    assert made[0]["source"] == "SERVER_TO_SERVER"


def test_source_must_match_the_definition(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    records = [
        seed_record(0, eventName="web_purchase"),  # an AMAZON_AD_TAG definition, record is S2S
        seed_record(1, conversionDefinitionId="cd-web-purchase"),
        seed_record(2, eventName="web_purchase", source="AMAZON_AD_TAG"),
        seed_record(3),
    ]
    run = run_target(emulator.target_config(), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert [r["errors"][0]["code"] for r in run.rejects] == ["SOURCE_MISMATCH"] * 2
    assert run.report["records_accepted"] == 2
    uploads = [r for r in emulator.requests if r.path.endswith("/eventData")]
    assert sorted(r.body["source"] for r in uploads) == ["AMAZON_AD_TAG", "SERVER_TO_SERVER"]


def test_per_item_errors_go_to_rejects_and_the_rest_is_accepted(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i, eventId=f"order-{i}") for i in range(10)]
    emulator.poison_ids["order-3"] = ("INVALID_ARGUMENT", "matchKeys could not be read")
    emulator.poison_ids["order-7"] = ("INVALID_ARGUMENT", "matchKeys could not be read")
    local_bad = [
        seed_record(20, eventTime="2020-01-01T00:00:00Z"),
        seed_record(21, userIdentifier=None),
        seed_record(22, currency="ZZZ"),
        seed_record(23, countryCode="Atlantis"),
        {k: v for k, v in seed_record(24).items() if k != "eventTime"},
        seed_record(25, conversionValue=1e20),
    ]
    run = run_target(emulator.target_config(), singer_stream(records + local_bad), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_read"] == 16
    assert run.report["records_accepted"] == 8
    assert run.report["records_rejected"] == 8
    amazon = [r for r in run.rejects if r["errors"][0]["code"] == "INVALID_ARGUMENT"]
    assert sorted(r["record"]["eventId"] for r in amazon) == ["order-3", "order-7"]
    assert all(r["errors"][0]["message"] for r in amazon)
    local = {r["record"]["order_id"]: r["errors"][0] for r in run.rejects if r not in amazon}
    assert local["order-000020"]["code"] == "EVENT_TOO_OLD"
    assert local["order-000021"]["code"] == "MISSING_MATCH_KEY"
    assert local["order-000022"]["code"] == "INVALID_CURRENCY"
    assert local["order-000023"]["code"] == "INVALID_COUNTRY"
    assert local["order-000024"] == {
        "code": "MISSING_FIELD", "field": "eventTime",
        "message": "eventTime is required: looked for eventTime, event_time, timestamp, none of "
                   "which this record has",
    }  # fmt: skip
    assert local["order-000025"]["code"] == "VALUE_OUT_OF_RANGE"
    sent = sum(len(r.body["eventData"]) for r in emulator.requests if r.path.endswith("/eventData"))
    assert sent == 10  # locally invalid records are never sent
    assert run.report["rejects_by_code"] == {
        "INVALID_ARGUMENT": 2, "EVENT_TOO_OLD": 1, "MISSING_MATCH_KEY": 1, "INVALID_CURRENCY": 1,
        "INVALID_COUNTRY": 1, "MISSING_FIELD": 1, "VALUE_OUT_OF_RANGE": 1,
    }  # fmt: skip


def test_token_refreshed_once_on_401(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    from tests.emulator import Faults

    emulator.faults = Faults(token_expires_after_requests=2)
    records = [seed_record(i) for i in range(500)]
    run = run_target(
        emulator.target_config(max_concurrent_requests=1), singer_stream(records), tmp_path
    )

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 500
    assert sum(1 for r in emulator.requests if r.status == 401) >= 2
    assert sorted(emulator.accepted_ids().values()) == [1] * 500


def test_dry_run_needs_no_credentials_and_sends_nothing(tmp_path: Path) -> None:
    records = [seed_record(i) for i in range(120)]
    config = {
        "dry_run": True,
        "advertiser_id": "1234567890",
        "profile_id": "3333333333",
        "conversion_definitions": {"purchase": "cd-purchase"},
    }
    run = run_target(config, singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    requests = run.dry_run_requests
    assert [len(r["body"]["eventData"]) for r in requests] == [100, 20]
    for request in requests:
        assert request["method"] == "POST"
        assert request["url"].startswith("https://advertising-api.amazon.com/accounts/1234567890/")
        assert request["headers"]["Authorization"] == "Bearer <redacted>"
        assert request_errors("dsp", request["body"]) == []
    assert "customer.1@example.com" not in (tmp_path / "dry-run-requests.jsonl").read_text().lower()
    assert run.report["dry_run"] is True
    assert (run.report["records_written"], run.report["records_accepted"]) == (120, 0)
    assert (run.report["requests_written"], run.report["requests_sent"]) == (2, 0)
    summary = "Run complete: 120 records read, 120 written to the dry-run file, 0 rejected"
    assert summary in run.stderr
    # An orchestrator would store a STATE and skip these rows in the real run.
    assert run.states == []
    last_line = run.stderr.rstrip().splitlines()[-1]
    assert last_line.endswith("dry run: no STATE written, so the real run sends these records")


def test_missing_client_id_fails_before_reading_input(tmp_path: Path) -> None:
    config = {"client_secret": "s3cret-value", "refresh_token": "Atzr|x"}
    run = run_target(config, "this is not even JSON\n", tmp_path)

    assert run.returncode != 0
    assert run.error_lines == [
        "target-amazon-dsp-conversions: error: setting 'client_id': is required "
        "(or set dry_run: true to run without credentials)"
    ]
    assert "Traceback" not in run.stderr
    assert "s3cret-value" not in run.stderr


def test_revoked_refresh_token_says_sign_in_again(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    config = emulator.target_config()
    emulator.revoked_refresh_tokens.add(config["refresh_token"])
    emulator.refresh_tokens.discard(config["refresh_token"])
    run = run_target(config, singer_stream([seed_record(1)]), tmp_path)

    assert run.returncode != 0
    assert len(run.error_lines) == 1
    assert "Sign in with Amazon again" in run.error_lines[0]
    assert "invalid_grant" in run.error_lines[0]
    assert "Traceback" not in run.stderr
    token_calls = [r for r in emulator.requests if r.path == "/auth/o2/token"]
    assert len(token_calls) == 1  # not retried
    assert run.states == []


def test_bad_singer_input_is_one_line_and_keeps_what_came_before(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    good = singer_stream([seed_record(i) for i in range(5)])
    text = "".join(__import__("json").dumps(m) + "\n" for m in good)
    run = run_target(emulator.target_config(), text + '{"type": "RECORD", "stream": \n', tmp_path)

    assert run.returncode != 0
    assert run.error_lines == [
        "target-amazon-dsp-conversions: error: input line 8 is not valid JSON "
        "(Expecting value at column 31); nothing after it was read"
    ]
    assert run.report["records_accepted"] == 5  # what was read before the bad line is delivered
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 5}}}


def test_record_before_schema_is_one_line(tmp_path: Path) -> None:
    message = {"type": "RECORD", "stream": "orders", "record": seed_record(1)}
    run = run_target({"dry_run": True}, [message], tmp_path)

    assert run.returncode != 0
    assert len(run.error_lines) == 1
    assert "before a corresponding schema" in run.error_lines[0]
    assert "Traceback" not in run.stderr


def test_records_with_wrong_types_are_rejected_not_fatal(tmp_path: Path) -> None:
    records = [seed_record(1), seed_record(2, conversionValue="lots"), seed_record(3, email=42)]
    run = run_target(
        {"dry_run": True, "advertiser_id": "1234567890"}, singer_stream(records), tmp_path
    )

    assert run.returncode == 0, run.stderr
    codes = sorted(r["errors"][0]["code"] for r in run.rejects)
    assert codes == ["SCHEMA_MISMATCH", "SCHEMA_MISMATCH"]
    assert run.rejects[0]["errors"][0]["field"] in {"conversionValue", "email"}
    assert "lots" not in run.stderr


def test_a_type_word_without_name_finds_the_one_definition_of_that_type(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(0, conversionType="Add to cart"), seed_record(1, conversionType="LEAD")]
    run = run_target(emulator.target_config(), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(e["conversionDefinitionId"] for e in emulator.accepted) == [
        "cd-add-to-cart", "cd-lead"
    ]  # fmt: skip
