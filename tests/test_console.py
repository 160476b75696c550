"""What the console scripts say about themselves: `--help`, `--version`, `--about`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TARGET = "target-amazon-dsp-conversions"
COMPANIONS = ("target-amazon-dsp-conversions-auth", "target-amazon-dsp-conversions-replay")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    """A console script as installed next to this Python, as a user types it."""
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_help_names_the_companion_commands() -> None:
    result = run(TARGET, "--help")
    assert result.returncode == 0, result.stderr
    assert "target-amazon-dsp-conversions-auth login" in result.stdout
    assert "target-amazon-dsp-conversions-auth check" in result.stdout
    assert "target-amazon-dsp-conversions-replay" in result.stdout
    assert "meltano invoke target-amazon-dsp-conversions:login" in result.stdout


@pytest.mark.parametrize("command", COMPANIONS)
def test_companion_commands_tell_their_version(command: str) -> None:
    target_version = run(TARGET, "--version").stdout.split()[1].rstrip(",")
    result = run(command, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{command} {target_version}"


def test_about_markdown_keeps_its_settings_table_whole() -> None:
    result = run(TARGET, "--about", "--format=markdown")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) > 30
    for row in rows:
        # Four columns: a `|` inside a cell (the refresh token's `Atzr|...`) is escaped.
        assert len(re.split(r"(?<!\\)\|", row)) == 6, row
    (token,) = [row for row in rows if row.startswith("| refresh_token ")]
    assert "Atzr\\|..." in token
