"""The delivery journal (SPEC §5): a rerun to the same destination sends nothing Amazon already
acknowledged — after a kill, after a run whose STATE was never stored, after a full refresh — and
a rerun to another destination (advertiser, API, host) sends everything; an updated row is sent
again; entries last as long as Amazon could accept the event; a damaged journal, or one of an
earlier version, costs a resend, never a failure."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from target_amazon_dsp_conversions.journal import destination, entry_key
from tests.conftest import run_target, seed_record
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import LiveRun, dedupe_id, position, settled_ledger, tap

ADVERTISER = "1234567890"


def journaled(path: Path, config: dict[str, Any], ids: list[str]) -> set[str]:
    """Which of `ids` the journal holds for the destination of `config` (the API, its host and
    the advertiser), whether merged into its index or still in the log of a killed run."""
    if not path.exists():
        return set()
    prefix = destination(config.get("api", "dsp"), config["api_url"])
    account = config["advertiser_id"]
    with sqlite3.connect(path) as db:
        keys = {k for (k,) in db.execute("SELECT key FROM acknowledged")}
        keys |= {k for (k,) in db.execute("SELECT key FROM acknowledged_log")}
    db.close()
    return {i for i in ids if entry_key(prefix, account, i) in keys}


def upload_requests(emulator: AmazonAdsEmulator) -> list[Any]:
    """The requests that carried events."""
    return [r for r in emulator.requests if r.path.endswith("/eventData")]


def test_a_rerun_after_a_kill_sends_nothing_amazon_acknowledged(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(3000)]
    ids = [dedupe_id(r) for r in records]
    emulator.faults.latency_seconds = 0.2  # 1,000 records take a second
    journal = tmp_path / "journal.sqlite"
    config = emulator.target_config(max_concurrent_requests=2, journal_path=str(journal))

    first = LiveRun(config, tmp_path / "first")
    # Records up to 1500, a STATE at 1000 only, and the input stays open: the records after
    # that STATE are acknowledged and journaled, and no STATE can cover them.
    first.feed(tap(records[:1500], state_every=1000)[:-1], close=False)
    first.wait_for_state(at_least=1000)
    # Killed once acknowledgements after that STATE are in the journal, none covering them yet.
    deadline = time.monotonic() + 60
    while not journaled(journal, config, ids[1000:1500]) and time.monotonic() < deadline:
        time.sleep(0.02)
    first.process.send_signal(signal.SIGKILL)
    assert first.finish() == -signal.SIGKILL
    resume_at = position(first.states[-1])
    assert resume_at < len(records), "the kill came too late to test anything"
    after_kill = settled_ledger(emulator)
    # The journal holds acknowledged events only.
    in_journal = journaled(journal, config, ids)
    assert in_journal <= {i for i in ids if after_kill[i]}
    skipped = in_journal - set(ids[:resume_at])
    assert skipped, "the kill came before any acknowledgement after the STATE"

    second = run_target(config, tap(records, start=resume_at), tmp_path / "second")
    assert second.returncode == 0, second.stderr
    assert second.report["records_read"] == len(records) - resume_at
    assert second.report["records_already_acknowledged"] == len(skipped)
    assert second.report["records_accepted"] == len(records) - resume_at
    ledger = emulator.accepted_ids()
    assert set(ledger) == set(ids)
    resent = {i for i, n in ledger.items() if n > 1}
    assert not resent & in_journal, "an event Amazon had acknowledged was sent again"
    # Only what was in flight at the kill (sent, but its answer never read) may be resent.
    assert len(resent) <= 2 * 100


def test_a_full_rerun_after_a_finished_run_sends_nothing_again(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # A cancelled `meltano run` (the STATE printed, never stored) or a `--full-refresh`: the
    # tap sends every row again, though the first run finished and wrote its last STATE.
    records = [seed_record(i) for i in range(300)]
    config = emulator.target_config(journal_path=str(tmp_path / "journal.sqlite"))
    first = run_target(config, tap(records), tmp_path / "first")
    assert first.returncode == 0, first.stderr
    uploads = len(upload_requests(emulator))

    again = run_target(config, tap(records), tmp_path / "again")

    assert again.returncode == 0, again.stderr
    assert again.states[-1] == {"bookmarks": {"conversions": {"n": 300}}}
    assert again.report["records_already_acknowledged"] == 300
    assert again.report["records_accepted"] == 300
    assert len(upload_requests(emulator)) == uploads
    assert sorted(emulator.accepted_ids().values()) == [1] * 300
    assert "300 events acknowledged by Amazon in the last 7 days" in again.stderr


def test_an_acknowledgement_counts_only_for_the_destination_that_gave_it(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(50)]
    journal = str(tmp_path / "journal.sqlite")
    first = run_target(emulator.target_config(journal_path=journal), tap(records), tmp_path / "a")
    assert first.returncode == 0, first.stderr
    host = emulator.url.replace("127.0.0.1", "localhost")  # the same server, another host
    others = {
        "another advertiser": {"advertiser_id": "2222222222", "profile_id": "4444444444"},
        "another host": {"api_url": host},
        "another API": {"api": "events"},
    }
    for name, change in others.items():
        emulator.reset_ledger()
        config = emulator.target_config(journal_path=journal, **change)
        run = run_target(config, tap(records), tmp_path / name.replace(" ", "-"))
        assert run.returncode == 0, (name, run.stderr)
        assert run.report["records_already_acknowledged"] == 0, name
        assert sorted(emulator.accepted_ids().values()) == [1] * 50, name
    # ... and each of them, run again, sends nothing.
    for name, change in others.items():
        emulator.reset_ledger()
        config = emulator.target_config(journal_path=journal, **change)
        run = run_target(config, tap(records), tmp_path / f"{name.replace(' ', '-')}-again")
        assert run.report["records_already_acknowledged"] == 50, name
        assert emulator.accepted_ids() == {}, name


def test_an_updated_row_is_sent_again(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    records = [seed_record(i) for i in range(20)]
    config = emulator.target_config(journal_path=str(tmp_path / "journal.sqlite"))
    first = run_target(config, tap(records), tmp_path / "first")
    assert first.returncode == 0, first.stderr

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

    # The update is what the journal knows now: the same rows again send nothing.
    emulator.reset_ledger()
    third = run_target(config, tap(changed), tmp_path / "third")
    assert third.report["records_already_acknowledged"] == 20
    assert emulator.accepted == []


def test_entries_go_once_amazon_would_no_longer_accept_the_event(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(10)]
    journal = tmp_path / "journal.sqlite"
    config = emulator.target_config(journal_path=str(journal))
    assert run_target(config, tap(records), tmp_path / "first").returncode == 0
    # Eight days pass (the DSP API takes events up to 7 days old): the clock of the entries
    # is moved back instead.
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE acknowledged SET keep_until = keep_until - 8 * 86400")
    db.close()
    emulator.reset_ledger()

    second = run_target(config, tap(records), tmp_path / "second")

    assert second.report["records_already_acknowledged"] == 0
    assert sorted(emulator.accepted_ids().values()) == [1] * 10
    assert journaled(journal, config, [dedupe_id(r) for r in records]) == {
        dedupe_id(r) for r in records
    }


def test_a_damaged_journal_means_a_resend_not_a_failure(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(10)]
    config = emulator.target_config(journal_path="journal.sqlite")
    assert run_target(config, tap(records), tmp_path).returncode == 0
    journal = tmp_path / "journal.sqlite"
    data = bytearray(journal.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the page that says where the tables are
    journal.write_bytes(bytes(data))
    emulator.reset_ledger()

    run = run_target(config, tap(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert "delivery journal journal.sqlite is damaged" in run.stderr
    assert "Traceback" not in run.stderr
    assert sorted(emulator.accepted_ids().values()) == [1] * 10  # all sent, once
    assert run.report["records_already_acknowledged"] == 0
    assert (tmp_path / "journal.sqlite.damaged").exists()
    assert journaled(journal, config, [dedupe_id(r) for r in records]) == {
        dedupe_id(r) for r in records
    }


def test_a_journal_of_an_earlier_version_is_replaced_with_a_warning(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(5)]
    journal = tmp_path / "delivery-journal.jsonl"  # the earlier default name and format
    journal.write_text("".join(f'{{"id": "{dedupe_id(r)}", "digest": "00"}}\n' for r in records))
    config = emulator.target_config(journal_path=journal.name)

    run = run_target(config, tap(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert "is a journal of an earlier version" in run.stderr
    assert sorted(emulator.accepted_ids().values()) == [1] * 5
    assert journaled(journal, config, [dedupe_id(r) for r in records]) == {
        dedupe_id(r) for r in records
    }


def test_a_dry_run_keeps_no_journal(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    config: dict[str, Any] = {**emulator.target_config(dry_run=True), "journal_path": "j.sqlite"}
    run = run_target(config, tap([seed_record(i) for i in range(5)]), tmp_path)
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "j.sqlite").exists()
