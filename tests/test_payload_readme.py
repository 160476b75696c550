"""The README's worked examples ("Choosing an API") are what the target sends.

Each example's config, input record and request are read from the README itself and the record
is run through the console script in a dry run; only the event time is moved to a recent one
(Amazon takes events up to 7 days old for dsp).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_target
from tests.openapi_schemas import request_errors

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE_TIME = "2026-11-21T12:00:00Z"


def worked_example(api: str) -> tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]:
    """(config, input record, request URL, request body) of the README's example for `api`."""
    text = README.read_text()
    start = text.index(f"### Worked example: `{api}`") - 1
    section = re.split(r"\n##+ ", text[start:])[1]
    blocks = re.findall(r"```json\n(.*?)\n```", section, flags=re.DOTALL)
    config, record, request = (json.loads(block) for block in blocks[:3])
    [url] = re.findall(r"`POST (https://[^`\s]+)`?", section)
    return config, record, url, request


@pytest.mark.parametrize("api", ["dsp", "events"])
def test_worked_example_is_what_the_target_sends(api: str, tmp_path: Path) -> None:
    config, record, url, expected = worked_example(api)
    recent = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert EXAMPLE_TIME in json.dumps(record)
    record = json.loads(json.dumps(record).replace(EXAMPLE_TIME, recent))
    expected = json.loads(json.dumps(expected).replace(EXAMPLE_TIME, recent))
    # The table's columns are the record's (the run checks its mapping against the SCHEMA).
    schema = {"type": "object", "properties": {column: {} for column in record}}
    messages = [
        {"type": "SCHEMA", "stream": "orders", "schema": schema, "key_properties": ["order_id"]},
        {"type": "RECORD", "stream": "orders", "record": record},
    ]

    run = run_target({**config, "dry_run": True}, messages, tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.rejects == []
    [request] = run.dry_run_requests
    assert request["url"] == url
    assert request["body"] == expected
    assert request["headers"]["Amazon-Ads-AccountId"] == config["advertiser_id"]
    assert request_errors(api, request["body"]) == []
