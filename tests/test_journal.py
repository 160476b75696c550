"""The delivery journal (SPEC §5): after a kill, a rerun from the last STATE does not send again
what Amazon already acknowledged; an updated row is sent again; a damaged journal costs a
resend, never a failure; the journal holds only what no written STATE covers."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from tests.conftest import run_target, seed_record
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import LiveRun, dedupe_id, position, settled_ledger, tap


def journal_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}


def test_a_rerun_after_a_kill_sends_nothing_amazon_acknowledged(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(3000)]
    ids = [dedupe_id(r) for r in records]
    emulator.faults.latency_seconds = 0.05
    journal = tmp_path / "journal.jsonl"
    config = emulator.target_config(max_concurrent_requests=2, journal_path=str(journal))

    first = LiveRun(config, tmp_path / "first")
    first.feed(tap(records, state_every=1000))
    first.wait_for_state(at_least=1000)
    time.sleep(0.3)  # acknowledgements after that STATE, and none covering them yet
    first.process.send_signal(signal.SIGKILL)
    assert first.finish() == -signal.SIGKILL
    resume_at = position(first.states[-1])
    assert resume_at < len(records), "the kill came too late to test anything"
    after_kill = settled_ledger(emulator)
    # (An entry the last STATE covers may still be there if the kill fell between the STATE
    # and the journal's pruning: harmless, the rerun does not read that record again.)
    journaled = journal_ids(journal) - set(ids[:resume_at])
    assert journaled, "the kill came before any acknowledgement after the STATE"
    # The journal holds acknowledged events only.
    assert journaled <= {i for i in ids[resume_at:] if after_kill[i]}

    second = run_target(config, tap(records, start=resume_at), tmp_path / "second")
    assert second.returncode == 0, second.stderr
    assert second.report["records_read"] == len(records) - resume_at
    assert second.report["records_already_acknowledged"] == len(journaled)
    assert second.report["records_accepted"] == len(records) - resume_at
    ledger = emulator.accepted_ids()
    assert set(ledger) == set(ids)
    resent = {i for i, n in ledger.items() if n > 1}
    assert not resent & journaled, "an event Amazon had acknowledged was sent again"
    # Only what was in flight at the kill (sent, but its answer never read) may be resent.
    assert len(resent) <= 2 * 100
    assert journal_ids(journal) == set(), "a finished run leaves nothing to skip"


def test_an_updated_row_is_sent_again(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    records = [seed_record(i) for i in range(20)]
    journal = tmp_path / "journal.jsonl"
    config = emulator.target_config(journal_path=str(journal))
    # A tap that wrote no STATE: nothing covers the events, so the journal keeps them all.
    no_state = [m for m in tap(records) if m["type"] != "STATE"]
    first = run_target(config, no_state, tmp_path / "first")
    assert first.returncode == 0, first.stderr
    assert len(journal_ids(journal)) == 20

    emulator.reset_ledger()
    changed = [dict(r) for r in records]
    changed[7]["conversionValue"] = 999.5  # the row was updated at the source
    second = run_target(config, tap(changed), tmp_path / "second")
    assert second.returncode == 0, second.stderr
    assert [e["clientDedupeId"] for e in emulator.accepted] == [dedupe_id(changed[7])]
    assert emulator.accepted[0]["value"] == 999.5
    assert second.report["records_already_acknowledged"] == 19
    assert second.report["records_accepted"] == 20
    assert second.states[-1] == {"bookmarks": {"conversions": {"n": 20}}}


def test_a_damaged_journal_means_a_resend_not_a_failure(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(10)]
    journal = tmp_path / "journal.jsonl"
    journal.write_text('{"id": "' + dedupe_id(records[0]) + '", "digest": "0"}\n{"id": broken\n')
    run = run_target(
        emulator.target_config(journal_path=str(journal)), tap(records), tmp_path / "run"
    )
    assert run.returncode == 0, run.stderr
    assert "delivery journal" in run.stderr and "damaged at line 2" in run.stderr
    assert sorted(emulator.accepted_ids().values()) == [1] * 10  # all sent, once
    assert run.report["records_already_acknowledged"] == 0
    assert journal_ids(journal) == set()


def test_the_journal_holds_no_more_than_the_data_in_flight(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(2000)]
    emulator.faults.latency_seconds = 0.02
    journal = tmp_path / "journal.jsonl"
    live = LiveRun(
        emulator.target_config(max_concurrent_requests=2, journal_path=str(journal)), tmp_path
    )
    live.feed(tap(records, state_every=100))
    sizes = []
    while live.process.poll() is None:
        sizes.append(len(journal_ids(journal)))
        time.sleep(0.01)
    assert live.finish() == 0, live.stderr
    assert max(sizes) > 0, "sampled while events were acknowledged"
    # A STATE every 100 records and two requests of 100 in flight: the journal never holds
    # more than what a STATE interval and the requests in flight hold.
    assert max(sizes) <= 100 + 2 * 100
    assert journal_ids(journal) == set()


def test_a_dry_run_keeps_no_journal(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    config: dict[str, Any] = {**emulator.target_config(dry_run=True), "journal_path": "j.jsonl"}
    run = run_target(config, tap([seed_record(i) for i in range(5)]), tmp_path)
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "j.jsonl").exists()
