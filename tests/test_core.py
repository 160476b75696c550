"""The singer-sdk standard target tests, run through the real code path in dry run."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
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
    # The SDK's streams have no event time and no match key: a stream whose SCHEMA lacks a
    # field every record needs stops the run (a set-up error), so the defaults supply both.
    "defaults": {
        "countryCode": "US",
        "conversionType": "purchase",
        "eventTime": datetime.now(timezone.utc).isoformat(),
        "email": "sdk-standard-tests@example.com",
    },
    "conversion_definitions": {"purchase": "cd-purchase"},
}

StandardTargetTests = get_target_test_class(
    target_class=TargetAmazonDSPConversions, config=SAMPLE_CONFIG
)


class TestTargetAmazonDSPConversions(StandardTargetTests):  # type: ignore[misc,valid-type]
    """Standard target tests: generic streams must not crash the target.

    Their streams have no event time and no match key; the defaults above supply both, so the
    records go through the whole conversion path in dry run.
    """
