"""The 401 rule under load (SPEC §5): a 401 refreshes the access token; only a 401 for the token
a refresh just returned — before any answer showed Amazon takes it — stops the run. Throttling
and 5xx between a refresh and the next 401 must not turn an expired token into a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import assert_accounted, dedupe_id


@pytest.mark.parametrize("attempt", range(1, 6))  # 5 runs out of 5
def test_expiring_tokens_under_throttling_and_5xx_deliver_everything_once(
    emulator: AmazonAdsEmulator, tmp_path: Path, attempt: int
) -> None:
    faults = emulator.faults
    faults.token_expires_after_requests = 5
    faults.every_nth_429 = 4
    faults.retry_after = None
    faults.every_nth_5xx = 7
    faults.status_5xx = 503
    records = [seed_record(i) for i in range(2000)]
    config = emulator.target_config(max_concurrent_requests=4, max_retries=8)
    run = run_target(config, singer_stream(records, state_every=200), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(emulator.accepted_ids().values()) == [1] * 2000
    assert set(emulator.accepted_ids()) == {dedupe_id(r) for r in records}
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 2000}}}
    assert_accounted(run.report)
    statuses = [r.status for r in emulator.requests if r.path != "/auth/o2/token"]
    for status in (401, 429, 503):  # every fault happened
        assert status in statuses, (attempt, sorted(set(statuses)))
    assert emulator.arrivals("token") > 2000 // 100 // 5, "tokens were refreshed along the way"
