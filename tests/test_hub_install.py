"""A Meltano Hub user's install path, end to end and offline (PyPI only, for dependencies).

A local Hub API (tests/hub_server.py) serves this repository's Hub definition, exactly as the Hub
would build it from meltano-hub/_data, next to a definition of the sample extractor tap-jsonl.
The package comes from a wheel built from the checkout (tests/hub_build.py); uv, which Meltano 4
installs plugins with, finds it through UV_FIND_LINKS and a constraint that pins the built
version, so PyPI can never stand in for it. Then, in a fresh `meltano init` project
(Meltano 4.4.1 from .venv-meltano), as a user types it:

    meltano add target-amazon-dsp-conversions        # resolved through MELTANO_HUB_URL
    meltano add --no-install tap-jsonl
    meltano install
    meltano config set ...                           # values typed by the definition's kinds
    meltano run tap-jsonl target-amazon-dsp-conversions   # dry run, then against the emulator

The run report (`report_path`) and the emulator's ledger are what is asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import warm_start
from tests.emulator import AmazonAdsEmulator
from tests.hub_build import Dists, build_dists
from tests.hub_rules import HUB, REPO, api_errors, definition_errors
from tests.hub_server import API_ROOT, LocalHub

NAME = "target-amazon-dsp-conversions"
PREFIX = "TARGET_AMAZON_DSP_CONVERSIONS_"
MELTANO = REPO / ".venv-meltano" / "bin" / "meltano"

# The sample extractor as a Hub definition (the variant is tap-jsonl's PyPI author: the package
# names no repository). Pinned, as meltano.yml pins it.
TAP_JSONL: dict[str, Any] = {
    "capabilities": ["about", "catalog", "discover", "schema-flattening", "state", "stream-maps"],
    "description": "JSON Lines files",
    "executable": "tap-jsonl",
    "keywords": ["meltano_sdk", "file"],
    "label": "JSONL",
    "maintenance_status": "active",
    "name": "tap-jsonl",
    "namespace": "tap_jsonl",
    "pip_url": "tap-jsonl==0.3.1",
    "quality": "unknown",
    "settings": [
        {"description": "Glob pattern of the JSONL files to read.", "kind": "string",
         "label": "Path Glob", "name": "path"},
        {"kind": "array", "label": "Primary Keys", "name": "primary_keys"},
        {"kind": "string", "label": "Stream Name", "name": "stream_name"},
    ],
    "variant": "lc",
}  # fmt: skip

# Five conversions and one without a match key (rejected locally with MISSING_MATCH_KEY).
VALID = 5


def _records() -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    records = [
        {
            "order_id": f"H-{n}",
            "eventTime": (now - timedelta(minutes=20 + n)).isoformat(timespec="seconds"),
            "conversionType": "purchase",
            "value": 10 * n + 0.5,
            "currency": "USD",
            "email": f"Hub.User{n}@Example.com",
            "countryCode": "US",
        }
        for n in range(1, VALID + 1)
    ]
    records.append({**records[0], "order_id": "H-no-key", "email": None})
    return records


def _meltano() -> Path:
    """The Meltano of scripts/test.sh (created the same way when pytest runs on its own)."""
    if not MELTANO.exists():
        venv = MELTANO.parent.parent
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "-r", str(REPO / "scripts" / "requirements-meltano.txt")],
            check=True, timeout=600,
        )  # fmt: skip
    return MELTANO


def _uv_cache_dir() -> str:
    """uv's download cache as it is now (XDG_CACHE_HOME is moved for Meltano's Hub cache)."""
    if os.environ.get("UV_CACHE_DIR"):
        return os.environ["UV_CACHE_DIR"]
    uv = MELTANO.parent / "uv"
    out = subprocess.run(
        [str(uv), "cache", "dir"], capture_output=True, text=True, check=False, timeout=60
    )
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else ""


@dataclass
class HubProject:
    """A Meltano project whose Hub is the local one."""

    root: Path
    env: dict[str, str]
    hub: LocalHub
    dists: Dists
    variant: str

    def meltano(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`meltano ARGS` in the project, as a user would type it."""
        result = warm_start.run_meltano(
            MELTANO, list(args), cwd=self.root, env={**self.env, **(env or {})}, timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"meltano {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
            )
        return result

    def config(self, plugin: str) -> dict[str, Any]:
        """The configuration Meltano hands the plugin (secrets shown as *****)."""
        result: dict[str, Any] = json.loads(
            self.meltano("config", "print", plugin, "--format=json").stdout
        )
        return result

    def report(self) -> dict[str, Any]:
        """The target's run report."""
        result: dict[str, Any] = json.loads((self.root / "output/run-report.json").read_text())
        return result

    def jsonl(self, relative: str) -> list[dict[str, Any]]:
        """Lines of a JSONL file in the project."""
        path = self.root / relative
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def hub_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProject]:
    """The local Hub, the built wheel and an empty `meltano init` project pointed at both."""
    base = tmp_path_factory.mktemp("hub-install")
    dists = build_dists()
    (base / "constraints.txt").write_text(f"{NAME}=={dists.version}\n")

    tap_data = base / "tap-data"
    tap_file = tap_data / "meltano" / "extractors" / "tap-jsonl" / f"{TAP_JSONL['variant']}.yml"
    tap_file.parent.mkdir(parents=True)
    tap_file.write_text(yaml.safe_dump(TAP_JSONL))
    (tap_data / "default_variants.yml").write_text(
        yaml.safe_dump({"extractors": {"tap-jsonl": TAP_JSONL["variant"]}})
    )
    (variant_file,) = (HUB / "_data" / "meltano" / "loaders" / NAME).glob("*.yml")

    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith((PREFIX, "TAP_", "MELTANO_", "VIRTUAL_ENV"))
    }  # fmt: skip
    uv_cache = _uv_cache_dir()
    env.update(
        NO_COLOR="1",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        # Meltano caches Hub answers under XDG_CACHE_HOME/meltano: keep them out of the user's.
        XDG_CACHE_HOME=str(base / "cache"),
        UV_FIND_LINKS=str(dists.directory),
        UV_CONSTRAINT=str(base / "constraints.txt"),
    )
    if uv_cache:
        env["UV_CACHE_DIR"] = uv_cache

    meltano = _meltano()
    with LocalHub([HUB / "_data", tap_data], HUB / "schemas" / "api") as hub:
        env["MELTANO_HUB_URL"] = hub.url
        init = subprocess.run(
            [str(meltano), "init", "project", "--no-usage-stats"], cwd=base, env=env,
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert init.returncode == 0, init.stdout + init.stderr
        yield HubProject(base / "project", env, hub, dists, variant_file.stem)


def test_the_local_hub_serves_what_the_hubs_api_schemas_describe(
    hub_project: HubProject,
) -> None:
    api = hub_project.hub.api
    variant = hub_project.variant
    assert definition_errors("extractors", TAP_JSONL) == []
    assert api_errors("plugins_index.schema.json", api[f"{API_ROOT}/index"]) == []
    for plugin_type in ("loaders", "extractors"):
        index = api[f"{API_ROOT}/{plugin_type}/index"]
        assert api_errors("plugin_type_index.schema.json", index) == []
    loaders = api[f"{API_ROOT}/loaders/index"]
    assert loaders[NAME]["default_variant"] == variant
    assert loaders[NAME]["logo_url"] == f"{hub_project.hub.url}/assets/logos/loaders/" + (
        "amazon-dsp-conversions.png"
    )
    definition = api[f"{API_ROOT}/loaders/{NAME}--{variant}"]
    assert api_errors("loaders.schema.json", definition) == []
    assert api_errors("extractors.schema.json", api[f"{API_ROOT}/extractors/tap-jsonl--lc"]) == []
    # What only the Hub's web page shows stays out of the API; what Meltano uses is there.
    assert not {"quality", "maintenance_status", "keywords", "usage"} & set(definition)
    for key in ("name", "namespace", "variant", "pip_url", "executable", "settings", "repo"):
        assert key in definition, key
    assert definition["docs"] == f"{hub_project.hub.url}/loaders/{NAME}--{variant}"


def test_meltano_add_resolves_the_loader_through_the_hub(hub_project: HubProject) -> None:
    project, variant = hub_project, hub_project.variant

    added = project.meltano("add", NAME)

    assert f"{API_ROOT}/loaders/index" in project.hub.requests
    assert f"{API_ROOT}/loaders/{NAME}--{variant}" in project.hub.requests
    assert added.returncode == 0
    meltano_yml = yaml.safe_load((project.root / "meltano.yml").read_text())
    (loader,) = meltano_yml["plugins"]["loaders"]
    assert loader == {"name": NAME, "variant": variant, "pip_url": NAME}
    # The full definition is locked in the project, as served by the Hub.
    lock = json.loads((project.root / f"plugins/loaders/{NAME}--{variant}.lock").read_text())
    served = project.hub.api[f"{API_ROOT}/loaders/{NAME}--{variant}"]
    assert lock["name"] == NAME
    assert lock["variant"] == variant
    assert [s["name"] for s in lock["settings"]] == [s["name"] for s in served["settings"]]
    assert lock["capabilities"] == served["capabilities"]
    assert lock["commands"] == served["commands"]

    project.meltano("add", "--no-install", "tap-jsonl")
    project.meltano("install")

    for plugin in (f"loaders/{NAME}", "extractors/tap-jsonl"):
        assert (project.root / ".meltano" / plugin / "venv" / "bin" / "python").exists(), plugin
    # The built wheel, not something else named like it.
    version = project.meltano("invoke", NAME, "--version")
    assert project.dists.version in version.stdout + version.stderr
    about = json.loads(project.meltano("invoke", NAME, "--about", "--format=json").stdout)
    assert sorted(about["settings"]["properties"]) == [s["name"] for s in served["settings"]]
    assert sorted(about["capabilities"]) == served["capabilities"]


def test_meltano_config_set_types_values_by_the_hubs_kinds(hub_project: HubProject) -> None:
    project = hub_project
    if not (project.root / ".meltano" / "loaders" / NAME).exists():
        raise AssertionError("needs test_meltano_add_resolves_the_loader_through_the_hub first")
    settings = {
        "dry_run": "true",  # boolean
        "max_retries": "2",  # integer
        "conversion_definitions": '{"purchase": "HUB-PURCHASE-DEFINITION"}',  # object
        "region": "NA",  # options
        "advertiser_id": "1234567890",  # string
        "client_secret": "hub-secret-value",  # password (sensitive)
        "report_path": "output/run-report.json",
        "rejects_path": "output/rejects.jsonl",
        "dry_run_path": "output/dry-run-requests.jsonl",
    }
    for setting, value in settings.items():
        project.meltano("config", "set", NAME, setting, value)
    for setting, value in {
        "path": "data/conversions.jsonl",
        "stream_name": "conversions",
        "primary_keys": '["order_id"]',  # array
    }.items():
        project.meltano("config", "set", "tap-jsonl", setting, value)

    config = project.config(NAME)
    assert config["dry_run"] is True
    assert config["max_retries"] == 2
    assert config["conversion_definitions"] == {"purchase": "HUB-PURCHASE-DEFINITION"}
    assert config["region"] == "NA"
    assert config["advertiser_id"] == "1234567890"
    assert config["client_secret"] == "*****"
    assert project.config("tap-jsonl")["primary_keys"] == ["order_id"]
    assert "hub-secret-value" not in (project.root / "meltano.yml").read_text()
    assert f"{PREFIX}CLIENT_SECRET='hub-secret-value'" in (project.root / ".env").read_text()
    bad = project.meltano("config", "set", NAME, "region", "MARS", check=False)
    assert bad.returncode != 0
    assert "'MARS' is not a valid choice for 'region'" in bad.stdout + bad.stderr


def test_meltano_run_in_dry_run_and_against_the_emulator(hub_project: HubProject) -> None:
    project = hub_project
    if "dry_run" not in (project.root / "meltano.yml").read_text():
        raise AssertionError("needs test_meltano_config_set_types_values_by_the_hubs_kinds first")
    data = project.root / "data" / "conversions.jsonl"
    data.parent.mkdir(exist_ok=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in _records()))

    # Dry run: every request built and validated, written to a file, nothing sent.
    project.meltano("run", "tap-jsonl", NAME)

    report = project.report()
    assert report["records_read"] == VALID + 1
    assert (report["records_written"], report["records_accepted"]) == (VALID, 0)
    assert report["records_rejected"] == 1
    assert report["rejects_by_code"] == {"MISSING_MATCH_KEY": 1}
    requests = project.jsonl("output/dry-run-requests.jsonl")
    assert requests and "example.com" not in json.dumps(requests).lower()
    assert "HUB-PURCHASE-DEFINITION" in json.dumps(requests)
    rejects = project.jsonl("output/rejects.jsonl")
    assert [r["record"]["order_id"] for r in rejects] == ["H-no-key"]

    # A real run against the Amazon Ads API emulator: credentials through `meltano config set`
    # (secrets land in .env), conversion definitions looked up by name.
    with AmazonAdsEmulator() as emulator:
        target = emulator.target_config()
        project.meltano("config", "set", NAME, "dry_run", "false")
        project.meltano("config", "unset", NAME, "conversion_definitions")
        for setting in ("client_id", "client_secret", "refresh_token", "api_url", "auth_url",
                        "profile_id"):  # fmt: skip
            project.meltano("config", "set", NAME, setting, str(target[setting]))
        (project.root / "output" / "rejects.jsonl").unlink()

        project.meltano("run", "--full-refresh", "tap-jsonl", NAME)

        report = project.report()
        assert report["records_read"] == VALID + 1
        assert report["records_accepted"] == VALID
        assert report["records_rejected"] == 1
        assert report["rejects_by_code"] == {"MISSING_MATCH_KEY": 1}
        assert sorted(float(e["value"]) for e in emulator.accepted) == [
            10 * n + 0.5 for n in range(1, VALID + 1)
        ]
        uploads = [r for r in emulator.requests if r.path.endswith("/eventData")]
        assert uploads
        assert all(
            r.headers["Amazon-Advertising-API-Scope"] == target["profile_id"] for r in uploads
        )
    assert [r["record"]["order_id"] for r in project.jsonl("output/rejects.jsonl")] == ["H-no-key"]


