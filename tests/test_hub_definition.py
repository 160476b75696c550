"""The Meltano Hub contribution in meltano-hub/ passes the Hub's own checks and never drifts from
what the target says it accepts (`target-amazon-dsp-conversions --about --format=json`), nor from
meltano.yml.

meltano-hub/ is laid out as a pull request to meltano/hub: `_data/meltano/loaders/<name>/
<variant>.yml`, this plugin's entries of `_data/default_variants.yml` and `_data/maintainers.yml`,
the logo under `static/assets/logos/loaders/`; `schemas/` and `.yamllint.yaml` are the Hub's
(a snapshot, checked against the digests in tests/hub_snapshot.sha256).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hub_rules import HUB, REPO, definition_errors, yamllint_problems

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

NAME = "target-amazon-dsp-conversions"
DATA = HUB / "_data"
PLUGIN_DIR = DATA / "meltano" / "loaders" / NAME
SNAPSHOT = Path(__file__).with_name("hub_snapshot.sha256")

MELTANO_VENV = REPO / ".venv-meltano"

# JSON-schema type -> Meltano setting kind. `number` is `integer` on purpose: Meltano 4.4.1's
# `kind: decimal` crashes `meltano config` and `meltano run` when the value comes from the
# environment (Decimal is not JSON serializable); fractional values still work in meltano.yml.
KINDS = {
    "string": "string", "boolean": "boolean", "integer": "integer", "number": "integer",
    "object": "object", "array": "array",
}  # fmt: skip


def _target_cli() -> list[str]:
    """The installed console script next to this Python (python -m ... where there is none)."""
    script = Path(sys.executable).parent / NAME
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "target_amazon_dsp_conversions"]
    )


@pytest.fixture(scope="module")
def about() -> dict[str, Any]:
    """What the installed target reports, as Meltano and the Hub would read it."""
    out = subprocess.run(
        [*_target_cli(), "--about", "--format=json"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.fixture(scope="module")
def publish() -> dict[str, Any]:
    """meltano-hub/publish.toml: the one place that names the GitHub owner."""
    return tomllib.loads((HUB / "publish.toml").read_text())


@pytest.fixture(scope="module")
def hub(publish: dict[str, Any]) -> dict[str, Any]:
    """The one Hub definition, `<variant>.yml`."""
    files = sorted(PLUGIN_DIR.glob("*.yml"))
    assert [f.name for f in files] == [f"{publish['owner'].lower()}.yml"], files
    definition: dict[str, Any] = yaml.safe_load(files[0].read_text())
    return definition


@pytest.fixture(scope="module")
def loader() -> dict[str, Any]:
    """The target as meltano.yml declares it."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    (found,) = [p for p in project["plugins"]["loaders"] if p["name"] == NAME]
    return dict(found)


def _project_name() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"])


# --------------------------------------------------------------------------- the Hub's own checks
def _hub_yaml_files() -> list[Path]:
    return sorted(DATA.rglob("*.yml"))


def test_definition_passes_the_hubs_schema_validation(hub: dict[str, Any]) -> None:
    assert definition_errors("loaders", hub) == []
    # The registry resolves the schemas' $refs: errors in common/ and hub_metadata are caught.
    assert definition_errors("loaders", {k: v for k, v in hub.items() if k != "quality"}) == [
        "(top): 'quality' is a required property"
    ]
    broken = {**hub, "settings": [{"name": "x", "kind": "secret"}], "maintenance_status": "ok"}
    errors = definition_errors("loaders", broken)
    assert any(e.startswith("settings/0/kind: 'secret' is not one of") for e in errors), errors
    assert any(e.startswith("maintenance_status: 'ok' is not one of") for e in errors), errors


@pytest.mark.parametrize("path", _hub_yaml_files(), ids=lambda p: str(p.relative_to(HUB)))
def test_hub_files_pass_the_hubs_yamllint(path: Path) -> None:
    assert yamllint_problems(path.read_text(), path) == []


