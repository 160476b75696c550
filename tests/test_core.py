"""The singer-sdk standard target tests, run through the real code path in dry run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from singer_sdk.testing import get_target_test_class

from target_amazon_dsp_conversions.target import TargetAmazonDSPConversions

_WORKDIR = Path(tempfile.mkdtemp(prefix="tadc-sdk-tests-"))

SAMPLE_CONFIG: dict[str, Any] = {
    "dry_run": True,
    "advertiser_id": "1234567890",
    "dry_run_path": str(_WORKDIR / "dry-run-requests.jsonl"),
    "rejects_path": str(_WORKDIR / "rejects.jsonl"),
    "report_path": str(_WORKDIR / "report.json"),
    "defaults": {"countryCode": "US", "conversionType": "purchase"},
    "conversion_definitions": {"purchase": "cd-purchase"},
}

StandardTargetTests = get_target_test_class(
    target_class=TargetAmazonDSPConversions, config=SAMPLE_CONFIG
)


class TestTargetAmazonDSPConversions(StandardTargetTests):  # type: ignore[misc,valid-type]
    """Standard target tests: generic streams must not crash the target.

    Their records are not conversions (no event time, no match key), so they go to the rejects
    file with a reason: that is the behaviour a user of any tap gets.
    """
