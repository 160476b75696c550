"""One run: record -> mapping -> conversion -> identity -> payload -> batching -> delivery.

Owns the objects of a run and settles every record exactly once: accepted, rejected (rejects
file), or undelivered (the run fails and the next run resends it from the last STATE).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from target_amazon_dsp_conversions.apis import api_for
from target_amazon_dsp_conversions.apis.base import OutgoingRequest
from target_amazon_dsp_conversions.apis.dsp import with_definition
from target_amazon_dsp_conversions.auth import AccessTokens
from target_amazon_dsp_conversions.batching import PendingEvent
from target_amazon_dsp_conversions.conversion import Conversion, build_conversion, dedupe_seed
from target_amazon_dsp_conversions.definitions import DefinitionResolver
from target_amazon_dsp_conversions.delivery import Delivery, Outcomes
from target_amazon_dsp_conversions.errors import Problem, Rejected, UserError
from target_amazon_dsp_conversions.http_client import DryRunTransport, HttpTransport, Transport
from target_amazon_dsp_conversions.ledger import StateLedger
from target_amazon_dsp_conversions.mapping import RecordMapping
from target_amazon_dsp_conversions.reader import record_of_line
from target_amazon_dsp_conversions.report import (
    ProgressTicker,
    RejectsFile,
    RunStats,
    write_report,
)
from target_amazon_dsp_conversions.settings import Settings
from target_amazon_dsp_conversions.workers import EventKind

logger = logging.getLogger("target-amazon-dsp-conversions")

PROGRESS_INTERVAL_SECONDS = 5.0
# A partial batch waits at most this long for more events before it is sent.
IDLE_FLUSH_SECONDS = 2.0


class ResolvedKind(NamedTuple):
    """`workers.EventKind` with the DSP definition resolved."""

    stream: str
    key: tuple[str, str]
    match_key_types: tuple[str, ...]
    head: bytes | list[Problem]  # the event's start (b"" for the Events API), or problems


class Run(Outcomes):
    """Everything one run of the target needs; created at start-up, finished at end of input."""

    def __init__(self, settings: Settings, emit_state: Callable[[Any], None]) -> None:
        """Build the run's parts; no network traffic yet."""
        self.settings = settings
        self.api = api_for(settings.api, region=settings.region)
        self.stats = RunStats()
        self.rejects = RejectsFile(settings.rejects_path)
        self.ledger = StateLedger(emit_state)
        self.stopping = threading.Event()
        self.mapping = RecordMapping(settings.mapping, settings.defaults)
        self._dry_run_file: DryRunTransport | None = None
        transport: Transport
        if settings.dry_run:
            transport = self._dry_run_file = DryRunTransport(settings.dry_run_path, self.stats)
        else:
            tokens = AccessTokens.for_settings(
                settings, max_retries=settings.max_retries, wait=self.stopping.wait
            )
            transport = HttpTransport(
                tokens=tokens,
                counters=self.stats,
                timeout=settings.request_timeout,
                max_retries=settings.max_retries,
                stopping=self.stopping,
            )
        client_id = settings.client_id or "<client_id>"
        self.definitions = (
            DefinitionResolver(
                configured=settings.conversion_definitions,
                create_missing=settings.create_missing_definitions,
                transport=None if settings.dry_run else transport,
                api_url=settings.api_url,
                client_id=client_id,
                profile_id=settings.profile_id,
            )
            if self.api.name == "dsp"
            else None
        )
        self.delivery = Delivery(
            api=self.api,
            transport=transport,
            build_request=self._build_request,
            outcomes=self,
            max_in_flight=settings.max_concurrent_requests,
            on_sent=self.stats.count_sent,
        )
        self._client_id = client_id
        self._ticker = ProgressTicker(self.stats, PROGRESS_INTERVAL_SECONDS, self._tick)
        self._ticker.start()
        self._finished = False

    # Input side (main thread).

    def process(self, stream: str, record: dict[str, Any], key_properties: Sequence[str]) -> None:
        """Turn one record into an event and queue it, or reject it with its reasons."""
        segment = self.ledger.open_record()
        fields = self.mapping.extract(record)
        try:
            conversion = build_conversion(
                fields,
                rules=self.api.rules,
                default_source=self.settings.source,
                default_advertiser_id=self.settings.advertiser_id,
                user_identifier_type=self.settings.user_identifier_type,
                dedupe_seed=dedupe_seed(stream, record, key_properties),
                now=self._now_for_checks(),
            )
            if self.definitions is not None:
                self.definitions.resolve(conversion, fields.get("conversionType"))
            encoded = self.api.encode_event(conversion)
        except Rejected as rejected:
            self.stats.count_read()
            self._reject(stream, record, segment, rejected.problems)
            return
        self.stats.count_read(tuple([t for t, _ in conversion.match_keys]))
        pending = PendingEvent(segment, stream, record, conversion.dedupe_id, encoded)
        self.delivery.add(pending, self.api.batch_key(conversion))

    def event_kind(self, kind: EventKind) -> ResolvedKind:
        """What events converted by a worker have in common, resolved once per block: for
        the DSP API the start of the event up to its definition ID (or why it is rejected)."""
        stream, key, match_key_types, definition_key = kind
        head: bytes | list[Problem] = b""
        if definition_key is not None:
            try:
                head = self._definition_head(definition_key)
            except Rejected as rejected:
                head = rejected.problems
        return ResolvedKind(stream, key, match_key_types, head)

    def process_converted(
        self, lines: list[bytes], results: list[tuple[Any, ...]], kinds: list[ResolvedKind]
    ) -> dict[str, int]:
        """Records a worker process converted (or rejected), read in a row: no STATE came
        between them, so they share a ledger segment. Completes, counts and queues their
        events (or rejects them); returns the records per stream."""
        segment = self.ledger.open_record(len(lines))
        events: list[tuple[tuple[str, str], PendingEvent]] = []
        per_kind = [0] * len(kinds)
        rejected: list[tuple[str, bytes, list[Problem]]] = []
        for line, result in zip(lines, results, strict=True):
            if len(result) == 2:  # noqa: PLR2004 - (stream, problems)
                rejected.append((result[0], line, result[1]))
                continue
            dedupe_id, encoded, index = result
            kind = kinds[index]
            head = kind.head
            if isinstance(head, bytes):
                per_kind[index] += 1
                event = PendingEvent(segment, kind.stream, line, dedupe_id, head + encoded)
                events.append((kind.key, event))
            else:
                rejected.append((kind.stream, line, head))
        per_stream: dict[str, int] = {}
        # Each record is counted as read just before it is rejected or queued, so that a run
        # cut short (a rejects file that cannot be written) still accounts for every record.
        for stream, line, problems in rejected:
            self.stats.count_read()
            per_stream[stream] = per_stream.get(stream, 0) + 1
            self._reject(stream, line, segment, problems)
        for kind, count in zip(kinds, per_kind, strict=True):
            if count:
                self.stats.count_read(kind.match_key_types, count)
                per_stream[kind.stream] = per_stream.get(kind.stream, 0) + count
        if events:
            self.delivery.add_all(events)
        return per_stream

    def reject_unreadable(self, stream: str, record: Any, problem: Problem) -> None:
        """A record that could not even be mapped (it broke its stream's schema)."""
        segment = self.ledger.open_record()
        self.stats.count_read()
        self._reject(stream, record, segment, [problem])

    def on_state(self, state: Any) -> None:
        """A STATE from the tap: emitted once everything before it is settled."""
        self.ledger.add_state(state)

    def finish(self) -> None:
        """End of input: send what is left, wait for every answer, emit the last STATE."""
        self.delivery.flush()
        self.delivery.wait()
        self._close()
        if self.delivery.failure is not None:
            raise self.delivery.failure

    def abort(self, *, flush: bool, reason: str = "the run was stopped before it was sent") -> None:
        """Stop early: deliver what was read (flush) or abandon what is not in flight yet.

        Requests in flight are waited for (their answers settle their records); retry waits
        end at once when abandoning. Every record read ends up accepted, rejected or
        undelivered, so the report's counts add up.
        """
        if self._finished:
            return
        if flush and self.delivery.failure is None:
            self.delivery.flush()
            self.delivery.wait()
        else:
            self.stopping.set()
            self.delivery.wait()
            if self.delivery.failure is not None:
                reason = str(self.delivery.failure)
            for event in self._take_buffered():
                self.undelivered([event], reason)
        # A record whose processing was cut short (a fatal error while resolving its
        # definition, a signal) was opened in the ledger but never counted: count it now.
        for _ in range(self.ledger.records_opened - self.stats.records_read):
            self.stats.count_read()
            self.stats.count_undelivered("", "(the record being read when the run stopped)", reason)
        self._close()

    # Outcomes (worker threads).

    def accepted(self, events: list[PendingEvent]) -> None:
        """Amazon accepted these events."""
        self.stats.count_accepted(len(events))
        self.ledger.settle_all([event.segment for event in events])

    def rejected(self, event: PendingEvent, problems: list[Problem]) -> None:
        """Amazon refused this event."""
        self._reject(event.stream, event.record, event.segment, problems)

    def undelivered(self, events: list[PendingEvent], failure: str) -> None:
        """Neither accepted nor refused: counted, never settled, so no STATE passes them."""
        for event in events:
            self.stats.count_undelivered(event.stream, event.dedupe_id, failure)

    # Internals.

    def _reject(self, stream: str, record: Any, segment: int, problems: list[Problem]) -> None:
        if isinstance(record, bytes):  # the input line of a record a worker converted
            record = record_of_line(record)
        self.rejects.write(stream, record, problems)
        self.stats.count_rejected(problems)
        self.ledger.settle(segment)

    def _build_request(self, key: tuple[str, str], encoded: list[bytes]) -> OutgoingRequest:
        return self.api.build_request(
            key,
            encoded,
            api_url=self.settings.api_url,
            client_id=self._client_id,
            profile_id=self.settings.profile_id,
        )

    def _definition_head(self, key: tuple[Any, ...]) -> bytes:
        """The start of a converted DSP event, up to its definition ID (`with_definition`),
        resolved as `process` resolves it (raises Rejected the same way). Once per event kind
        of a block; the resolver keeps what it looked up or created."""
        assert self.definitions is not None
        advertiser, definition_id, name, conversion_type, source, raw_type = key
        conversion = Conversion(
            event_time="",
            conversion_type=conversion_type,
            name=name,
            country_code="",
            source=source,
            advertiser_id=advertiser,
            dedupe_id="",
            match_keys=[],
            definition_id=definition_id,
        )
        self.definitions.resolve(conversion, raw_type)
        return with_definition(conversion.definition_id, b"")

    def _now_for_checks(self) -> datetime:
        # One clock read per record is cheap enough and keeps long runs honest about age.
        return datetime.now(timezone.utc)

    def _tick(self) -> None:
        self.delivery.flush_if_idle(IDLE_FLUSH_SECONDS)

    def _take_buffered(self) -> list[PendingEvent]:
        with self.delivery._lock:  # noqa: SLF001 - same package, shutdown path only
            batches = self.delivery._batcher.take_all()  # noqa: SLF001
        return [event for batch in batches for event in batch.events]

    def _close(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._ticker.stop()
        self.delivery.close()
        self.rejects.close()
        if self._dry_run_file is not None:
            self._dry_run_file.close()
        if self.settings.report_path:
            write_report(
                self.settings.report_path,
                self.stats.report(api=self.api.name, dry_run=self.settings.dry_run),
            )
        logger.info("%s", self.stats.summary_line(dry_run=self.settings.dry_run))
        if self.stats.records_undelivered:
            shown = ", ".join(u["dedupe_id"] for u in self.stats.undelivered[:10])
            logger.error(
                "%d records were not delivered (dedupe IDs: %s%s); re-run from the last "
                "STATE to resend them",
                self.stats.records_undelivered,
                shown,
                ", ..." if self.stats.records_undelivered > 10 else "",  # noqa: PLR2004
            )


__all__ = ["Run", "UserError"]
