"""Amazon misbehaving (429, 5xx, drops, hangs, expiring tokens, 413, 4xx, 207 with errors):
every record ends accepted exactly once or rejected with Amazon's reason, never lost."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import assert_accounted, dedupe_id


def upload_requests(emulator: AmazonAdsEmulator) -> list:
    """The eventData / events requests the emulator received, faulted ones included."""
    return [
        r for r in emulator.requests
        if r.path.endswith("/eventData") or r.path == "/adsApi/v1/create/events"
    ]  # fmt: skip


def test_thousands_of_records_under_mixed_faults_each_accepted_exactly_once(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(3000)]
    records[10]["eventTime"] = "not a time"  # rejected locally
    records[2500]["conversionType"] = None  # rejected locally: no definition to send to
    poisoned = [dedupe_id(records[i]) for i in (7, 1234, 2999)]
    for dedupe in poisoned:
        emulator.poison_ids[dedupe] = ("INVALID_ARGUMENT", "rejected by the emulator")
    faults = emulator.faults
    faults.latency_seconds = 0.01
    faults.every_nth_429 = 7
    faults.retry_after = "0"
    faults.every_nth_5xx = 11
    faults.status_5xx = 502
    faults.drop_every_nth = 13
    faults.hang_every_nth = 29
    faults.hang_seconds = 3
    faults.token_expires_after_requests = 20
    faults.max_body_bytes = 30_000  # a full batch of 100 is larger: 413, split in halves

    config = emulator.target_config(max_concurrent_requests=4, max_retries=10, request_timeout=1)
    run = run_target(config, singer_stream(records, state_every=250), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 3000}}}
    ledger = emulator.accepted_ids()
    local_rejects = {dedupe_id(records[10]), dedupe_id(records[2500])}
    expected = {dedupe_id(r) for r in records} - local_rejects - set(poisoned)
    assert set(ledger) == expected
    assert set(ledger.values()) == {1}, "an event was accepted twice"

    report = run.report
    assert_accounted(report)
    assert report["records_read"] == 3000
    assert report["records_accepted"] == len(emulator.accepted) == 2995
    assert report["records_rejected"] == len(run.rejects) == 5
    assert report["records_undelivered"] == 0
    assert Counter(e["errors"][0]["code"] for e in run.rejects) == report["rejects_by_code"]
    amazon_rejects = [e for e in run.rejects if e["errors"][0]["code"] == "INVALID_ARGUMENT"]
    assert sorted(e["record"]["order_id"] for e in amazon_rejects) == [
        "order-000007", "order-001234", "order-002999",
    ]  # fmt: skip
    assert all("rejected by the emulator" in e["errors"][0]["message"] for e in amazon_rejects)

    statuses = Counter(r.status for r in upload_requests(emulator))
    for status in (429, 502, 0, 413, 401):  # every fault happened (0 = dropped connection)
        assert statuses[status] > 0, statuses
    assert report["retries"] >= statuses[429] + statuses[502] + statuses[0]
    tokens = [r for r in emulator.requests if r.path == "/auth/o2/token"]
    assert len(tokens) > 1, "expired tokens were refreshed"


def test_a_207_with_failed_items_resends_nothing(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(120)]
    for i in (0, 50, 119):
        emulator.poison_ids[dedupe_id(records[i])] = ("INVALID_ARGUMENT", "bad event", "value")
    run = run_target(emulator.target_config(), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    sent = Counter(
        item["clientDedupeId"] for r in upload_requests(emulator) for item in r.body["eventData"]
    )
    assert set(sent.values()) == {1}
    assert len(sent) == 120
    assert len(run.rejects) == 3
    assert {e["errors"][0]["field"] for e in run.rejects} == {"value"}
    assert run.report["records_accepted"] == 117


def test_429_without_retry_after_backs_off_and_delivers(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.faults.every_nth_429 = 2
    emulator.faults.retry_after = None
    records = [seed_record(i) for i in range(300)]
    config = emulator.target_config(max_concurrent_requests=1, max_retries=3)
    run = run_target(config, singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(emulator.accepted_ids().values()) == [1] * 300
    assert run.report["retries"] >= 2
    assert run.report["requests_throttled"] >= 2
    assert "Amazon throttles account 1234567890 (HTTP 429)" in run.stderr


def test_other_4xx_rejects_every_record_of_the_request_without_retrying(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Amazon refuses the whole request as bad (HTTP 400): final for the records in it.
    emulator.faults.fail_first_n = 2  # the definitions list (its source check), then the upload
    emulator.faults.fail_status = 400
    records = [seed_record(i) for i in range(30)]
    config = emulator.target_config(conversion_definitions={"purchase": "cd-purchase"})
    run = run_target(config, singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr  # every record was settled, with a reason
    assert len(upload_requests(emulator)) == 1
    assert run.report["retries"] == 0
    assert len(run.rejects) == 30
    problem = run.rejects[0]["errors"][0]
    assert problem["code"] == "HTTP_400"
    assert run.rejects[0]["record"] == records[0]
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 30}}}


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        # May view but not edit: uploads answer 403.
        ({"advertiser_id": "5555555555", "profile_id": "6666666666"}, "event_manager_edit"),
        # The profile of another advertiser.
        ({"profile_id": "6666666666"}, "profile"),
        # The Events API, for an advertiser the sign-in cannot reach: it has no profile_id.
        ({"api": "events", "advertiser_id": "7777777777"}, "check advertiser_id"),
    ],
)
def test_an_account_level_403_stops_the_run_and_rejects_nothing(
    emulator: AmazonAdsEmulator, tmp_path: Path, overrides: dict[str, str], why: str
) -> None:
    advertiser = overrides.get("advertiser_id", "1234567890")
    records = [seed_record(i, advertiserId=advertiser) for i in range(30)]
    config = emulator.target_config(
        conversion_definitions={"purchase": {"5555555555": "cd-5555-purchase",
                                             "1234567890": "cd-purchase"}},
        **overrides,
    )  # fmt: skip
    run = run_target(config, singer_stream(records, state_every=10), tmp_path)

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    line = run.error_lines[0]
    assert "HTTP 403" in line and why in line and "30 records not delivered" in line
    # Amazon's words once each, and the advice for the API in use.
    amazon_says = line.split("(HTTP 403", 1)[1].split("): ", 1)[0].split(": ", 1)[-1]
    assert len(amazon_says.split("; ")) == len(set(amazon_says.split("; "))), line
    # The cause is logged at error level too, for an operator who filters a scheduler's log.
    cause = r"\| ERROR +\| .* \| Why the run failed: Amazon refused the upload"
    assert re.search(cause, run.stderr)
    assert "Traceback" not in run.stderr
    assert run.rejects == []  # the records are not at fault: the next run sends them
    assert run.report["records_undelivered"] == 30
    assert run.report["failure"].startswith("Amazon refused the upload")
    assert run.states == []  # no STATE passes a record that was not delivered
    assert run.report["retries"] == 0


def test_401_twice_in_a_row_stops_the_run(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    emulator.faults.token_expires_after_requests = 0  # every token is refused
    records = [seed_record(i) for i in range(10)]
    config = emulator.target_config(conversion_definitions={"purchase": "cd-purchase"})
    run = run_target(config, singer_stream(records, state_every=5), tmp_path)

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "401 again right after a token refresh" in run.error_lines[0]
    assert "10 records not delivered" in run.error_lines[0]
    assert run.states == []
    assert run.rejects == []
    assert_accounted(run.report)
    assert run.report["records_undelivered"] == 10
    assert "Traceback" not in run.stderr


def test_revoked_refresh_token_says_to_sign_in_again(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.revoked_refresh_tokens.add("Atzr|test-refresh-token")
    records = [seed_record(i) for i in range(5)]
    run = run_target(emulator.target_config(), singer_stream(records), tmp_path)

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "Sign in with Amazon again" in run.error_lines[0]
    token_calls = [r for r in emulator.requests if r.path == "/auth/o2/token"]
    assert len(token_calls) == 1, "invalid_grant is not retried"
    assert run.states == []
    assert_accounted(run.report)
    # Each record not delivered is listed by the dedupe ID the next run sends it with.
    assert sorted(u["dedupe_id"] for u in run.report["undelivered"]) == sorted(
        dedupe_id(r) for r in records
    )
    assert "Traceback" not in run.stderr
    assert "Atzr|test-refresh-token" not in run.stderr
