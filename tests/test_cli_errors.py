"""Config files a user gets wrong, through the console script: one line naming the file and what
is wrong with it, exit 1, no traceback (the SDK's reading of `--config` printed 40 lines).
Also the emulator's one line when its port is taken."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import warm_start
from tests.conftest import cli_error_lines, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

REPO = Path(__file__).resolve().parent.parent
PREFIX = "TARGET_AMAZON_DSP_CONVERSIONS_"
EMPTY = 'is empty; it must hold a JSON object of settings, e.g. {"dry_run": true}'


def target(
    *args: str, cwd: Path, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    return warm_start.run_target(
        list(args), input=stdin, cwd=cwd, env={**clean, **(env or {})}, timeout=120
    )


# Python's JSON decoder names a trailing comma itself since 3.13; before, the target adds a hint.
TRAILING_COMMA = (
    "is not valid JSON: Illegal trailing comma before end of object at line 3, column 23"
    if sys.version_info >= (3, 13)
    else "is not valid JSON: Expecting property name enclosed in double quotes at line 4, "
    "column 1 (a trailing comma?)"
)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("config.yml", "dry_run: true\nadvertiser_id: '1'\n",
         "is not JSON; it must hold a JSON object of settings"),
        ("config.json", '{\n  "dry_run": true,\n  "advertiser_id": "1",\n}\n', TRAILING_COMMA),
        ("config.json", '{"dry_run": true "advertiser_id": "1"}',
         "is not valid JSON: Expecting ',' delimiter at line 1, column 18"),
        ("config.json", '{"dry_run": true, "advertiser_id": "1\t2"}',
         "is not valid JSON: Invalid control character at line 1, column 38"),
        ("config.json", "", EMPTY),
        ("config.json", "  \n", EMPTY),
        ("config.json", "[1, 2]", "holds a JSON array; it must hold a JSON object of settings"),
        ("config.json", '"dry_run"', "holds a JSON string; it must hold a JSON object of settings"),
        ("config.json", "null", "holds null; it must hold a JSON object of settings"),
        ("config.json", b'{"dry_run": true, "x": "\xff"}',
         "is not UTF-8 text; it must hold a JSON object of settings"),
    ],
)  # fmt: skip
def test_a_config_file_that_cannot_be_used_is_one_line(
    tmp_path: Path, name: str, content: str | bytes, problem: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    run = target("--config", name, cwd=tmp_path, stdin="this line is not read\n")

    assert run.returncode == 1, run.stderr
    assert cli_error_lines(run.stderr) == [
        f"target-amazon-dsp-conversions: error: config file '{name}' {problem}"
    ]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path: None, "does not exist"),
        (lambda path: path.mkdir(), "is a directory, not a file"),
    ],
)
def test_a_config_file_that_cannot_be_read_is_one_line(
    tmp_path: Path, make: Callable[[Path], object], problem: str
) -> None:
    make(tmp_path / "settings.json")
    run = target("--config", "settings.json", cwd=tmp_path)

    assert run.returncode == 1
    assert cli_error_lines(run.stderr) == [
        f"target-amazon-dsp-conversions: error: config file 'settings.json' {problem}"
    ]
    assert "Traceback" not in run.stderr


def test_later_config_files_win_and_the_environment_wins_over_files(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    (tmp_path / "base.json").write_text(json.dumps({**emulator.target_config(), "max_retries": 1}))
    (tmp_path / "local.json").write_text(json.dumps({"dry_run": True, "report_path": "r.json"}))
    messages = singer_stream([seed_record(i) for i in range(2)])
    run = target(
        "--config", "base.json", "--config", "ENV", "--config", "local.json",
        cwd=tmp_path, stdin="".join(json.dumps(m) + "\n" for m in messages),
        env={PREFIX + "DRY_RUN": "false", PREFIX + "REPORT_PATH": "report.json"},
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    # local.json asked for a dry run; the environment said no: the records went to Amazon.
    assert sorted(emulator.accepted_ids().values()) == [1, 1]
    assert json.loads((tmp_path / "report.json").read_text())["dry_run"] is False


def test_about_and_version_need_no_config(tmp_path: Path) -> None:
    about = target("--about", "--format=json", cwd=tmp_path)
    version = target("--version", cwd=tmp_path)

    assert about.returncode == 0, about.stderr
    assert json.loads(about.stdout)["name"] == "target-amazon-dsp-conversions"
    assert version.returncode == 0
    assert version.stdout.startswith("target-amazon-dsp-conversions v")


def test_the_emulator_says_in_one_line_that_its_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "tests.emulator", "--port", str(port)],
            capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        )  # fmt: skip

    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"python -m tests.emulator: error: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"
    ]
