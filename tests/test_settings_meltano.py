"""The loader added to a Meltano project of one's own with no settings declared (README >
Meltano > "Your own Meltano project"): Meltano passes every undeclared setting as the text
`meltano config set` got, and the target reads each as its kind; a misspelled one stops the
run with one line. Real Meltano 4.4.1 (its own venv, as tests/test_meltano.py uses it)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_meltano import REPO, TARGET, Project, _clean_env, installed_project

MINIMAL = f"""\
requires_meltano: ">=4.0"
project_id: my-own-project
default_environment: dev
send_anonymous_usage_stats: false
environments:
- name: dev
plugins:
  loaders:
  - name: {TARGET}
    namespace: target_amazon_dsp_conversions
    pip_url: -e {REPO}
    executable: {TARGET}
"""


@pytest.fixture(scope="module")
def own_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return installed_project(tmp_path_factory.mktemp("own") / "project", MINIMAL)


def invoke(project: Project, emulator: AmazonAdsEmulator, settings: dict[str, str]) -> str:
    """`meltano config set` each setting (undeclared: stored as text), then the target through
    `meltano invoke` with Singer input on stdin; returns stderr."""
    for name, value in settings.items():
        project.run("config", "set", TARGET, name, value)
    messages = singer_stream([seed_record(i, countryCode=None) for i in range(3)])
    result = subprocess.run(
        [str(project.meltano), "invoke", TARGET], cwd=project.root, env=_clean_env(),
        input="".join(json.dumps(m) + "\n" for m in messages),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return result.stderr


def test_undeclared_settings_come_as_text_and_work(
    own_project: Project, emulator: AmazonAdsEmulator
) -> None:
    config = {k: str(v) for k, v in emulator.target_config().items()}
    settings = {
        **config,
        "dry_run": "false",
        "max_retries": "2",
        "request_timeout": "30",
        "defaults": '{"countryCode": "US"}',
        "create_missing_definitions": "false",
        "report_path": "report.json",
    }
    stderr = invoke(own_project, emulator, settings)

    assert sorted(emulator.accepted_ids().values()) == [1] * 3, stderr
    report = json.loads((own_project.root / "report.json").read_text())
    assert report["records_accepted"] == 3


def test_a_misspelled_undeclared_setting_stops_the_run(
    own_project: Project, emulator: AmazonAdsEmulator
) -> None:
    config = {k: str(v) for k, v in emulator.target_config().items()}
    stderr = invoke(own_project, emulator, {**config, "dryrun": "true"})

    assert emulator.requests == []
    # Meltano passes an undeclared setting as a variable too: the line names both.
    assert any(
        "target-amazon-dsp-conversions: error: unknown setting 'dryrun'" in line
        and "'dryrun' in the loader's config in meltano.yml" in line
        and "did you mean 'dry_run'?" in line
        for line in stderr.splitlines()
    ), stderr
    assert "Traceback" not in stderr
    own_project.run("config", "unset", TARGET, "dryrun")
