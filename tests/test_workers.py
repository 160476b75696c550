"""Worker processes: the same input gives the same events, rejects, report and STATE with
and without them; a worker that dies or a killed target loses nothing and leaves no process."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
import pytest

from target_amazon_dsp_conversions.conversion_settings import ConversionSettings
from target_amazon_dsp_conversions.converter import (
    Block,
    Converted,
    Converter,
    Refused,
    Stream,
    StreamSpec,
    split_lines,
)
from target_amazon_dsp_conversions.workers import WorkerPool
from tests.conftest import SEED_SCHEMA, TargetRun, run_target
from tests.emulator import AmazonAdsEmulator
from tests.test_restart import LiveRun, assert_accounted, dedupe_id, tap

POOL_STARTED = "Converting records in 2 worker processes"
POOL_BROKEN = "A worker process stopped unexpectedly"

ORDERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **SEED_SCHEMA["properties"],
        "order_id": {"type": ["string", "null"]},
        "conversionType": {"type": ["string", "null"]},
        "eventName": {"type": ["string", "null"]},
        "unitsSold": {"type": ["integer", "null"]},
        "_sdc_extracted_at": {"type": ["string", "null"]},
        # The one mapping of the run reads `user.ramp` (signups): a column of every stream.
        "user": {"type": ["object", "null"]},
    },
}
SIGNUPS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user": {"type": "object", "properties": {"ramp": {"type": "string"}}},
        "timestamp": {"type": ["string", "integer"]},
        "userIdentifier": {"type": "string"},
        "event_type": {"type": "string"},
    },
}


def _ago(minutes: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=minutes)


def order(i: int) -> dict[str, Any]:
    """A purchase; one in a few has something the target must reject or treat specially."""
    record: dict[str, Any] = {
        "order_id": f"order-{i:06d}",
        "eventTime": _ago(5 + i % 900).isoformat(),
        "conversionType": "purchase",
        "conversionValue": round(10 + i * 0.37, 2),
        "currency": "USD",
        "email": f" Customer.{i}@Example.com ",
        "phone": f"(201) 555-{i % 10000:04d}",
        "countryCode": "US",
        "_sdc_extracted_at": _ago(1).isoformat(),
    }
    variant = i % 40
    if variant == 1:
        record["conversionValue"] = "twelve"  # breaks the SCHEMA
    elif variant == 2:
        record["eventTime"] = _ago(60 * 24 * 30).isoformat()  # older than the DSP's 7 days
    elif variant == 3:
        record["order_id"] = None  # all key properties null
    elif variant == 4:
        record.update(email="n/a", phone=None)  # no usable match key
    elif variant == 5:
        record["eventTime"] = _ago(30).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif variant == 6:
        record["eventTime"] = _ago(45).astimezone(timezone(timedelta(hours=2))).isoformat()
    elif variant == 7:
        record.update(eventName="web_purchase")  # an AMAZON_AD_TAG definition: SOURCE_MISMATCH
    elif variant == 8:
        record.update(conversionType=None, eventName="lead", unitsSold=2)
    elif variant == 9:
        record.update(email="Zoë.Ünïcode@Example.com", eventName="SCHEMA")
    elif variant == 10:
        record.update(currency="XXX")
    return record


def signup(i: int) -> dict[str, Any]:
    """A record of a stream without key properties, one field nested (see `mapping`)."""
    return {
        "user": {"ramp": f"ramp-{i}"},
        "timestamp": int(_ago(i % 300).timestamp()),
        "userIdentifier": f"member{i}@example.org",
        "event_type": "signup",
    }


def schema(stream: str, schema: dict[str, Any], key_properties: list[str]) -> dict[str, Any]:
    return {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": key_properties}


def mixed_input(orders: int = 2400) -> list[dict[str, Any]]:
    """Two streams, STATE every 250 records, a SCHEMA repeated and one changed mid-way, and a
    SCHEMA spelled with an escape the reader cannot see coming."""
    messages: list[dict[str, Any]] = [schema("orders", ORDERS_SCHEMA, ["order_id"])]
    messages.append(schema("signups", SIGNUPS_SCHEMA, []))
    for i in range(orders):
        messages.append({"type": "RECORD", "stream": "orders", "record": order(i)})
        if i % 3 == 0:
            messages.append({"type": "RECORD", "stream": "signups", "record": signup(i)})
        if i % 250 == 249:
            messages.append({"type": "STATE", "value": {"bookmarks": {"orders": {"n": i + 1}}}})
        if i == orders // 3:
            # The same SCHEMA again: nothing changes.
            messages.append(messages[0])
        if i == orders // 2:
            # Values above 600 no longer allowed: the last third of the orders break it.
            changed = json.loads(json.dumps(ORDERS_SCHEMA))
            changed["properties"]["conversionValue"]["maximum"] = 600
            messages.append(schema("orders", changed, ["order_id"]))
        if i == orders * 9 // 10:
            messages.append({"type": "ESCAPED_SCHEMA"})  # replaced below
    messages.append({"type": "STATE", "value": {"bookmarks": {"orders": {"n": orders}}}})
    return messages


def as_text(messages: list[dict[str, Any]]) -> str:
    # From here on signups need a numeric event_type: the later ones are rejected.
    changed = json.loads(json.dumps(SIGNUPS_SCHEMA))
    changed["properties"]["event_type"] = {"type": "integer"}
    escaped = json.dumps(schema("signups", changed, [])).replace('"SCHEMA"', '"\\u0053CHEMA"')
    return "".join(
        escaped + "\n" if m.get("type") == "ESCAPED_SCHEMA" else json.dumps(m) + "\n"
        for m in messages
    )


def run(emulator: AmazonAdsEmulator, workdir: Path, text: str, **settings: Any) -> TargetRun:
    emulator.reset_ledger()
    config = emulator.target_config(
        mapping={"rampId": "user.ramp"},
        defaults={"countryCode": "US"},
        **settings,
    )
    return run_target(config, text, workdir)


def comparable_rejects(result: TargetRun) -> list[str]:
    return sorted(
        json.dumps({k: v for k, v in line.items() if k != "rejected_at"}, sort_keys=True)
        for line in result.rejects
    )


def comparable_events(emulator: AmazonAdsEmulator) -> list[str]:
    return sorted(json.dumps(event, sort_keys=True) for event in emulator.accepted)


@pytest.mark.parametrize("api", ["dsp", "events"])
def test_workers_change_nothing_but_speed(
    emulator: AmazonAdsEmulator, tmp_path: Path, api: str
) -> None:
    messages = mixed_input()
    emulator.poison_ids[dedupe_id(order(100), "orders")] = ("INVALID_ARGUMENT", "poisoned")
    emulator.poison_ids[dedupe_id(order(1700), "orders")] = ("INVALID_ARGUMENT", "poisoned")
    text = as_text(messages)
    assert len(text.encode()) > 3 * 256 * 1024, "large enough for the workers to start"

    alone = run(emulator, tmp_path / "alone", text, api=api, worker_processes=0)
    alone_events = comparable_events(emulator)
    workers = run(emulator, tmp_path / "workers", text, api=api, worker_processes=2)
    workers_events = comparable_events(emulator)

    assert alone.returncode == workers.returncode == 0, workers.stderr[-3000:]
    assert POOL_STARTED in workers.stderr and POOL_STARTED not in alone.stderr
    assert POOL_BROKEN not in workers.stderr
    assert workers_events == alone_events
    assert len(alone_events) > 1500
    assert comparable_rejects(workers) == comparable_rejects(alone)
    codes = {e["code"] for line in alone.rejects for e in line["errors"]}
    expected = {"SCHEMA_MISMATCH", "NULL_KEY_PROPERTIES", "MISSING_MATCH_KEY", "INVALID_CURRENCY"}
    expected |= {"EVENT_TOO_OLD", "SOURCE_MISMATCH", "INVALID_ARGUMENT"} if api == "dsp" else set()
    assert expected <= codes
    # How records were cut into requests depends on timing (a batch is flushed by age ~2 s after
    # its first record, which a loaded machine reaches at other moments), not on the workers.
    timing = {"requests_sent", "retries", "requests_throttled", "requests_per_second"}
    ignore = {"duration_seconds", *timing}
    assert {k: v for k, v in workers.report.items() if k not in ignore} == {
        k: v for k, v in alone.report.items() if k not in ignore
    }
    assert workers.states[-1] == alone.states[-1] == {"bookmarks": {"orders": {"n": 2400}}}


def test_workers_in_a_dry_run_write_the_same_requests(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    text = as_text(mixed_input(1500))
    alone = run(emulator, tmp_path / "alone", text, dry_run=True, worker_processes=0)
    workers = run(emulator, tmp_path / "workers", text, dry_run=True, worker_processes=2)

    def events(result: TargetRun) -> list[str]:
        return sorted(
            json.dumps(event, sort_keys=True)
            for request in result.dry_run_requests
            for event in request["body"].get("eventData", request["body"].get("events", []))
        )

    assert POOL_STARTED in workers.stderr
    assert events(workers) == events(alone)
    assert len(events(alone)) > 1000


def _is_worker(process: psutil.Process) -> bool:
    try:
        return "target_amazon_dsp_conversions.workers" in process.cmdline()
    except psutil.Error:  # gone, or a zombie
        return False


def _workers_of(process: psutil.Process, count: int = 2) -> list[psutil.Process]:
    deadline = time.monotonic() + 120  # generous: starting Python is slow on a busy machine
    while time.monotonic() < deadline:
        children = [p for p in process.children() if _is_worker(p)]
        if len(children) == count:
            return children
        time.sleep(0.05)
    raise AssertionError("the worker processes did not start")


def test_a_worker_that_dies_loses_nothing(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    records = [order(i * 40) for i in range(6000)]  # variant 0 only: all valid
    emulator.faults.latency_seconds = 0.02
    live = LiveRun(emulator.target_config(worker_processes=2, max_concurrent_requests=2), tmp_path)
    messages = tap(records, state_every=500)
    writer = live.feed(messages[: len(messages) // 2], close=False)
    workers = _workers_of(psutil.Process(live.process.pid))
    live.wait_for_state(at_least=500)
    workers[0].kill()
    writer.join()  # the first half is written before the rest: one writer at a time
    live.write(messages[len(messages) // 2 :])

    assert live.finish() == 0, live.stderr[-3000:]
    assert POOL_BROKEN in live.stderr
    report = live.report
    assert_accounted(report)
    assert report["records_accepted"] == len(records)
    assert set(emulator.accepted_ids()) == {dedupe_id(r) for r in records}
    assert live.states[-1] == {"bookmarks": {"conversions": {"n": len(records)}}}


def test_killing_the_target_leaves_no_worker_behind(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [order(i * 40) for i in range(3000)]
    live = LiveRun(emulator.target_config(worker_processes=2), tmp_path)
    live.feed(tap(records), close=False)  # the input stays open: the run would go on
    target = psutil.Process(live.process.pid)
    workers = _workers_of(target)
    live.wait_for_state(at_least=3000)

    _kill_and_wait_for_workers(live, workers)


def _kill_and_wait_for_workers(live: LiveRun, workers: list[psutil.Process]) -> None:
    live.process.send_signal(signal.SIGKILL)
    live.process.wait(timeout=60)
    deadline = time.monotonic() + 60
    while any(_running(w) for w in workers):
        assert time.monotonic() < deadline, "a worker outlived the target"
        time.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    # An exited worker whose new parent has not reaped it yet is a zombie: it is gone.
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


SETTINGS = ConversionSettings(
    api="dsp",
    region="NA",
    mapping={},
    defaults={},
    source="SERVER_TO_SERVER",
    advertiser_id="1234567890",
    user_identifier_type=None,
)
ORDERS = {"orders": StreamSpec(ORDERS_SCHEMA, ("order_id",))}


def test_a_dead_worker_breaks_the_pool_and_its_block_comes_back_unconverted() -> None:
    pool = WorkerPool(1, SETTINGS)
    try:
        deadline = time.monotonic() + 30
        while not pool.has_free_worker:  # until the worker said it is ready
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.01)
        pool.set_streams(ORDERS)
        block = Block(
            "".join(
                json.dumps({"type": "RECORD", "stream": "orders", "record": order(i * 40)}) + "\n"
                for i in range(10)
            ).encode()
        )
        pool.send(block)
        received, converted = pool.receive()
        assert received == block and converted is not None and None not in converted

        (worker,) = _workers_of(psutil.Process(), count=1)
        worker.kill()
        worker.wait(timeout=10)
        assert pool.has_free_worker  # it does not know yet
        pool.send(block)
        assert pool.receive() == (block, None)
        assert pool.broken and not pool.has_free_worker
    finally:
        pool.close(wait=False)


def test_a_worker_converts_a_block_as_the_main_process_does() -> None:
    """Unit level: a worker's results equal the main process's `Converter.convert_block`,
    and each line's result equals `Converter.convert` of its record."""
    lines = [
        json.dumps({"type": "RECORD", "stream": "orders", "record": order(i)}) for i in range(40)
    ]
    lines += [
        '{"type": "STATE", "value": {}}',
        '{"type": "RECORD", "stream": "unknown", "record": {}}',
        '{"type": "RECORD", "stream": "orders", "record": {"eventTime": "x"}}',  # no key
        '{"type": "RECORD", "stream": "orders", "record": {"order_id": "\\ud800"}}',
        "not json",
        "",
        '{"type": "RECORD", "stream": "orders", "record": [1]}',
        json.dumps({"type": "SCHEMA", "stream": "orders", "schema": {}, "key_properties": []}),
        json.dumps({"type": "RECORD", "stream": "orders", "record": order(0)}),
    ]
    block = "\n".join(lines).encode()
    assert len(split_lines(block)) == len(lines)
    converter = Converter(SETTINGS)
    converter.set_streams(ORDERS)
    results = converter.convert_block(block)

    assert len(results) == len(lines)
    # Only records of known streams are converted (a record that is no object is refused);
    # whatever follows a SCHEMA is left to the reader.
    assert results[40:46] == [None] * 6
    assert results[46] == Refused("orders", (results[46].problems[0],))  # type: ignore[union-attr]
    assert results[47:] == [None, None]
    kinds = {result.kind for result in results if isinstance(result, Converted)}
    assert len(kinds) < 6, "what events have in common is shared"
    decode = json.JSONDecoder(parse_float=Decimal).decode
    now = datetime.now(timezone.utc)
    stream = Stream.compile("orders", ORDERS["orders"])
    for i, result in enumerate(results[:40]):
        record = decode(lines[i])["record"]
        record.pop("_sdc_extracted_at")
        expected = converter.convert(stream, record, now)
        if i % 40 in (1, 2, 3, 4, 10):
            assert isinstance(result, Refused) and result.stream == "orders" and result.problems
        assert result == expected

    pool = WorkerPool(1, SETTINGS)
    try:
        deadline = time.monotonic() + 30
        while not pool.has_free_worker:
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.01)
        pool.set_streams(ORDERS)
        pool.send(Block(block))
        _, from_worker = pool.receive()
    finally:
        pool.close(wait=False)
    assert from_worker == results


