"""Errors the user sees: fatal ones (one line, no traceback) and per-record reject reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass


class UserError(Exception):
    """A problem the user has to fix; the CLI prints it as one line and exits non-zero."""


def json_error_reason(exc: json.JSONDecodeError) -> str:
    """What is wrong with a JSON text, for a line that then says where: without the "at" some
    of Python's messages end with ("Invalid control character at")."""
    return exc.msg.removesuffix(" at")


class SettingError(UserError):
    """A bad setting, found at start-up before any input is read."""

    def __init__(self, setting: str, problem: str) -> None:
        """Name the setting and what is wrong with it."""
        super().__init__(f"setting '{setting}': {problem}")
        self.setting = setting


class SignInError(UserError):
    """Login with Amazon refused the credentials; retrying cannot help."""


class DeliveryError(UserError):
    """Amazon could not be reached or refused the run's credentials after all retries."""


class SetupError(DeliveryError):
    """A set-up problem (SPEC §5, `answers.py`): the same for every record, so the run stops
    with the records undelivered, not rejected; the message says what to fix."""


class InputError(UserError):
    """The Singer input cannot be read any further."""


class MissingKeyPropertiesInput(InputError):  # noqa: N818 - named for the SDK's own error
    """A RECORD lacks its stream's key properties (the reader raises the SDK's error for it)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a record was refused: a code, a message without personal data, and the field."""

    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The rejects-file form."""
        return {"code": self.code, "message": self.message, "field": self.field}


class Rejected(Exception):  # noqa: N818 - it is an outcome, not a failure of the target
    """Raised while building a conversion when the record cannot be sent."""

    def __init__(self, *problems: Problem) -> None:
        """Carry one or more problems."""
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)


def reject(code: str, message: str, field: str | None = None) -> Rejected:
    """Shorthand for `raise reject(...)`."""
    return Rejected(Problem(code, message, field))
