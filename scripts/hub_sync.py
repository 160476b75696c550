"""Write the Meltano Hub contribution in meltano-hub/ and the project URLs, from one place.

    .venv/bin/python scripts/hub_sync.py            # write the files
    .venv/bin/python scripts/hub_sync.py --check    # exit 1, listing them, if any is out of date
    .venv/bin/python scripts/hub_sync.py --repository   # print the repository URL

Inputs: meltano-hub/publish.toml (the GitHub owner, once; Hub metadata), the target's own
`--about --format=json` (settings, capabilities, Python versions: run this script with the Python
of the environment where the target is installed), meltano.yml (namespace, executable, commands,
option labels, settings_group_validation) and pyproject.toml (the distribution name).

Outputs, laid out as a pull request to the meltano/hub repository:
- meltano-hub/_data/meltano/loaders/target-amazon-dsp-conversions/<variant>.yml, where the
  variant is the owner in lower case; keys sorted at every level, settings sorted by name,
  capabilities sorted (what the Hub's yamllint and its formatter want);
- meltano-hub/_data/default_variants.yml and meltano-hub/_data/maintainers.yml, holding only this
  plugin's entries (to merge into the Hub's files);
- the GitHub URLs of this repository in pyproject.toml's [project.urls] and in README.md;
- the loader's `capabilities` in meltano.yml: those of `--about` that Meltano's meltano.yml
  schema knows (it has no `validate-records`), so `--about`, meltano.yml and the Hub definition
  all derive them from the target's one list (`TargetAmazonDSPConversions.capabilities`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
HUB = REPO / "meltano-hub"
PUBLISH = HUB / "publish.toml"
PLUGIN_TYPE = "loaders"
LOGO_DIR = "static/assets/logos/loaders"

# JSON-schema type -> Meltano setting kind, as in meltano.yml. `number` is `integer` on purpose:
# Meltano 4.4.1's `kind: decimal` crashes `meltano config` and `meltano run` when the value comes
# from the environment (Decimal is not JSON serializable).
KINDS = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "number": "integer",
    "object": "object",
    "array": "array",
}


# Loader capabilities in Meltano's meltano.yml schema (4.4.1; tests/test_hub_definition.py checks
# this against the installed Meltano's schema).
MELTANO_LOADER_CAPABILITIES = (
    "about", "stream-maps", "activate-version", "batch", "soft-delete", "hard-delete",
    "datatype-failsafe", "schema-flattening", "structured-logging",
)  # fmt: skip


def project_name() -> str:
    """The distribution name in pyproject.toml."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return str(pyproject["project"]["name"])


def publish() -> dict[str, Any]:
    """meltano-hub/publish.toml, with the derived owner fields filled in."""
    data = tomllib.loads(PUBLISH.read_text())
    owner = data["owner"]
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?", owner):
        raise SystemExit(f"{PUBLISH}: owner {owner!r} is not a GitHub user or organization name")
    data["variant"] = owner.lower()
    data["repository"] = f"https://github.com/{owner}/{project_name()}"
    maintainer = data.setdefault("maintainer", {})
    maintainer.setdefault("label", owner)
    maintainer.setdefault("url", f"https://github.com/{owner}")
    return data


