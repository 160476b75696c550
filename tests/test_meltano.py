"""Real Meltano (4.4.1, in its own venv) running the repository's meltano.yml.

- the README's demo command (`bash scripts/demo.sh`) in a copy of the repository;
- `meltano run tap-postgres target-amazon-dsp-conversions` against a throwaway PostgreSQL server
  and the Amazon Ads emulator, twice, to see incremental replication and Meltano's state;
- settings through `meltano config set`, environment variables and `.env`.

Meltano and its plugin venvs come from PyPI (uv caches the downloads, so a second session installs
in seconds). Projects are copies in temporary directories: nothing lands in the repository's
`.meltano/`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests import warm_start
from tests.emulator import AmazonAdsEmulator, Faults
from tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parent.parent
MELTANO_VENV = REPO / ".venv-meltano"
TARGET = "target-amazon-dsp-conversions"
PREFIX = "TARGET_AMAZON_DSP_CONVERSIONS_"
JOB = "dev:tap-postgres-to-target-amazon-dsp-conversions"


def _meltano_bin() -> Path:
    """The Meltano of scripts/test.sh; created the same way when pytest runs on its own."""
    meltano = MELTANO_VENV / "bin" / "meltano"
    if not meltano.exists():
        if not (MELTANO_VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(MELTANO_VENV)], check=True)
        subprocess.run(
            [str(MELTANO_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "-r", str(REPO / "scripts" / "requirements-meltano.txt")],
            check=True, timeout=600,
        )  # fmt: skip
    return meltano


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without settings that would leak into the project."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith((PREFIX, "TAP_", "MELTANO_", "VIRTUAL_ENV"))
    }  # fmt: skip
    env.update(NO_COLOR="1", MELTANO_SEND_ANONYMOUS_USAGE_STATS="false")
    env.update(extra)
    return env


@dataclass
class Project:
    """A Meltano project directory made from the repository's meltano.yml."""

    root: Path
    meltano: Path

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """`meltano ARGS` in the project, as a user would type it."""
        result = warm_start.run_meltano(
            self.meltano, list(args), cwd=self.root, env=_clean_env(**(env or {})), timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"meltano {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
            )
        return result

    def config(self, plugin: str) -> dict[str, Any]:
        """The configuration Meltano hands the plugin (secrets shown as *****)."""
        out = self.run("config", "print", plugin, "--format=json").stdout
        return json.loads(out)

    def jsonl(self, relative: str) -> list[dict[str, Any]]:
        """Lines of a JSONL file the run wrote."""
        path = self.root / relative
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _new_project(root: Path, meltano: Path) -> Project:
    """meltano.yml (the target installed from this checkout) plus the sample files."""
    root.mkdir(parents=True)
    text = (REPO / "meltano.yml").read_text()
    # `-e .` means "this repository" only in the repository itself.
    text, count = re.subn(r"(?m)^(\s*pip_url:) -e \.$", rf"\1 -e {REPO}", text)
    assert count == 1
    (root / "meltano.yml").write_text(text)
    shutil.copytree(REPO / "sample", root / "sample", ignore=shutil.ignore_patterns("*.jsonl"))
    shutil.copy(REPO / "sample" / "conversions.template.jsonl", root / "sample")
    return Project(root, meltano)