def test_the_hubs_yamllint_rules_are_in_force() -> None:
    # What the definition looked like before: flow mappings and keys out of order.
    old_style = "name: x\nsettings:\n- name: region\n  kind: options\n  options:\n  - {value: EU}\n"
    problems = yamllint_problems(old_style)
    assert any("(braces)" in p for p in problems), problems
    assert any("(key-ordering)" in p for p in problems), problems
    assert any("(indentation)" in p for p in yamllint_problems("a:\n  - b\n"))


def test_hub_rules_are_the_hubs() -> None:
    """meltano-hub/schemas and .yamllint.yaml are the Hub's, unchanged: those files only, byte
    for byte, as tests/hub_snapshot.sha256 recorded them when copied from meltano/hub."""
    recorded = {}
    for line in SNAPSHOT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            recorded[name] = digest
    files = [*sorted((HUB / "schemas").rglob("*")), HUB / ".yamllint.yaml"]
    ours = {
        str(p.relative_to(HUB)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if p.is_file()
    }
    assert ours == recorded


# --------------------------------------------------------------------------- laid out for the Hub
def test_layout_is_a_hub_pull_request(hub: dict[str, Any], publish: dict[str, Any]) -> None:
    owner = publish["owner"]
    variant = owner.lower()
    # Only the files a pull request to meltano/hub adds or edits.
    assert sorted(str(p.relative_to(HUB)) for p in _hub_yaml_files()) == [
        "_data/default_variants.yml",
        "_data/maintainers.yml",
        f"_data/meltano/loaders/{NAME}/{variant}.yml",
    ]
    # The variant is the repository owner in lower case (the Hub's convention), not a tier name.
    assert hub["variant"] == variant
    assert variant not in {"community", "meltano", "meltanolabs", "default", "original"}
    assert hub["name"] == PLUGIN_DIR.name == NAME  # the Hub's yaml_check_names.py
    assert hub["repo"] == f"https://github.com/{owner}/{_project_name()}"
    # The Hub installs the published distribution, never a git URL.
    assert hub["pip_url"] == _project_name()
    assert yaml.safe_load((DATA / "default_variants.yml").read_text()) == {
        "loaders": {NAME: variant}
    }
    maintainers = yaml.safe_load((DATA / "maintainers.yml").read_text())
    assert list(maintainers) == [variant]  # the Hub's maintainers_validate.py: variant.lower()
    entry = maintainers[variant]
    assert set(entry) == {"label", "name", "url"}
    assert entry["name"] == variant
    assert entry["url"].startswith("https://")


def test_logo_is_a_png_where_logo_url_points(hub: dict[str, Any]) -> None:
    logo_url = hub["logo_url"]
    assert re.fullmatch(r"/assets/logos/loaders/[a-z0-9-]+\.png", logo_url), logo_url
    logo = HUB / "static" / logo_url.lstrip("/")
    data = logo.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width == height >= 128
    assert sorted(p.name for p in (HUB / "static").rglob("*") if p.is_file()) == [logo.name]


def test_hub_metadata_is_complete(hub: dict[str, Any]) -> None:
    assert hub["quality"] in {"gold", "silver", "bronze", "unknown"}
    assert hub["maintenance_status"] in {"active", "beta", "development", "inactive", "unknown"}
    assert "meltano_sdk" in hub["keywords"]
    for key in ("label", "description", "domain_url", "settings_preamble", "usage"):
        assert hub[key].strip(), key


def test_owner_is_set_in_one_place() -> None:
    """Every file derived from publish.toml agrees with it (scripts/hub_sync.py --check)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "hub_sync.py"), "--check"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_changing_the_owner_is_one_line(tmp_path: Path, publish: dict[str, Any]) -> None:
    """A copy with another owner in publish.toml: the script rewrites every derived file."""
    for name in ("pyproject.toml", "README.md", "meltano.yml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(HUB, tmp_path / "meltano-hub")
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    publish_file = tmp_path / "meltano-hub" / "publish.toml"
    old = publish["owner"]
    text, count = re.subn(r'(?m)^owner = ".*"$', 'owner = "Example-Org"', publish_file.read_text())
    assert count == 1
    publish_file.write_text(text)

    # The copy has no package: --about comes from the installed target.
    sync = [sys.executable, str(tmp_path / "scripts" / "hub_sync.py")]
    subprocess.run(sync, check=True, capture_output=True, timeout=120, cwd=tmp_path)
    check = subprocess.run(
        [*sync, "--check"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert check.returncode == 0, check.stdout

    hub_dir = tmp_path / "meltano-hub" / "_data"
    files = sorted(str(p.relative_to(hub_dir)) for p in hub_dir.rglob("*.yml"))
    assert files == [
        "default_variants.yml",
        "maintainers.yml",
        f"meltano/loaders/{NAME}/example-org.yml",
    ]
    definition = yaml.safe_load((hub_dir / f"meltano/loaders/{NAME}/example-org.yml").read_text())
    assert definition["variant"] == "example-org"
    assert definition["repo"] == f"https://github.com/Example-Org/{NAME}"
    assert definition_errors("loaders", definition) == []
    assert yaml.safe_load((hub_dir / "default_variants.yml").read_text()) == {
        "loaders": {NAME: "example-org"}
    }
    maintainers = yaml.safe_load((hub_dir / "maintainers.yml").read_text())
    assert maintainers == {
        "example-org": {
            "label": publish.get("maintainer", {}).get("label", "Example-Org"),
            "name": "example-org",
            "url": publish.get("maintainer", {}).get("url", "https://github.com/Example-Org"),
        }
    }
    urls = tomllib.loads((tmp_path / "pyproject.toml").read_text())["project"]["urls"]
    assert urls and all(
        u.startswith(f"https://github.com/Example-Org/{NAME}") for u in urls.values()
    )
    readme = (tmp_path / "README.md").read_text()
    assert f"github.com/{old}/" not in readme
    if f"github.com/{old}/" in (REPO / "README.md").read_text():
        assert f"github.com/Example-Org/{NAME}" in readme


def test_project_urls_point_at_the_repository(publish: dict[str, Any]) -> None:
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    repository = f"https://github.com/{publish['owner']}/{_project_name()}"
    assert urls["Repository"] == repository
    assert all(url.startswith(repository) for url in urls.values()), urls


# --------------------------------------------------------------------------- the Hub vs --about
def test_settings_match_about_in_the_hubs_sorted_order(
    hub: dict[str, Any], about: dict[str, Any]
) -> None:
    properties: dict[str, Any] = about["settings"]["properties"]
    settings = hub["settings"]
    # The Hub's formatter sorts settings by name.
    assert [s["name"] for s in settings] == sorted(properties)
    for setting in settings:
        prop = properties[setting["name"]]
        types = [prop["type"]] if isinstance(prop["type"], str) else prop["type"]
        (json_type,) = [t for t in types if t != "null"]
        expected_kind = KINDS[json_type]
        if prop.get("secret"):
            expected_kind = "password"  # the Hub's kind for a secret, with `sensitive: true`
        if "enum" in prop:
            expected_kind = "options"
        assert setting["kind"] == expected_kind, setting["name"]
        assert setting.get("sensitive", False) is bool(prop.get("secret")), setting["name"]
        assert setting["description"] == prop.get("description", ""), setting["name"]
        if prop.get("title"):
            assert setting["label"] == prop["title"], setting["name"]
        assert setting["label"], setting["name"]
        if "enum" in prop:
            assert [o["value"] for o in setting["options"]] == prop["enum"], setting["name"]
            assert all(set(o) == {"label", "value"} for o in setting["options"])
        else:
            assert "options" not in setting, setting["name"]
        if prop.get("default") is None:
            assert "value" not in setting, setting["name"]
        else:
            assert setting["value"] == prop["default"], setting["name"]
            assert type(setting["value"]) is not float or expected_kind != "integer"


def test_secrets_are_sensitive(about: dict[str, Any], hub: dict[str, Any]) -> None:
    secrets = {n for n, p in about["settings"]["properties"].items() if p.get("secret")}
    assert {"client_secret", "refresh_token"} <= secrets
    assert {s["name"] for s in hub["settings"] if s.get("sensitive")} == secrets


def test_capabilities_match_about(about: dict[str, Any], hub: dict[str, Any]) -> None:
    assert "validate-records" in about["capabilities"]
    # Every capability --about reports, sorted as the Hub's formatter sorts them.
    assert hub["capabilities"] == sorted(about["capabilities"])
    assert hub["supported_python_versions"] == about["supported_python_versions"]
    assert hub["name"] == about["name"] == NAME


# --------------------------------------------------------------------------- meltano.yml
@pytest.mark.parametrize(
    "field", ["namespace", "executable", "commands", "settings_group_validation"]
)
def test_hub_and_meltano_yml_agree(field: str, hub: dict[str, Any], loader: dict[str, Any]) -> None:
    assert hub[field] == loader[field]


def test_option_labels_agree(hub: dict[str, Any], loader: dict[str, Any]) -> None:
    declared = {s["name"]: s for s in loader["settings"]}
    for setting in hub["settings"]:
        if "options" in setting:
            assert setting["options"] == declared[setting["name"]]["options"], setting["name"]


def test_meltano_yml_declares_every_setting_of_about_with_its_kind(
    about: dict[str, Any], loader: dict[str, Any]
) -> None:
    declared = {s["name"]: s for s in loader["settings"]}
    properties: dict[str, Any] = about["settings"]["properties"]
    assert list(declared) == list(properties), "settings differ from --about (names or order)"
    for name, prop in properties.items():
        setting = declared[name]
        types = [prop["type"]] if isinstance(prop["type"], str) else prop["type"]
        (json_type,) = [t for t in types if t != "null"]
        # Meltano 4 deprecates `password`: a secret is `string` + `sensitive: true`.
        expected_kind = "options" if "enum" in prop else KINDS[json_type]
        assert setting["kind"] == expected_kind, name
        assert setting.get("sensitive", False) is bool(prop.get("secret")), name
        assert setting.get("description", "") == prop.get("description", ""), name
        if prop.get("title"):
            assert setting.get("label") == prop["title"], name
        if "enum" in prop:
            assert [o["value"] for o in setting["options"]] == prop["enum"], name
        if prop.get("default") is None:
            assert "value" not in setting, name
        else:
            assert setting["value"] == prop["default"], name


def _meltano_loader_capabilities() -> list[str]:
    """The loader capabilities the installed Meltano's meltano.yml schema knows."""
    from tests.test_meltano import _meltano_bin

    _meltano_bin()
    (path,) = MELTANO_VENV.glob("lib/python*/site-packages/meltano/schemas/meltano.schema.json")
    loaders = json.loads(path.read_text())["$defs"]["plugins"]["loaders"]
    (capabilities,) = [
        part["properties"]["capabilities"]
        for part in loaders["allOf"]
        if "capabilities" in part.get("properties", {})
    ]
    return list(capabilities["items"]["enum"])


def test_meltano_yml_capabilities(about: dict[str, Any], loader: dict[str, Any]) -> None:
    # One list, the target's: --about reports it, the Hub definition is written from --about
    # (test_capabilities_match_about), and so is meltano.yml's, less what Meltano's schema does
    # not know (`validate-records`): scripts/hub_sync.py writes that line.
    known = _meltano_loader_capabilities()
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import hub_sync
    finally:
        sys.path.remove(str(REPO / "scripts"))
    assert sorted(hub_sync.MELTANO_LOADER_CAPABILITIES) == sorted(known)
    assert loader["capabilities"] == [c for c in about["capabilities"] if c in known]


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
