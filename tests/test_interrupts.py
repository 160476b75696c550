"""Ctrl-C while the target starts: one line and exit status 130, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import TARGET, cli_error_lines, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

INTERRUPTED = 130


def _start(config: dict[str, object], workdir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    (workdir / "config.json").write_text(json.dumps(config))
    return subprocess.Popen(
        [*TARGET, "--config", "config.json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
        env={**os.environ, **env},
    )


def test_ctrl_c_while_the_program_loads(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    # Python reports each module it has loaded on stderr: the Singer SDK's first one means
    # loading is under way (should loading be over by the time the signal lands, the
    # target stops on it as it does later: the outcome is the same).
    process = _start(emulator.target_config(), tmp_path, {"PYTHONPROFILEIMPORTTIME": "1"})
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        if "singer_sdk" in line:
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    stderr = "".join(seen) + rest

    assert process.returncode == INTERRUPTED, stderr[-3000:]
    assert "Traceback" not in stderr
    assert len(cli_error_lines(stderr)) == 1
    assert "interrupted" in cli_error_lines(stderr)[0] or "SIGINT" in cli_error_lines(stderr)[0]


def test_ctrl_c_while_the_token_endpoint_hangs(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    emulator.faults.hang_calls = frozenset({"token"})
    emulator.faults.hang_seconds = 120
    process = _start(emulator.target_config(), tmp_path, {})
    assert process.stdin is not None
    for message in singer_stream([seed_record(1)]):
        process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()  # and left open: the run would go on
    emulator.wait_for_arrivals("token", 1, timeout=120)
    process.send_signal(signal.SIGINT)
    out, stderr = process.communicate(timeout=120)

    assert process.returncode == INTERRUPTED, stderr[-3000:]
    assert "Traceback" not in stderr
    assert cli_error_lines(stderr) == [
        "target-amazon-dsp-conversions: error: stopped by SIGINT; STATE covers only acknowledged "
        "records; 1 record not delivered (listed in the log and the report); re-run from the "
        "last STATE to resend them"
    ]
    assert out == ""  # no STATE past the undelivered record
