"""One record -> one result: an event ready to batch, or the reasons it is refused.

`Converter.convert` is the per-record pipeline: the stream's checks (SCHEMA, key properties),
the mapping (record -> conversion fields), the conversion (checks, types, match keys normalized
and hashed) and the API's payload. The same function runs in the main process and in worker
processes (`workers.py`); its results are small typed values that pickle across processes, and
the main process settles them in input order (`run.Run.settle`).

This module runs in the workers: it must not import the Singer SDK (slow to start) or an HTTP
client, and must never log (records hold personal data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple, overload

from target_amazon_dsp_conversions.apis import api_for
from target_amazon_dsp_conversions.apis.base import BatchKey, DefinitionQuery
from target_amazon_dsp_conversions.conversion import (
    Conversion,
    build_conversion,
    build_opt_out,
    dedupe_id,
    dedupe_seed,
    person_keys,
)
from target_amazon_dsp_conversions.conversion_settings import ConversionSettings
from target_amazon_dsp_conversions.errors import MissingKeyPropertiesInput, Problem, Rejected
from target_amazon_dsp_conversions.mapping import (
    CONVERSION_FIELDS,
    RecordMapping,
    user_identifier_keys,
)
from target_amazon_dsp_conversions.record_checks import (
    SDC_METADATA_KEYS,
    SchemaCheck,
    compile_schema,
    missing_key_properties,
    null_keys_problem,
    schema_problem,
)


class StreamSpec(NamedTuple):
    """A stream as its SCHEMA message declares it."""

    schema: dict[str, Any] | None  # None: records are not validated
    key_properties: tuple[str, ...]


@dataclass(frozen=True)
class Stream:
    """A stream as records are checked against it."""

    name: str
    check: SchemaCheck | None
    key_properties: tuple[str, ...]

    @classmethod
    def compile(cls, name: str, spec: StreamSpec) -> Stream:
        """Compile the stream's schema once."""
        schema, keys = spec
        return cls(name, None if schema is None else compile_schema(schema), keys)

    def problem(self, record: dict[str, Any]) -> Problem | None:
        """Why the record cannot be used, or None. A record without its key properties breaks
        the Singer spec and the run cannot go past it: MissingKeyPropertiesInput."""
        problem = schema_problem(self.check, record) if self.check is not None else None
        keys = self.key_properties
        if len(keys) == 1 and record.get(keys[0]) is not None:
            return problem  # the usual stream and record: its one key property is set
        if keys:
            missing = missing_key_properties(keys, record)
            if missing:
                raise MissingKeyPropertiesInput(
                    f"a RECORD of stream '{self.name}' lacks its key properties "
                    f"{', '.join(missing)}; the dedupe ID is derived from them"
                )
            problem = problem or null_keys_problem(keys, record)
        return problem


class EventKind(NamedTuple):
    """What many events share; resolved once per kind by the main process. Results of one
    block share each kind object, so it crosses the process boundary once per block."""

    stream: str
    batch_key: BatchKey
    match_key_types: tuple[str, ...]
    definition: DefinitionQuery | None  # DSP: the definition to resolve
    # Match-key types (and `userIdentifier`) left out as unusable beside other keys: counted
    # per type in the run report (`Conversion.dropped_keys`).
    dropped_key_types: tuple[str, ...] = ()
    # Fixed texts, never record data, that the main process logs once per run: workers must
    # not log (`Conversion.notices`).
    notices: tuple[str, ...] = ()
    key_properties: tuple[str, ...] = ()  # the stream's, for the rejects file (a replay)


# A person's match keys as the suppression list compares them (`conversion.person_keys`).
PersonKeys = tuple[tuple[str, str], ...]
_NOBODY: PersonKeys = ()


class Converted(NamedTuple):
    """A record turned into an event; `kind` says how to complete and batch it."""

    kind: EventKind
    dedupe_id: str
    body: bytes  # the event's JSON, but for what its kind resolves
    purchase_fields: bytes  # see EncodedEvent
    # Its person's keys while there are opt-outs to screen it against, else ().
    person: PersonKeys = _NOBODY


