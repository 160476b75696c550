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
