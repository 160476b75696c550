"""The Meltano Hub definition and meltano.yml never drift from what the target says it accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
HUB_DIR = REPO / "meltano-hub" / "loaders" / "target-amazon-dsp-conversions"
NAME = "target-amazon-dsp-conversions"

# Loader capabilities the Hub and meltano.yml schemas know; the SDK also reports
# `validate-records`, which Meltano's schema does not list, so it stays out of both files.
MELTANO_LOADER_CAPABILITIES = {
    "about", "stream-maps", "activate-version", "batch", "soft-delete", "hard-delete",
    "datatype-failsafe", "schema-flattening", "structured-logging",
}  # fmt: skip

# JSON-schema type -> Meltano setting kind. `number` is `integer` on purpose: Meltano 4.4.1's
# `kind: decimal` crashes `meltano config` and `meltano run` when the value comes from the
# environment (Decimal is not JSON serializable); fractional values still work in meltano.yml.
KINDS = {
    "string": "string", "boolean": "boolean", "integer": "integer", "number": "integer",
    "object": "object", "array": "array",
}  # fmt: skip


@pytest.fixture(scope="module")
def about() -> dict[str, Any]:
    """What the installed console script reports, as Meltano and the Hub would read it."""
    out = subprocess.run(
        [sys.executable, "-m", "target_amazon_dsp_conversions", "--about", "--format=json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)


def _hub_files() -> list[Path]:
    return sorted(HUB_DIR.glob("*.yml"))


@pytest.fixture(scope="module")
def hub() -> dict[str, Any]:
    """The one Hub definition kept in the repository."""
    files = _hub_files()
    assert len(files) == 1, f"expected one <variant>.yml in {HUB_DIR}, found {files}"
    definition: dict[str, Any] = yaml.safe_load(files[0].read_text())
    return definition


@pytest.fixture(scope="module")
def loader() -> dict[str, Any]:
    """The target as meltano.yml declares it."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    (found,) = [p for p in project["plugins"]["loaders"] if p["name"] == NAME]
    return found


def _setting_type(prop: dict[str, Any]) -> str:
    types = prop.get("type", "object")
    types = [types] if isinstance(types, str) else types
    (kind,) = [t for t in types if t != "null"]
    return str(kind)


def _expected_setting(name: str, prop: dict[str, Any], *, hub: bool) -> dict[str, Any]:
    """The entry a setting of `--about` must have in the Hub file (hub) or meltano.yml."""
    expected: dict[str, Any] = {"name": name, "kind": KINDS[_setting_type(prop)]}
    if prop.get("secret"):
        # The Hub's schema still uses `password`; Meltano 4 deprecates it for string+sensitive.
        expected["kind"] = "password" if hub else "string"
        expected["sensitive"] = True
    if "enum" in prop:
        expected["kind"] = "options"
        expected["options"] = list(prop["enum"])
    default = prop.get("default")
    if default is not None:
        expected["value"] = default
    if prop.get("title"):
        expected["label"] = prop["title"]
    expected["description"] = prop.get("description", "")
    return expected


def _actual_setting(entry: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    actual = {key: entry.get(key) for key in expected}
    if "options" in actual and actual["options"] is not None:
        actual["options"] = [option["value"] for option in actual["options"]]
    return actual


@pytest.mark.parametrize("where", ["hub", "meltano.yml"])
def test_every_setting_of_about_is_declared_with_its_kind(
    where: str, about: dict[str, Any], hub: dict[str, Any], loader: dict[str, Any]
) -> None:
    declared = {s["name"]: s for s in (hub if where == "hub" else loader)["settings"]}
    properties: dict[str, Any] = about["settings"]["properties"]

    assert list(declared) == list(properties), "settings differ from --about (names or order)"
    for name, prop in properties.items():
        expected = _expected_setting(name, prop, hub=where == "hub")
        assert _actual_setting(declared[name], expected) == expected, name
        if not prop.get("secret"):
            assert not declared[name].get("sensitive"), f"{name} is not a secret"


def test_secrets_are_sensitive(about: dict[str, Any], hub: dict[str, Any]) -> None:
    secrets = {n for n, p in about["settings"]["properties"].items() if p.get("secret")}
    assert {"client_secret", "refresh_token"} <= secrets
    assert {s["name"] for s in hub["settings"] if s.get("sensitive")} == secrets


def test_hub_identity_and_capabilities_match_the_package(
    about: dict[str, Any], hub: dict[str, Any], loader: dict[str, Any]
) -> None:
    assert hub["name"] == about["name"] == NAME
    assert hub["variant"] == _hub_files()[0].stem
    assert hub["namespace"] == loader["namespace"] == "target_amazon_dsp_conversions"
    assert hub["executable"] == loader["executable"] == NAME
    # The Hub installs the published distribution, never a git URL.
    assert hub["pip_url"] == "target-amazon-dsp-conversions"
    assert "meltano_sdk" in hub["keywords"]
    assert hub["maintenance_status"] in {"active", "beta", "development", "inactive", "unknown"}
    expected = [c for c in about["capabilities"] if c in MELTANO_LOADER_CAPABILITIES]
    assert hub["capabilities"] == expected
    assert loader["capabilities"] == expected
    assert hub["settings_group_validation"] == loader["settings_group_validation"]


def test_every_meltano_plugin_installs_without_hub_or_git() -> None:
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    plugins = [p for kind in project["plugins"].values() for p in kind]
    assert {p["name"] for p in plugins} >= {"tap-postgres", "tap-jsonl", NAME}
    for plugin in plugins:
        # namespace + pip_url + executable make a custom plugin: Meltano never asks the Hub.
        assert plugin.get("namespace") and plugin.get("executable"), plugin["name"]
        assert "variant" not in plugin, plugin["name"]
        pip_url = plugin["pip_url"]
        assert "git+" not in pip_url and "://" not in pip_url, plugin["name"]
        assert "==" in pip_url or pip_url == "-e .", f"{plugin['name']}: pin {pip_url!r}"
