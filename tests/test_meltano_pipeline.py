"""Mistakes a user makes in a Meltano pipeline, met where they happen: `meltano run` and
`meltano invoke` in a real project (Meltano 4.4.1 in its own venv, the repository's meltano.yml,
tap-postgres against a throwaway PostgreSQL server, the Amazon Ads emulator).

Meltano stores whatever STATE the target prints and moves the bookmark; a run that exits 0 tells
the scheduler all is well. None of these mistakes may do either.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.emulator import AmazonAdsEmulator
from tests.postgres import PostgresServer
from tests.test_meltano import (
    JOB,
    PREFIX,
    TABLE,
    TARGET,
    Project,
    _clean_env,
    _insert,
    installed_project,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The repository's project with every plugin installed."""
    return installed_project(tmp_path_factory.mktemp("pipeline") / "project")


@pytest.fixture
def postgres(project: Project) -> Iterator[PostgresServer]:
    """A throwaway server with database `shop` and its conversions table; the project's state
    for the job is cleared, as each test starts a pipeline from scratch."""
    project.run("state", "clear", "--force", JOB, check=False)
    with PostgresServer() as server:
        server.psql("CREATE DATABASE shop")
        server.psql(TABLE, database="shop")
        yield server


def pipeline_env(
    postgres: PostgresServer, emulator: AmazonAdsEmulator, **extra: str
) -> dict[str, str]:
    """Every setting of the pipeline as environment variables, as a scheduler would set them."""
    env = {
        f"{PREFIX}{name.upper()}": str(value) for name, value in emulator.target_config().items()
    }
    env.update(
        TAP_POSTGRES_HOST=postgres.host,
        TAP_POSTGRES_PORT=str(postgres.port),
        TAP_POSTGRES_PASSWORD=postgres.password,
    )
    env.update(extra)
    return env


def stored_state(project: Project) -> dict[str, Any]:
    """The state Meltano stored for the job ({} when none)."""
    out = project.run("state", "get", JOB, check=False).stdout.strip()
    return json.loads(out) if out.startswith("{") else {}


def test_a_dry_run_leaves_the_bookmark_for_the_real_run(
    project: Project, postgres: PostgresServer, emulator: AmazonAdsEmulator
) -> None:
    postgres.psql(_insert(1, 20, updated="now() - interval '1 hour'"), database="shop")
    env = pipeline_env(postgres, emulator)

    dry = project.run("run", "tap-postgres", TARGET, env={**env, f"{PREFIX}DRY_RUN": "true"})

    assert "Run complete: 20 records read, 20 written to the dry-run file" in dry.stderr
    assert "dry run: no STATE written, so the real run sends these records" in dry.stderr
    assert not [r for r in emulator.requests if r.path.endswith("/eventData")]
    assert stored_state(project).get("singer_state") is None

    project.run("run", "tap-postgres", TARGET, env=env)

    assert sorted(float(e["value"]) for e in emulator.accepted) == [float(n) for n in range(1, 21)]
    bookmark = stored_state(project)["singer_state"]["bookmarks"]["public-conversions"]
    assert bookmark["replication_key"] == "updated_at"


def test_a_mapping_of_a_column_the_table_lacks_stops_the_pipeline(
    project: Project, postgres: PostgresServer, emulator: AmazonAdsEmulator
) -> None:
    postgres.psql(_insert(1, 5, updated="now() - interval '1 hour'"), database="shop")
    project.run("config", "set", TARGET, "mapping", '{"eventTime": "event_tme"}')
    try:
        run = project.run("run", "tap-postgres", TARGET, env=pipeline_env(postgres, emulator),
                          check=False)  # fmt: skip
    finally:
        project.run("config", "unset", TARGET, "mapping")

    assert run.returncode != 0
    assert (
        "target-amazon-dsp-conversions: error: input line 1: stream 'public-conversions': "
        "setting 'mapping.eventTime' reads eventTime from 'event_tme', which the stream's SCHEMA "
        "does not have; closest columns: 'event_time'" in run.stderr
    ), run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert not [r for r in emulator.requests if r.path.endswith("/eventData")]
    assert stored_state(project).get("singer_state") is None


