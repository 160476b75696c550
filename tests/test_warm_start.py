"""The tests' forked target and Meltano processes (tests/warm_start.py) behave as new
interpreters do: the same output and exit status, their own working directory and environment."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests import warm_start
from tests.test_meltano import _clean_env, _meltano_bin


def _both(args: list[str], tmp_path: Path) -> list[subprocess.CompletedProcess[str]]:
    """The same run forked and in a new interpreter (a `preexec_fn` asks for one)."""
    return [
        warm_start.run_target(
            args, input="", cwd=tmp_path, env=dict(os.environ), timeout=120, preexec_fn=preexec_fn
        )
        for preexec_fn in (None, lambda: None)
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-option"],  # click's usage line names the program as `python -m` ran it
        ["--config", "missing.json"],
        ["--about", "--format=json"],
    ],
    ids=["usage-error", "missing-config", "about"],
)
def test_a_forked_run_answers_as_a_new_interpreter_does(args: list[str], tmp_path: Path) -> None:
    forked, new = _both(args, tmp_path)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        new.returncode,
        new.stdout,
        new.stderr,
    )
    assert forked.stdout or forked.stderr


def test_a_forked_run_has_its_own_directory_and_environment(tmp_path: Path) -> None:
    # Settings from the environment; the report's path is relative to the working directory.
    settings = {"DRY_RUN": "true", "ADVERTISER_ID": "1234567890", "REPORT_PATH": "from-env.json"}
    env = {**os.environ, **{f"TARGET_AMAZON_DSP_CONVERSIONS_{k}": v for k, v in settings.items()}}

    forked = warm_start.run_target(
        ["--config", "ENV"], input="", cwd=tmp_path, env=env, timeout=120
    )

    assert forked.returncode == 0, forked.stderr
    assert (tmp_path / "from-env.json").exists()
    assert "TARGET_AMAZON_DSP_CONVERSIONS_REPORT_PATH" not in os.environ


@pytest.mark.parametrize(
    "args", [["--version"], ["no-such-command"], ["config", "print", "x"]], ids=str
)
def test_a_forked_meltano_answers_as_a_new_interpreter_does(
    args: list[str], tmp_path: Path
) -> None:
    meltano = _meltano_bin()
    env = _clean_env()
    forked = warm_start.run_meltano(meltano, args, cwd=tmp_path, env=env, timeout=120)
    new = subprocess.run(
        [meltano, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=tmp_path,
        env=env, timeout=120, check=False,
    )  # fmt: skip
    # Meltano's log lines start with the time.
    assert (forked.returncode, forked.stdout, untimed(forked.stderr)) == (
        new.returncode,
        new.stdout,
        untimed(new.stderr),
    )
    assert forked.stdout or forked.stderr


def untimed(log: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", "<time>", log)
