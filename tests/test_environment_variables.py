"""`TARGET_AMAZON_DSP_CONVERSIONS_*` variables as the console script meets them (SPEC §2): each
is a setting, a key Meltano derives from an object setting, or refused with the closest name,
also when the settings come from a config file (as Meltano passes them). Nothing is read from
stdin and nothing is sent when one is refused. Under real Meltano: tests/test_meltano_pipeline.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator
from tests.test_settings_check import run_with_env

PREFIX = "TARGET_AMAZON_DSP_CONVERSIONS_"


def run_with(
    emulator: AmazonAdsEmulator, tmp_path: Path, variables: dict[str, str], **config: Any
) -> TargetRun:
    messages = singer_stream([seed_record(i) for i in range(3)])
    return run_target(emulator.target_config(**config), messages, tmp_path, env=variables)


@pytest.mark.parametrize(
    ("variables", "config", "message"),
    [
        ({f"{PREFIX}DRYRUN": "true"}, {},
         "unknown setting 'dryrun' (environment variable TARGET_AMAZON_DSP_CONVERSIONS_DRYRUN); "
         "did you mean 'dry_run'?"),
        ({f"{PREFIX}MAPPING_EVENTTIM": "created_at"}, {"mapping": {"eventTime": "eventTime"}},
         "environment variable TARGET_AMAZON_DSP_CONVERSIONS_MAPPING_EVENTTIM names no conversion "
         "field of mapping; did you mean TARGET_AMAZON_DSP_CONVERSIONS_MAPPING_EVENTTIME "
         "(mapping.eventTime)?"),
        ({f"{PREFIX}DEFAULTS_COUNTRYCODE": "US"}, {},
         "environment variable TARGET_AMAZON_DSP_CONVERSIONS_DEFAULTS_COUNTRYCODE sets a key of "
         "defaults, which is not set; set TARGET_AMAZON_DSP_CONVERSIONS_DEFAULTS (a JSON object) "
         "instead"),
        # A loader added under another name: its variables carry that name.
        ({"MELTANO_LOADER_NAME": "target-amazon-dsp-conversions-eu",
          f"{PREFIX}EU_DRYRUN": "true"}, {},
         "unknown setting 'dryrun' (environment variable "
         "TARGET_AMAZON_DSP_CONVERSIONS_EU_DRYRUN); did you mean 'dry_run'?"),
    ],
)  # fmt: skip
def test_a_variable_that_is_no_setting_stops_the_run_before_anything_is_sent(
    emulator: AmazonAdsEmulator,
    tmp_path: Path,
    variables: dict[str, str],
    config: dict[str, Any],
    message: str,
) -> None:
    run = run_with(emulator, tmp_path, variables, **config)

    assert run.returncode == 1, run.stderr
    assert run.error_lines == [f"target-amazon-dsp-conversions: error: {message}"]
    assert "Traceback" not in run.stderr
    assert emulator.requests == [] and run.states == []


def test_what_meltano_exports_beside_a_config_file_is_not_refused(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # As `meltano run` starts a loader added under another name (inherit_from), with object
    # settings: every setting under both names, each key of an object as its own variable,
    # nested objects flattened, Meltano's own extras.
    config = {
        "mapping": {"eventTime": "eventTime"},
        "defaults": {"countryCode": "US"},
        "conversion_definitions": {"purchase": {"1234567890": "cd-purchase"}},
        "stream_maps": {"conversions": {"__alias__": "conversions"}},
    }
    variables = {"MELTANO_LOADER_NAME": "target-amazon-dsp-conversions-eu"}
    for prefix in (PREFIX, f"{PREFIX}EU_"):
        variables.update({
            f"{prefix}MAPPING": json.dumps(config["mapping"]),
            f"{prefix}MAPPING_EVENTTIME": "eventTime",
            f"{prefix}DEFAULTS_COUNTRYCODE": "US",
            f"{prefix}CONVERSION_DEFINITIONS": '{"purchase.1234567890": "cd-purchase"}',
            f"{prefix}CONVERSION_DEFINITIONS_PURCHASE_1234567890": "cd-purchase",
            f"{prefix}STREAM_MAPS_CONVERSIONS___ALIAS__": "conversions",
            f"{prefix}MAX_RETRIES": "5",
            f"{prefix}VALIDATE_RECORDS": "true",
            f"{prefix}_DIALECT": "target_amazon_dsp_conversions",
            f"{prefix}LOGLEVEL": "INFO",
        })  # fmt: skip
    run = run_with(emulator, tmp_path, variables, **config)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 3


def test_object_settings_from_the_environment_are_read_as_meltano_means_them(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # `--config ENV` under Meltano: a nested object comes flattened, and a key's own variable
    # is what Meltano resolved for that key.
    # A second purchase definition: only the nested setting, read as nested, sends under it.
    emulator.add_definition("1234567890", "online purchase", "OFF_AMAZON_PURCHASES",
                            "SERVER_TO_SERVER", "OFFLINE", definition_id="cd-online")  # fmt: skip
    variables = {
        f"{PREFIX}{name.upper()}": str(value) for name, value in emulator.target_config().items()
    }
    variables.update({
        "MELTANO_PROJECT_ROOT": str(tmp_path),
        f"{PREFIX}CONVERSION_DEFINITIONS": '{"purchase.1234567890": "cd-online"}',
        f"{PREFIX}CONVERSION_DEFINITIONS_PURCHASE_1234567890": "cd-online",
        f"{PREFIX}DEFAULTS": '{"countryCode": "DE"}',
        f"{PREFIX}DEFAULTS_COUNTRYCODE": "US",
        f"{PREFIX}REPORT_PATH": "report.json",
    })  # fmt: skip
    messages = singer_stream([seed_record(i, countryCode=None) for i in range(3)])
    run = run_with_env(variables, messages, tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 3
    assert {e["countryCode"] for e in emulator.accepted} == {"US"}
    assert {e["conversionDefinitionId"] for e in emulator.accepted} == {"cd-online"}
