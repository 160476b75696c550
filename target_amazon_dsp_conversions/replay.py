"""`target-amazon-dsp-conversions-replay`: a rejects file, once fixed, as Singer input again.

    target-amazon-dsp-conversions-replay rejects-fixed.jsonl \
        | target-amazon-dsp-conversions --config config.json

Writes to stdout, per stream, a SCHEMA (the stream's key properties as the rejects file noted
them; every property the stream's records have, of any type) and the stream's records, each
with the dedupe ID it had: written to its `dedupeId` property (`--dedupe-field`) unless the
record carries its own. Amazon drops an event whose ID it has seen, so a record replayed twice,
or sent again by the tap as well, counts once. No STATE: a replay moves no bookmark.

Every file is checked whole before anything is written, so a line broken while editing stops
the replay with one line naming it, not halfway through. A line torn by a crash while it was
written (cut short; an earlier version could append the next reject to it) is skipped and
named instead, and a whole reject appended to it is replayed. Lines of a dry run are skipped and
counted: it sent nothing, and the real run rejects those records again. Only what a file held
when the replay started is read: a target appending to the same file cannot feed the replay its
own rejects.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from target_amazon_dsp_conversions import package_version
from target_amazon_dsp_conversions.errors import UserError
from target_amazon_dsp_conversions.mapping import CONVERSION_FIELDS
from target_amazon_dsp_conversions.rejects import strict_json

PROGRAM = "target-amazon-dsp-conversions-replay"
DEDUPE_FIELD = "dedupeId"
# The record properties the target reads a record's own dedupe ID from, by default.
_OWN_DEDUPE_FIELDS = CONVERSION_FIELDS["dedupeId"]
_decode = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal).decode
# How every line the target writes begins (rejects.RejectsFile.write).
_LINE_START = '{"stream": '


@dataclass
class _Stream:
    """What the SCHEMA of a replayed stream declares."""

    properties: dict[str, None] = field(default_factory=dict)  # in order of appearance
    records: int = 0


@dataclass(frozen=True)
class _Reject:
    stream: str
    record: Any
    key_properties: tuple[str, ...]
    dedupe_id: str | None
    dry_run: bool = False  # a dry run's line: skipped


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: problems print one line and exit 1."""
    args = _parser().parse_args(argv)
    torn: list[str] = []

    def warn(message: str) -> None:
        torn.append(message)
        print(f"{PROGRAM}: warning: {message}", file=sys.stderr)  # noqa: T201

    try:
        count, dry_runs = replay(
            args.rejects, sys.stdout, dedupe_field=args.dedupe_field, warn=warn
        )
    except UserError as exc:
        _fail(str(exc))
    except BrokenPipeError:
        # What reads the output stopped (a target that refused its config, say); it says why.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        _fail("the command reading the output stopped before the end")
    done = f"{count} record{'s' if count != 1 else ''} replayed"
    if torn:
        done += f", {len(torn)} torn line{'s' if len(torn) != 1 else ''} skipped"
    if dry_runs:
        done += (
            f", {dry_runs} line{'s' if dry_runs != 1 else ''} of dry runs skipped (nothing was "
            "sent; the real run rejects those records again)"
        )
    print(f"{PROGRAM}: {done}", file=sys.stderr)  # noqa: T201


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Write the records of rejects files (after you fixed them) to stdout as "
        "Singer input for target-amazon-dsp-conversions, each with the dedupe ID it had.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s v{package_version()}")
    parser.add_argument("rejects", nargs="+", metavar="REJECTS", help="a rejects file (JSONL)")
    parser.add_argument(
        "--dedupe-field",
        default=DEDUPE_FIELD,
        metavar="PROPERTY",
        help="the record property that carries the dedupe ID (default: dedupeId; the "
        "property your `mapping` names for dedupeId, if it names one)",
    )
    return parser


def _fail(message: str) -> None:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)  # noqa: T201
    sys.exit(1)


