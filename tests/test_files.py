"""The files a run writes (SPEC §6): owner-only whatever the umask, never through a planted link,
one run at a time, checked at start-up before any input is read, and when a disk fills up
mid-run: one line, every record accounted for, rejects lines whole, no STATE past a record
whose reject could not be written, nothing acknowledged sent again."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TARGET, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import LiveRun, assert_accounted, tap

ERROR = "target-amazon-dsp-conversions: error: "


def mounted(directory: Path, options: str) -> bool:
    """A fresh tmpfs on `directory`, where the machine lets the tests mount one (as root)."""
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


@contextlib.contextmanager
def small_disk(directory: Path, kilobytes: int) -> Iterator[Callable[[], None] | None]:
    """`directory` with room for `kilobytes`: a tmpfs of that size where the machine allows
    (yields None), else a limit on the size of every file the target writes, for the caller
    to set in the target's process (yields it): a write past it fails as on a full disk (EFBIG,
    'File too large', instead of ENOSPC)."""
    directory.mkdir()
    if mounted(directory, f"size={kilobytes}k,mode=0700"):
        try:
            yield None
        finally:
            subprocess.run(["umount", "-l", str(directory)], check=False)
        return
    limit = kilobytes * 1024
    yield lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@contextlib.contextmanager
def read_only_directory(directory: Path) -> Iterator[Path]:
    """A directory nobody can create files in: a read-only tmpfs as root (who ignores
    permissions), else mode 555."""
    directory.mkdir()
    if os.geteuid() == 0:
        assert mounted(directory, "ro,mode=0755"), "root, but no read-only mount: cannot test"
        try:
            yield directory
        finally:
            subprocess.run(["umount", "-l", str(directory)], check=False)
        return
    directory.chmod(0o555)
    try:
        yield directory
    finally:
        directory.chmod(0o755)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(ERROR)]


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- owner-only
def test_every_file_is_created_owner_only_whatever_the_umask(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    messages = singer_stream([seed_record(1), seed_record(2, currency="dollars")])
    text = "".join(json.dumps(m) + "\n" for m in messages)
    real = {**emulator.target_config(), "report_path": "reports/daily/report.json"}
    dry = {**emulator.target_config(dry_run=True), "report_path": "dry-report.json"}
    (tmp_path / "real.json").write_text(json.dumps(real))
    (tmp_path / "dry.json").write_text(json.dumps({**dry, "rejects_path": "dry-rejects.jsonl"}))
    old_umask = os.umask(0)  # the child inherits it: files for everyone to read and write
    try:
        for config in ("real.json", "dry.json"):
            run = subprocess.run(
                [*TARGET, "--config", config], input=text, capture_output=True, text=True,
                cwd=tmp_path, timeout=120, check=False,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr
    finally:
        os.umask(old_umask)

    written = {p.name for p in tmp_path.iterdir() if p.is_file()} - {"real.json", "dry.json"}
    assert {
        "rejects.jsonl", "delivery-journal.sqlite", "dry-run-requests.jsonl",
        "dry-rejects.jsonl", "dry-report.json",
    } <= written  # fmt: skip
    for name in [*written, "reports/daily/report.json"]:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    # Directories it made are the owner's alone: nobody else can plant a link in them.
    for name in ("reports", "reports/daily"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o700, name


# --------------------------------------------------------------------------- planted links
@pytest.mark.parametrize(
    ("setting", "extra"),
    [
        ("rejects_path", {}),
        ("report_path", {}),
        ("journal_path", {}),
        ("dry_run_path", {"dry_run": True}),
    ],
)
def test_a_planted_link_is_never_written_through(
    emulator: AmazonAdsEmulator, tmp_path: Path, setting: str, extra: dict[str, Any]
) -> None:
    # Someone else's file, and a link to it where the run writes (a shared directory).
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "out.file").symlink_to(victim)
    config = {**emulator.target_config(**extra), setting: "out.file"}
    if setting != "report_path":
        config["report_path"] = "report.json"

    run = run_target(config, tap([seed_record(i) for i in range(5)]), tmp_path / "run")

    assert run.returncode == 1
    assert error_lines(run.stderr) == [
        f"{ERROR}setting '{setting}': out.file is a symbolic link; the target does not write "
        "through links (another user may have planted it): give a path of your own"
    ]
    assert "Traceback" not in run.stderr
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert run.states == []
    assert emulator.accepted == []


# --------------------------------------------------------------------------- one run at a time
def test_a_second_run_on_the_same_files_is_refused_naming_the_first(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(20)]
    config = emulator.target_config()
    first = LiveRun(config, tmp_path)
    first.feed(tap(records[:10], state_every=10), close=False).join()
    first.wait_for_state(at_least=10)  # running, its files open

    second = run_target(config, tap(records), tmp_path)

    assert second.returncode == 1
    (line,) = error_lines(second.stderr)
    assert line.startswith(f"{ERROR}") and "is in use by another run of the target" in line
    assert f"(process {first.process.pid})" in line
    assert second.states == []
    # The first run goes on undisturbed.
    first.feed(tap(records, start=10)[1:]).join()
    assert first.finish() == 0, first.stderr
    assert first.report["records_accepted"] == 20
    assert sorted(emulator.accepted_ids().values()) == [1] * 20


# --------------------------------------------------------------------------- start-up checks
def test_outputs_that_cannot_be_created_stop_the_run_before_input_is_read(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-directory").mkdir()
    records = tap([seed_record(i) for i in range(5)])
    with read_only_directory(tmp_path / "read-only") as read_only:
        directory, file = tmp_path / "a-directory", tmp_path / "a-file"
        cases = {
            "rejects_path": (str(directory), f"{directory} is a directory; give a file path"),
            "journal_path": (
                f"{file}/journal.sqlite",
                f"cannot create {file}/journal.sqlite: a part of its directory is a file",
            ),
            "report_path": (
                f"{read_only}/report.json",
                f"cannot create {read_only}/report.json: ",
            ),
        }
        for setting, (path, problem) in cases.items():
            config = {**emulator.target_config(), setting: path}
            run = run_target(config, records, tmp_path / setting)
            assert run.returncode == 1, setting
            (line,) = error_lines(run.stderr)
            assert line.startswith(f"{ERROR}setting '{setting}': {problem}"), line
            assert "Traceback" not in run.stderr
            assert run.states == []
            assert emulator.requests == [], "nothing is read or sent"


def test_two_settings_naming_one_file_are_refused(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    config = {**emulator.target_config(), "report_path": "out.json", "rejects_path": "./out.json"}
    run = run_target(config, tap([seed_record(1)]), tmp_path)
    assert run.returncode == 1
    assert error_lines(run.stderr) == [
        f"{ERROR}setting 'report_path': names the same file as rejects_path (out.json); give "
        "each its own"
    ]


# --------------------------------------------------------------------------- full disks
def test_a_full_disk_under_the_rejects_file_stops_the_run_with_every_record_accounted(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # Bad records of ~1 KB each: 64 KB of room holds some 60 of their rejects lines.
    records = [seed_record(i, currency="dollars", note="x" * 1000) for i in range(300)]
    with small_disk(tmp_path / "disk", 64) as limit:
        config = emulator.target_config(rejects_path=str(tmp_path / "disk" / "rejects.jsonl"))
        run = run_target(config, tap(records, state_every=10), tmp_path / "run", preexec_fn=limit)
        written = jsonl(tmp_path / "disk" / "rejects.jsonl")  # each line whole: all parse

    assert run.returncode == 1
    (line,) = error_lines(run.stderr)
    assert f"cannot write {tmp_path}/disk/rejects.jsonl (setting 'rejects_path'): " in line
    assert "Traceback" not in run.stderr
    report = run.report
    assert_accounted(report)
    assert report["records_rejected"] == len(written) > 0
    assert report["records_undelivered"] > 0
    assert "cannot write" in report["failure"]
    # No STATE passes a record whose reject could not be written.
    last = run.states[-1]["bookmarks"]["conversions"]["n"] if run.states else 0
    assert last <= len(written)

    # With room again, a rerun from the last STATE rejects the rest: every record has its line.
    again = run_target(
        {**config, "rejects_path": "rejects.jsonl"}, tap(records, start=last), tmp_path / "again"
    )
    assert again.returncode == 0, again.stderr
    rejected = {r["record"]["order_id"] for r in written + again.rejects}
    assert rejected == {r["order_id"] for r in records}


def test_a_full_disk_under_the_journal_stops_the_run_and_loses_nothing(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [seed_record(i) for i in range(3000)]
    with small_disk(tmp_path / "disk", 96) as limit:
        config = emulator.target_config(
            journal_path=str(tmp_path / "disk" / "journal.sqlite"), max_concurrent_requests=2
        )
        run = run_target(config, tap(records, state_every=100), tmp_path / "run", preexec_fn=limit)

    assert run.returncode == 1, run.stderr
    (line,) = error_lines(run.stderr)
    assert f"cannot write {tmp_path}/disk/journal.sqlite (setting 'journal_path'): " in line
    assert "Traceback" not in run.stderr
    report = run.report
    assert_accounted(report)
    # What Amazon acknowledged counts as accepted, journal or not.
    assert report["records_accepted"] == len(emulator.accepted_ids()) > 0
    last = run.states[-1]["bookmarks"]["conversions"]["n"]
    assert last > 0

    again = run_target(
        {**config, "journal_path": "journal.sqlite"}, tap(records, start=last), tmp_path / "again"
    )
    assert again.returncode == 0, again.stderr
    ledger = emulator.accepted_ids()
    assert len(ledger) == len(records)  # every event accepted
    # Only what was acknowledged after the last STATE the first run could write comes again.
    assert sum(n - 1 for n in ledger.values()) <= report["records_accepted"] - last
