"""The suppression list on its own: who is the same person, what is on disk, what a dry run and
a damaged file do."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from target_amazon_dsp_conversions.conversion import person_keys
from target_amazon_dsp_conversions.errors import SettingError
from target_amazon_dsp_conversions.identity import sha256_hex
from target_amazon_dsp_conversions.startup_checks import checked_settings
from target_amazon_dsp_conversions.suppression import SuppressionList, identities_of

JANE = person_keys(
    [
        ("EMAIL", sha256_hex("jane@example.com")),
        ("FIRST_NAME", sha256_hex("jane")),
        ("LAST_NAME", sha256_hex("doe")),
        ("POSTAL", sha256_hex("94105")),
        ("MAID", "ea7583cd-a667-48bc-b806-42ecb2b48606"),
    ]
)


def keys(**values: str) -> tuple[tuple[str, str], ...]:
    return person_keys([(key_type, sha256_hex(value)) for key_type, value in values.items()])


def test_a_raw_maid_is_hashed_before_it_is_compared() -> None:
    assert ("MAID", sha256_hex("ea7583cd-a667-48bc-b806-42ecb2b48606")) in JANE


def test_a_person_is_known_by_each_lone_key_and_by_name_and_address_together() -> None:
    shapes = [shape for shape, _ in identities_of(JANE)]
    assert shapes == [("EMAIL",), ("MAID",), ("FIRST_NAME", "LAST_NAME", "POSTAL")]
    # One name-and-address key alone identifies nobody.
    assert identities_of(keys(FIRST_NAME="jane")) == []


@pytest.mark.parametrize(
    ("conversion", "suppressed"),
    [
        (keys(EMAIL="jane@example.com"), True),
        (keys(EMAIL="other@example.com", FIRST_NAME="jane"), False),
        (keys(FIRST_NAME="jane", LAST_NAME="doe"), False),
        (keys(FIRST_NAME="jane", LAST_NAME="doe", POSTAL="94105", CITY="sf"), True),
        (keys(PHONE="14155550100"), False),
        ((), False),
    ],
)
def test_screening(
    tmp_path: Path, conversion: tuple[tuple[str, str], ...], suppressed: bool
) -> None:
    path = str(tmp_path / "list.sqlite")
    listed = SuppressionList(path)
    assert listed.screen([(True, JANE)]) == [False]
    listed.close()
    later = SuppressionList(path)
    assert later.screen([(False, conversion)]) == [suppressed]
    later.close()


def test_order_in_a_block_decides(tmp_path: Path) -> None:
    """A conversion before the opt-out goes out; the same person's conversion after it does not."""
    listed = SuppressionList(str(tmp_path / "list.sqlite"))
    jane = keys(EMAIL="jane@example.com")
    assert listed.screen([(False, jane), (True, jane), (False, jane)]) == [False, False, True]
    listed.close()


def test_the_file_is_owner_only_and_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "list.sqlite"
    listed = SuppressionList(str(path))
    listed.screen([(True, JANE)])
    listed.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    dry = SuppressionList(str(path), dry_run=True)
    bob = keys(EMAIL="bob@example.com")
    assert dry.screen([(False, keys(EMAIL="jane@example.com")), (True, bob), (False, bob)]) == [
        True,
        False,
        True,
    ]
    dry.close()
    assert path.read_bytes() == before
    assert SuppressionList(str(path)).screen([(False, bob)]) == [False]


def test_a_list_that_cannot_be_read_stops_the_run(tmp_path: Path) -> None:
    path = tmp_path / "list.sqlite"
    path.write_bytes(b"this is no database, but someone's notes\n")
    with pytest.raises(SettingError) as error:
        SuppressionList(str(path))
    assert error.value.setting == "suppression_list_path"
    assert "would be sent" in str(error.value)


@pytest.mark.parametrize(
    ("value", "streams"),
    [
        (["opt_outs"], ["opt_outs"]),
        ('["public-opt_outs", "crm-unsubscribes"]', ["public-opt_outs", "crm-unsubscribes"]),
        ("public-opt_outs, crm-unsubscribes", ["public-opt_outs", "crm-unsubscribes"]),
        ("", []),
    ],
)
def test_opt_out_streams_as_configured_or_as_text(value: object, streams: list[str]) -> None:
    settings = checked_settings({"dry_run": True, "opt_out_streams": value})
    assert settings.opt_out_streams == streams


@pytest.mark.parametrize("value", [[1], [""], {"a": 1}, "[not json"])
def test_a_bad_opt_out_streams_value_names_the_setting(value: object) -> None:
    with pytest.raises(SettingError) as error:
        checked_settings({"dry_run": True, "opt_out_streams": value})
    assert error.value.setting == "opt_out_streams"
