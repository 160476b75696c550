"""The SDK methods without a public hook that `sdk_internals.py` overrides: still there, with the
same signature, still called where the target relies on it. A failure here means singer-sdk
changed underneath: read the new SDK code before changing the test."""

from __future__ import annotations

import inspect
import io
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from singer_sdk import Target
from singer_sdk.plugin_base import BaseSingerReader, PluginBase

from target_amazon_dsp_conversions.errors import SettingError
from target_amazon_dsp_conversions.sdk_internals import TargetWithAckedState
from target_amazon_dsp_conversions.target import TargetAmazonDSPConversions
from target_amazon_dsp_conversions.threads import STOP_SIGNALS
from tests.conftest import seed_record, singer_stream

# Where the SDK calls each overridden method.
CALLERS = {
    "_validate_config": (
        PluginBase.__init__,
        "self._validate_config(raise_errors=validate_config)",
    ),
    "_process_state_message": (
        BaseSingerReader.process_lines,
        "SingerMessageType.STATE: self._process_state_message",
    ),
}


@pytest.mark.parametrize("name", sorted(TargetWithAckedState.ROUTED))
def test_each_overridden_sdk_method_is_still_there_and_called(name: str) -> None:
    ours = getattr(TargetWithAckedState, name)
    theirs = getattr(Target, name)
    assert inspect.signature(ours) == inspect.signature(theirs)
    caller, call = CALLERS[name]
    assert call in inspect.getsource(caller)


def test_no_other_module_reaches_into_the_sdk() -> None:
    """Private SDK names appear in sdk_internals.py only."""
    package = Path(__file__).resolve().parent.parent / "target_amazon_dsp_conversions"
    for path in package.rglob("*.py"):
        if path.name == "sdk_internals.py":
            continue
        text = path.read_text()
        assert "singer_sdk._" not in text and "._dict_config" not in text, path
        for name in TargetWithAckedState.ROUTED:
            assert f"def {name}(" not in text, path


def config(**overrides: Any) -> dict[str, Any]:
    return {"dry_run": True, "advertiser_id": "1234567890", **overrides}


def test_our_setting_check_runs_before_the_sdks(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingError, match="setting 'region'"):
        TargetAmazonDSPConversions(config=config(region="XX"), validate_config=True)


def test_state_goes_to_the_ledger_not_to_stdout(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    target = TargetAmazonDSPConversions(config=config(), validate_config=True)
    seen: list[Any] = []
    target.run.ledger.add_state = seen.append  # type: ignore[method-assign]
    target._process_state_message({"type": "STATE", "value": {"n": 1}})
    target.run.abort(flush=False)
    assert seen == [{"n": 1}]
    assert capsys.readouterr().out == ""


def _progress_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "progress" and t.is_alive()]


def test_a_target_starts_its_progress_thread_when_input_begins_and_ends_it_at_the_end(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A target made and never run (the SDK's standard tests make many) leaves no thread
    behind logging progress forever."""
    monkeypatch.chdir(tmp_path)
    before = _progress_threads()
    target = TargetAmazonDSPConversions(config=config(), validate_config=True)
    assert _progress_threads() == before
    lines = singer_stream([seed_record(0)])
    target.process_lines(io.StringIO("".join(json.dumps(line) + "\n" for line in lines)))
    assert len(_progress_threads()) == len(before) + 1
    target.process_endofpipe()
    deadline = time.monotonic() + 10
    while len(_progress_threads()) > len(before):
        assert time.monotonic() < deadline, "the progress thread outlived the run"
        time.sleep(0.05)


def test_every_thread_of_a_run_blocks_the_stop_signals(tmp_path: Path, monkeypatch: Any) -> None:
    """The SDK's threads too (it drained sinks on a pool of threads at the end of input): a
    stop signal the kernel hands to a thread that does not block it leaves the main thread's
    wait (for an answer, a free slot) uninterrupted (threads.py)."""
    monkeypatch.chdir(tmp_path)
    unblocked: list[str] = []
    started: list[str] = []

    def on_thread_start(*_: Any) -> None:
        # Runs in each new thread, first thing (threading.settrace), once.
        sys.settrace(None)
        started.append(threading.current_thread().name)
        if STOP_SIGNALS - signal.pthread_sigmask(signal.SIG_BLOCK, []):
            unblocked.append(threading.current_thread().name)

    target = TargetAmazonDSPConversions(config=config(), validate_config=True)
    lines = singer_stream([seed_record(i) for i in range(250)])
    threading.settrace(on_thread_start)
    try:
        target.process_lines(io.StringIO("".join(json.dumps(line) + "\n" for line in lines)))
        target.process_endofpipe()
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
    assert started, "the run started no thread: nothing was checked"
    assert unblocked == []
