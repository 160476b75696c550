"""Known secret values, and their removal from every text that leaves the process.

A server may echo what it was sent (the token request's form in an OAuth `error_description`,
the `Authorization` header in an API error message), and an exception's text may carry it too.
So secrets are redacted by value, wherever they appear: the configured `client_secret` and
`refresh_token`, and every access token issued during the run (`auth.py` registers each one).
`client_id` is not redacted: Amazon does not treat it as a secret (it is sent in a header of
every API request and shown in the developer console), and naming it helps to fix a setting.

Where text leaves: log records (`install`: every logger of the process, the SDK's included, and
the tracebacks of uncaught exceptions), and the one-line errors, the report, the rejects file,
the dry-run file and the `check`/`login` output, each through `redact`. Worker processes hold
no secret and never log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from types import TracebackType
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
# Real client secrets and tokens are dozens to hundreds of characters; a shorter value would
# blank out ordinary words.
MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(*values: str | None) -> None:
    """Treat these values as secret from now on (None, empty and very short values are not)."""
    global _pattern  # one set of known secrets per process
    new = {
        form
        for value in values
        if value and len(value) >= MIN_SECRET_LENGTH
        for form in _written_forms(value)
    }
    with _lock:
        if new <= _secrets:
            return
        _secrets.update(new)
        # Longest first, so that a secret containing another is removed whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        # Any case: a server may write percent-escapes in lower case (%7c for %7C).
        _pattern = re.compile("|".join(re.escape(value) for value in ordered), re.IGNORECASE)


def _written_forms(value: str) -> set[str]:
    """The value as a server may quote it: as is, form-encoded (a token request's body) and
    inside a JSON string."""
    return {value, quote_plus(value), quote(value, safe=""), json.dumps(value)[1:-1]}


def redact(text: str) -> str:
    """`text` with every known secret value replaced by "[redacted]"."""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(REDACTED, text)


def redacted_start(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, redacted before it is cut: a secret cut in half
    would no longer be known by its value."""
    return redact(text)[:limit]


def forget_all() -> None:
    """Forget every registered value (for tests that run several commands in one process)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def install() -> None:
    """Redact every log record made in this process from now on, and the traceback of an
    uncaught exception. Idempotent."""
    if getattr(logging.getLogRecordFactory(), "redacts", False):
        return
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if _pattern is None:
            return record
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        # Formatted now, so the formatter uses this text instead of formatting it again.
        if record.exc_info and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    redacting_record.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_record)
    sys.excepthook = _print_redacted_traceback
    threading.excepthook = _print_redacted_thread_traceback


def _print_redacted_traceback(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, error, trace))))


def _print_redacted_thread_traceback(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    sys.stderr.write(f"Exception in thread {name}:\n")
    _print_redacted_traceback(args.exc_type, args.exc_value, args.exc_traceback)