def about() -> dict[str, Any]:
    """What the installed target reports about itself."""
    out = subprocess.run(
        [sys.executable, "-m", "target_amazon_dsp_conversions", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def meltano_loader(name: str) -> dict[str, Any]:
    """The target as meltano.yml declares it."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == name]
    return dict(loader)


def hub_capabilities() -> list[str]:
    """Loader capabilities the Hub's schema allows."""
    schema = json.loads((HUB / "schemas/common/loaders_specific.schema.json").read_text())
    return list(schema["properties"]["capabilities"]["items"]["enum"])


def setting_kind(prop: dict[str, Any]) -> str:
    """The Meltano kind of a setting from its JSON schema (ignoring `null`)."""
    types = prop.get("type", "object")
    types = [types] if isinstance(types, str) else types
    (json_type,) = [t for t in types if t != "null"]
    return KINDS[json_type]


def hub_setting(name: str, prop: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """One Hub setting from `--about` (kind, label, description, default) and meltano.yml
    (option labels; the label when `--about` has no title)."""
    setting: dict[str, Any] = {
        "name": name,
        "kind": setting_kind(prop),
        "label": prop.get("title") or declared.get("label") or name.replace("_", " ").title(),
        "description": prop.get("description", ""),
    }
    if prop.get("secret"):
        # The Hub's convention (and its schema's kinds): a secret is `password` + `sensitive`.
        setting["kind"] = "password"
        setting["sensitive"] = True
    if "enum" in prop:
        labels = {o["value"]: o.get("label", o["value"]) for o in declared.get("options", [])}
        setting["kind"] = "options"
        setting["options"] = [{"label": labels.get(v, str(v)), "value": v} for v in prop["enum"]]
    default = prop.get("default")
    if default is not None:
        if setting["kind"] == "integer" and isinstance(default, float) and default.is_integer():
            default = int(default)
        setting["value"] = default
    return setting


def hub_definition(
    info: dict[str, Any], about_json: dict[str, Any], loader: dict[str, Any], name: str
) -> dict[str, Any]:
    """The plugin definition file's content (keys are sorted when it is written)."""
    hub = info["hub"]
    declared = {s["name"]: s for s in loader.get("settings", [])}
    properties: dict[str, Any] = about_json["settings"]["properties"]
    allowed = hub_capabilities()
    definition: dict[str, Any] = {
        "capabilities": sorted(c for c in about_json["capabilities"] if c in allowed),
        "commands": loader.get("commands", {}),
        "description": hub["description"],
        "domain_url": hub["domain_url"],
        "executable": loader["executable"],
        "keywords": list(hub["keywords"]),
        "label": hub["label"],
        "logo_url": f"/{LOGO_DIR.removeprefix('static/')}/{hub['logo']}",
        "maintenance_status": hub["maintenance_status"],
        "name": name,
        "namespace": loader["namespace"],
        "pip_url": name,
        "quality": hub["quality"],
        "repo": info["repository"],
        "settings": sorted(
            (hub_setting(n, p, declared.get(n, {})) for n, p in properties.items()),
            key=lambda s: s["name"],
        ),
        "settings_group_validation": loader.get("settings_group_validation", []),
        "settings_preamble": hub["settings_preamble"].strip(),
        "supported_python_versions": list(about_json["supported_python_versions"]),
        "usage": hub["usage"].strip(),
        "variant": info["variant"],
    }
    return definition


class _Dumper(yaml.SafeDumper):
    """Block style everywhere (no flow mappings), multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None
    )


_Dumper.add_representer(str, _represent_str)


def dump(data: Any) -> str:
    """YAML as the Hub writes it: sorted keys, block style, sequences not indented."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,  # no wrapping: the Hub disables line-length
    )


REPOSITORY_URL = re.compile(
    r"https://github\.com/[A-Za-z0-9-]+/(?P<name>[A-Za-z0-9._-]+?)(?=[/#\".\s)`]|$)"
)


def with_capabilities(meltano_yml: str, about_json: dict[str, Any], name: str) -> str:
    """meltano.yml with the loader's `capabilities:` line as `--about` reports them (those
    Meltano's schema knows, in `--about`'s order)."""
    capabilities = [c for c in about_json["capabilities"] if c in MELTANO_LOADER_CAPABILITIES]
    line = re.compile(
        rf"(?m)^(?P<head>  - name: {re.escape(name)}\n(?:    .*\n)*?    capabilities: )\[.*\]$"
    )
    text, count = line.subn(rf"\g<head>[{', '.join(capabilities)}]", meltano_yml)
    if count != 1:
        raise SystemExit(f"meltano.yml: no `capabilities: [...]` line under the loader {name}")
    return text


def with_repository(text: str, repository: str, name: str) -> str:
    """`text` with every GitHub URL of this repository pointing at `repository`."""

    def replace(match: re.Match[str]) -> str:
        return repository if match.group("name") == name else match.group(0)

    return REPOSITORY_URL.sub(replace, text)


def expected_files() -> dict[Path, str | None]:
    """Every file this script owns -> its content (None: the file must not exist)."""
    name = project_name()
    info = publish()
    loader = meltano_loader(name)
    about_json = about()
    definition = hub_definition(info, about_json, loader, name)
    plugin_dir = HUB / "_data/meltano" / PLUGIN_TYPE / name
    files: dict[Path, str | None] = {
        path: None for path in plugin_dir.glob("*.yml") if path.stem != info["variant"]
    }
    files[plugin_dir / f"{info['variant']}.yml"] = dump(definition)
    files[HUB / "_data/default_variants.yml"] = dump({PLUGIN_TYPE: {name: info["variant"]}})
    maintainer = {"label": info["maintainer"]["label"], "name": info["variant"]}
    maintainer["url"] = info["maintainer"]["url"]
    files[HUB / "_data/maintainers.yml"] = dump({info["variant"]: maintainer})
    for path in (REPO / "pyproject.toml", REPO / "README.md"):
        files[path] = with_repository(path.read_text(), info["repository"], name)
    meltano_yml = REPO / "meltano.yml"
    files[meltano_yml] = with_capabilities(meltano_yml.read_text(), about_json, name)
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the derived files."""
    parser = argparse.ArgumentParser(prog="scripts/hub_sync.py", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--repository", action="store_true", help="print the repository URL")
    args = parser.parse_args(argv)
    if args.repository:
        sys.stdout.write(publish()["repository"] + "\n")
        return 0

    stale = []
    for path, content in expected_files().items():
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        stale.append(path.relative_to(REPO))
        if args.check:
            continue
        if content is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    verb = "out of date" if args.check else "written"
    for path in stale:
        sys.stdout.write(f"{verb}: {path}\n")
    if args.check and stale:
        sys.stdout.write("run: .venv/bin/python scripts/hub_sync.py\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