class OptedOut(NamedTuple):
    """A record of an `opt_out_streams` stream: a person whose events Amazon is asked to delete
    (dsp) and whose conversions are not sent from now on."""

    stream: str
    advertiser_id: str
    match_keys: tuple[tuple[str, str], ...]  # as Amazon takes them (all of the person's)
    person: PersonKeys
    dropped_key_types: tuple[str, ...] = ()
    key_properties: tuple[str, ...] = ()  # the stream's, for the rejects file (a replay)


class DeletedAtSource(NamedTuple):
    """A row the tap marks deleted (`_sdc_deleted_at` set): no conversion to send (an event
    cannot be unsent) and no reject; counted."""

    stream: str


class Refused(NamedTuple):
    """A record that cannot be sent, and why (for the rejects file)."""

    stream: str
    problems: tuple[Problem, ...]
    key_properties: tuple[str, ...] = ()  # the stream's, for the rejects file (a replay)
    dedupe_id: str | None = None  # what it would have been sent with; None: null keys


Result = Converted | Refused | OptedOut | DeletedAtSource
# The mark a tap puts on a row deleted at the source (SDK taps, tap-postgres LOG_BASED).
DELETED_AT = "_sdc_deleted_at"
_SDC_KEYS = frozenset(SDC_METADATA_KEYS)


class Block(NamedTuple):
    """Whole lines to convert: Singer messages, or the raw records of a BATCH file."""

    data: bytes
    stream: str | None = None  # set: each line is a record of this stream (a BATCH file)
    # Where a BATCH file's lines come from, for the main process only: (file, first line).
    origin: tuple[str, int] | None = None


_new = tuple.__new__

_decoder = json.JSONDecoder(parse_float=Decimal)
_decode = _decoder.decode
_scan_value = _decoder.scan_once  # type: ignore[attr-defined] # set in __init__
# Lines with an escaped lone surrogate are cleaned (and warned about) by the reader.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# Kinds remembered between blocks, for records converted one at a time.
_MAX_KINDS = 4096


class SchemaFollows(Exception):  # noqa: N818 - a signal to the caller, not a failure
    """A SCHEMA message the caller did not see coming (spelled with escapes)."""


