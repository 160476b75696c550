"""Singer input reading that never echoes input lines (they hold personal data) in errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

logger = logging.getLogger("target-amazon-dsp-conversions")


class SafeSingerReader(SingerReader):
    """Counts lines, names them in errors, and skips unknown message types with a warning."""

    def __init__(self) -> None:
        """Start counting at line 0."""
        super().__init__()
        self.line_number = 0
        self._unknown_types: set[str] = set()
        # Signal handling (see target.py): a stop requested while a line is being processed
        # waits for the next line boundary; while blocked on input it raises at once.
        self.waiting_for_input = False
        self.check_stop: Callable[[], None] = lambda: None

    def process_lines(
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict], None]]
    ) -> Any:
        """The SDK's loop, fed through `_lines` so a stop request ends it between lines."""
        return super().process_lines(
            self._lines(file_input or self.default_input),  # type: ignore[arg-type]
            callbacks,
        )

    def _lines(self, file_input: Iterable[str]) -> Iterator[str]:
        lines = iter(file_input)
        while True:
            self.waiting_for_input = True
            try:
                # Checked after the flag is up: a signal that came just before is not missed.
                self.check_stop()
                line = next(lines, None)
            except UnicodeDecodeError:
                raise InvalidInputLine(
                    f"input line {self.line_number + 1} is not UTF-8 text; nothing after it "
                    "was read"
                ) from None
            finally:
                self.waiting_for_input = False
            if line is None:
                return
            self.line_number += 1
            if line.strip():  # a blank line (a tap's stray print) holds no message
                yield line

    def deserialize_json(self, line: str) -> dict:
        """Parse one line; a broken line is named by number, not by content."""
        try:
            message = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise InvalidInputLine(
                f"input line {self.line_number} is not valid JSON ({exc.msg} at column "
                f"{exc.pos + 1}); nothing after it was read"
            ) from None
        except (ValueError, RecursionError) as exc:
            # An integer beyond Python's digit limit, or nesting deeper than the stack allows.
            reason = "nested too deeply" if isinstance(exc, RecursionError) else "a number too long"
            raise InvalidInputLine(
                f"input line {self.line_number} cannot be read ({reason}); nothing after it "
                "was read"
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is not a Singer message (a JSON object)"
            )
        return message

    def assert_line_requires(self, line_dict: dict, requires: set[str]) -> None:  # type: ignore[override]
        """Name what is missing, not the line's content."""
        missing = requires - set(line_dict)
        if missing:
            raise InvalidInputLine(
                f"input line {self.line_number} ({line_dict.get('type', 'no type')}) lacks "
                f"{', '.join(sorted(missing))}"
            )

    def _process_unknown_message(self, message_dict: dict) -> None:
        """Singer allows new message types; skipping them loses no record."""
        kind = str(message_dict.get("type"))[:40]
        if kind not in self._unknown_types:
            self._unknown_types.add(kind)
            logger.warning("Skipping Singer messages of unknown type %r", kind)

