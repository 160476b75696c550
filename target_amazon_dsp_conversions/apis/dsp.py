"""DSP Conversions API: `POST /accounts/{advertiserId}/dsp/conversionDefinitions/eventData`, and
its user deletion (`.../conversionDefinitions/delete`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from target_amazon_dsp_conversions.amazon_fields import (
    DSP_EVENT_MEDIA_TYPE,
    DSP_USER_DELETION_MEDIA_TYPE,
)
from target_amazon_dsp_conversions.apis import base
from target_amazon_dsp_conversions.apis.base import (
    accepting_all,
    http_problem,
    item_results,
    join_events,
    purchase_fields_sent,
)
from target_amazon_dsp_conversions.apis.dsp_check import check_advertiser
from target_amazon_dsp_conversions.apis.dsp_definitions import (
    DefinitionCalls,
    DefinitionResolver,
    dsp_headers,
)
from target_amazon_dsp_conversions.apis.rules import DSP_RULES
from target_amazon_dsp_conversions.conversion import Conversion
from target_amazon_dsp_conversions.errors import Problem
from target_amazon_dsp_conversions.http_types import Call

_TAIL = b"}"
FIRST_INDEX = 1  # of a 207's items: "The index of the object in the request, starting from 1."
_new = tuple.__new__


class DspUserDeletion:
    """`dspAmazonDeletionRequest`: the events Amazon holds of people who opted out are deleted,
    each person named by all their match keys. Events sent after the request are kept, so the
    caller stops sending theirs (Amazon's summary of the call)."""

    name = Call.USER_DELETION.value
    max_items_per_request = 500  # BatchDeleteUserEventsRequestV1.deletionRequests maxItems
    max_match_keys_per_item = 9  # EventDeletionRequestV1.matchKeys maxItems

    def encode_item(self, match_keys: Sequence[tuple[str, str]]) -> bytes:
        """`EventDeletionRequestV1`: `{"matchKeys": [...]}`, the keys as given."""
        if not 1 <= len(match_keys) <= self.max_match_keys_per_item:
            raise ValueError(
                f"a user deletion names a person by 1 to {self.max_match_keys_per_item} match "
                f"keys, not {len(match_keys)}"
            )
        return b'{"matchKeys":[' + _match_keys_json(match_keys).encode() + b"]}"

    def build_request(
        self, key: base.BatchKey, encoded_items: list[bytes], endpoint: base.Endpoint
    ) -> base.OutgoingRequest:
        """`BatchDeleteUserEventsRequestV1` with the headers of every DSP call."""
        advertiser_id, _ = key
        return base.OutgoingRequest(
            "POST",
            f"{endpoint.api_url}/accounts/{advertiser_id}/dsp/conversionDefinitions/delete",
            dsp_headers(endpoint, advertiser_id, DSP_USER_DELETION_MEDIA_TYPE),
            join_events(b'{"deletionRequests":[', encoded_items, b"]}"),
            len(encoded_items),
            Call.USER_DELETION,
        )

    def read_multi_status(self, body: Any, count: int) -> base.ItemResults:
        """`BatchDeleteUserEventsResponseV1`: `success[]` and `error[]`, indexed from 1."""
        return item_results(body, FIRST_INDEX, count, _item_problems)

    def read_error(self, status: int, body: Any) -> Problem:
        """`DspErrorV1`, as for eventData."""
        return _read_error(status, body)

    def dry_run_answer(self, request: base.OutgoingRequest) -> base.Response:
        """Every person deleted."""
        return accepting_all(request.item_count, FIRST_INDEX)


class DspApi:
    """Amazon DSP Conversions API (`dspAmazonIngestConversionData`)."""

    name = "dsp"
    summary = "DSP Conversions API (100 events per request, one source)"
    rules = DSP_RULES
    operations: Mapping[str, base.BatchOperation] = {base.USER_DELETION: DspUserDeletion()}

    def __init__(self, *, region: str = "NA") -> None:
        """The same API in every region."""
        del region

    def check_settings(self, settings: base.ApiSettings) -> None:
        """Every setting the DSP API needs is checked by its kind."""

    def check_account(self, check: base.AccountCheck) -> None:
        """The advertiser's conversion definitions, and with `probe_upload` the upload
        permission (`dsp_check.py`)."""
        check_advertiser(check, self.build_request)

    def encode(self, conversion: Conversion) -> base.EncodedEvent:
        """`ConversionEventDataV1` after its `conversionDefinitionId`, which `DefinitionKinds`
        adds once the definition is resolved (that may take a lookup through the API).

        Written directly rather than through a dict: a third of the cost. Key types, the
        timestamp (our own format), the country and the currency (checked against code lists)
        hold nothing JSON escapes; user text and match keys are escaped.
        """
        text = encode_basestring
        c = conversion
        keys = _match_keys_json(c.match_keys)
        body = (
            f',"name":{text(c.name)},"timestamp":"{c.event_time}"'
            f',"countryCode":"{c.country_code}","matchKeys":[{keys}]'
            f',"clientDedupeId":{text(c.dedupe_id)}'
        )
        if c.value is not None:
            body += f',"value":{float(c.value)!r}'
        if c.limited_data_use:
            body += ',"dataProcessingOptions":"LIMITED_DATA_USE"'
        # Amazon takes currencyCode and unitsSold for purchases only ("only applicable for
        # OFF_AMAZON_PURCHASES"); for a record without a type its definition's type decides.
        purchase = f',"currencyCode":"{c.currency}"' if c.currency is not None else ""
        if c.units_sold is not None:
            purchase += f',"unitsSold":{c.units_sold!r}'
        sent = purchase_fields_sent(c.conversion_type)
        if sent is not None:
            body, purchase = (body + purchase if sent else body), ""
        # tuple.__new__: a NamedTuple's own constructor is Python code (per record here).
        definition = _new(
            base.DefinitionQuery,
            (
                c.advertiser_id,
                c.source,
                c.name,
                c.conversion_type,
                c.definition_id,
            ),
        )
        return _new(
            base.EncodedEvent,
            ((c.advertiser_id, c.source), body.encode(), purchase.encode(), definition),
        )

    def kind_resolver(
        self, settings: base.ApiSettings, lookups: base.Transport | None
    ) -> DefinitionKinds:
        """Events are completed with their definition, resolved through `DefinitionResolver`."""
        calls = None if lookups is None else DefinitionCalls(lookups.send, settings.endpoint())
        return DefinitionKinds(
            DefinitionResolver(
                configured=settings.conversion_definitions,
                create_missing=settings.create_missing_definitions,
                calls=calls,
            )
        )

    def build_request(
        self, key: base.BatchKey, encoded_events: list[bytes], endpoint: base.Endpoint
    ) -> base.OutgoingRequest:
        """`BatchImportConversionEventDataRequestV1` with the headers Amazon's guides send."""
        advertiser_id, source = key
        body = join_events(
            b'{"source":"' + source.encode() + b'","eventData":[', encoded_events, b"]}"
        )
        return base.OutgoingRequest(
            "POST",
            f"{endpoint.api_url}/accounts/{advertiser_id}/dsp/conversionDefinitions/eventData",
            dsp_headers(endpoint, advertiser_id, DSP_EVENT_MEDIA_TYPE),
            body,
            len(encoded_events),
        )

    def read_multi_status(self, body: Any, count: int) -> base.ItemResults:
        """`BatchImportConversionEventDataResponseV1`: `success[]` and `error[]`, indexed
        from 1."""
        return item_results(body, FIRST_INDEX, count, _item_problems)

    def dry_run_answer(self, request: base.OutgoingRequest) -> base.Response:
        """Every event accepted."""
        return accepting_all(request.item_count, FIRST_INDEX)

    def read_error(self, status: int, body: Any) -> Problem:
        """`DspErrorV1`: `{message, requestId, errors[]}`."""
        return _read_error(status, body)


def _match_keys_json(match_keys: Sequence[tuple[str, str]]) -> str:
    """`ConversionMatchKeyV1` objects, comma-separated: a key's type is Amazon's enum (nothing
    to escape), its value is escaped."""
    text = encode_basestring
    return ",".join([f'{{"type":"{t}","values":[{text(v)}]}}' for t, v in match_keys])


def _read_error(status: int, body: Any) -> Problem:
    """`DspErrorV1`: `{message, requestId, errors[]}`."""
    if not isinstance(body, dict):
        return http_problem(status, None, None)
    details = [str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, dict)]
    # Amazon often repeats its message in errors[]: each text once.
    texts = dict.fromkeys(t for t in [str(body.get("message") or ""), *details] if t)
    return http_problem(status, None, "; ".join(texts) or None)


