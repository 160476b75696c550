"""The sdist and wheel, built once per test session from the checkout as a release would be.

`python -m build` builds the sdist from the working tree, then the wheel from the sdist (what
pip does with an sdist from PyPI), in an isolated environment with the build backend from
pyproject.toml (hatchling + hatch-vcs: the version comes from git). Shared by
tests/test_packaging.py and tests/test_hub_install.py.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Dists:
    """The built archives."""

    directory: Path
    sdist: Path
    wheel: Path

    @property
    def version(self) -> str:
        """The version in the wheel's file name (name-version-py3-none-any.whl)."""
        return self.wheel.name.split("-")[1]


@functools.cache
def build_dists() -> Dists:
    """Build both archives into a temporary directory (removed when the session ends)."""
    out = Path(tempfile.mkdtemp(prefix="dists-"))
    atexit.register(shutil.rmtree, out, True)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"python -m build failed:\n{result.stdout[-4000:]}\n{result.stderr}")
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dists(out, sdist, wheel)