def _installed_plugins() -> Path:
    """The `.meltano` of a project of the repository's meltano.yml with every plugin installed
    by `meltano install`. Made once for every pytest process (under a lock), and kept between
    sessions until meltano.yml, pyproject.toml or Meltano's pins change."""
    inputs = hashlib.sha256(str(REPO).encode())
    for name in ("meltano.yml", "pyproject.toml", "scripts/requirements-meltano.txt"):
        inputs.update((REPO / name).read_bytes())
    home = (
        Path(tempfile.gettempdir())
        / f"target-amazon-dsp-conversions-plugins-{inputs.hexdigest()[:16]}"
    )
    with (home.parent / f"{home.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "installed").exists():
            shutil.rmtree(home, ignore_errors=True)
            _new_project(home / "project", _meltano_bin()).run("install", timeout=900)
            (home / "installed").touch()
    return home / "project" / ".meltano"


def installed_project(root: Path, meltano_yml: str | None = None) -> Project:
    """A new project (the repository's meltano.yml, or the one given) whose plugins are those of
    `_installed_plugins`: installing them again for each project would cost ~15 s of CPU."""
    if meltano_yml is None:
        project = _new_project(root, _meltano_bin())
    else:
        root.mkdir(parents=True)
        (root / "meltano.yml").write_text(meltano_yml)
        project = Project(root, _meltano_bin())
    plugins = _installed_plugins()
    (root / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):
        (root / ".meltano" / kind).symlink_to(plugins / kind)
    return project


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One project per test module with every plugin installed."""
    return installed_project(tmp_path_factory.mktemp("meltano") / "project")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A fresh project without plugin venvs: enough for `meltano config`."""
    return _new_project(tmp_path / "project", _meltano_bin())


def test_meltano_yml_follows_meltanos_schema() -> None:
    _meltano_bin()
    (schema_path,) = MELTANO_VENV.glob("lib/python*/site-packages/meltano/schemas/*.schema.json")
    schema = json.loads(schema_path.read_text())
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(project)
    ]
    assert errors == []


# --------------------------------------------------------------------------- the README's demo
def test_readme_demo_runs_a_dry_run_pipeline_on_the_sample(tmp_path: Path) -> None:
    # The demo script exactly as the README gives it, in a copy of the working tree (it writes
    # .meltano/, output/ and the sample there); the Meltano venv is shared to save its install.
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    checkout = tmp_path / "checkout"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    _meltano_bin()
    (checkout / ".venv-meltano").symlink_to(MELTANO_VENV)

    demo = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=checkout, env=_clean_env(),
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip

    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert "Run complete: 12 records read, 9 written to the dry-run file, 3 rejected" in out
    assert re.search(
        r"request 1: POST /accounts/1234567890/dsp/conversionDefinitions/eventData "
        r"source=SERVER_TO_SERVER events=9 purchase: 7, sign_up: 2",
        out,
    )
    assert "A-1009: MISSING_MATCH_KEY" in out
    assert "A-1010: INVALID_CURRENCY" in out
    assert "A-1011: EVENT_TOO_OLD" in out
    assert '"records_written": 9' in out and '"records_accepted": 0' in out
    # What was "sent" carries hashes only, never the sample's e-mail addresses.
    requests = (checkout / "output/demo/dry-run-requests.jsonl").read_text()
    assert "example.com" not in requests and "Anna" not in requests
    assert re.search(r'"values": ?\["[0-9a-f]{64}"\]', requests)


# --------------------------------------------------------------------------- tap-postgres
TABLE = """
CREATE TABLE conversions (
    order_id        text PRIMARY KEY,
    event_time      timestamptz NOT NULL,
    conversion_type text NOT NULL,
    value           numeric(12, 2),
    currency        text,
    email           text,
    phone           text,
    country_code    text,
    updated_at      timestamptz NOT NULL
);
"""


