"""The SDK's `batch_size_rows`: an upper bound on events per request, never above the API's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

UPLOAD_PATHS = {"dsp": "/eventData", "events": "/adsApi/v1/create/events"}
EVENTS_KEY = {"dsp": "eventData", "events": "events"}


def request_sizes(emulator: AmazonAdsEmulator, api: str) -> list[int]:
    return sorted(
        len(r.body[EVENTS_KEY[api]])
        for r in emulator.requests
        if r.path.endswith(UPLOAD_PATHS[api])
    )


@pytest.mark.parametrize("api", ["dsp", "events"])
def test_batch_size_rows_caps_events_per_request(
    api: str, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    config = emulator.target_config(api=api, batch_size_rows=3)
    run = run_target(config, singer_stream([seed_record(i) for i in range(10)]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 10
    assert request_sizes(emulator, api) == [1, 3, 3, 3]
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 10}}}


def test_batch_size_rows_above_the_apis_limit_is_the_apis_limit(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    config = emulator.target_config(batch_size_rows=100_000)
    run = run_target(config, singer_stream([seed_record(i) for i in range(250)]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert request_sizes(emulator, "dsp") == [50, 100, 100]
