"""One registry of APIs (`apis/__init__.py`), each API one object that says everything about
it; no other module names an API (issue 20)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import target_amazon_dsp_conversions
from target_amazon_dsp_conversions.apis import API_NAMES, api_for
from target_amazon_dsp_conversions.apis.base import USER_DELETION
from target_amazon_dsp_conversions.errors import SettingError
from target_amazon_dsp_conversions.settings import CONFIG_SCHEMA
from target_amazon_dsp_conversions.startup_checks import checked_settings

PACKAGE = Path(target_amazon_dsp_conversions.__file__).parent


def test_the_api_setting_offers_the_registry_s_apis() -> None:
    assert CONFIG_SCHEMA["properties"]["api"]["enum"] == list(API_NAMES)
    for name in API_NAMES:
        api = api_for(name)
        assert api.name == api.rules.api == api.rules.match_keys.api == name
        assert f"{name}: {api.summary}" in CONFIG_SCHEMA["properties"]["api"]["description"]


def test_an_unknown_api_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown api: 'other'"):
        api_for("other")


def test_each_api_checks_the_settings_it_needs() -> None:
    """The Events API takes server-to-server events only; the DSP API takes every source."""
    base = {"dry_run": True, "source": "AMAZON_AD_TAG"}
    assert checked_settings({**base, "api": "dsp"}).source == "AMAZON_AD_TAG"
    with pytest.raises(SettingError, match="setting 'source': the Events API takes"):
        checked_settings({**base, "api": "events"})


def test_only_apis_names_an_api() -> None:
    """Outside `apis/`, no module holds an API's name as a value (to compare with, look up,
    pass on): the registry is asked instead."""
    found = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}"
        for path in PACKAGE.rglob("*.py")
        if path.parent.name != "apis"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in API_NAMES
    ]
    assert found == []


def test_only_the_dsp_api_offers_a_user_deletion() -> None:
    """Amazon documents a user-deletion call for the DSP API only (`dspAmazonDeletionRequest`)."""
    assert {name: set(api_for(name).operations) for name in API_NAMES} == {
        "dsp": {USER_DELETION},
        "events": set(),
    }
