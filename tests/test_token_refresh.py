"""The 401 rule under load (SPEC §5): a 401 refreshes the access token; only a 401 for the token
a refresh just returned — before any answer showed Amazon takes it — stops the run. Throttling
and 5xx between a refresh and the next 401 must not turn an expired token into a failure."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from tests.conftest import TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import assert_accounted, dedupe_id

RUNS = 5  # 5 runs out of 5
RECORDS = [seed_record(i) for i in range(2000)]


def test_expiring_tokens_under_throttling_and_5xx_deliver_everything_once(
    tmp_path: Path,
) -> None:
    # The runs go side by side, each against its own emulator: they spend most of their time
    # waiting out the pace and the retries, and one after the other they took minutes.
    with ExitStack() as stack:
        emulators = [stack.enter_context(AmazonAdsEmulator()) for _ in range(RUNS)]
        with ThreadPoolExecutor(RUNS) as pool:
            runs = list(pool.map(_run, emulators, [tmp_path / f"run{n}" for n in range(RUNS)]))

        for attempt, (emulator, run) in enumerate(zip(emulators, runs, strict=True), start=1):
            assert run.returncode == 0, (attempt, run.stderr[-3000:])
            assert sorted(emulator.accepted_ids().values()) == [1] * 2000, attempt
            assert set(emulator.accepted_ids()) == {dedupe_id(r) for r in RECORDS}, attempt
            assert run.states[-1] == {"bookmarks": {"conversions": {"n": 2000}}}, attempt
            assert_accounted(run.report)
            statuses = [r.status for r in emulator.requests if r.path != "/auth/o2/token"]
            for status in (401, 429, 503):  # every fault happened
                assert status in statuses, (attempt, sorted(set(statuses)))
            assert emulator.arrivals("token") > 2000 // 100 // 5, (
                attempt,
                "tokens were refreshed along the way",
            )


def _run(emulator: AmazonAdsEmulator, workdir: Path) -> TargetRun:
    """A run against an emulator that kills each access token after 5 requests, answers 429
    (no Retry-After) to every 4th request and 503 to every 7th."""
    faults = emulator.faults
    faults.token_expires_after_requests = 5
    faults.every_nth_429 = 4
    faults.retry_after = None
    faults.every_nth_5xx = 7
    faults.status_5xx = 503
    config = emulator.target_config(max_concurrent_requests=4, max_retries=8)
    return run_target(config, singer_stream(RECORDS, state_every=200), workdir)
