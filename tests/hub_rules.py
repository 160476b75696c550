"""The Meltano Hub's own checks, as its CI runs them, on the copy kept in meltano-hub/.

- plugin definitions: JSON Schema Draft 7 against `schemas/plugin_definitions/<type>.schema.json`
  with a registry of `schemas/common/*` and `schemas/plugin_definitions/*`, keyed by `$id`
  (meltano/hub `utility_scripts/plugin_definitions/plugin_schema_validate.py`);
- the API files Meltano reads: `schemas/api/*` with `schemas/common/*`
  (`utility_scripts/api/api_schema_validate.py`);
- yamllint with the Hub's `.yamllint.yaml`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from yamllint import linter
from yamllint.config import YamlLintConfig

REPO = Path(__file__).resolve().parent.parent
HUB = REPO / "meltano-hub"
SCHEMAS = HUB / "schemas"
YAMLLINT_CONFIG = HUB / ".yamllint.yaml"


def _registry(*directories: str) -> Registry:
    resources = []
    for directory in directories:
        for source in sorted((SCHEMAS / directory).glob("*.json")):
            schema = json.loads(source.read_text())
            resources.append((schema["$id"], Resource.from_contents(schema, DRAFT7)))
    return Registry().with_resources(resources)


def _validator(directory: str, schema_file: str) -> Draft7Validator:
    schema = json.loads((SCHEMAS / directory / schema_file).read_text())
    return Draft7Validator(schema, registry=_registry("common", directory))


def definition_errors(plugin_type: str, definition: Any) -> list[str]:
    """Why the Hub's CI would refuse a plugin definition (empty: it passes)."""
    validator = _validator("plugin_definitions", f"{plugin_type}.schema.json")
    return [_describe(e) for e in validator.iter_errors(definition)]


def api_errors(schema_file: str, document: Any) -> list[str]:
    """Why a Hub API document breaks `schemas/api/<schema_file>` (empty: it conforms)."""
    return [_describe(e) for e in _validator("api", schema_file).iter_errors(document)]


def _describe(error: Any) -> str:
    where = "/".join(map(str, error.absolute_path)) or "(top)"
    return f"{where}: {error.message}"


def yamllint_problems(text: str, path: Path | None = None) -> list[str]:
    """What the Hub's yamllint reports on a YAML document."""
    config = YamlLintConfig(file=str(YAMLLINT_CONFIG))
    return [
        f"{p.line}:{p.column} {p.message} ({p.rule})"
        for p in linter.run(text, config, str(path) if path else None)
    ]
