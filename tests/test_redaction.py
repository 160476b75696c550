"""Known secret values are blanked out of any text, in the forms a server quotes them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.answers import amazon_says
from target_amazon_dsp_conversions.apis.base import http_problem

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


def test_percent_escapes_in_lower_case_are_blanked_out_too() -> None:
    redaction.register(SECRET)
    lower = urlencode({"refresh_token": SECRET}).replace("%7C", "%7c").replace("%2F", "%2f")
    assert redaction.redact(f"error {lower}") == "error refresh_token=[redacted]"


def test_amazons_words_are_redacted_before_they_are_cut() -> None:
    token = "Atza|" + "x" * 400
    redaction.register(token)
    body = {"message": f"Forbidden. Request headers: Authorization=Bearer {token}"}
    assert "xxxxxxxx" not in amazon_says(body)
    problem = http_problem(400, "BAD", "echo " * 150 + token)
    assert "xxxxxxxx" not in problem.message


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
