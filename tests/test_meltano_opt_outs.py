"""Opt-outs through a real Meltano pipeline (issue #23): a table of opt-outs and a table of orders
from tap-postgres in one `meltano run` (Meltano 4.4.1, tap-postgres 0.10.0, a throwaway
PostgreSQL server, the Amazon Ads emulator with `api: dsp`), set up as a user would: `meltano
select` for the tables, `meltano config set` for their replication and for `opt_out_streams`.

tap-postgres syncs the streams one after the other in the order of its discovered catalog, which
Meltano keeps: by schema, then by table name (SQLAlchemy's reflection orders by relname). So the
tests' `conversions` table is read before `opt_outs`, and the README's `orders` after it. Both
orders are tested: an order read before its buyer's opt-out is sent, and then deleted at Amazon by
the deletion that follows its answer; an order read after the opt-out is never sent.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import AmazonAdsEmulator
from tests.postgres import PostgresServer
from tests.test_meltano import TABLE, TARGET, Project, _insert, installed_project
from tests.test_meltano_pipeline import pipeline_env, stored_state

TAP = "tap-postgres"
OPT_OUTS = "public-opt_outs"
# The README's opt-out table (section "Privacy and opt-outs").
OPT_OUTS_TABLE = """
CREATE TABLE opt_outs (opt_out_id serial PRIMARY KEY, email text, phone text,
                       first_name text, last_name text, postal_code text, country_code text,
                       opted_out_at timestamptz NOT NULL DEFAULT now());
"""
# Jane Doe bought order 3 (by e-mail); the second person, known by phone only, bought order 7.
PEOPLE = """
INSERT INTO opt_outs (email, phone, first_name, last_name, postal_code, country_code, opted_out_at)
VALUES (' Buyer.3@EXAMPLE.com ', '+1 415 555 0103', 'Jane', 'Doe', '94105', 'US',
        now() - interval '30 minutes'),
       (NULL, '(415) 555-0107', NULL, NULL, NULL, 'US', now() - interval '20 minutes');
"""
OPTED_OUT_ORDERS = {3, 7}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


JANE = {
    ("EMAIL", sha("buyer.3@example.com")),
    ("PHONE", sha("14155550103")),
    ("FIRST_NAME", sha("jane")),
    ("LAST_NAME", sha("doe")),
    ("POSTAL", sha("94105")),
}
BY_PHONE = {("PHONE", sha("14155550107"))}


def order_numbers(events: list[dict[str, Any]]) -> list[int]:
    """The order numbers (order-<n> has value n) of accepted or sent events, sorted."""
    return sorted(int(float(event["value"])) for event in events)


def uploads(emulator: AmazonAdsEmulator) -> list[tuple[int, list[int]]]:
    """Each upload request: its position in arrival order, the order numbers it carried."""
    return [
        (i, order_numbers(r.body["eventData"]))
        for i, r in enumerate(emulator.requests)
        if r.path.endswith("/eventData")
    ]


def deletions(emulator: AmazonAdsEmulator) -> list[int]:
    """The positions, in arrival order, of the user-deletion requests."""
    return [i for i, r in enumerate(emulator.requests) if r.path.endswith("/delete")]


def report(project: Project) -> dict[str, Any]:
    """The run report the repository's `dev` environment writes."""
    return json.loads((project.root / "output/run-report.json").read_text())


def set_up_as_a_user(project: Project, orders: str) -> None:
    """Both tables selected and read incrementally; the loader told which stream is opt-outs."""
    for stream, key in ((f"public-{orders}", "updated_at"), (OPT_OUTS, "opted_out_at")):
        project.run("select", TAP, stream, "*")
        project.run("config", "set", TAP, "_metadata", stream, "replication-method", "INCREMENTAL")
        project.run("config", "set", TAP, "_metadata", stream, "replication-key", key)
    project.run("config", "set", TARGET, "opt_out_streams", f'["{OPT_OUTS}"]')


