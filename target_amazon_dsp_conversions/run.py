"""One run: converted records are settled in input order, batched, delivered, and accounted for.

Owns the objects of a run and settles every record exactly once: accepted, rejected (rejects
file), or undelivered (the run fails and the next run resends it from the last STATE).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from target_amazon_dsp_conversions.amazon_fields import MAX_FUTURE_SKEW
from target_amazon_dsp_conversions.apis import api_for
from target_amazon_dsp_conversions.apis.base import (
    USER_DELETION,
    BatchKey,
    BatchOperation,
    ResolvedKind,
    Transport,
)
from target_amazon_dsp_conversions.auth import AccessTokens
from target_amazon_dsp_conversions.batching import PendingEvent
from target_amazon_dsp_conversions.converter import (
    BlockResults,
    Converter,
    DeletedAtSource,
    EventKind,
    OptedOut,
    Refused,
    Stream,
)
from target_amazon_dsp_conversions.delivery import Delivery, Outcomes
from target_amazon_dsp_conversions.errors import (
    DeliveryError,
    Problem,
    Rejected,
    SetupError,
    UserError,
)
from target_amazon_dsp_conversions.files import OutputError, OutputFile, check_distinct
from target_amazon_dsp_conversions.http_client import DryRunTransport, HttpTransport
from target_amazon_dsp_conversions.http_session import Sessions
from target_amazon_dsp_conversions.journal import Journal
from target_amazon_dsp_conversions.ledger import StateLedger
from target_amazon_dsp_conversions.rejects import RejectsFile, record_line, record_of_line
from target_amazon_dsp_conversions.report import ProgressTicker, RunStats, report_json
from target_amazon_dsp_conversions.settings import Settings
from target_amazon_dsp_conversions.suppression import SuppressionList
from target_amazon_dsp_conversions.threads import stop_signals_blocked

logger = logging.getLogger("target-amazon-dsp-conversions")

PROGRESS_INTERVAL_SECONDS = 5.0
# A partial batch waits at most this long after its first event before it is sent.
BATCH_WAIT_SECONDS = 2.0
# Resolved event kinds remembered (a handful per run; bounded for odd inputs).
_MAX_RESOLVED_KINDS = 4096
# After a stop signal, requests in flight have this long to be answered before their
# connections are cut (their records stay undelivered: the next run sends them).
STOP_GRACE_SECONDS = 2.0


class Run(Outcomes):
    """Everything one run of the target needs; created at start-up, finished at end of input."""

    def __init__(
        self,
        settings: Settings,
        emit_state: Callable[[Any], None],
        converter: Converter | None = None,
        *,
        batch_size_rows: int | None = None,
    ) -> None:
        """Build the run's parts and create its output files (a file that cannot be created
        stops the run here, before input is read); no network traffic yet. `converter`: the one
        the start-up check built (`startup_checks.CheckedConfig`), else one is built here.
        `batch_size_rows` (the SDK's setting) caps events per request below the API's own
        limit."""
        self.settings = settings
        self.api = api_for(settings.api, region=settings.region)
        self.converter = converter or Converter(settings.conversion())
        self.stats = RunStats()
        self.stopping = threading.Event()
        self.sessions = Sessions()
        self._dry_run_file: DryRunTransport | None = None
        self._http: HttpTransport | None = None
        self.journal: Journal | None = None
        self.suppression: SuppressionList | None = None
        self._report_file: OutputFile | None = None
        self._open_outputs()
        # A dry run writes no STATE: an orchestrator would store it and move its bookmark, and
        # the real run would skip the records the dry run only wrote to its file.
        self.ledger = StateLedger(_no_state if settings.dry_run else emit_state)
        transport: Transport
        if self._dry_run_file is not None:
            transport = self._dry_run_file
        else:
            tokens = AccessTokens.for_settings(
                settings,
                max_retries=settings.max_retries,
                stopping=self.stopping,
                sessions=self.sessions,
            )
            transport = self._http = HttpTransport(
                tokens=tokens,
                counters=self.stats,
                timeout=settings.request_timeout,
                max_retries=settings.max_retries,
                throttle_timeout=settings.throttle_timeout,
                stopping=self.stopping,
                sessions=self.sessions,
            )
        self._kinds = self.api.kind_resolver(settings, None if settings.dry_run else transport)
        self._resolved: dict[EventKind, ResolvedKind | tuple[Problem, ...]] = {}
        self._key_properties: dict[str, tuple[str, ...]] = {}  # per stream, the latest
        self.delivery = Delivery(
            api=self.api,
            transport=transport,
            endpoint=settings.endpoint(),
            outcomes=self,
            max_in_flight=settings.max_concurrent_requests,
            max_events=min(
                batch_size_rows or self.api.rules.max_events_per_request,
                self.api.rules.max_events_per_request,
            ),
        )
        # Opt-outs: Amazon's user-deletion call where the API has one; else suppression only.
        self._deletion: BatchOperation | None = None
        self.deletions: Delivery | None = None
        if settings.opt_out_streams:
            self._deletion = self.api.operations.get(USER_DELETION)
            if self._deletion is None:
                logger.warning("%s", _SUPPRESS_ONLY.format(api=self.api.name))
            else:
                self.deletions = Delivery(
                    api=self._deletion,
                    transport=transport,
                    endpoint=settings.endpoint(),
                    outcomes=_OptOutOutcomes(self),
                    max_in_flight=min(4, settings.max_concurrent_requests),
                    max_events=self._deletion.max_items_per_request,
                    before_send=self._conversions_first,
                )
        self._ticker = ProgressTicker(self._progress, PROGRESS_INTERVAL_SECONDS, self._tick)
        self._started = False
        self._finished = False

    def start(self) -> None:
        """Input begins: progress lines, and partial batches sent once they are old enough.
        (Not at construction: a target made and never run leaves no thread behind.)"""
        if not self._started and not self._finished:
            self._started = True
            self._ticker.start()

    # Input side (main thread).

    def process(self, stream: Stream, record: dict[str, Any]) -> None:
        """A record the SDK handed over (its stream has stream maps): converted and settled
        on its own."""
        line = record_line(record)  # before `convert`, which may change the record
        result = self.converter.convert(stream, record, datetime.now(timezone.utc))
        self.settle([line], BlockResults.of([result]))

    def settle(self, lines: Sequence[bytes], results: BlockResults) -> dict[str, int]:
        """Records read in a row (no STATE came between them) and their results, in input
        order: counted, then rejected or queued for delivery. Returns the records per stream.

        `lines` are what the records came from, kept for the rejects file only."""
        segment = self.ledger.open_record(len(lines))
        queued: list[tuple[BatchKey, PendingEvent]] = []
        deletions: list[tuple[BatchKey, PendingEvent]] = []
        per_kind: dict[EventKind, int] = {}
        per_stream: dict[str, int] = {}
        refused: list[tuple[str, bytes, Sequence[Problem], tuple[str, ...], str | None]] = []
        suppressed = self._screen(results)
        streak_kind: EventKind | None = None  # the kind of the records just before, resolved
        streak_resolved: ResolvedKind | tuple[Problem, ...] = ()
        streak = 0  # records of it queued since `per_kind` last counted them
        for index, (line, kind, dedupe_id, body, purchase_fields) in enumerate(
            zip(
                lines,
                results.outcomes,
                results.dedupe_ids,
                results.bodies,
                results.purchase_fields,
                strict=True,
            )
        ):
            if suppressed is not None and suppressed[index]:  # a conversion: `kind` is its kind
                stream = kind.stream  # type: ignore[union-attr]
                self._settled_unsent(stream, segment, per_stream, self.stats.count_suppressed)
                continue
            if type(kind) is DeletedAtSource:
                self._settled_unsent(kind.stream, segment, per_stream, self.stats.count_deleted)
                continue
            if type(kind) is OptedOut:
                deletion = self._opt_out(kind, line, segment, per_stream)
                if deletion is not None:
                    deletions.append(deletion)
                continue
            if type(kind) is Refused:
                if _no_advertiser(kind.problems):
                    failure = SetupError(_NO_ADVERTISER.format(stream=kind.stream))
                    self._none_delivered(results, str(failure))
                    raise failure
                refused.append(
                    (kind.stream, line, kind.problems, kind.key_properties, kind.dedupe_id)
                )
                continue
            assert type(kind) is EventKind
            # Records of a kind come in runs, and a block's records share each kind object:
            # a kind is looked up (a hash of its nested tuples) once per run, not per record.
            if kind is not streak_kind:
                if streak and streak_kind is not None:
                    per_kind[streak_kind] = per_kind.get(streak_kind, 0) + streak
                try:
                    streak_resolved = self._resolved.get(kind) or self._resolve(kind)
                except UserError as exc:  # the run stops (a refused sign-in, Amazon unreachable)
                    self._none_delivered(results, str(exc))
                    self._undelivered_items(deletions, str(exc))
                    raise
                streak_kind, streak = kind, 0
            resolved = streak_resolved
            if not isinstance(resolved, ResolvedKind):
                refused.append((kind.stream, line, resolved, kind.key_properties, dedupe_id))
                continue
            streak += 1
            event = resolved.complete(body, purchase_fields)
            queued.append(
                (kind.batch_key, PendingEvent(segment, kind.stream, line, dedupe_id, event))
            )
        if streak and streak_kind is not None:
            per_kind[streak_kind] = per_kind.get(streak_kind, 0) + streak
        # Each record is counted as read just before it is rejected or queued, so that a run
        # cut short (a rejects file that cannot be written) still accounts for every record.
        for done, (stream, line, problems, key_properties, refused_id) in enumerate(refused):
            self.stats.count_read()
            per_stream[stream] = per_stream.get(stream, 0) + 1
            try:
                self._reject(stream, line, segment, problems, key_properties, refused_id)
            except OutputError as exc:
                self._rest_undelivered(refused[done + 1 :], per_kind, queued, str(exc))
                self._undelivered_items(deletions, str(exc))
                raise
        for kind, count in per_kind.items():
            self.stats.count_read(kind.match_key_types, count)
            if kind.dropped_key_types:
                self.stats.count_dropped_keys(kind.dropped_key_types, count)
            if kind.notices:
                self.stats.notice(kind.notices)
            per_stream[kind.stream] = per_stream.get(kind.stream, 0) + count
        if queued and self.journal is not None and self.journal.has_earlier_entries:
            queued = self._not_acknowledged_before(queued, segment)
        if queued:
            self.delivery.add_all(queued)
        if deletions:
            self._delete(deletions, segment)
        return per_stream

    def on_state(self, state: Any) -> None:
        """A STATE from the tap: emitted once everything before it is settled."""
        self.ledger.add_state(state)

    def stop(self, *, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop sending (a signal, a failure): nothing new goes out, waits end at once, and
        requests still in flight after `grace` seconds are cut off unanswered."""
        self.stopping.set()
        if grace <= 0:
            self.sessions.cut_all()
        else:
            timer = threading.Timer(grace, self.sessions.cut_all)
            timer.daemon = True
            with stop_signals_blocked():
                timer.start()

    def finish(self) -> None:
        """End of input: send what is left, wait for every answer, emit the last STATE."""
        self.delivery.flush()
        self.delivery.wait()
        if self.deletions is not None:
            self.deletions.flush()
            self.deletions.wait()
        self._close()
        for delivery in self._deliveries():
            if delivery.failure is not None:
                raise delivery.failure
        left_out = [
            f"{count} {what}{'s' if count != 1 else ''}"
            for count, what in (
                (self.delivery.not_acknowledged, "event"),
                (self.deletions.not_acknowledged if self.deletions else 0, "user deletion"),
            )
            if count
        ]
        if left_out:
            raise DeliveryError(
                f"Amazon's answers listed {' and '.join(left_out)} neither as accepted nor as "
                "refused"
            )

    def abort(
        self,
        *,
        flush: bool,
        failure: str | None = None,
        reason: str = "the run was stopped before it was sent",
    ) -> None:
        """Stop early: deliver what was read (flush) or abandon what is not in flight yet;
        `failure` is what stopped the run (for the summary line and the report).

        Requests in flight are waited for (their answers settle their records); retry waits
        end at once when abandoning. Every record read ends up accepted, rejected or
        undelivered, so the report's counts add up.
        """
        if self._finished:
            return
        if failure is not None:
            self.stats.fail(failure)
        deliveries = self._deliveries()
        if flush and all(delivery.failure is None for delivery in deliveries):
            for delivery in deliveries:
                delivery.flush()
                delivery.wait()
        else:
            self.stop()
            for delivery in deliveries:
                delivery.wait()
                if delivery.failure is not None:
                    reason = str(delivery.failure)
            for delivery in deliveries:
                for event in delivery.take_unsent():
                    self.undelivered([event], reason)
        # A record whose settling was cut short (a fatal error while resolving its
        # definition, a signal) was opened in the ledger but never counted: count it now.
        for _ in range(self.ledger.records_opened - self.stats.records_read):
            self.stats.count_read()
            self.stats.count_undelivered("", "(the record being read when the run stopped)", reason)
        self._close()

    # Outcomes (upload threads).

    def sent(self, count: int) -> None:
        """A request with `count` events goes out."""
        self.stats.count_sent(count)

    def accepted(self, key: BatchKey, events: list[PendingEvent]) -> None:
        """Amazon accepted these events: journaled (durably) before they count. When the
        journal cannot be written they still count (Amazon has them; a STATE past them saves
        a resend) and the run stops."""
        failure = None
        if self.journal is not None:
            try:
                self.journal.acknowledged(key[0], [(e.dedupe_id, e.encoded) for e in events])
            except OutputError as exc:
                failure = exc
        self.stats.count_accepted(len(events))
        self.ledger.settle_all([event.segment for event in events])
        if failure is not None:
            raise failure

    def rejected(self, event: PendingEvent, problems: list[Problem]) -> None:
        """Amazon refused this event."""
        keys = self._key_properties.get(event.stream, ())
        self._reject(event.stream, event.line, event.segment, problems, keys, event.dedupe_id)

    def undelivered(self, events: list[PendingEvent], failure: str) -> None:
        """Neither accepted nor refused: counted, never settled, so no STATE passes them."""
        for event in events:
            self.stats.count_undelivered(event.stream, event.dedupe_id, failure)

    # Internals.

    def _open_outputs(self) -> None:
        """Every file the run writes, created and locked now (`files.py`): a path that cannot
        be written is one line naming its setting, before any input is read."""
        settings = self.settings
        paths = {"rejects_path": settings.rejects_path}
        if settings.report_path:
            paths["report_path"] = settings.report_path
        # A dry run acknowledges nothing, so it keeps no journal.
        paths["dry_run_path" if settings.dry_run else "journal_path"] = (
            settings.dry_run_path if settings.dry_run else settings.journal_path
        )
        screens_people = settings.screens_people()
        if screens_people:
            paths["suppression_list_path"] = settings.suppression_list_path
        check_distinct(paths)
        self.rejects = RejectsFile(settings.rejects_path, dry_run=settings.dry_run)
        self._report_written = False
        try:
            if screens_people:
                self.suppression = SuppressionList(
                    settings.suppression_list_path, dry_run=settings.dry_run
                )
            if settings.report_path:
                self._report_file = OutputFile("report_path", settings.report_path)
            if settings.dry_run:
                self._dry_run_file = DryRunTransport(
                    settings.dry_run_path, self.stats, self.api.dry_run_answer
                )
            else:
                self.journal = Journal(
                    settings.journal_path,
                    api=settings.api,
                    api_url=settings.api_url,
                    keep=self.api.rules.max_event_age + MAX_FUTURE_SKEW,
                )
        except BaseException:
            self._close_outputs()
            raise

    def _files_written(self) -> list[str]:
        """Where this run's records and requests went, for the line before the summary."""
        settings = self.settings
        files = [
            (self.stats.records_rejected > 0, "rejects", settings.rejects_path),
            (settings.dry_run, "requests of the dry run", settings.dry_run_path),
            (self._report_written, "run report", settings.report_path),
        ]
        return [f"{what} {os.path.abspath(path)}" for wrote, what, path in files if wrote and path]

    def _close_outputs(self) -> None:
        for output in (self.journal, self.suppression, self.rejects, self._dry_run_file):
            if output is not None:
                output.close()
        if self._report_file is not None:
            self._report_file.close(remove_if_empty=True)

    def _deliveries(self) -> list[Delivery]:
        return [self.delivery] if self.deletions is None else [self.delivery, self.deletions]

    def _screen(self, results: BlockResults) -> list[bool] | None:
        """Which records are conversions of people who opted out (in this run before them, or
        in an earlier one); the opt-outs among them are on the suppression list, durably, on
        return. None: no suppression list."""
        if self.suppression is None:
            return None
        rows = [
            (True, outcome.person) if type(outcome) is OptedOut else (False, person)
            for outcome, person in zip(results.outcomes, results.people, strict=True)
        ]
        suppressed = self.suppression.screen(rows)
        self.suppression.commit()
        return suppressed

    def _settled_unsent(
        self, stream: str, segment: int, per_stream: dict[str, int], count: Callable[[], None]
    ) -> None:
        """A record that is settled without being sent: suppressed, or deleted at the source."""
        self.stats.count_read()
        count()
        per_stream[stream] = per_stream.get(stream, 0) + 1
        self.ledger.settle(segment)

    def _opt_out(
        self, person: OptedOut, line: bytes, segment: int, per_stream: dict[str, int]
    ) -> tuple[BatchKey, PendingEvent] | None:
        """A person who opted out (on the suppression list by now): their deletion to send, or
        None where the API has no deletion call (settled here)."""
        self.stats.count_read()
        per_stream[person.stream] = per_stream.get(person.stream, 0) + 1
        if self._deletion is None:  # on the suppression list: all this API allows
            self.stats.count_accepted()
            self.stats.count_opted_out()
            self.ledger.settle(segment)
            return None
        self._key_properties[person.stream] = person.key_properties  # for Amazon's rejects
        item = self._deletion.encode_item(person.match_keys)
        # Its journal key: the person (a rerun knows Amazon has their deletion).
        person_id = "user-deletion:" + hashlib.sha256(item).hexdigest()
        pending = PendingEvent(segment, person.stream, line, person_id, item)
        return (person.advertiser_id, ""), pending

    def _delete(self, deletions: list[tuple[BatchKey, PendingEvent]], segment: int) -> None:
        """Queue deletions of people who opted out; those Amazon acknowledged in an earlier run
        (the journal) are settled without a request."""
        assert self.deletions is not None
        before = len(deletions)
        if self.journal is not None and self.journal.has_earlier_entries:
            deletions = self._not_acknowledged_before(deletions, segment)
        self.stats.count_opted_out(before - len(deletions))
        if deletions:
            self.deletions.add_all(deletions)

    def _conversions_first(self) -> None:
        """Before a deletion goes out: the conversions read before it are sent and answered,
        as Amazon deletes only the events it processed before the deletion."""
        self.delivery.flush()
        self.delivery.wait(new_ones=False)

    def _undelivered_items(self, items: list[tuple[BatchKey, PendingEvent]], failure: str) -> None:
        self.undelivered([event for _, event in items], failure)

    def _not_acknowledged_before(
        self, queued: list[tuple[BatchKey, PendingEvent]], segment: int
    ) -> list[tuple[BatchKey, PendingEvent]]:
        """The events of `queued` that the journal does not show acknowledged in an earlier
        run by the same destination; those it shows are settled here, not sent again."""
        assert self.journal is not None
        per_account: dict[str, list[int]] = {}
        for index, (key, _) in enumerate(queued):
            per_account.setdefault(key[0], []).append(index)
        known: set[int] = set()
        for account, indexes in per_account.items():
            events = [(queued[i][1].dedupe_id, queued[i][1].encoded) for i in indexes]
            found = self.journal.already_acknowledged(account, events)
            known.update(i for i, acknowledged in zip(indexes, found, strict=True) if acknowledged)
        if not known:
            return queued
        self.stats.count_already_acknowledged(len(known))
        self.ledger.settle_all([segment] * len(known))
        return [item for index, item in enumerate(queued) if index not in known]

    def _rest_undelivered(
        self,
        refused: Sequence[tuple[str, bytes, Sequence[Problem], tuple[str, ...], str | None]],
        per_kind: dict[EventKind, int],
        queued: list[tuple[BatchKey, PendingEvent]],
        failure: str,
    ) -> None:
        """Records of a `settle` that a failure cut short: read, and not delivered."""
        for stream, _, _, _, dedupe_id in refused:
            self.stats.count_read()
            self.stats.count_undelivered(stream, dedupe_id or "", failure)
        for kind, count in per_kind.items():
            self.stats.count_read(kind.match_key_types, count)
        for _, event in queued:
            self.stats.count_undelivered(event.stream, event.dedupe_id, failure)

    def _resolve(self, kind: EventKind) -> ResolvedKind | tuple[Problem, ...]:
        """How events of this kind are completed, or why they cannot be sent; once per kind."""
        self._key_properties[kind.stream] = kind.key_properties  # for Amazon's rejects
        try:
            resolved: ResolvedKind | tuple[Problem, ...] = self._kinds.resolve(kind.definition)
        except Rejected as rejected:
            resolved = tuple(rejected.problems)
        if len(self._resolved) >= _MAX_RESOLVED_KINDS:
            self._resolved.clear()
        self._resolved[kind] = resolved
        return resolved

    def _none_delivered(self, results: BlockResults, failure: str) -> None:
        """Records read in a row whose settling a failure cut short: all undelivered."""
        for outcome, dedupe_id in zip(results.outcomes, results.dedupe_ids, strict=True):
            self.stats.count_read()
            if type(outcome) is Refused:
                self.stats.count_undelivered(outcome.stream, outcome.dedupe_id or "", failure)
            elif outcome is not None:
                self.stats.count_undelivered(outcome.stream, dedupe_id, failure)

    def _reject(
        self,
        stream: str,
        line: bytes,
        segment: int,
        problems: Sequence[Problem],
        key_properties: tuple[str, ...],
        dedupe_id: str | None,
    ) -> None:
        """Written to the rejects file, then settled; a record whose line cannot be written is
        not settled (no STATE passes it), and the run stops."""
        record, origin = record_of_line(line)
        try:
            self.rejects.write(
                stream,
                record,
                problems,
                key_properties=key_properties,
                dedupe_id=dedupe_id,
                origin=origin,
            )
        except OutputError as exc:
            self.stats.count_undelivered(stream, dedupe_id or "", str(exc))
            self.delivery.fail(exc)
            raise
        self.stats.count_rejected(problems)
        self.ledger.settle(segment)

    def _tick(self) -> None:
        for delivery in self._deliveries():
            delivery.flush_older_than(BATCH_WAIT_SECONDS)

    def _progress(self) -> str:
        line = self.stats.progress_line(dry_run=self.settings.dry_run)
        throttled = self._http.throttled_accounts() if self._http is not None else {}
        for account, rate in throttled.items():
            line += f"; Amazon throttles account {account}: {rate:.1f} requests/s allowed"
        return line

    def _close(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._ticker.stop()
        for delivery in self._deliveries():
            delivery.close()
        if self._report_file is not None:
            report = self.stats.report(api=self.api.name, dry_run=self.settings.dry_run)
            try:
                self._report_file.replace(report_json(report))
            except OutputError as exc:
                self.stats.fail(str(exc))
                self.delivery.fail(exc)
                logger.error("%s", exc)
            else:
                self._report_written = True
        self._close_outputs()
        written = self._files_written()
        if written:
            logger.info("Files: %s", "; ".join(written))
        summary = self.stats.summary_line(dry_run=self.settings.dry_run)
        if self.stats.failure is None and not self.stats.records_undelivered:
            logger.info("%s", summary)
        else:
            # At error level, as the undelivered records below: an operator who filters a
            # scheduler's log for errors sees why the run failed, not only that it did.
            logger.error("%s", summary)
            if self.stats.failure is not None:
                logger.error("Why the run failed: %s", self.stats.failure)
        if self.stats.records_undelivered:
            shown = ", ".join(u["dedupe_id"] for u in self.stats.undelivered[:10])
            undelivered = self.stats.records_undelivered
            logger.error(
                "%d %s not delivered (dedupe IDs: %s%s); re-run from the last STATE to resend them",
                undelivered,
                "record was" if undelivered == 1 else "records were",
                shown,
                ", ..." if undelivered > 10 else "",  # noqa: PLR2004
            )


_SUPPRESS_ONLY = (
    "opt_out_streams: Amazon documents no call to delete a person's events for api {api}, so "
    "people who opted out are only suppressed (no later conversion of theirs is sent); ask "
    "Amazon (your account team, or Amazon Ads support) to delete what was already sent"
)


class _OptOutOutcomes(Outcomes):
    """Where the deletion call's answers go: settled as the run settles events, and counted as
    people whose opt-out Amazon acknowledged."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def sent(self, count: int) -> None:
        """A deletion request for `count` people goes out."""
        self._run.sent(count)

    def accepted(self, key: BatchKey, events: list[PendingEvent]) -> None:
        """Amazon acknowledged these deletions (journaled, as events are)."""
        self._run.stats.count_opted_out(len(events))
        self._run.accepted(key, events)

    def rejected(self, event: PendingEvent, problems: list[Problem]) -> None:
        """Amazon refused this person's deletion."""
        self._run.rejected(event, problems)

    def undelivered(self, events: list[PendingEvent], failure: str) -> None:
        """Deletions neither acknowledged nor refused: the next run sends them."""
        self._run.undelivered(events, failure)


_NO_ADVERTISER = (
    "a record of stream '{stream}' names no advertiser and the advertiser_id setting is not "
    "set: set advertiser_id (the advertiser of records without one), or map advertiserId to "
    "the column that holds it"
)


def _no_advertiser(problems: Sequence[Problem]) -> bool:
    """The record has no advertiser, nor do `defaults` or `advertiser_id`: the set-up's fault
    (the advertiser is what all records of a request share), not the record's."""
    return any(p.code == "MISSING_FIELD" and p.field == "advertiserId" for p in problems)


def _no_state(_state: Any) -> None:
    """A dry run's STATE: not written (see `Run.__init__`)."""
