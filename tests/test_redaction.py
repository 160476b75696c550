"""Known secret values are blanked out of any text, in the forms a server quotes them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from target_amazon_dsp_conversions import redaction

SECRET = "Atzr|IwEBI/a+secret=value"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    redaction.forget_all()
    yield
    redaction.forget_all()


def test_a_registered_value_is_blanked_out_as_is_form_encoded_and_json_escaped() -> None:
    quoting = 'client-"secret"-value'
    redaction.register(SECRET, quoting, None, "")
    text = f"error: {SECRET}; {urlencode({'refresh_token': SECRET})}; {json.dumps(quoting)}"
    assert redaction.redact(text) == 'error: [redacted]; refresh_token=[redacted]; "[redacted]"'


def test_nothing_registered_or_too_short_leaves_text_alone() -> None:
    assert redaction.redact(f"a {SECRET}") == f"a {SECRET}"
    redaction.register("short")  # shorter than any real secret: would blank ordinary words
    assert redaction.redact("a short text") == "a short text"


def test_log_records_are_redacted_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    redaction.install()
    redaction.register(SECRET)
    logger = logging.getLogger("test-redaction")
    with caplog.at_level(logging.INFO, logger="test-redaction"):
        logger.info("token call answered %s", {"error": SECRET})
        try:
            raise ValueError(SECRET)
        except ValueError:
            logger.exception("failed")
    assert SECRET not in caplog.text
    assert "token call answered {'error': '[redacted]'}" in caplog.text
    assert "ValueError: [redacted]" in caplog.text
