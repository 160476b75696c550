"""Set-up errors stop the run; data errors are rejects (SPEC §5). A problem the same for every
record — a route that does not exist, an advertiser the sign-in cannot reach, a configured
conversion definition the advertiser lacks, no advertiser anywhere — ends the run with exit 1
and one line saying what to fix; the records are undelivered (not rejected) and no STATE passes
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import assert_accounted

CONFIGURED = {"conversion_definitions": {"purchase": "cd-purchase"}}


def assert_stopped_for_set_up(run: TargetRun, *fragments: str) -> str:
    """Exit 1, one line naming what to fix, nothing rejected, no STATE, all accounted for."""
    assert run.returncode == 1, run.stderr[-3000:]
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    line = run.error_lines[0]
    for fragment in fragments:
        assert fragment in line, line
    assert "not delivered" in line
    assert "Traceback" not in run.stderr
    assert run.rejects == []
    assert run.states == []
    report = run.report
    assert_accounted(report)
    assert report["records_undelivered"] == report["records_read"] > 0
    assert report["records_accepted"] == report["records_rejected"] == 0
    return line


def wrong_path(emulator: AmazonAdsEmulator) -> dict[str, Any]:
    return {"api_url": emulator.url + "/v2"}  # a path under the host: no such route


def no_such_method(emulator: AmazonAdsEmulator) -> dict[str, Any]:
    emulator.script("upload", *[405] * 50)
    return {}


@pytest.mark.parametrize(
    ("route", "status"), [(wrong_path, "HTTP 404"), (no_such_method, "HTTP 405")]
)
def test_a_wrong_route_stops_the_run_like_a_refusal(
    emulator: AmazonAdsEmulator, tmp_path: Path, route: Any, status: str
) -> None:
    records = [seed_record(i) for i in range(30)]
    config = emulator.target_config(**CONFIGURED, **route(emulator))
    run = run_target(config, singer_stream(records, state_every=10), tmp_path)

    assert_stopped_for_set_up(run, status, "no such route", "check api_url")
    assert run.report["retries"] == 0
    uploads = [r for r in emulator.requests if emulator.call_kind(r.method, r.path) == "upload"]
    assert len(uploads) <= 4, "the first refusal stops the run; nothing new is sent"


def test_a_404_while_definitions_are_looked_up_stops_the_run(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(10)]
    run = run_target(
        emulator.target_config(**wrong_path(emulator)), singer_stream(records), tmp_path
    )
    assert_stopped_for_set_up(
        run, "Amazon refused to list the conversion definitions of advertiser 1234567890 (HTTP 404"
    )


def test_an_advertiser_the_sign_in_cannot_reach_while_definitions_are_looked_up(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(10)]
    config = emulator.target_config(advertiser_id="9999999999", profile_id=None)
    run = run_target(config, singer_stream(records, state_every=3), tmp_path)
    line = assert_stopped_for_set_up(
        run,
        "Amazon refused to list the conversion definitions of advertiser 9999999999 (HTTP 403",
        "No access to advertiser 9999999999",
        "check advertiser_id",
    )
    assert "TypeError" not in run.stderr and line.count("No access to advertiser") == 1


def test_a_configured_definition_the_advertiser_lacks_stops_the_run(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(10)]
    config = emulator.target_config(conversion_definitions={"purchase": "cd-gone"})
    run = run_target(config, singer_stream(records, state_every=5), tmp_path)
    assert_stopped_for_set_up(
        run,
        "conversion_definitions.purchase: cd-gone is not a conversion definition of advertiser "
        "1234567890",
    )
    assert [r for r in emulator.requests if r.path.endswith("/eventData")] == []


def test_a_record_naming_a_definition_the_advertiser_lacks_is_rejected(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """The record's own conversionDefinitionId is its data: that record is rejected."""
    records = [seed_record(0, conversionDefinitionId="cd-typo"), seed_record(1)]
    run = run_target(emulator.target_config(), singer_stream(records), tmp_path)
    assert run.returncode == 0, run.stderr
    assert [r["errors"][0]["code"] for r in run.rejects] == ["DEFINITION_NOT_FOUND"]
    assert run.report["records_accepted"] == 1


def test_no_advertiser_anywhere_stops_the_run(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    records = [seed_record(i) for i in range(10)]
    config = emulator.target_config(advertiser_id=None, profile_id=None)
    config = {k: v for k, v in config.items() if v is not None}
    run = run_target(config, singer_stream(records, state_every=5), tmp_path)
    assert_stopped_for_set_up(
        run, "names no advertiser and the advertiser_id setting is not set", "set advertiser_id"
    )
    assert [r for r in emulator.requests if r.path != "/auth/o2/token"] == []


def test_data_errors_stay_rejects_beside_a_good_set_up(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(5)]
    records[1]["eventTime"] = "2001-01-01T00:00:00Z"  # too old: the record's fault
    records[3]["userIdentifier"] = "not an email"
    records[3]["email"] = None
    run = run_target(emulator.target_config(), singer_stream(records, state_every=5), tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(run.rejects) == 2
    assert run.report["records_accepted"] == 3
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 5}}}