def replay(
    paths: Sequence[str],
    output: TextIO,
    *,
    dedupe_field: str = DEDUPE_FIELD,
    warn: Callable[[str], None] = lambda _: None,
) -> tuple[int, int]:
    """Write the Singer messages for the rejects files at `paths`; the number of records, and
    of dry-run lines skipped. `warn` hears of each torn line skipped."""
    sizes = {path: _size(path) for path in paths}
    streams: dict[str, _Stream] = {}
    dry_runs = 0
    for path in paths:  # everything checked before anything is written
        for reject in _rejects(path, sizes[path], warn):
            if reject.dry_run:
                dry_runs += 1
                continue
            stream = streams.setdefault(reject.stream, _Stream())
            if isinstance(reject.record, dict):
                stream.properties.update(dict.fromkeys(reject.record))
            stream.properties.update(dict.fromkeys(reject.key_properties))
    declared: dict[str, tuple[str, ...]] = {}
    count = 0
    for path in paths:
        for reject in _rejects(path, sizes[path]):
            if reject.dry_run:
                continue
            if declared.get(reject.stream) != reject.key_properties:
                declared[reject.stream] = reject.key_properties
                output.write(_schema(reject.stream, streams[reject.stream], reject.key_properties))
            record = _with_dedupe_id(reject.record, reject.dedupe_id, dedupe_field)
            output.write(strict_json({"type": "RECORD", "stream": reject.stream, "record": record}))
            output.write("\n")
            count += 1
    output.flush()
    return count, dry_runs


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def _rejects(
    path: str, size: int, warn: Callable[[str], None] = lambda _: None
) -> Iterator[_Reject]:
    """The lines of a rejects file, as far as it reached when the replay started."""
    with open(path, "rb") as file:
        for number, raw in enumerate(_lines(file, size), 1):
            if raw.strip():
                reject = _reject(raw, f"{path} line {number}", warn)
                if reject is not None:
                    yield reject


def _lines(file: Any, size: int) -> Iterator[bytes]:
    remaining = size
    for raw in file:
        if remaining <= 0:
            return
        remaining -= len(raw)
        yield raw


def _reject(raw: bytes, where: str, warn: Callable[[str], None]) -> _Reject | None:
    """The reject a line holds; None for a torn line (`warn` says so)."""
    # Torn: the file's last line, without its newline; or (an earlier version) a line that a
    # whole reject was appended to.
    cut_short = not raw.endswith(b"\n")
    text = raw.decode("utf-8", "replace")
    appended = None
    try:
        line = _decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        appended = _appended_reject(text)
        if not cut_short and appended is None:
            raise UserError(f"{where} is not UTF-8 text") from None
    except ValueError as exc:
        appended = _appended_reject(text)
        if not cut_short and appended is None:
            raise UserError(
                f"{where} is not valid JSON ({exc}); fix it or delete the line"
            ) from None
    else:
        return _checked(line, where)
    if appended is None:
        warn(f"{where} was cut short (torn by a crash while it was written); skipped")
        return None
    warn(f"{where} begins with a line torn by a crash; skipped that part")
    return _checked(appended, where)


def _checked(line: Any, where: str) -> _Reject:
    """A rejects line as the replay needs it, or one line saying what it lacks."""
    if not isinstance(line, dict) or not isinstance(line.get("stream"), str):
        raise UserError(f"{where} is not a rejects line: it needs a stream and a record")
    if "record" not in line:
        raise UserError(f"{where} has no record")
    keys = line.get("key_properties") or []
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise UserError(f"{where}: key_properties must be a list of property names")
    dedupe_id = line.get("dedupe_id")
    if dedupe_id is not None and (not isinstance(dedupe_id, str) or not dedupe_id.strip()):
        raise UserError(f"{where}: dedupe_id must be text (or null to let the target derive one)")
    record = line["record"]
    if isinstance(record, dict):
        missing = [key for key in keys if key not in record]
        if missing:
            raise UserError(
                f"{where}: the record lacks its key properties {', '.join(missing)} (the target "
                "derives dedupe IDs from them and stops on a record without them)"
            )
    return _Reject(line["stream"], record, tuple(keys), dedupe_id, line.get("dry_run") is True)


def _torn(text: str, error_at: int) -> bool:
    """A line cut short: the JSON ran out before it was complete, or a whole reject follows
    a cut-off start (what an earlier version appended to a torn line)."""
    return error_at >= len(text.rstrip()) or _appended_reject(text) is not None


def _appended_reject(text: str) -> dict[str, Any] | None:
    """A whole rejects line after the start of a torn one, if there is one."""
    start = text.rfind(_LINE_START)
    if start <= 0:
        return None
    try:
        line = _decode(text[start:])
    except ValueError:
        return None
    return line if isinstance(line, dict) else None


def _schema(name: str, stream: _Stream, key_properties: tuple[str, ...]) -> str:
    """Every property of the stream's records, of any type: the target checks the records."""
    schema = {"type": "object", "properties": {name: {} for name in stream.properties}}
    message = {
        "type": "SCHEMA",
        "stream": name,
        "schema": schema,
        "key_properties": list(key_properties),
    }
    return json.dumps(message, ensure_ascii=False) + "\n"


def _with_dedupe_id(record: Any, dedupe_id: str | None, dedupe_field: str) -> Any:
    """The record with the dedupe ID it had, unless it carries its own (which the user may have
    fixed) or there is none to keep."""
    if dedupe_id is None or not isinstance(record, dict):
        return record
    if any(_present(record.get(name)) for name in (dedupe_field, *_OWN_DEDUPE_FIELDS)):
        return record
    return {**record, dedupe_field: dedupe_id}


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


if __name__ == "__main__":
    main()
