"""The two places where this target needs singer-sdk to do something it offers no public
hook for. Everything else uses the SDK's documented hooks.

- `_validate_config`: the SDK checks the config against the JSON schema at start-up and reports
  every error in its own words; our checks run first, so a bad setting is one line naming it.
- `_process_state_message`: the SDK writes the latest STATE after draining its sinks; this
  target writes a STATE only once Amazon acknowledged every record before it (the ledger).

And one place where it needs to know where in the SDK an error came from: a stream map's
expression fails inside the SDK's mapper (or simpleeval, which evaluates it) with whatever Python
raised (`raised_by_stream_map`), which the user should read as one line, not a traceback.

`tests/test_sdk_internals.py` fails when the SDK changes any of them underneath.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from singer_sdk import Target
from singer_sdk import mapper as sdk_mapper

# The SDK's module that compiles stream maps and applies them (calling simpleeval).
_MAPPER_FILE = Path(sdk_mapper.__file__ or "").resolve()


def raised_by_stream_map(error: BaseException) -> bool:
    """Whether `error` was raised while the SDK compiled or applied a stream map."""
    traceback = error.__traceback__
    while traceback is not None:
        if Path(traceback.tb_frame.f_code.co_filename).resolve() == _MAPPER_FILE:
            return True
        traceback = traceback.tb_next
    return False


class TargetWithAckedState(Target):
    """A Target whose subclass gets `check_settings` and `on_state`. (BATCH messages never reach
    the SDK: the reader reads their files as it reads input lines.)"""

    # The SDK's method names and the public ones they are routed to (tested).
    ROUTED = {  # noqa: RUF012 - read-only table
        "_validate_config": "check_settings",
        "_process_state_message": "on_state",
    }

    def check_settings(self) -> dict[str, Any] | None:
        """Check the settings before the SDK does; raise to stop the run. A config returned
        replaces the one given: the SDK checks and uses that one."""
        return None

    def on_state(self, state: Any) -> None:
        """A STATE message's value."""
        raise NotImplementedError

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        checked = self.check_settings()
        if checked is not None:
            self._config = checked
        return super()._validate_config(raise_errors=raise_errors)

    def _process_state_message(self, message_dict: dict) -> None:
        self.message_reader.assert_line_requires(message_dict, requires={"value"})
        self.on_state(message_dict["value"])