def test_a_worker_whose_main_process_died_mid_message_exits_quietly(tmp_path: Path) -> None:
    """The main process SIGKILLed while handing a block over: the worker's pipe ends inside
    a message. The worker ends without a traceback on the shared stderr."""
    job_read, job_write = os.pipe()
    result_read, result_write = os.pipe()
    with (tmp_path / "stderr.txt").open("w+") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", "target_amazon_dsp_conversions.workers",
             str(job_read), str(result_write)],
            pass_fds=(job_read, result_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
        os.close(job_read)
        os.close(result_write)
        jobs = Connection(job_write, readable=False)
        jobs.send(("settings", SETTINGS))
        results = Connection(result_read, writable=False)
        assert results.recv() == "ready"
        # Half a message: a length prefix promising more bytes than ever come.
        os.write(job_write, struct.pack("!i", 1 << 20) + b"half a block")
        jobs.close()
        assert worker.wait(timeout=120) == 0
        results.close()
        stderr.seek(0)
        assert stderr.read() == ""


def test_workers_of_a_killed_target_leave_no_traceback(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    records = [order(i * 40) for i in range(20000)]
    live = LiveRun(emulator.target_config(worker_processes=2), tmp_path)
    live.feed(tap(records), close=False)  # blocks keep flowing to the workers
    target = psutil.Process(live.process.pid)
    workers = _workers_of(target)
    live.wait_for_state(at_least=1)

    _kill_and_wait_for_workers(live, workers)
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()
