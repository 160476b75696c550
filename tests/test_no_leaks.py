"""DEBUG logging on, faults on: no secret, access token or raw identifier reaches stderr, the
report or the dry-run file (only the rejects file keeps the original record)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests.conftest import TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import dedupe_id

DEBUG = {"LOGLEVEL": "DEBUG", "TARGET_AMAZON_DSP_CONVERSIONS_LOGLEVEL": "DEBUG"}

PERSONAL = {
    "email": "Leak.Check@Example.com",
    "phone": "+1 (555) 867-5309",
    "firstName": "Zebulonia",
    "lastName": "Quixotesson",
    "address": "742 Evergreen Terrace",
    "city": "Springfieldia",
    "postalCode": "97403-1234",
}
# The raw values and the normalized forms that get hashed: neither may be seen.
NEEDLES = [
    *PERSONAL.values(),
    "leak.check@example.com",
    "15558675309",
    "5558675309",
    "867-5309",
    "zebulonia",
    "quixotesson",
    "742evergreenterrace",
    "Evergreen",
    "springfieldia",
    "Customer.",  # seed_record's userIdentifier emails
    "customer.",
]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: {"type": ["string", "null"]} for name in
                   ["order_id", "eventTime", "conversionType", "currency", "userIdentifier",
                    "countryCode", *PERSONAL]} | {"conversionValue": {"type": ["number", "null"]}},
}  # fmt: skip


def personal_records(count: int) -> list[dict[str, Any]]:
    records = [seed_record(i, **PERSONAL) for i in range(count)]
    records[3]["eventTime"] = "garbage"  # rejected locally: its reason must not quote the record
    records[4]["email"] = "not-an-email " + PERSONAL["email"]
    return records


def secrets_of(emulator: AmazonAdsEmulator) -> list[str]:
    """The app's secret, the refresh token and every access token the emulator handed out."""
    tokens = {
        r.headers["Authorization"].split(" ", 1)[1]
        for r in emulator.requests
        if r.headers.get("Authorization", "").startswith("Bearer ")
    }
    return [emulator.client_secret, *emulator.refresh_tokens, *tokens]


def everything_but_rejects(run: TargetRun, dry_run: bool) -> dict[str, str]:
    texts = {"stderr": run.stderr, "stdout": run.stdout}
    texts["report"] = (run.workdir / "report.json").read_text()
    if dry_run:
        texts["dry-run file"] = (run.workdir / "dry-run-requests.jsonl").read_text()
    return texts


def assert_nothing_leaks(texts: dict[str, str], needles: list[str]) -> None:
    for where, text in texts.items():
        for needle in needles:
            assert needle not in text, f"{needle!r} appears in the {where}"