class Converter:
    """Converts records of the streams it knows; the same in every process."""

    def __init__(self, settings: ConversionSettings) -> None:
        """Build the API's rules and the mapping once."""
        self._settings = settings
        self._api = api_for(settings.api, region=settings.region)
        self._mapping = RecordMapping(settings.mapping, settings.defaults)
        self._opt_out_streams = settings.opt_out_streams
        self._screen_people = settings.screen_people
        self._streams: dict[str, Stream] = {}
        self._specs: dict[str, StreamSpec] = {}  # what each of `_streams` was compiled from
        self._kinds: dict[EventKind, EventKind] = {}
        self._last_kind: EventKind | None = None

    def set_streams(self, streams: Mapping[str, StreamSpec]) -> None:
        """The streams whose RECORD lines `convert_line` converts."""
        self.update_streams({name: None for name in self._streams if name not in streams})
        self.update_streams(streams)

    def update_streams(self, changes: Mapping[str, StreamSpec | None]) -> None:
        """Streams added, changed or (None) no longer converted; a stream whose spec did not
        change keeps its compiled checks."""
        for name, spec in changes.items():
            if spec is None:
                self._streams.pop(name, None)
                self._specs.pop(name, None)
            elif self._specs.get(name) != spec or name not in self._streams:
                self._streams[name] = Stream.compile(name, spec)
                self._specs[name] = spec

    def convert(self, stream: Stream, record: dict[str, Any], now: datetime) -> Result:
        """The result for one record (raises as `Stream.problem` does). The SDK's metadata
        columns are taken out of `record` first."""
        # Most records have none: one set test instead of seven lookups.
        if not _SDC_KEYS.isdisjoint(record):
            deleted_at = record.pop(DELETED_AT, None)
            for metadata in SDC_METADATA_KEYS:
                record.pop(metadata, None)
            if deleted_at is not None:
                return _new(DeletedAtSource, (stream.name,))
        if stream.name in self._opt_out_streams:
            return self._opt_out(stream, record)
        problem = stream.problem(record)
        seed = dedupe_seed(stream.name, record, stream.key_properties)
        fields = self._mapping.extract(record)
        if problem is not None:
            # Records whose key properties are all null have no dedupe ID of their own.
            own = (
                None
                if problem.code == "NULL_KEY_PROPERTIES"
                else dedupe_id(fields.get("dedupeId"), seed)
            )
            return Refused(stream.name, (problem,), stream.key_properties, own)
        try:
            conversion = self._conversion(fields, seed, now)
            event = self._api.encode(conversion)
        except Rejected as rejected:
            return Refused(
                stream.name,
                tuple(self._said_where(problem) for problem in rejected.problems),
                stream.key_properties,
                dedupe_id(fields.get("dedupeId"), seed),
            )
        # tuple.__new__: a NamedTuple's own constructor is Python code, twice per record here.
        kind = _new(
            EventKind,
            (
                stream.name,
                event.batch_key,
                tuple([key_type for key_type, _ in conversion.match_keys]),
                event.definition,
                conversion.dropped_keys,
                conversion.notices,
                stream.key_properties,
            ),
        )
        # Records of a kind come in runs: comparing with the last kind (its parts are mostly
        # the very same objects) costs less than hashing the nested tuples for the lookup.
        if kind == self._last_kind:
            kind = self._last_kind
        else:
            kind = self._last_kind = self._kinds.setdefault(kind, kind)
        person = person_keys(conversion.match_keys) if self._screen_people else _NOBODY
        return _new(
            Converted, (kind, conversion.dedupe_id, event.body, event.purchase_fields, person)
        )

    def _opt_out(self, stream: Stream, record: dict[str, Any]) -> OptedOut | Refused:
        """A record of an opt-out stream: the person, or why they cannot be identified."""
        problem = stream.problem(record)
        if problem is not None:
            return Refused(stream.name, (problem,), stream.key_properties)
        fields = self._mapping.extract(record)
        settings = self._settings
        try:
            person = build_opt_out(
                fields,
                rules=self._api.rules,
                default_advertiser_id=settings.advertiser_id,
                user_identifier_type=settings.user_identifier_type,
            )
        except Rejected as rejected:
            problems = tuple(self._said_where(problem) for problem in rejected.problems)
            return Refused(stream.name, problems, stream.key_properties)
        keys = tuple(person.match_keys)
        return OptedOut(
            stream.name,
            person.advertiser_id,
            keys,
            person_keys(keys),
            person.dropped_keys,
            stream.key_properties,
        )

    def _conversion(self, fields: Mapping[str, Any], seed: str, now: datetime) -> Conversion:
        """`build_conversion` with this run's settings (called directly: a functools.partial
        would merge its keywords anew per record)."""
        settings = self._settings
        return build_conversion(
            fields,
            rules=self._api.rules,
            default_source=settings.source,
            default_advertiser_id=settings.advertiser_id,
            user_identifier_type=settings.user_identifier_type,
            dedupe_seed=seed,
            now=now,
        )

    def refusal(self, fields: dict[str, Any], now: datetime) -> tuple[Problem, ...]:
        """Why conversion fields as given (no record, no mapping) would be refused, or ():
        for the check of `defaults` at start-up."""
        try:
            conversion = self._conversion(fields, dedupe_seed("defaults", {}, ()), now)
            self._api.encode(conversion)
        except Rejected as rejected:
            return tuple(rejected.problems)
        return ()

    def _said_where(self, problem: Problem) -> Problem:
        """A missing field's problem, with where the field was looked for."""
        if problem.code != "MISSING_FIELD" or problem.field not in CONVERSION_FIELDS:
            return problem
        # "name or conversionType is required": a name can also come from the type.
        fields = (problem.field, "conversionType") if problem.field == "name" else (problem.field,)
        where = self._mapping.looked_up(fields)
        return Problem(problem.code, f"{problem.message}: {where}", problem.field)

    def convert_line(self, line: bytes, now: datetime) -> Result | None:
        """`convert_message` for a line; None also for a line the reader must decode itself
        (to name what is wrong with it, or to clean it)."""
        if b"\\u" in line and _SURROGATE_ESCAPE.search(line):
            return None
        try:
            message = _decode_line(line.decode())
        except ValueError:
            return None
        if type(message) is not dict:
            return None
        return self.convert_message(message, now)

    def convert_message(self, message: dict[str, Any], now: datetime) -> Result | None:
        """The result for a RECORD message of a known stream; None for any other message,
        which the reader hands to the SDK. Raises SchemaFollows for a SCHEMA message and
        MissingKeyPropertiesInput as `convert` does."""
        kind = message.get("type")
        if kind != "RECORD":
            if kind == "SCHEMA":
                raise SchemaFollows
            return None
        name = message.get("stream")
        record = message.get("record")
        if type(name) is not str:
            return None
        if type(record) is not dict:
            if "record" not in message:
                return None  # the reader names what is missing
            problem = Problem("INVALID_RECORD", "the RECORD message's record is not a JSON object")
            return Refused(name, (problem,))
        stream = self._streams.get(name)
        if stream is None:
            return None
        return self.convert(stream, record, now)

    def convert_any(self, block: Block) -> BlockResults:
        """`convert_block` or `convert_records`, as the block holds."""
        if block.stream is None:
            return self.convert_block(block.data)
        return self.convert_records(block.stream, block.data)

    def convert_records(self, name: str, block: bytes) -> BlockResults:
        """One result per line of a block of a BATCH file's raw records of stream `name`, as
        `convert_block` gives for their RECORD messages; None where the reader must read the
        line itself (a blank line, a line that is not a JSON object, a stream it converts
        otherwise)."""
        lines = split_lines(block)
        stream = self._streams.get(name)
        if stream is None:
            return BlockResults.of([None] * len(lines))
        now = datetime.now(timezone.utc)
        results: list[Result | None] = []
        for line in lines:
            result = None
            if not (b"\\u" in line and _SURROGATE_ESCAPE.search(line)):
                try:
                    record = _decode_line(line.decode())
                    if type(record) is dict:
                        result = self.convert(stream, record, now)
                except Exception:  # noqa: BLE001 - the reader meets it again and says it
                    result = None
            results.append(result)
        return BlockResults.of(results)

    def convert_block(self, block: bytes) -> BlockResults:
        """One result per line of a block of whole lines, all with the same clock reading.

        A line that fails is left to the reader (None), which meets the failure again and says
        it; after a SCHEMA line the rest is too, as what follows may depend on it."""
        lines = split_lines(block)
        if len(self._kinds) > _MAX_KINDS:
            self._kinds.clear()
            self._last_kind = None  # a block's results share each kind object
        results = BlockResults([], [], [], [], [])
        # The columns filled directly: a method call per record would cost more than pickling.
        outcome, dedupe_ids, bodies, purchase_fields, people = (
            results.outcomes.append,
            results.dedupe_ids.append,
            results.bodies.append,
            results.purchase_fields.append,
            results.people.append,
        )
        now = datetime.now(timezone.utc)
        for number, line in enumerate(lines):
            try:
                result = self.convert_line(line, now)
            except SchemaFollows:
                for _ in range(len(lines) - number):
                    outcome(None), dedupe_ids(""), bodies(b""), purchase_fields(b"")
                    people(_NOBODY)
                break
            except Exception:  # noqa: BLE001 - the reader meets it again and says it
                result = None
            if type(result) is Converted:
                outcome(result[0]), dedupe_ids(result[1])
                bodies(result[2]), purchase_fields(result[3]), people(result[4])
            else:  # Refused, OptedOut, DeletedAtSource or None
                outcome(result), dedupe_ids(""), bodies(b""), purchase_fields(b"")  # type: ignore[arg-type]
                people(_NOBODY)
        return results