def _login(project: Project, emulator: AmazonAdsEmulator, *args: str) -> tuple[int, str, str]:
    """`meltano invoke target-amazon-dsp-conversions:login` as a user runs it (Meltano not on
    PATH), the browser played by a GET of the consent URL (see tests/test_auth_cli.py)."""
    settings = {
        f"{PREFIX}CLIENT_ID": emulator.client_id,
        f"{PREFIX}CLIENT_SECRET": emulator.client_secret,
        f"{PREFIX}AUTH_URL": emulator.token_url,
    }
    process = subprocess.Popen(
        [str(project.meltano), "invoke", f"{TARGET}:login", "--no-browser", "--port", "0",
         "--authorize-url", emulator.authorize_url, *args],
        cwd=project.root, env=_clean_env(**settings), text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "/ap/oa?" in line:
            consent = line.strip().split()[-1]
            break
    else:
        process.kill()
        pytest.fail("login printed no consent URL: " + "".join(seen))
    location = requests.get(consent, allow_redirects=False, timeout=30).headers["Location"]
    requests.get(location, timeout=30)
    out, err = process.communicate(timeout=300)
    return process.returncode, out, "".join(seen) + err


def test_login_under_meltano_saves_the_token_with_that_meltano(
    project: Project, emulator: AmazonAdsEmulator
) -> None:
    assert shutil.which("meltano", path=_clean_env()["PATH"]) is None  # as the README installs it
    status, out, err = _login(project, emulator)

    assert status == 0, err
    dotenv = (project.root / ".env").read_text()
    (token,) = [t for t in emulator.refresh_tokens if f"{PREFIX}REFRESH_TOKEN='{t}'" in dotenv]
    assert token not in out + err
    assert err.rstrip().splitlines()[-1].endswith(f"Next: meltano invoke {TARGET}:check")
    # The saved token is the one `check` uses, through Meltano.
    check = project.run("invoke", f"{TARGET}:check", check=False, env={
        f"{PREFIX}API_URL": emulator.url, f"{PREFIX}AUTH_URL": emulator.token_url,
        f"{PREFIX}ADVERTISER_ID": "1234567890", f"{PREFIX}PROFILE_ID": "3333333333",
        f"{PREFIX}CLIENT_ID": emulator.client_id,
        f"{PREFIX}CLIENT_SECRET": emulator.client_secret,
    })  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK: no problems found" in check.stdout


def test_login_under_meltano_says_how_to_set_what_it_lacks_with_meltano(
    project: Project,
) -> None:
    run = project.run("invoke", f"{TARGET}:login", "--no-browser", check=False)

    assert run.returncode == 1
    assert (
        f"setting 'client_id': is required: set it with `meltano config set {TARGET} <setting> "
        "<value>`" in run.stderr
    ), run.stderr[-3000:]
    assert "Traceback" not in run.stderr


def test_login_under_meltano_prints_the_token_when_it_cannot_save_it(
    project: Project, emulator: AmazonAdsEmulator
) -> None:
    # A plugin name Meltano does not know: `meltano config set` fails.
    status, out, err = _login(project, emulator, "--plugin", "no-such-loader")

    assert status == 1
    token = out.strip()
    assert token in emulator.refresh_tokens  # not lost
    assert "the refresh token could not be saved: meltano config set failed" in err
    assert "meltano config set no-such-loader refresh_token --from-file -" in err
    assert "Traceback" not in err


def test_a_misspelled_variable_stops_the_pipeline_before_anything_is_sent(
    project: Project, postgres: PostgresServer, emulator: AmazonAdsEmulator
) -> None:
    postgres.psql(_insert(1, 5, updated="now() - interval '1 hour'"), database="shop")
    env = pipeline_env(postgres, emulator, **{f"{PREFIX}DRYRUN": "true"})

    run = project.run("run", "tap-postgres", TARGET, env=env, check=False)

    assert run.returncode != 0
    assert (
        "target-amazon-dsp-conversions: error: unknown setting 'dryrun' (environment variable "
        "TARGET_AMAZON_DSP_CONVERSIONS_DRYRUN, or 'dryrun' in the loader's config in "
        "meltano.yml); did you mean 'dry_run'?" in run.stderr
    ), run.stderr[-3000:]
    assert not [r for r in emulator.requests if r.path.endswith("/eventData")]
    assert stored_state(project).get("singer_state") is None


def test_check_reads_object_settings_as_meltano_exports_them(
    project: Project, emulator: AmazonAdsEmulator
) -> None:
    # Meltano exports each key of an object as its own variable (..._MAPPING_EVENTTIME), and a
    # nested object flattened (`{"purchase.1234567890": ...}`): the check reads both as meant.
    objects = {
        "mapping": '{"eventTime": "created_at", "email": "customer.email"}',
        "defaults": '{"countryCode": "US", "currency": "USD"}',
        "stream_maps": '{"public-conversions": {"email": "email.lower()"}}',
    }
    # Per advertiser: set apart, as the demo environment sets conversion_definitions itself
    # (Meltano 4.4.1 cannot merge a name's text over its object across environments).
    definitions = '{"purchase": {"1234567890": "cd-purchase", "2222222222": "cd-2222-purchase"}}'
    env = {f"{PREFIX}{k.upper()}": str(v) for k, v in emulator.target_config().items()}
    for name, value in objects.items():
        project.run("config", "set", TARGET, name, value)
    try:
        demo = project.run("--environment=demo", "invoke", f"{TARGET}:check", env=env, check=False)
        project.run("config", "set", TARGET, "conversion_definitions", definitions)
        check = project.run("invoke", f"{TARGET}:check", env=env, check=False)
    finally:
        for name in (*objects, "conversion_definitions"):
            project.run("config", "unset", TARGET, name)

    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK: no problems found" in check.stdout
    # The demo environment's own settings (dry run, its definitions) are read as they are: the
    # check runs and says what does not fit this (emulated) account, nothing else.
    assert "unknown setting" not in demo.stdout + demo.stderr
    assert "Sign-in: OK" in demo.stdout
    problems = [line for line in demo.stdout.splitlines() if line.startswith("problem: ")]
    assert problems and all("DEMO-" in line for line in problems), demo.stdout