def _item_problems(item: dict[str, Any]) -> list[Problem]:
    """`ConversionEventDataErrorResponseV1` (and `ConversionDeletionRequestErrorResponseV1`, the
    same shape): a code and message, and sub-errors per field."""
    code = str(item.get("code") or "AMAZON_REJECTED")
    message = str(item.get("message") or code)
    sub_errors = [e for e in item.get("errors") or [] if isinstance(e, dict)]
    return [
        Problem(
            str(e.get("errorType") or code),
            # Amazon may repeat the item's message in its sub-error: said once.
            f"{message}: {e['message']}"
            if e.get("message") not in (None, "", message)
            else message,
            e.get("fieldName"),
        )
        for e in sub_errors
    ] or [Problem(code, message, None)]


class DefinitionKinds:
    """Completes DSP events: their definition ID first, and whether purchase fields go along
    now that the definition's type is known."""

    def __init__(self, definitions: DefinitionResolver) -> None:
        """Resolve through `definitions`."""
        self._definitions = definitions

    def resolve(self, definition: base.DefinitionQuery | None) -> base.ResolvedKind:
        """The JSON that goes before the event's body; raises Rejected as the lookup does."""
        assert definition is not None  # DspApi.encode always asks for one
        found = self._definitions.lookup(definition)
        head = b'{"conversionDefinitionId":' + encode_basestring(found.id).encode()
        return base.ResolvedKind(
            head, _TAIL, purchase_fields_sent(found.conversion_type) is not False
        )