class BlockResults:
    """The results of records read in a row (a block's lines), column by column: what a worker
    process sends back, and what the main process settles.

    Per line, `outcomes` holds the kind of its event (the line was converted), why it is refused
    (`Refused`), the person who opted out (`OptedOut`), a row deleted at the source
    (`DeletedAtSource`), or None (the reader handles the line itself); the other columns hold
    the event's own fields ("", b"" and () on other lines). Columns of text and bytes pickle and
    unpickle in C: a typed value per record (a NamedTuple) costs a Python call per record on
    each side, more than the pickling itself. `results[i]` gives a line's `Result` as
    `Converter.convert` does.
    """

    __slots__ = ("bodies", "dedupe_ids", "outcomes", "people", "purchase_fields")

    def __init__(
        self,
        outcomes: list[EventKind | Refused | OptedOut | DeletedAtSource | None],
        dedupe_ids: list[str],
        bodies: list[bytes],
        purchase_fields: list[bytes],
        people: list[PersonKeys],
    ) -> None:
        """Columns of equal length, one row per line."""
        self.outcomes = outcomes
        self.dedupe_ids = dedupe_ids
        self.bodies = bodies
        self.purchase_fields = purchase_fields
        self.people = people

    @classmethod
    def of(cls, results: Iterable[Result | None]) -> BlockResults:
        """The columns of results given one by one."""
        block = cls([], [], [], [], [])
        for result in results:
            if type(result) is Converted:
                block.outcomes.append(result.kind)
                block.dedupe_ids.append(result.dedupe_id)
                block.bodies.append(result.body)
                block.purchase_fields.append(result.purchase_fields)
                block.people.append(result.person)
            else:
                block.outcomes.append(result)  # type: ignore[arg-type] # not an event
                block.dedupe_ids.append("")
                block.bodies.append(b"")
                block.purchase_fields.append(b"")
                block.people.append(_NOBODY)
        return block

    def part(self, start: int, end: int) -> BlockResults:
        """The rows from `start` to `end` (excluded)."""
        return BlockResults(
            self.outcomes[start:end],
            self.dedupe_ids[start:end],
            self.bodies[start:end],
            self.purchase_fields[start:end],
            self.people[start:end],
        )

    def __len__(self) -> int:
        return len(self.outcomes)

    @overload
    def __getitem__(self, index: int) -> Result | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[Result | None]: ...
    def __getitem__(self, index: int | slice) -> Result | list[Result | None] | None:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        outcome = self.outcomes[index]
        if type(outcome) is EventKind:
            return Converted(
                outcome,
                self.dedupe_ids[index],
                self.bodies[index],
                self.purchase_fields[index],
                self.people[index],
            )
        return outcome  # type: ignore[return-value] # not an event

    def __iter__(self) -> Iterator[Result | None]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BlockResults) and self.__reduce__()[1] == other.__reduce__()[1]

    __hash__ = None  # type: ignore[assignment] # mutable

    def __reduce__(self) -> tuple[type[BlockResults], tuple[Any, ...]]:
        return BlockResults, (
            self.outcomes, self.dedupe_ids, self.bodies, self.purchase_fields, self.people
        )  # fmt: skip


