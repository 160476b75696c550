"""The README as a new user reads it: its first commands, a quickstart for one's own data before
the reference, and defaults that are the target's own wherever the README gives one."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from target_amazon_dsp_conversions.settings import Settings
from target_amazon_dsp_conversions.target import TargetAmazonDSPConversions

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _declared_defaults() -> dict[str, Any]:
    # The SDK's own settings (load_method, ...) as the target declares them, then ours.
    sdk = TargetAmazonDSPConversions.config_jsonschema["properties"]
    defaults = {name: value["default"] for name, value in sdk.items() if "default" in value}
    for declared in fields(Settings):
        if declared.default_factory is not MISSING:
            defaults[declared.name] = declared.default_factory()
        elif declared.default is not None:
            defaults[declared.name] = declared.default
    return defaults


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def test_the_first_two_commands_stay_as_they_are() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == [
        "bash scripts/demo.sh",
        "bash scripts/test.sh",
    ]


def test_a_quickstart_for_ones_own_data_comes_before_the_reference() -> None:
    headings = re.findall(r"(?m)^## (.+)$", README)
    assert headings.index("Quickstart: your own data to Amazon") < headings.index("Choosing an API")
    quickstart = _section("Quickstart: your own data to Amazon")
    for step in (
        "security profile",  # Amazon's onboarding
        "onboarding",
        "mapping",
        "defaults",
        "meltano invoke target-amazon-dsp-conversions:login",
        "meltano invoke target-amazon-dsp-conversions:check",
        "TARGET_AMAZON_DSP_CONVERSIONS_DRY_RUN=true meltano run",
        "A dry run prints no STATE",
        "meltano run tap-postgres target-amazon-dsp-conversions",
        "target-amazon-dsp-conversions-auth login --config config.json",
        "some-tap | target-amazon-dsp-conversions --config config.json",
    ):
        assert step in quickstart, step
    assert len(quickstart.splitlines()) < 80  # short: the reference follows


def test_defaults_in_the_readme_are_the_targets() -> None:
    declared = _declared_defaults()
    table = re.findall(r"(?m)^\| `(\w+)` \| `([^`]*)` \|", _section("Settings"))
    assert len(table) > 10
    for name, shown in table:
        assert _same(json.loads(shown) if shown[:1] in "{[0123456789" else shown, declared[name]), (
            name
        )
    for name, shown in re.findall(r"`(\w+)`, default (\w+)", README):
        assert _same(json.loads(shown) if shown.isdigit() else shown, declared[name]), name


def _same(shown: Any, declared: Any) -> bool:
    if isinstance(declared, bool):
        return str(shown).lower() == str(declared).lower()
    if isinstance(declared, (int, float)):
        return float(shown) == float(declared)
    return bool(shown == declared)