def _insert(first: int, last: int, *, updated: str, without_match_key: tuple[int, ...] = ()) -> str:
    """Rows order-<n>: value n, e-mail unless listed, updated_at strictly increasing with n."""
    rows = []
    for n in range(first, last + 1):
        email = "NULL" if n in without_match_key else f"'Buyer.{n}@Example.com'"
        rows.append(
            f"('order-{n:04d}', now() - interval '2 hours', 'purchase', {n}, 'USD', {email}, "
            f"NULL, 'US', {updated} + {n} * interval '1 millisecond')"
        )
    return "INSERT INTO conversions VALUES " + ",\n".join(rows) + ";"


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A throwaway server with database `shop`."""
    with PostgresServer() as server:
        server.psql("CREATE DATABASE shop")
        server.psql(TABLE, database="shop")
        yield server


def _state(project: Project) -> dict[str, Any]:
    out = project.run("state", "get", JOB).stdout
    return json.loads(out)


def test_tap_postgres_to_target_twice_incrementally(
    installed: Project, postgres: PostgresServer, emulator: AmazonAdsEmulator
) -> None:
    project = installed
    invalid = (17, 123)  # no match key: rejected locally, with a reason
    postgres.psql(
        _insert(1, 250, updated="now() - interval '1 hour'", without_match_key=invalid),
        database="shop",
    )

    # Each way of setting a value, in one real run: secrets in .env, ids through
    # `meltano config set`, the emulator's URLs and the server's address as environment variables.
    config = emulator.target_config()
    (project.root / ".env").write_text(
        f"{PREFIX}CLIENT_ID='{config['client_id']}'\n"
        f"{PREFIX}CLIENT_SECRET='{config['client_secret']}'\n"
        f"{PREFIX}REFRESH_TOKEN='{config['refresh_token']}'\n"
        f"TAP_POSTGRES_PASSWORD='{postgres.password}'\n"
    )
    project.run("config", "set", TARGET, "advertiser_id", "1234567890")
    project.run("config", "set", TARGET, "profile_id", "3333333333")
    env = {
        "TAP_POSTGRES_HOST": postgres.host,
        "TAP_POSTGRES_PORT": str(postgres.port),
        f"{PREFIX}API_URL": config["api_url"],
        f"{PREFIX}AUTH_URL": config["auth_url"],
        # One request at a time with a slow API: the run lasts long enough to log progress.
        f"{PREFIX}MAX_CONCURRENT_REQUESTS": "1",
    }
    emulator.faults = Faults(latency_seconds=2.0)

    first = project.run("run", "tap-postgres", TARGET, env=env)

    report = json.loads((project.root / "output/run-report.json").read_text())
    assert report["records_read"] == 250
    assert report["records_accepted"] == 248
    assert report["records_rejected"] == 2
    assert report["rejects_by_code"] == {"MISSING_MATCH_KEY": 2}
    assert report["match_keys"] == {"EMAIL": 248}
    # Files with personal data lie in the loader's own directory under output/, which git
    # ignores whatever the project's .gitignore says.
    rejects = project.jsonl(f"output/{TARGET}/rejects.jsonl")
    assert sorted(r["record"]["order_id"] for r in rejects) == ["order-0017", "order-0123"]
    assert all(r["errors"][0]["code"] == "MISSING_MATCH_KEY" for r in rejects)
    accepted_values = sorted(float(e["value"]) for e in emulator.accepted)
    assert accepted_values == [float(n) for n in range(1, 251) if n not in invalid]
    assert sorted(emulator.accepted_ids().values()) == [1] * 248
    uploads = [r for r in emulator.requests if r.path.endswith("/eventData")]
    assert all(r.headers["Amazon-Advertising-API-Scope"] == "3333333333" for r in uploads)
    # Meltano's log shows the target's progress lines and its summary.
    assert re.search(
        r"Progress: \d+ read, \d+ sent, \d+ accepted, \d+ rejected, \d+ records/s", first.stderr
    )
    assert "Run complete: 250 records read, 248 accepted, 2 rejected" in first.stderr
    # Meltano stored the tap's bookmark, which the target passed on once everything was settled.
    newest = postgres.psql(
        "SELECT to_char(max(updated_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
        "FROM conversions", database="shop").strip()  # fmt: skip
    bookmark = _state(project)["singer_state"]["bookmarks"]["public-conversions"]
    assert bookmark["replication_key"] == "updated_at"
    assert bookmark["replication_key_value"].startswith(newest)

    # Second run: five new rows. tap-postgres reads from its bookmark inclusively, so the newest
    # row of the first run comes again: the delivery journal knows Amazon has it.
    postgres.psql(_insert(251, 255, updated="now()"), database="shop")
    emulator.faults = Faults()
    emulator.reset_ledger()

    project.run("run", "tap-postgres", TARGET, env=env)

    report = json.loads((project.root / "output/run-report.json").read_text())
    assert report["records_read"] == 6
    assert report["records_accepted"] == 6
    assert report["records_already_acknowledged"] == 1  # order-0250, the bookmark row
    assert sorted(float(e["value"]) for e in emulator.accepted) == [251, 252, 253, 254, 255]
    bookmark = _state(project)["singer_state"]["bookmarks"]["public-conversions"]
    assert bookmark["replication_key_value"] > newest


def untracked(root: Path) -> list[str]:
    """What `git add -A` would stage in a new repository at `root`."""
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line[3:] for line in status.splitlines()]


def test_each_loader_keeps_its_own_files_where_git_does_not_pick_them_up(
    installed: Project, emulator: AmazonAdsEmulator
) -> None:
    project = installed
    second = f"{TARGET}--second"
    text = (project.root / "meltano.yml").read_text()
    if second not in text:  # a second loader of the same package: no install of its own
        text = text.replace(
            "\n  loaders:\n",
            f"\n  loaders:\n  - name: {second}\n    inherit_from: {TARGET}\n",
            1,
        )
        (project.root / "meltano.yml").write_text(text)
    subprocess.run([sys.executable, "sample/make_sample.py"], cwd=project.root, check=True)
    config = emulator.target_config()
    env = {f"{PREFIX}{key.upper()}": str(value) for key, value in config.items()}

    for loader in (TARGET, second):
        project.run("run", "--full-refresh", "tap-jsonl", loader, env=env)

    for loader in (TARGET, second):
        outputs = project.root / "output" / loader
        assert (outputs / "delivery-journal.sqlite").exists(), loader
        rejects = project.jsonl(f"output/{loader}/rejects.jsonl")  # the sample's "A-" orders
        rejected = sorted(r["record"]["order_id"] for r in rejects if r["stream"] == "conversions")
        assert [o for o in rejected if o.startswith("A-")] == ["A-1009", "A-1010", "A-1011"]
        assert stat.S_IMODE((outputs / "rejects.jsonl").stat().st_mode) == 0o600
    assert not list(project.root.glob("*.jsonl")) and not list(project.root.glob("*.sqlite"))
    # Two journals: the second loader sent every event, not skipping the first one's.
    assert sorted(emulator.accepted_ids().values()) == [2] * 9
    personal = [n for n in untracked(project.root) if n.endswith((".jsonl", ".sqlite"))]
    assert [n for n in personal if not n.startswith("sample/")] == []


# --------------------------------------------------------------------------- settings
def test_meltano_config_set_writes_secrets_to_dotenv_and_types_values(project: Project) -> None:
    project.run("config", "set", TARGET, "client_secret", "s3cret-value")
    project.run("config", "set", TARGET, "advertiser_id", "1234567890")
    project.run("config", "set", TARGET, "max_retries", "3")
    project.run("config", "set", TARGET, "dry_run", "true")
    project.run("config", "set", TARGET, "conversion_definitions", '{"purchase": "cd-1"}')

    assert "s3cret-value" not in (project.root / "meltano.yml").read_text()
    assert f"{PREFIX}CLIENT_SECRET='s3cret-value'" in (project.root / ".env").read_text()
    config = project.config(TARGET)
    assert config["client_secret"] == "*****"
    assert config["advertiser_id"] == "1234567890"
    assert config["max_retries"] == 3
    assert config["dry_run"] is True
    assert config["conversion_definitions"] == {"purchase": "cd-1"}
    bad = project.run("config", "set", TARGET, "region", "MARS", check=False)
    assert bad.returncode != 0
    assert "'MARS' is not a valid choice for 'region'" in bad.stdout + bad.stderr


SETTINGS_AS_TEXT = {
    f"{PREFIX}ADVERTISER_ID": "1234567890",
    f"{PREFIX}REGION": "EU",
    f"{PREFIX}API": "events",
    f"{PREFIX}DRY_RUN": "true",
    f"{PREFIX}MAX_CONCURRENT_REQUESTS": "4",
    f"{PREFIX}REQUEST_TIMEOUT": "30",
    f"{PREFIX}MAPPING": '{"eventTime": "created_at", "email": "customer.email"}',
    f"{PREFIX}DEFAULTS": '{"countryCode": "US", "currency": "USD"}',
    f"{PREFIX}REFRESH_TOKEN": "Atzr|from-the-environment",
}
SETTINGS_TYPED = {
    "advertiser_id": "1234567890",
    "region": "EU",
    "api": "events",
    "dry_run": True,
    "max_concurrent_requests": 4,
    "request_timeout": 30,
    "mapping": {"eventTime": "created_at", "email": "customer.email"},
    "defaults": {"countryCode": "US", "currency": "USD"},
    "refresh_token": "*****",
}


def test_environment_variables_set_every_kind_of_setting(project: Project) -> None:
    out = project.run("config", "print", TARGET, "--format=json", env=SETTINGS_AS_TEXT).stdout
    config = json.loads(out)
    assert {k: config[k] for k in SETTINGS_TYPED} == SETTINGS_TYPED


def test_dotenv_sets_every_kind_of_setting(project: Project) -> None:
    (project.root / ".env").write_text(
        "".join(f"{name}='{value}'\n" for name, value in SETTINGS_AS_TEXT.items())
    )
    config = project.config(TARGET)
    assert {k: config[k] for k in SETTINGS_TYPED} == SETTINGS_TYPED


def test_plugin_command_check_reports_the_connection(
    installed: Project, emulator: AmazonAdsEmulator
) -> None:
    config = emulator.target_config()
    env = {f"{PREFIX}{key.upper()}": str(value) for key, value in config.items()}

    good = installed.run("invoke", f"{TARGET}:check", env=env, check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK: no problems found" in good.stdout
    assert "cd-purchase" in good.stdout
    assert config["client_secret"] not in good.stdout + good.stderr

    emulator.revoked_refresh_tokens.add(config["refresh_token"])
    emulator.refresh_tokens.discard(config["refresh_token"])
    revoked = installed.run("invoke", f"{TARGET}:check", env=env, check=False)
    assert revoked.returncode == 1
    assert "Sign in with Amazon again" in revoked.stdout


# --------------------------------------------------------------------------- tap-postgres, batch
def test_tap_postgres_in_batch_mode_delivers_its_batch_files(
    installed: Project, postgres: PostgresServer, emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    """The SDK's batch mode: tap-postgres writes gzipped JSONL files to a local directory and
    sends BATCH messages naming them; the target reads them as records."""
    invalid = (40,)
    for first in range(1, 1201, 200):  # in parts: psql takes the SQL as an argument
        postgres.psql(
            _insert(
                first, first + 199, updated="now() - interval '1 hour'", without_match_key=invalid
            ),
            database="shop",
        )
    batches = tmp_path / "batches"
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": batches.as_uri(), "prefix": "conversions-"},
        "batch_size": 500,
    }
    config = emulator.target_config()
    env = {
        "TAP_POSTGRES_HOST": postgres.host,
        "TAP_POSTGRES_PORT": str(postgres.port),
        "TAP_POSTGRES_PASSWORD": postgres.password,
        "TAP_POSTGRES_BATCH_CONFIG": json.dumps(batch_config),
        **{f"{PREFIX}{key.upper()}": str(value) for key, value in config.items()},
        f"{PREFIX}REPORT_PATH": str(tmp_path / "report.json"),
        f"{PREFIX}REJECTS_PATH": str(tmp_path / "rejects.jsonl"),
        f"{PREFIX}JOURNAL_PATH": str(tmp_path / "journal.jsonl"),
    }

    run = installed.run(
        "run", "--full-refresh", "--state-id-suffix=batch", "tap-postgres", TARGET, env=env
    )

    files = sorted(batches.glob("conversions-*"))
    assert len(files) == 3, run.stderr[-3000:]  # 1,200 rows in files of 500
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["records_read"] == 1200
    assert report["records_accepted"] == 1199
    (reject,) = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert reject["record"]["order_id"] == "order-0040"
    assert reject["batch_file"] in {f.as_uri() for f in files}
    assert sorted(float(e["value"]) for e in emulator.accepted) == [
        float(n) for n in range(1, 1201) if n not in invalid
    ]
    assert sorted(emulator.accepted_ids().values()) == [1] * 1199
    state = json.loads(installed.run("state", "get", f"{JOB}:batch").stdout)
    bookmark = state["singer_state"]["bookmarks"]["public-conversions"]
    assert bookmark["replication_key"] == "updated_at"