def test_from_a_clone_with_from_ref_and_the_setting_kinds(hub_project: HubProject) -> None:
    """README > Install, before the package is on PyPI and the plugin on the Hub: the loader
    added from the Hub file kept in the clone (every setting with its kind), `pip_url` pointed
    at the clone, in a project of one's own; no Hub involved."""
    (definition,) = (HUB / "_data" / "meltano" / "loaders" / NAME).glob("*.yml")
    root = hub_project.root.parent / "own-project"
    # The clone's own build (hatch-vcs), not the wheel the constraint pins.
    env = {k: v for k, v in hub_project.env.items() if k not in {"UV_CONSTRAINT", "UV_FIND_LINKS"}}
    own = HubProject(root, env, hub_project.hub, hub_project.dists, hub_project.variant)
    init = subprocess.run(
        [str(MELTANO), "init", root.name, "--no-usage-stats"], cwd=root.parent, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert init.returncode == 0, init.stdout + init.stderr
    asked_before = len(hub_project.hub.requests)

    own.meltano("add", "--no-install", "--from-ref", str(definition), NAME)
    meltano_yml = own.root / "meltano.yml"
    text, count = re.subn(rf"(?m)^(\s+pip_url:) {NAME}$", rf"\1 {REPO}", meltano_yml.read_text())
    assert count == 1
    meltano_yml.write_text(text)
    own.meltano("install")

    assert len(hub_project.hub.requests) == asked_before  # the Hub was never asked
    (loader,) = yaml.safe_load(meltano_yml.read_text())["plugins"]["loaders"]
    assert loader["namespace"] == "target_amazon_dsp_conversions"
    kinds = {s["name"]: s.get("kind") for s in loader["settings"]}
    assert kinds["max_retries"] == "integer"
    assert kinds["dry_run"] == "boolean"
    assert kinds["conversion_definitions"] == "object"
    assert {s["name"] for s in loader["settings"] if s.get("sensitive")} == {
        "client_secret", "refresh_token",
    }  # fmt: skip
    own.meltano("config", "set", NAME, "max_retries", "3")
    own.meltano("config", "set", NAME, "refresh_token", "Atzr|own")
    config = own.config(NAME)
    assert config["max_retries"] == 3
    assert config["refresh_token"] == "*****"
    about = json.loads(own.meltano("invoke", NAME, "--about", "--format=json").stdout)
    assert sorted(about["settings"]["properties"]) == sorted(kinds)