def dedupe_key_warning(
    stream: str, spec: StreamSpec, mapping: Mapping[str, str | None]
) -> str | None:
    """The warning to log once for a stream whose derived dedupe ID would hash a user
    identifier (its key properties look like `email`, `customer_id`, ...), else None.

    For the main process, when the stream's SCHEMA arrives. No warning when records carry a
    dedupe ID of their own (a mapped `dedupeId`, or a default dedupe column in the schema).
    """
    suspects = user_identifier_keys(spec.key_properties)
    if not suspects:
        return None
    mapped = mapping.get("dedupeId")
    if mapped:
        return None
    if mapped is None and spec.schema is not None:
        properties = spec.schema.get("properties")
        if isinstance(properties, Mapping) and any(
            name in properties for name in CONVERSION_FIELDS["dedupeId"]
        ):
            return None
    return (
        f"Stream '{stream}': key properties {', '.join(suspects)} look like a user identifier; "
        "the dedupe ID derived from them is the same for all of a person's conversions, so "
        "Amazon keeps only one (DSP: the first; Events API: the latest), and the DSP API "
        "forbids user identifiers as dedupe IDs. Key the stream by order or event ID, or map "
        "dedupeId to such a column."
    )


def _decode_line(text: str) -> Any:
    """json.loads(text), without its Python-level whitespace handling for the usual line:
    a value right at the start, then the newline."""
    try:
        value, end = _scan_value(text, 0)
    except StopIteration:
        return _decode(text)  # leading whitespace, or not JSON (raises ValueError)
    if end == len(text) or text[end:] in ("\n", "\r\n"):
        return value
    return _decode(text)


def split_lines(block: bytes) -> list[bytes]:
    """The lines of a block, each with its newline (the last line of input may lack one)."""
    lines = block.split(b"\n")
    last = lines.pop()
    lines = [line + b"\n" for line in lines]
    if last:
        lines.append(last)
    return lines