@pytest.mark.parametrize(
    ("orders", "orders_first"),
    [("conversions", True), ("orders", False)],
    ids=["orders-read-before-opt-outs", "opt-outs-read-before-orders"],
)
def test_opt_outs_and_orders_from_tap_postgres_in_one_meltano_run(
    tmp_path: Path, emulator: AmazonAdsEmulator, orders: str, orders_first: bool
) -> None:
    project = installed_project(tmp_path / "project")
    set_up_as_a_user(project, orders)
    with PostgresServer() as postgres:
        postgres.psql("CREATE DATABASE shop")
        postgres.psql(TABLE, database="shop")
        postgres.psql(
            _insert(1, 10, updated="now() - interval '1 hour'", without_match_key=(7,)),
            database="shop",
        )
        postgres.psql(
            "UPDATE conversions SET phone = '+1 415-555-0107' WHERE order_id = 'order-0007';"
            + OPT_OUTS_TABLE
            + PEOPLE,
            database="shop",
        )
        if orders != "conversions":
            postgres.psql(f"ALTER TABLE conversions RENAME TO {orders}", database="shop")
        env = pipeline_env(postgres, emulator)

        first = project.run("run", TAP, TARGET, env=env)

        # tap-postgres reads the tables in name order (module docstring).
        log = first.stderr
        read_orders = log.index(f"Beginning sync of 'public-{orders}'")
        assert (read_orders < log.index(f"Beginning sync of '{OPT_OUTS}'")) == orders_first
        # Both people deleted at Amazon, each with all of their keys, hashed.
        assert sorted(map(set, emulator.deleted["1234567890"]), key=len) == [BY_PHONE, JANE]
        (deletion,) = deletions(emulator)
        # Every other order accepted once; an opted-out person's order only when it was read
        # before the opt-out, and then before the deletion (Amazon deletes what came before).
        sent_before_opt_out = OPTED_OUT_ORDERS if orders_first else set()
        expected = sorted(set(range(1, 11)) - OPTED_OUT_ORDERS | sent_before_opt_out)
        assert order_numbers(emulator.accepted) == expected
        assert all(i < deletion for i, sent in uploads(emulator) if OPTED_OUT_ORDERS & set(sent))
        # The run's report and summary line.
        suppressed = 0 if orders_first else len(OPTED_OUT_ORDERS)
        counts = report(project)
        assert (
            counts["records_read"],
            counts["records_accepted"],
            counts["records_rejected"],
            counts["records_suppressed"],
            counts["users_opted_out"],
        ) == (12, 12 - suppressed, 0, suppressed, 2)
        suppressed_text = f", {suppressed} suppressed (people who opted out)" if suppressed else ""
        assert (
            f"Run complete: 12 records read, {12 - suppressed} accepted, 0 rejected"
            f"{suppressed_text}, 2 opt-outs done;" in log
        ), log[-3000:]
        # The suppression list: owner-only, where the loader keeps its files, holding neither
        # raw values nor the hashes Amazon receives.
        suppression_list = project.root / f"output/{TARGET}/suppression-list.sqlite"
        assert stat.S_IMODE(suppression_list.stat().st_mode) == 0o600
        stored = b"".join(f.read_bytes() for f in suppression_list.parent.glob("suppression-*"))
        assert b"example.com" not in stored.lower()
        hashes = [h for _, value in JANE | BY_PHONE for h in (value.encode(), bytes.fromhex(value))]
        assert not [h for h in hashes if h in stored]
        # Meltano stored a bookmark for both streams.
        bookmarks = stored_state(project)["singer_state"]["bookmarks"]
        assert bookmarks[f"public-{orders}"]["replication_key"] == "updated_at"
        assert bookmarks[OPT_OUTS]["replication_key"] == "opted_out_at"
        newest_opt_out = postgres.psql(
            "SELECT to_char(max(opted_out_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
            "FROM opt_outs", database="shop").strip()  # fmt: skip
        assert bookmarks[OPT_OUTS]["replication_key_value"].startswith(newest_opt_out)

        # Later: Jane orders again, so does someone else; nobody new opts out.
        postgres.psql(
            f"INSERT INTO {orders} VALUES ('order-0011', now(), 'purchase', 11, 'USD', "
            "'buyer.3@example.com', NULL, 'US', now()), ('order-0012', now(), 'purchase', 12, "
            "'USD', 'Buyer.12@Example.com', NULL, 'US', now())",
            database="shop",
        )
        emulator.reset_ledger()

        second = project.run("run", TAP, TARGET, env=env)

    # Jane's opt-out is not read again (the bookmark is past it): the list on disk keeps her
    # new order back. tap-postgres reads from its bookmarks inclusively, so the second person's
    # opt-out and order 10 come again: the delivery journal knows Amazon has them.
    sent = sorted(number for _, numbers in uploads(emulator) for number in numbers)
    assert sent == order_numbers(emulator.accepted) == [12]
    assert deletions(emulator) == []
    counts = report(project)
    assert (counts["records_suppressed"], counts["records_rejected"]) == (1, 0)
    assert "1 suppressed (people who opted out)" in second.stderr
