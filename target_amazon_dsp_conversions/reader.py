"""Singer input reading that never echoes input lines (they hold personal data) in errors."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

logger = logging.getLogger("target-amazon-dsp-conversions")
# json.loads with parse_float builds a new decoder per call; one decoder serves every line.
_decode = json.JSONDecoder(parse_float=Decimal).decode

_INPUT_BUFFER_BYTES = 1 << 20
SINGER_TYPES = frozenset({"SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION", "BATCH"})
# JSON may escape half of a surrogate pair alone ("\ud800"): Python then holds a string that
# cannot be encoded (UTF-8 output, hashing). Such lines are rare, so a cheap test finds them.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class SafeSingerReader(SingerReader):
    """Counts lines, names them in errors, and skips unknown message types with a warning."""

    def __init__(self) -> None:
        """Start counting at line 0."""
        super().__init__()
        self.line_number = 0
        self._unknown_types: set[str] = set()
        self._warned_surrogates = False
        # Signal handling (see target.py): a stop requested while a line is being processed
        # waits for the next line boundary; while blocked on input it raises at once.
        self.waiting_for_input = False
        self.check_stop: Callable[[], None] = lambda: None

    @property
    def default_input(self) -> IO[str]:  # type: ignore[override]
        """stdin decoded as strict UTF-8 line by line, whatever the locale says.

        Under a C/POSIX locale Python reads stdin with `surrogateescape`, which would turn a
        stray byte into text that cannot be hashed or written; decoding each line ourselves
        names the bad line (a text wrapper decodes whole chunks and would name an earlier one).
        """
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:  # stdin replaced by a text-only object (embedding, tests)
            return sys.stdin
        # 1 MiB reads instead of 8 KiB: each read releases the GIL, and getting it back from
        # busy upload threads costs far more than the read itself. A pipe still yields each
        # line as soon as it arrives. Without a file descriptor, stdin is read as it is.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            buffer = open(  # noqa: SIM115 - lives as long as the process's stdin
                buffer.fileno(), "rb", buffering=_INPUT_BUFFER_BYTES, closefd=False
            )
        return (raw.decode("utf-8") for raw in buffer)  # type: ignore[return-value]

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
            message = _decode(line)
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
        if "\\u" in line and _SURROGATE_ESCAPE.search(line):
            cleaned = _without_lone_surrogates(message)
            if cleaned != message:
                if not self._warned_surrogates:
                    self._warned_surrogates = True
                    logger.warning(
                        "Input line %d holds text that is not valid Unicode (a lone surrogate "
                        "escape); such characters are replaced with U+FFFD",
                        self.line_number,
                    )
                return cleaned
        return message

    def assert_line_requires(self, line_dict: dict, requires: set[str]) -> None:  # type: ignore[override]
        """Name what is missing, not the line's content."""
        missing = requires - set(line_dict)
        if missing:
            kind = line_dict.get("type", "no type")
            # The SDK also checks a SCHEMA's schema object, whose "type" is a JSON type.
            what = kind if kind in SINGER_TYPES or kind == "no type" else "SCHEMA's schema"
            raise InvalidInputLine(
                f"input line {self.line_number} ({str(what)[:40]}) lacks "
                f"{', '.join(sorted(missing))}"
            )

    def _process_unknown_message(self, message_dict: dict) -> None:
        """Singer allows new message types; skipping them loses no record."""
        kind = str(message_dict.get("type"))[:40]
        if kind not in self._unknown_types:
            self._unknown_types.add(kind)
            logger.warning("Skipping Singer messages of unknown type %r", kind)


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    return value
