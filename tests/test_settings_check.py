"""Settings at start-up, through the console script as a user runs it (SPEC §2): unknown names
stop the run with the closest known name; values that arrive as text (environment variables,
settings a Meltano project has not declared) are read as their kind; wrong types and case are
one line from the target; `defaults` are checked by the rules records get. Nothing is read from
stdin and nothing is sent when a setting is bad."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from target_amazon_dsp_conversions.settings import KNOWN_SETTINGS
from target_amazon_dsp_conversions.startup_checks import check_config
from tests.conftest import TARGET, TargetRun, run_target, seed_record, singer_stream
from tests.emulator import AmazonAdsEmulator

PREFIX = "TARGET_AMAZON_DSP_CONVERSIONS_"
NOT_READ = "this line is not read\n"


def assert_stops_with(run: TargetRun, message: str) -> None:
    """Exit 1, one line from the target (not the SDK's ERROR lines), no traceback."""
    assert run.returncode == 1, run.stderr
    assert run.error_lines == [f"target-amazon-dsp-conversions: error: {message}"], run.stderr
    assert "Traceback" not in run.stderr
    assert "Config validation failed" not in run.stderr
    assert "test-client-secret" not in run.stderr


def run_with_env(
    variables: dict[str, str], messages: list[dict[str, Any]] | str, workdir: Path
) -> TargetRun:
    """`--config ENV`: every setting from the environment, as text."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = (
        messages if isinstance(messages, str) else "".join(json.dumps(m) + "\n" for m in messages)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    process = subprocess.run(
        [*TARGET, "--config", "ENV"], input=text, capture_output=True, text=True, cwd=workdir,
        env={**env, **variables}, timeout=120, check=False,
    )  # fmt: skip
    states = [json.loads(line) for line in process.stdout.splitlines() if line.strip()]
    return TargetRun(process.returncode, process.stdout, process.stderr, workdir, states)


def as_environment(config: dict[str, Any]) -> dict[str, str]:
    return {
        PREFIX + name.upper(): value if isinstance(value, str) else json.dumps(value)
        for name, value in config.items()
    }


# --- item 3: unknown setting names ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("dryrun", "unknown setting 'dryrun'; did you mean 'dry_run'?"),
        ("DRY_RUN", "unknown setting 'DRY_RUN'; did you mean 'dry_run'?"),
        ("reigon", "unknown setting 'reigon'; did you mean 'region'?"),
        ("batch_size_row", "unknown setting 'batch_size_row'; did you mean 'batch_size_rows'?"),
        ("xyzzy", "unknown setting 'xyzzy'; `target-amazon-dsp-conversions --about` lists the "
         "settings"),
    ],
)  # fmt: skip
def test_a_misspelled_setting_stops_the_run_before_anything_is_sent(
    emulator: AmazonAdsEmulator, tmp_path: Path, name: str, message: str
) -> None:
    # The typo the issue reports: a dry run meant, a real upload made.
    config = {**emulator.target_config(), name: True}
    run = run_target(config, NOT_READ, tmp_path)

    assert_stops_with(run, message)
    assert emulator.requests == []
    assert not (tmp_path / "report.json").exists()


def test_a_misspelled_environment_variable_stops_the_run(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    variables = {**as_environment(emulator.target_config()), PREFIX + "DRYRUN": "true"}
    run = run_with_env(variables, NOT_READ, tmp_path)

    assert_stops_with(
        run,
        "unknown setting 'dryrun' (environment variable TARGET_AMAZON_DSP_CONVERSIONS_DRYRUN); "
        "did you mean 'dry_run'?",
    )
    assert emulator.requests == []


def test_the_sdks_own_settings_and_underscored_names_are_known(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    config = {
        **emulator.target_config(),
        "batch_size_rows": 50,
        "validate_records": True,
        "add_record_metadata": False,
        "load_method": "append-only",
        "flattening_enabled": False,
        "flattening_max_depth": 3,
        "stream_maps": {},
        "stream_map_config": {},
        "faker_config": {},
        # Meltano keeps its extras (`_select`, `_metadata`, ...) out of a loader's config;
        # JSON has no comments, so people write them like this.
        "_comment": "settings for the shop's orders",
    }
    run = run_target(config, singer_stream([seed_record(i) for i in range(3)]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 3


def test_known_names_are_the_settings_about_lists(tmp_path: Path) -> None:
    about = subprocess.run(
        [*TARGET, "--about", "--format=json"], capture_output=True, text=True, check=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert set(KNOWN_SETTINGS) == set(json.loads(about.stdout)["settings"]["properties"])


# --- item 7: values that arrive as text ------------------------------------------------------


def test_every_setting_from_the_environment_as_text(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    config = {
        **emulator.target_config(),
        "request_timeout": "2",  # a number setting: "'2' is not of type 'number'" before
        "max_retries": "3",
        "max_concurrent_requests": "4",
        "worker_processes": "0",
        "create_missing_definitions": "false",
        "defaults": '{"countryCode": "US"}',
        "conversion_definitions": "{}",
        "batch_size_rows": "2",  # the SDK's own integer setting
        "validate_records": "true",
        "report_path": "report.json",
    }
    records = [seed_record(i, countryCode=None) for i in range(5)]
    run = run_with_env(as_environment(config), singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 5
    assert sorted(emulator.accepted_ids().values()) == [1] * 5


def test_settings_a_meltano_project_has_not_declared_come_as_text_and_work(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    # What Meltano writes for settings without a `kind`: the text `meltano config set` got.
    config = {
        **emulator.target_config(),
        "dry_run": "false",
        "defaults": '{"countryCode": "US", "currency": "usd"}',
        "mapping": '{"email": "userIdentifier"}',
        "max_retries": "2",
        "request_timeout": "30",
        "create_missing_definitions": "False",
        "stream_maps": "{}",
        "flattening_enabled": "false",
    }
    records = [seed_record(i, countryCode=None, currency=None) for i in range(3)]
    run = run_target(config, singer_stream(records), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 3
    assert {event["currencyCode"] for event in emulator.accepted} == {"USD"}


def test_the_sdk_never_gets_to_parse_environment_text_itself(tmp_path: Path) -> None:
    # The SDK's int() of an integer setting raised a traceback for "many".
    run = run_with_env(
        {PREFIX + "DRY_RUN": "true", PREFIX + "BATCH_SIZE_ROWS": "many"}, "", tmp_path
    )

    assert_stops_with(run, "setting 'batch_size_rows': must be a whole number, got 'many'")


def test_a_boolean_that_is_neither_true_nor_false_stops_the_run(tmp_path: Path) -> None:
    # The SDK read anything but true/1/yes/on as false: a dry run would have uploaded.
    run = run_with_env({PREFIX + "DRY_RUN": "ture"}, NOT_READ, tmp_path)

    assert_stops_with(run, "setting 'dry_run': must be true or false, got 'ture'")


# --- item 8: wrong types and case -------------------------------------------------------------


def test_case_and_numeric_ids_are_read_as_the_user_meant(
    emulator: AmazonAdsEmulator, tmp_path: Path
) -> None:
    config = {
        **emulator.target_config(),
        "region": "na",
        "api": "DSP",
        "source": "server_to_server",
        "advertiser_id": 1234567890,  # a JSON number
        "profile_id": 3333333333,
        "max_concurrent_requests": "8",
        "load_method": "APPEND-ONLY",
        "user_identifier_type": "email",
    }
    run = run_target(config, singer_stream([seed_record(i) for i in range(3)]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.report["records_accepted"] == 3
    uploads = [r for r in emulator.requests if r.path.endswith("/eventData")]
    assert {r.headers["Amazon-Advertising-API-Scope"] for r in uploads} == {"3333333333"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"region": "mars"}, "setting 'region': must be one of NA, EU, FE, got 'mars'"),
        ({"api": 2}, "setting 'api': must be one of dsp, events, got '2'"),
        ({"advertiser_id": 12.5}, "setting 'advertiser_id': must be a string, got float"),
        ({"max_retries": "8.5"}, "setting 'max_retries': must be a whole number, got '8.5'"),
        ({"max_retries": True}, "setting 'max_retries': must be a whole number, got True"),
        ({"request_timeout": "soon"},
         "setting 'request_timeout': must be a number of seconds, got 'soon'"),
        ({"request_timeout": 0},
         "setting 'request_timeout': must be more than 0 and at most 3600 seconds, got 0"),
        ({"dry_run": "maybe"}, "setting 'dry_run': must be true or false, got 'maybe'"),
        ({"mapping": ["email"]}, "setting 'mapping': must be an object, got list"),
        ({"defaults": "{countryCode: US}"}, "setting 'defaults': must be a JSON object"),
        ({"mapping": {"emial": "email"}},
         "setting 'mapping.emial': unknown conversion field 'emial'; did you mean 'email'?"),
        # A column name the target reads (`value`) where a conversion field belongs.
        ({"defaults": {"value": 5}},
         "setting 'defaults.value': unknown conversion field 'value'; did you mean "
         "'conversionValue'? ('value' is a column the target reads for conversionValue)"),
        ({"mapping": {"zzz": "total"}},
         "setting 'mapping.zzz': unknown conversion field 'zzz'; known fields: eventTime, "
         "conversionType, name, conversionDefinitionId, conversionValue, currency, unitsSold, "
         "countryCode, source, advertiserId, dedupeId, userIdentifier, email, phone, firstName, "
         "lastName, address, city, state, postalCode, maid, rampId, matchId, limitedDataUse, "
         "realId, merkleId, kantarId, fip, userAgent, amazonAdEventKey, arefMeasurementTokens, "
         "ipAddress, amazonUserData, amazonAdStorage, tcf, gpp, eventSource, dataSetName, "
         "customData"),
        ({"batch_size_rows": 0}, "setting 'batch_size_rows': must be 1 or more, got 0"),
        ({"load_method": "upsert"},
         "setting 'load_method': must be append-only, got 'upsert': a conversions API only "
         "appends events; it cannot update or delete the ones it was sent"),
        ({"load_method": "overwrite"},
         "setting 'load_method': must be append-only, got 'overwrite': a conversions API only "
         "appends events; it cannot update or delete the ones it was sent"),
        ({"stream_maps": {"orders": 5}},
         "setting 'stream_maps.orders': 5 is not valid under any of the given schemas"),
        ({"flattening_enabled": "true"},
         "setting 'flattening_max_depth': is required when flattening_enabled is true"),
        ({"api": "events", "source": "AMAZON_AD_TAG"},
         "setting 'source': the Events API takes SERVER_TO_SERVER events only (api: events)"),
    ],
)  # fmt: skip
def test_a_wrong_type_is_one_line_from_the_target(
    emulator: AmazonAdsEmulator, tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    run = run_target({**emulator.target_config(), **overrides}, NOT_READ, tmp_path)

    assert_stops_with(run, message)
    assert emulator.requests == []


# --- item 9: defaults, checked as records are -------------------------------------------------


@pytest.mark.parametrize(
    ("api", "defaults", "message"),
    [
        ("dsp", {"currency": "dollars"},
         "setting 'defaults.currency': currency 'DOLLARS' is not accepted by the dsp API"),
        ("dsp", {"countryCode": "USA"},
         "setting 'defaults.countryCode': countryCode 'USA' is not an ISO 3166-1 alpha-2 code"),
        ("dsp", {"conversionType": "app_install"},
         "setting 'defaults.conversionType': conversionType 'app_install' is not one of "
         "Amazon's conversion types"),
        ("dsp", {"unitsSold": 0},
         "setting 'defaults.unitsSold': unitsSold must be a whole number from 1 to"),
        ("dsp", {"conversionValue": "free"},
         "setting 'defaults.conversionValue': conversionValue must be a number"),
        ("dsp", {"source": "web"},
         "setting 'defaults.source': source 'WEB' must be SERVER_TO_SERVER or AMAZON_AD_TAG"),
        ("events", {"currency": "XBT"},
         "setting 'defaults.currency': currency 'XBT' is not accepted by the events API"),
        ("events", {"eventSource": "tv"},
         "setting 'defaults.eventSource': eventSource must be one of ANDROID, FIRE_TV"),
        ("events", {"dataSetName": "crm sales"}, "setting 'defaults.dataSetName': "),
        ("dsp", {"dedupeId": "same-for-all"},
         "setting 'defaults.dedupeId': a constant gives every record the same dedupe ID"),
    ],
)  # fmt: skip
def test_a_default_every_record_would_be_rejected_for_stops_the_run(
    emulator: AmazonAdsEmulator, tmp_path: Path, api: str, defaults: dict[str, Any], message: str
) -> None:
    run = run_target({**emulator.target_config(api=api), "defaults": defaults}, NOT_READ, tmp_path)

    assert run.returncode == 1, run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert run.error_lines[0].startswith(f"target-amazon-dsp-conversions: error: {message}")
    assert "Traceback" not in run.stderr
    assert emulator.requests == []


def test_good_defaults_fill_the_records_gaps(emulator: AmazonAdsEmulator, tmp_path: Path) -> None:
    defaults = {"countryCode": "us", "currency": "eur", "conversionType": "Purchase"}
    records = [seed_record(i, countryCode=None, currency=None) for i in range(3)]
    run = run_target(
        {**emulator.target_config(), "defaults": defaults}, singer_stream(records), tmp_path
    )

    assert run.returncode == 0, run.stderr
    assert run.rejects == []
    assert {event["currencyCode"] for event in emulator.accepted} == {"EUR"}


def test_check_config_hands_the_sdk_each_value_as_its_kind() -> None:
    checked = check_config(
        {
            "dry_run": "true",
            "region": "eu",
            "advertiser_id": 1234567890,
            "max_retries": "8",
            "request_timeout": "2",
            "defaults": '{"countryCode": "US"}',
            "batch_size_rows": "4",
            "load_method": "Append-Only",
            "flattening_enabled": "0",
            "report_path": "",
            "_comment": "left alone",
        }
    )
    assert checked.config == {
        "dry_run": True,
        "region": "EU",
        "advertiser_id": "1234567890",
        "max_retries": 8,
        "request_timeout": 2.0,
        "defaults": {"countryCode": "US"},
        "batch_size_rows": 4,
        "load_method": "append-only",
        "flattening_enabled": False,
        "report_path": None,
        "_comment": "left alone",
    }
    assert checked.settings.region == "EU"
    assert checked.settings.max_retries == 8


# --- one check per start ------------------------------------------------------------------------


def test_a_start_checks_the_settings_once_and_builds_one_converter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The console script's start: the settings are checked once and one Converter is built
    (it also checks `defaults`), whichever layer (command line, SDK, target) asks."""
    from target_amazon_dsp_conversions import cli, startup_checks
    from target_amazon_dsp_conversions.converter import Converter

    checks: list[Any] = []
    converters: list[Any] = []
    check_settings = startup_checks._complete
    build_converter = Converter.__init__

    def counted_check(values: dict[str, Any]) -> Any:
        checks.append(values)
        return check_settings(values)

    def counted_converter(self: Converter, *args: Any) -> None:
        converters.append(self)
        build_converter(self, *args)

    monkeypatch.setattr(startup_checks, "_complete", counted_check)
    monkeypatch.setattr(Converter, "__init__", counted_converter)
    config = {
        "dry_run": True,
        "dry_run_path": str(tmp_path / "requests.jsonl"),
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "journal_path": str(tmp_path / "journal.jsonl"),
        "worker_processes": 0,
        "advertiser_id": "1234567890",
        "conversion_definitions": {"purchase": "cd-1"},
        "defaults": {"countryCode": "US", "currency": "USD"},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    messages = singer_stream([seed_record(1, countryCode=None)])
    (tmp_path / "input.jsonl").write_text("".join(json.dumps(m) + "\n" for m in messages))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        cli.command().main(
            ["--config", str(tmp_path / "config.json"), "--input", str(tmp_path / "input.jsonl")],
            standalone_mode=False,
        )
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    requests = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert len(requests) == 1  # the record went out, its country from the defaults
    assert '"countryCode":"US"' in requests[0].replace(" ", "")
    assert len(checks) == 1
    assert len(converters) == 1
    assert capsys.readouterr().out == ""  # a dry run prints no STATE
