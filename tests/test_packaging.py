"""Release-ready: the sdist and wheel build, pass `twine check --strict`, hold what a user needs
and nothing from tests/; the version comes from git tags (hatch-vcs) and still builds on a clone
without tags or an export without git; the GitHub workflows, dependabot and pre-commit
configurations are valid and agree with the Python versions the package claims.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from tests.hub_build import Dists, build_dists

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "target_amazon_dsp_conversions"
WORKFLOWS = REPO / ".github" / "workflows"
# sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt, unchanged.
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


@pytest.fixture(scope="module")
def dists() -> Dists:
    """sdist and wheel built from the checkout (once per session)."""
    return build_dists()


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    """pyproject.toml."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _package_files() -> set[str]:
    """The package's files in the checkout, as paths inside an archive."""
    return {
        str(p.relative_to(REPO))
        for p in (REPO / PACKAGE).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def _metadata(dists: Dists) -> Message:
    with zipfile.ZipFile(dists.wheel) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(wheel.read(name).decode())


def _claimed_pythons(pyproject: dict[str, Any]) -> list[str]:
    prefix = "Programming Language :: Python :: "
    return [
        c.removeprefix(prefix)
        for c in pyproject["project"]["classifiers"]
        if re.fullmatch(re.escape(prefix) + r"3\.\d+", c)
    ]


# --------------------------------------------------------------------------- archives
def test_twine_check_strict_passes(dists: Dists) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists.sdist), str(dists.wheel)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_wheel_holds_the_package_the_license_and_nothing_else(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = f"{PACKAGE}-{dists.version}.dist-info"
        license_text = wheel.read(f"{dist_info}/licenses/LICENSE")
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    package = {n for n in names if not n.startswith(dist_info + "/")}
    assert package == _package_files()
    assert names - package == {
        f"{dist_info}/{n}" for n in ("METADATA", "WHEEL", "RECORD", "entry_points.txt")
    } | {f"{dist_info}/licenses/LICENSE"}
    assert license_text == (REPO / "LICENSE").read_bytes()
    assert (
        "target-amazon-dsp-conversions = target_amazon_dsp_conversions.launch:target"
        in entry_points
    )
    assert "target-amazon-dsp-conversions-auth = " in entry_points
    assert not any(n.startswith(("tests/", "bench/", "meltano-hub/", "sample/")) for n in names)


def test_sdist_holds_what_builds_the_wheel_and_nothing_from_tests(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as sdist:
        root = f"{PACKAGE}-{dists.version}/"
        names = {m.name.removeprefix(root) for m in sdist.getmembers() if m.isfile()}
        license_file = sdist.extractfile(root + "LICENSE")
        assert license_file is not None
        license_text = license_file.read()
    expected = _package_files() | {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE"}
    # hatchling always adds the VCS ignore file
    assert names - {".gitignore"} == expected
    assert license_text == (REPO / "LICENSE").read_bytes()
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_metadata_is_complete(dists: Dists, pyproject: dict[str, Any]) -> None:
    meta = _metadata(dists)
    assert meta["Name"] == "target-amazon-dsp-conversions"
    assert Version(meta["Version"]) == Version(dists.version)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License-File"] == "LICENSE"
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Author"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "## Install" in meta.get_payload()  # the README, PyPI's project page
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Repository", "Issues", "Changelog", "Documentation"}
    classifiers = meta.get_all("Classifier") or []
    assert classifiers == pyproject["project"]["classifiers"]
    assert "Development Status :: 4 - Beta" in classifiers
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    # PEP 639: the license expression replaces `License ::` classifiers.
    assert not any(c.startswith("License ::") for c in classifiers)
    assert _claimed_pythons(pyproject) == ["3.10", "3.11", "3.12", "3.13"]


def test_license_is_the_apache_license_2_0() -> None:
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_0_SHA256


# --------------------------------------------------------------------------- versions
def _export(tmp_path: Path) -> Path:
    """The files a build needs, as in the working tree, in a directory of their own."""
    out = tmp_path / "src"
    out.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, out / name)
    shutil.copytree(REPO / PACKAGE, out / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    return out


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
         "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=cwd, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _built_version(source: Path, out: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel.name.split("-")[1]


def test_the_version_is_the_git_tag_and_builds_without_one(tmp_path: Path) -> None:
    assert shutil.which("git"), "git is needed (CI clones the repository with it)"
    source = _export(tmp_path)
    # An export without git (an archive of the sources): the fallback version.
    assert _built_version(source, tmp_path / "no-git") == "0.0.0"
    # A clone without tags (CI's shallow clone): a development version, still valid.
    _git(source, "init", "-q")
    _git(source, "add", "-A")
    _git(source, "commit", "-q", "-m", "release")
    untagged = Version(_built_version(source, tmp_path / "untagged"))
    assert untagged.is_devrelease
    # The release workflow's case: a tag v1.2.3 on the commit makes version 1.2.3.
    _git(source, "tag", "v1.2.3")
    assert _built_version(source, tmp_path / "tagged") == "1.2.3"


# --------------------------------------------------------------------------- GitHub, pre-commit
def _workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in loaded:
        loaded["on"] = loaded.pop(True)
    return loaded


def test_workflows_and_dependabot_follow_githubs_schemas() -> None:
    for schema, files in (
        ("vendor.github-workflows", sorted(WORKFLOWS.glob("*.yml"))),
        ("vendor.dependabot", [REPO / ".github" / "dependabot.yml"]),
    ):
        assert files
        result = subprocess.run(
            [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
             *map(str, files)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_actionlint() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "lint-workflows.sh")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "actionlint" in result.stdout.splitlines()[0]  # its -version line


def test_the_test_matrix_is_the_claimed_pythons(pyproject: dict[str, Any]) -> None:
    test = _workflow("test.yml")
    matrix = test["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    assert matrix == _claimed_pythons(pyproject)
    steps = test["jobs"]["test"]["steps"]
    assert any(s.get("run") == "bash scripts/test.sh" for s in steps)
    assert any("postgresql" in s.get("run", "") for s in steps)
    assert {"push", "pull_request", "workflow_call"} <= set(test["on"])


def test_release_builds_checks_and_publishes_on_a_tag() -> None:
    release = _workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    jobs = release["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    build_runs = [s.get("run", "") for s in jobs["build"]["steps"]]
    assert "python -m build" in build_runs
    assert "python -m twine check --strict dist/*" in build_runs
    assert any("hub_sync.py --repository" in r for r in build_runs)
    publish = jobs["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}  # trusted publishing, no token
    assert publish["environment"]["name"] == "pypi"
    (upload,) = [s for s in publish["steps"] if "gh-action-pypi-publish" in s.get("uses", "")]
    assert "with" not in upload or "password" not in upload["with"]
    assert release["permissions"] == {"contents": "read"}


def test_dependabot_updates_pip_and_actions() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    ecosystems = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert {("pip", "/"), ("github-actions", "/")} <= ecosystems


def test_pre_commit_runs_ruff_and_mypy() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "mypy"} <= set(hooks)
    assert hooks["ruff-check"]["entry"].startswith(".venv/bin/ruff check")
    assert hooks["ruff-format"]["entry"].startswith(".venv/bin/ruff format")
    assert hooks["mypy"]["entry"] == ".venv/bin/mypy"


def test_dev_extra_has_the_tools_the_tests_use(pyproject: dict[str, Any]) -> None:
    dev = {
        re.split(r"[<>=~;\[ ]", d, maxsplit=1)[0]
        for d in pyproject["project"]["optional-dependencies"]["dev"]
    }
    assert {"yamllint", "jsonschema", "referencing", "build", "twine", "check-jsonschema"} <= dev
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["hatch"]["version"]["source"] == "vcs"