def test_debug_run_with_faults_leaks_nothing(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    records = personal_records(250)
    emulator.poison_ids[dedupe_id(records[7])] = ("INVALID_ARGUMENT", "rejected by Amazon")
    emulator.faults.every_nth_429 = 3
    emulator.faults.retry_after = "0"
    emulator.faults.token_expires_after_requests = 2  # 401s and refreshes
    emulator.faults.drop_every_nth = 5
    config = emulator.target_config(max_retries=8, max_concurrent_requests=2)
    messages = singer_stream(records, schema=SCHEMA, state_every=50)
    run = run_target(config, messages, tmp_path, env=DEBUG)

    assert run.returncode == 0, run.stderr[-3000:]
    assert " | DEBUG " in run.stderr, "DEBUG logging was not on"
    assert run.report["retries"] > 0
    assert run.report["records_rejected"] == 2
    assert len([r for r in emulator.requests if r.path == "/auth/o2/token"]) > 1
    assert_nothing_leaks(everything_but_rejects(run, dry_run=False), NEEDLES + secrets_of(emulator))
    # The rejects file is the one place that keeps the original record.
    assert any(PERSONAL["email"] in str(r["record"]) for r in run.rejects)
    for reject in run.rejects:
        assert_nothing_leaks({"reject reason": str(reject["errors"])}, NEEDLES)


def test_dry_run_file_and_debug_log_hold_no_personal_data(tmp_path: Path) -> None:
    config = {
        "dry_run": True,
        "advertiser_id": "1234567890",
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": "dry-run-client-secret",
        "refresh_token": "Atzr|dry-run-refresh-token",
        "conversion_definitions": {"purchase": "cd-purchase"},
    }
    messages = singer_stream(personal_records(20), schema=SCHEMA)
    run = run_target(config, messages, tmp_path, env=DEBUG)

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.dry_run_requests
    texts = everything_but_rejects(run, dry_run=True)
    assert_nothing_leaks(texts, [*NEEDLES, "dry-run-client-secret", "Atzr|dry-run-refresh-token"])


@pytest.mark.parametrize("problem", ["revoked", "wrong secret"])
def test_sign_in_failures_leak_no_secret(
    emulator: AmazonAdsEmulator, tmp_path: Path, problem: str
) -> None:
    if problem == "revoked":
        emulator.revoked_refresh_tokens.add("Atzr|test-refresh-token")
        config = emulator.target_config()
    else:
        config = emulator.target_config(client_secret="a-wrong-secret-value")
    run = run_target(config, singer_stream(personal_records(5), schema=SCHEMA), tmp_path, env=DEBUG)

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    texts = everything_but_rejects(run, dry_run=False)
    assert_nothing_leaks(texts, [*NEEDLES, "a-wrong-secret-value", *secrets_of(emulator)])


# ---------------------------------------------------------------- a server that echoes secrets
def echoed_secrets(emulator: AmazonAdsEmulator) -> list[str]:
    """Every secret, as is and as a form-encoded token request carries it."""
    values = secrets_of(emulator)
    return [*values, *(quote_plus(value) for value in values)]


def test_secrets_the_token_endpoint_echoes_are_not_copied_out(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.faults.echo_request = True
    emulator.revoked_refresh_tokens.add("Atzr|test-refresh-token")
    config = emulator.target_config()
    run = run_target(config, singer_stream(personal_records(5), schema=SCHEMA), tmp_path, env=DEBUG)

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    # The server's answer is still shown, with the secrets it quoted blanked out.
    assert "[redacted]" in run.error_lines[0]
    assert "grant_type=refresh_token" in run.error_lines[0]
    assert "[redacted]" in run.report["failure"]
    assert_nothing_leaks(everything_but_rejects(run, dry_run=False), echoed_secrets(emulator))


def test_an_api_error_echoing_the_access_token_is_not_copied_out(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.faults.echo_request = True
    emulator.faults.fail_first_n = 1
    emulator.faults.fail_status = 400  # a set-up mistake: the run stops, quoting Amazon
    config = emulator.target_config()
    run = run_target(config, singer_stream(personal_records(5), schema=SCHEMA), tmp_path, env=DEBUG)

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    assert "Authorization: Bearer [redacted]" in run.error_lines[0]
    assert "Authorization: Bearer [redacted]" in run.report["failure"]
    assert_nothing_leaks(everything_but_rejects(run, dry_run=False), echoed_secrets(emulator))


def test_reject_reasons_echoing_the_access_token_are_not_copied_out(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.faults.echo_request = True
    records = personal_records(20)
    emulator.poison_ids[dedupe_id(records[7])] = ("INVALID_ARGUMENT", "rejected by Amazon")
    config = emulator.target_config()
    run = run_target(config, singer_stream(records, schema=SCHEMA), tmp_path, env=DEBUG)

    assert run.returncode == 0, run.stderr[-3000:]
    (amazon_reject,) = [r for r in run.rejects if r["dedupe_id"] == dedupe_id(records[7])]
    assert "Authorization: Bearer [redacted]" in str(amazon_reject["errors"])
    texts = everything_but_rejects(run, dry_run=False)
    texts["rejects file"] = (run.workdir / "rejects.jsonl").read_text()
    assert_nothing_leaks(texts, echoed_secrets(emulator))
