"""Hashes Amazon's own code expects, reproduced.

Amazon's AMC uploader (aws-solutions/amazon-marketing-cloud-uploader-from-aws) tests its
normalizers against checked-in expected hashes:
source/tests/unit_test/amc_transformation/sample_data/test_<cc>/<cc>_raw.json (mock records)
and <cc>_check.json (the SHA-256 its normalizers give). The rows below are copied from those
files (record id given); the uploader's own comparison of both files is the source of the
expected hash. Where our rules deliberately differ from the uploader (README identity section)
the row says so and asserts our value instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from target_amazon_dsp_conversions.identity import EMPTY_SHA256, sha256_hex
from tests.match_keys import prepare

# (country, id, key type, raw value, expected SHA-256 from <cc>_check.json)
UPLOADER_ROWS = [
    (
        "US",
        1,
        "FIRST_NAME",
        "Faulkner",
        "77f53c97d937d5b146f99f9dae5017853c76cde577f8dd9d986bbeec238ae0f0",
    ),
    (
        "US",
        1,
        "LAST_NAME",
        "Checketts",
        "357df1c6702954e5d6ab9741d9430d01cd08f262352934bdde254a014c3fb99c",
    ),
    (
        "US",
        1,
        "EMAIL",
        "fchecketts0@webeden.co.uk",
        "5bd5f77cb5a05b8a30fb028e800c19207c158772564e485561e5596506aba005",
    ),
    ("US", 1, "CITY", "Dallas", "fa2115f8d576a6ab722956697fc759c31d1cd6b93c8336bfebf73ed5cba2ff49"),
    ("US", 1, "STATE", "Texas", "1b5b9ccb3e8d006a5230de9bda23ff91edc794d4f56410560830b418528e446c"),
    (
        "US",
        4,
        "STATE",
        "VIRGINIA",
        "198dea392afc21d070f8abfc7c06d11060f1b278e5d62501bd57f1159a72ebac",
    ),
    ("US", 3, "STATE", "fl", "593f2d04aab251f60c9e4b8bbc1e05a34e920980ec08351a18459b2bc7dbf2f6"),
    (
        "US",
        1,
        "POSTAL",
        "75236-9599",
        "91b6147da4928d5742bb8ddb035e75f9fe77a7f88881906ac7417abf8a46effa",
    ),
    (
        "US",
        1,
        "ADDRESS",
        "8 Bluestem Terrace",
        "fe8115cbef0c2b9c5bedbedaa34b080223959365176679d9b0461465b1b08425",
    ),
    (
        "US",
        2,
        "ADDRESS",
        "4 Cody Junction",
        "298f6d3e8245ff74a4c14df3f3709137a3e35b81e9c57dbd0626d76a4326b5ea",
    ),
    (
        "US",
        3,
        "ADDRESS",
        "744 Messerschmidt Avenue",
        "70618603f0cfaf038eca8abce604793128902d18176cc9b6c8ac76fdaa70b41d",
    ),
    (
        "CA",
        2,
        "STATE",
        "Alberta",
        "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603",
    ),
    (
        "CA",
        3,
        "STATE",
        "British Columbia",
        "1e0bbd6c686ba050b8eb03ffeedc64fdc9d80947fce821abbe5d6dc8d252c5ac",
    ),
    ("CA", 1, "POSTAL", "J9T", EMPTY_SHA256),  # a forward sortation area alone: dropped
    (
        "CA",
        2,
        "ADDRESS",
        "2 Pawling Junction",
        "00ebb1e5a3eff43295391390fb431abe32e2deb429764005659695d67e757e60",
    ),
    (
        "CA",
        4,
        "ADDRESS",
        "0235 Fieldstone Drive",
        "1784b1a72ec0f3d8d92e004c7618897ab7fbeb41ab4316192d6cff2cca28f963",
    ),
    (
        "FR",
        1,
        "POSTAL",
        "77304 CEDEX",
        "13e81496205ee18f729655918cea4cd8af71db0ccede58bceef8188e064085bc",
    ),
    (
        "FR",
        2,
        "POSTAL",
        "42014 CEDEX 2",
        "b325e72024436b8b2cd56b838e2fac2e8502864ed3a4b1c7b634834d2b0780d6",
    ),
    (
        "FR",
        1,
        "ADDRESS",
        "552 Ronald Regan Place",
        "5c52069811ccec9a6623107ff8366f724d3f7e566cabf436d3bb824a9f1bac50",
    ),
    ("GB", 5, "POSTAL", "WF9", EMPTY_SHA256),  # an outward code alone: dropped
    (
        "GB",
        29,
        "ADDRESS",
        "19857 Paget Street",
        "a0a63e59367b98489239efe204d7f21e75fb5ed955131602d0dc3561e2716c4b",
    ),
    (
        "GB",
        19,
        "ADDRESS",
        "5713 Harbort Court",
        "b32b37fe3753420356a375b5cdb4f60b63fdfc9ac8711553c73d4ba08772e56b",
    ),
    (
        "DE",
        4,
        "ADDRESS",
        "233 Mendota Street",
        "e44d3727f760b2f62b9f46ec0836eeddff5bb410c327d41091a95a0473913a19",
    ),
    (
        "ES",
        5,
        "ADDRESS",
        "990 Transport Plaza",
        "600f7050a4deff0af48ad97adbcde78d5e0b7afb591c5d9dc6b7daae5800752f",
    ),
    (
        "IT",
        25,
        "ADDRESS",
        "52 Muir Plaza",
        "de9539c43a15a32d9596c0ea6e52cd4dfb8a5671f5ea899411d6e471767b0e6a",
    ),
]


def _row_id(row: tuple[str, int, str, str, str]) -> str:
    country, record, key_type, _, _ = row
    return f"{country}-{record}-{key_type}"


@pytest.mark.parametrize("row", UPLOADER_ROWS, ids=_row_id)
def test_uploader_sample_hashes(row: tuple[str, int, str, str, str]) -> None:
    country, _, key_type, value, expected = row
    prepared = prepare(key_type, value, api="dsp", country=country)
    assert (prepared or EMPTY_SHA256) == expected


def test_sdk_readme_example() -> None:
    # amzn/amazon-ads-advertiser-audience-normalization-sdk-py README: AddressNormalizer('US')
    address = "03646 Nicholas Stravenue Mooretown"
    expected = sha256_hex("03646nicholasstramooretown")
    assert prepare("ADDRESS", address, api="dsp", country="US") == expected


# Where the uploader's sample hashes differ from ours on purpose (README identity section).
# (country, type, raw, ours, the uploader's): the SHA-256 of the uploader's form is the one in
# <cc>_check.json (records US 60, CA 1, DE 10, FR 2, DE 1, US 32, GB 2).
DELIBERATE_DIFFERENCES = [
    # The uploader's state map has no DC and cuts unknown names to two letters ("di").
    ("US", "STATE", "District of Columbia", "dc", "di"),
    # The uploader cuts names it cannot map to two letters: Québec -> "qu".
    ("CA", "STATE", "Québec", "qc", "qu"),
    # The uploader's newest city normalizer drops every non-ASCII letter.
    ("DE", "CITY", "München", "muenchen", "mnchen"),
    ("FR", "CITY", "Saint-Étienne", "saintetienne", "sainttienne"),
    # SPEC §4 keeps region names outside the US and Canada; the uploader makes codes of them.
    ("DE", "STATE", "Berlin", "berlin", "be"),
    # A ZIP that lost its leading zero is padded here, dropped by the uploader.
    ("US", "POSTAL", "6160", "06160", ""),
    # SPEC §4 lower-cases postal codes; the uploader hashes GB codes as written (upper case).
    ("GB", "POSTAL", "A11AA", "a11aa", "A11AA"),
]


@pytest.mark.parametrize(
    ("country", "key_type", "value", "ours", "uploader"), DELIBERATE_DIFFERENCES
)
def test_deliberate_differences_from_the_uploader(
    country: str, key_type: str, value: Any, ours: str, uploader: str
) -> None:
    prepared = prepare(key_type, value, api="dsp", country=country)
    assert prepared == sha256_hex(ours)
    assert ours != uploader
