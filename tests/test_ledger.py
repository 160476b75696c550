"""The STATE ledger: a tap's STATE goes out only once every record read before it is settled."""

from __future__ import annotations

import random
import threading
from typing import Any

from target_amazon_dsp_conversions.ledger import StateLedger


def test_state_waits_for_every_earlier_record_settled_in_any_order() -> None:
    emitted: list[Any] = []
    ledger = StateLedger(emitted.append)
    first = [ledger.open_record() for _ in range(3)]
    ledger.add_state({"n": 3})
    second = [ledger.open_record() for _ in range(2)]
    ledger.add_state({"n": 5})

    ledger.settle(second[0])
    ledger.settle(second[1])
    assert emitted == []  # later records done, earlier ones not: nothing may go out
    ledger.settle(first[2])
    ledger.settle(first[0])
    assert emitted == []
    assert ledger.unsettled == 1
    ledger.settle(first[1])
    # Both segments are done at once: only the newest STATE is written, it supersedes the other.
    assert emitted == [{"n": 5}]
    assert ledger.pending_states == 0


def test_state_with_nothing_pending_goes_out_at_once_and_repeats_are_dropped() -> None:
    emitted: list[Any] = []
    ledger = StateLedger(emitted.append)
    ledger.add_state({"n": 0})
    ledger.add_state({"n": 0})
    segment = ledger.open_record()
    ledger.add_state({"n": 1})
    assert emitted == [{"n": 0}]
    ledger.settle(segment)
    assert emitted == [{"n": 0}, {"n": 1}]
    assert ledger.records_opened == 1


def test_settling_from_many_threads_emits_states_in_order() -> None:
    emitted: list[Any] = []
    ledger = StateLedger(emitted.append)
    segments = []
    for n in range(1, 201):
        segments.append(ledger.open_record())
        if n % 10 == 0:
            ledger.add_state({"n": n})
    random.Random(7).shuffle(segments)
    chunks = [segments[i::8] for i in range(8)]
    threads = [threading.Thread(target=lambda c=c: [ledger.settle(s) for s in c]) for c in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    positions = [state["n"] for state in emitted]
    assert positions == sorted(positions)
    assert positions[-1] == 200
    assert ledger.unsettled == 0


def test_records_opened_in_a_row_hold_their_state_until_each_is_settled() -> None:
    emitted: list[Any] = []
    ledger = StateLedger(emitted.append)
    segment = ledger.open_record(3)  # a worker's block: three records read in a row
    ledger.add_state({"n": 3})
    assert ledger.records_opened == 3
    ledger.settle_all([segment, segment])
    assert emitted == []  # one of the three is still unanswered
    ledger.settle(segment)
    assert emitted == [{"n": 3}]
