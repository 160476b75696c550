"""Opt-outs (SPEC §5): people in `opt_out_streams` are deleted at Amazon (dsp) and suppressed
(both APIs); rows deleted at the source are neither sent nor rejected. Against the emulator."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

OPT_OUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "opt_out_id": {"type": "integer"},
        "email": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"]},
        "first_name": {"type": ["string", "null"]},
        "last_name": {"type": ["string", "null"]},
        "postal_code": {"type": ["string", "null"]},
        "country_code": {"type": ["string", "null"]},
    },
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def opt_outs(people: list[dict[str, Any]], *, state: bool = True) -> list[dict[str, Any]]:
    """An `opt_outs` stream of these people (with a STATE after them unless not `state`)."""
    records = [{"opt_out_id": n, **person} for n, person in enumerate(people, 1)]
    messages = singer_stream(
        records, stream="opt_outs", schema=OPT_OUT_SCHEMA, key_properties=["opt_out_id"]
    )
    return messages if state else messages[:-1]


def orders(customers: list[int], *, prefix: str = "order") -> list[dict[str, Any]]:
    """A `conversions` stream: one order per customer number (emails customer.N@example.com)."""
    records = [seed_record(n, order_id=f"{prefix}-{i}") for i, n in enumerate(customers)]
    return singer_stream(records)


def email_hash(customer: int) -> str:
    return sha(f"customer.{customer}@example.com")


def sent_emails(emu: AmazonAdsEmulator) -> list[str]:
    """The EMAIL hash of every event Amazon accepted, in order."""
    return [
        value
        for event in emu.accepted
        for key in event["matchKeys"]
        if key["type"] == "EMAIL"
        for value in key["values"]
    ]


def config(emu: AmazonAdsEmulator, api: str, **overrides: Any) -> dict[str, Any]:
    return emu.target_config(api=api, opt_out_streams=["opt_outs"], **overrides)


def assert_adds_up(run: TargetRun) -> None:
    report = run.report
    assert report["records_read"] == (
        report["records_accepted"]
        + report["records_rejected"]
        + report["records_undelivered"]
        + report["records_suppressed"]
        + report["records_deleted_at_source"]
    )


# --- both APIs: suppression ----------------------------------------------------------------


@pytest.mark.parametrize("api", ["dsp", "events"])
def test_conversions_after_an_opt_out_are_not_sent_in_this_run_or_later(
    emulator: AmazonAdsEmulator, tmp_path: Path, api: str
) -> None:
    messages = (
        orders([1, 2, 3], prefix="before")
        + opt_outs([{"email": " Customer.2@Example.COM "}])
        + orders([1, 2, 3, 2], prefix="after")
    )
    run = run_target(config(emulator, api), messages, tmp_path)
    assert run.returncode == 0, run.stderr
    # Customer 2's order before the opt-out went out; the two after it did not.
    assert sorted(sent_emails(emulator)) == sorted(email_hash(n) for n in [1, 2, 3, 1, 3])
    report = run.report
    assert report["records_suppressed"] == 2
    assert report["users_opted_out"] == 1
    assert report["records_rejected"] == 0
    assert_adds_up(run)
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 4}}}

    # A later run without opt-out streams still knows: the list is on disk.
    emulator.reset_ledger()
    later = run_target(
        emulator.target_config(api=api),
        orders([2, 4], prefix="later"),
        tmp_path,
    )
    assert later.returncode == 0, later.stderr
    assert sent_emails(emulator) == [email_hash(4)]
    assert later.report["records_suppressed"] == 1
    assert "1 suppressed (people who opted out)" in later.stderr


def test_the_suppression_list_is_owner_only_and_holds_no_personal_data(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    os.umask(0o022)
    person = {"email": "customer.2@example.com", "phone": "+1 415 555 0100"}
    run = run_target(config(emulator, "events"), opt_outs([person]), tmp_path)
    assert run.returncode == 0, run.stderr
    path = tmp_path / "suppression-list.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = b"".join(p.read_bytes() for p in tmp_path.glob("suppression-list.sqlite*"))
    for value in ("customer.2@example.com", "14155550100", email_hash(2), sha("14155550100")):
        assert value.encode() not in data
        assert bytes.fromhex(value.encode().hex()) not in data


def test_a_lone_name_does_not_silence_everyone_of_that_name(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """Name-and-address keys identify a person together: an opted-out Jane Doe of 94105 does
    not suppress every Jane, but does suppress Jane Doe of 94105 whatever her email."""
    person = {
        "first_name": "Jane",
        "last_name": "Doe",
        "postal_code": "94105",
        "country_code": "US",
    }
    schema = {
        **SEED_WITH_NAMES,
    }
    records = [
        seed_record(1, order_id="o1", first_name="Jane"),
        seed_record(2, order_id="o2", first_name="Jane", last_name="Doe", postal_code="94105"),
        seed_record(3, order_id="o3", first_name="JANE", last_name="doe", postal_code="94105-1234"),
    ]
    messages = opt_outs([person]) + singer_stream(records, schema=schema)
    run = run_target(config(emulator, "events"), messages, tmp_path)
    assert run.returncode == 0, run.stderr
    assert sent_emails(emulator) == [email_hash(1)]
    assert run.report["records_suppressed"] == 2


SEED_WITH_NAMES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "eventTime": {"type": "string"},
        "conversionType": {"type": "string"},
        "conversionValue": {"type": ["number", "null"]},
        "currency": {"type": ["string", "null"]},
        "userIdentifier": {"type": ["string", "null"]},
        "countryCode": {"type": ["string", "null"]},
        "first_name": {"type": ["string", "null"]},
        "last_name": {"type": ["string", "null"]},
        "postal_code": {"type": ["string", "null"]},
    },
}


def test_an_opt_out_without_a_match_key_is_rejected_with_its_reason(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    run = run_target(
        config(emulator, "events"),
        opt_outs([{"email": "nobody-at-example"}, {"email": "customer.5@example.com"}]),
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    [reject] = run.rejects
    assert reject["stream"] == "opt_outs"
    assert reject["errors"][0]["code"] == "MISSING_MATCH_KEY"
    assert "email dropped" in reject["errors"][0]["message"]
    assert "nobody" not in reject["errors"][0]["message"]
    assert run.report["users_opted_out"] == 1
    assert_adds_up(run)


def test_events_api_says_once_that_opt_outs_only_suppress(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    people = [{"email": f"customer.{n}@example.com"} for n in range(3)]
    run = run_target(config(emulator, "events"), opt_outs(people), tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("only suppressed") == 1
    assert [r for r in emulator.requests if "delete" in r.path] == []
    assert run.report["users_opted_out"] == 3
    assert run.states[-1] == {"bookmarks": {"opt_outs": {"n": 3}}}


# --- rows deleted at the source --------------------------------------------------------------


@pytest.mark.parametrize("whole_row", [True, False])
def test_rows_deleted_at_the_source_are_counted_not_sent_nor_rejected(
    emulator: AmazonAdsEmulator, tmp_path: Path, whole_row: bool
) -> None:
    deleted_at = "2026-12-01T10:00:00+00:00"
    gone = (
        seed_record(7, order_id="gone", _sdc_deleted_at=deleted_at)
        if whole_row  # a tap that sends the whole row (SDK taps)
        else {"order_id": "gone", "_sdc_deleted_at": deleted_at}  # only its keys (LOG_BASED)
    )
    records = [seed_record(1, order_id="kept"), gone, seed_record(2, order_id="kept-2")]
    schema = {**SEED_WITH_NAMES}
    schema["properties"] = {
        **schema["properties"],
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
    }
    run = run_target(emulator.target_config(), singer_stream(records, schema=schema), tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(sent_emails(emulator)) == sorted([email_hash(1), email_hash(2)])
    assert run.rejects == []
    assert run.report["records_deleted_at_source"] == 1
    assert_adds_up(run)
    assert run.states[-1] == {"bookmarks": {"conversions": {"n": 3}}}


def test_rows_deleted_at_the_source_are_known_through_stream_maps(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """With a stream map the SDK hands the record over; the mark must survive it."""
    records = [
        seed_record(1, order_id="kept"),
        {"order_id": "gone", "_sdc_deleted_at": "2026-12-01T10:00:00Z"},
    ]
    settings = emulator.target_config(
        stream_maps={"conversions": {"note": "'mapped'"}},
    )
    run = run_target(settings, singer_stream(records), tmp_path)
    assert run.returncode == 0, run.stderr
    assert sent_emails(emulator) == [email_hash(1)]
    assert run.rejects == []
    assert run.report["records_deleted_at_source"] == 1


# --- dsp: Amazon's user deletion --------------------------------------------------------------

ADVERTISER = "1234567890"
JANE = {
    "email": "Jane.Doe@Example.com",
    "phone": "(415) 555-0100",
    "first_name": "Jane",
    "last_name": "Doe",
    "postal_code": "94105-1234",
    "country_code": "US",
}


def deletion_requests(emu: AmazonAdsEmulator) -> list[Any]:
    return [r for r in emu.requests if r.path.endswith("/conversionDefinitions/delete")]


def test_dsp_deletes_each_person_with_all_their_keys_then_writes_state(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    people = [JANE, {"email": "customer.9@example.com"}]
    run = run_target(config(emulator, "dsp"), opt_outs(people), tmp_path)
    assert run.returncode == 0, run.stderr
    assert emulator.deleted[ADVERTISER] == [
        (
            ("EMAIL", sha("jane.doe@example.com")),
            ("PHONE", sha("14155550100")),
            ("FIRST_NAME", sha("jane")),
            ("LAST_NAME", sha("doe")),
            ("POSTAL", sha("94105")),
        ),
        (("EMAIL", email_hash(9)),),
    ]
    [request] = deletion_requests(emulator)
    assert request.headers["Content-Type"] == "application/vnd.dspuserdeletionrequest.v1+json"
    assert run.report["users_opted_out"] == 2
    assert run.report["records_accepted"] == 2
    assert run.states[-1] == {"bookmarks": {"opt_outs": {"n": 2}}}


def test_dsp_deletions_go_per_advertiser_at_most_500_per_request(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    other = "5555555555"
    emulator.add_advertiser(other, profile_id="3333333333")
    schema = {
        **OPT_OUT_SCHEMA,
        "properties": {**OPT_OUT_SCHEMA["properties"], "advertiserId": {"type": "string"}},
    }
    records = [
        {"opt_out_id": n, "email": f"person.{n}@example.com", "advertiserId": adv}
        for n, adv in enumerate([ADVERTISER] * 700 + [other] * 501)
    ]
    messages = singer_stream(
        records, stream="opt_outs", schema=schema, key_properties=["opt_out_id"]
    )
    run = run_target(config(emulator, "dsp"), messages, tmp_path)
    assert run.returncode == 0, run.stderr
    sizes = sorted(len(r.body["deletionRequests"]) for r in deletion_requests(emulator))
    assert sizes == [1, 200, 500, 500]
    assert len(emulator.deleted[ADVERTISER]) == 700
    assert len(emulator.deleted[other]) == 501
    assert run.report["users_opted_out"] == 1201


def test_dsp_a_person_amazon_refuses_is_a_reject_with_amazons_reason(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    emulator.refused_match_values[email_hash(2)] = ("INVALID_MATCH_KEY", "not a known person")
    people = [{"email": f"customer.{n}@example.com"} for n in (1, 2, 3)]
    run = run_target(config(emulator, "dsp"), opt_outs(people), tmp_path)
    assert run.returncode == 0, run.stderr
    [reject] = run.rejects
    assert reject["record"]["opt_out_id"] == 2
    assert reject["errors"][0]["code"] == "INVALID_MATCH_KEY"
    assert run.report["users_opted_out"] == 2
    assert_adds_up(run)
    assert run.states[-1] == {"bookmarks": {"opt_outs": {"n": 3}}}


def test_dsp_a_deletion_goes_out_after_the_conversions_read_before_it(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """Amazon deletes what it processed before the deletion: an order of the person read
    before their opt-out must not arrive after it."""
    emulator.faults.latency_seconds = 0.3
    messages = orders([2], prefix="early") + opt_outs([{"email": "customer.2@example.com"}])
    run = run_target(config(emulator, "dsp"), messages, tmp_path)
    assert run.returncode == 0, run.stderr
    upload = next(r for r in emulator.requests if r.path.endswith("/eventData"))
    [deletion] = deletion_requests(emulator)
    assert upload.status == 207
    assert upload.received_at < deletion.received_at
    assert sent_emails(emulator) == [email_hash(2)]
    assert emulator.deleted_values(ADVERTISER) == {email_hash(2)}


def test_dsp_a_refused_deletion_permission_stops_the_run_without_state(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    settings = config(emulator, "dsp", advertiser_id="5555555555", profile_id="6666666666")
    run = run_target(settings, opt_outs([JANE]), tmp_path)
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert run.states == []
    assert run.rejects == []
    assert run.report["records_undelivered"] == 1


def test_dsp_a_kill_between_deletion_and_state_never_lets_a_conversion_through(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """Killed while Amazon holds the deletion: the rerun deletes again (or knows it did), and
    the person's conversions, read after the opt-out, are never sent."""
    from tests.test_restart import LiveRun

    messages = opt_outs([{"email": "customer.2@example.com"}]) + orders([1, 2, 3])
    emulator.faults.hang_calls = frozenset({"user deletion"})
    emulator.faults.hang_seconds = 120
    first = LiveRun(config(emulator, "dsp"), tmp_path)
    first.feed(messages)
    emulator.wait_for_arrivals("user deletion", 1, timeout=120)
    first.process.kill()
    first.finish()
    assert first.states == []

    emulator.faults.hang_calls = frozenset()
    rerun = run_target(config(emulator, "dsp"), messages, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert email_hash(2) not in sent_emails(emulator)
    assert sorted(sent_emails(emulator)) == sorted([email_hash(1), email_hash(3)])
    assert emulator.deleted_values(ADVERTISER) == {email_hash(2)}
    assert rerun.states[-1] == {"bookmarks": {"conversions": {"n": 3}}}

    # A third run knows Amazon has the deletion: nothing is asked again.
    asked = len(deletion_requests(emulator))
    third = run_target(config(emulator, "dsp"), messages, tmp_path)
    assert third.returncode == 0, third.stderr
    assert len(deletion_requests(emulator)) == asked
    assert third.report["users_opted_out"] == 1


def test_dsp_a_dry_run_writes_the_deletion_and_no_state(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    messages = opt_outs([{**JANE, "email": "customer.2@example.com"}]) + orders([1, 2])
    run = run_target(config(emulator, "dsp", dry_run=True), messages, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.states == []
    urls = sorted(request["url"].rsplit("/", 1)[-1] for request in run.dry_run_requests)
    assert urls == ["delete", "eventData"]
    [deletion] = [r for r in run.dry_run_requests if r["url"].endswith("/delete")]
    assert f"/accounts/{ADVERTISER}/dsp/" in deletion["url"]
    assert len(deletion["body"]["deletionRequests"][0]["matchKeys"]) == 5
    # The order of the person read after the opt-out is suppressed in the dry run too.
    assert run.report["records_suppressed"] == 1
    assert not (tmp_path / "suppression-list.sqlite").exists()
    assert emulator.requests == []


def test_dsp_a_deletion_amazon_leaves_out_of_its_answer_fails_the_run(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """A 207 that lists a person neither as deleted nor as refused: not done, not rejected;
    the run exits 1 and no STATE passes them, so the next run asks again."""
    emulator.omit_match_values.add(email_hash(2))
    people = [{"email": f"customer.{n}@example.com"} for n in (1, 2)]
    run = run_target(config(emulator, "dsp"), opt_outs(people), tmp_path)
    assert run.returncode == 1, run.stderr
    assert len(run.error_lines) == 1
    assert run.rejects == []
    assert run.states == []
    assert run.report["records_undelivered"] == 1
    assert run.report["users_opted_out"] == 1
    assert_adds_up(run)
