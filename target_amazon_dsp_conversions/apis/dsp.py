"""DSP Conversions API: `POST /accounts/{advertiserId}/dsp/conversionDefinitions/eventData`."""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

from target_amazon_dsp_conversions.amazon_fields import (
    DSP_CONVERSION_TYPES,
    DSP_CURRENCIES,
    DSP_EVENT_MEDIA_TYPE,
    DSP_MAX_EVENT_AGE,
    DSP_MAX_EVENTS_PER_REQUEST,
    DSP_MAX_MATCH_KEYS,
    MAX_UNITS_SOLD_DSP,
)
from target_amazon_dsp_conversions.apis.base import (
    ItemResults,
    OutgoingRequest,
    error_items,
    http_problem,
    join_events,
)
from target_amazon_dsp_conversions.conversion import ApiRules, Conversion
from target_amazon_dsp_conversions.errors import Problem

RULES = ApiRules(
    api="dsp",
    max_event_age=DSP_MAX_EVENT_AGE,
    currencies=DSP_CURRENCIES,
    conversion_types=DSP_CONVERSION_TYPES,
    max_match_keys=DSP_MAX_MATCH_KEYS,
    max_units_sold=MAX_UNITS_SOLD_DSP,
)


def with_definition(definition_id: str | None, event_fields: bytes) -> bytes:
    """The encoded event: its definition ID first, then the rest (`encode_event_fields`)."""
    head = "null" if definition_id is None else encode_basestring(definition_id)
    return b'{"conversionDefinitionId":' + head.encode() + event_fields


class DspApi:
    """Amazon DSP Conversions API (`dspAmazonIngestConversionData`)."""

    name = "dsp"
    rules = RULES
    max_events_per_request = DSP_MAX_EVENTS_PER_REQUEST

    def batch_key(self, conversion: Conversion) -> tuple[str, str]:
        """One advertiser (path) and one source (body) per request."""
        return (conversion.advertiser_id, conversion.source)

    def event_payload(self, conversion: Conversion) -> dict[str, Any]:
        """`ConversionEventDataV1`."""
        event: dict[str, Any] = {
            "conversionDefinitionId": conversion.definition_id,
            "name": conversion.name,
            "timestamp": conversion.event_time,
            "countryCode": conversion.country_code,
            "matchKeys": [{"type": t, "values": [v]} for t, v in conversion.match_keys],
            "clientDedupeId": conversion.dedupe_id,
        }
        if conversion.value is not None:
            event["value"] = float(conversion.value)
        if conversion.currency is not None:
            event["currencyCode"] = conversion.currency
        # Amazon takes unitsSold for purchases only; an unknown type is left to the definition.
        if conversion.units_sold is not None and conversion.conversion_type in (
            None,
            "OFF_AMAZON_PURCHASES",
        ):
            event["unitsSold"] = conversion.units_sold
        if conversion.limited_data_use:
            event["dataProcessingOptions"] = "LIMITED_DATA_USE"
        return event

    def encode_event(self, conversion: Conversion) -> bytes:
        """`event_payload` encoded, written directly: the same bytes as encoding the dict
        (same keys, order and JSON forms), at a third of the cost."""
        return with_definition(conversion.definition_id, self.encode_event_fields(conversion))

    def encode_event_fields(self, conversion: Conversion) -> bytes:
        """The encoded event after its definition ID, which only the main process can resolve
        (it may take a lookup through the API): `with_definition` completes it."""
        text = encode_basestring
        c = conversion
        # Key types, the timestamp (our own format), the country and the currency (checked
        # against code lists) hold nothing JSON escapes; user text and match keys are escaped.
        keys = ",".join([f'{{"type":"{t}","values":[{text(v)}]}}' for t, v in c.match_keys])
        out = (
            f',"name":{text(c.name)},"timestamp":"{c.event_time}"'
            f',"countryCode":"{c.country_code}","matchKeys":[{keys}]'
            f',"clientDedupeId":{text(c.dedupe_id)}'
        )
        if c.value is not None:
            out += f',"value":{float(c.value)!r}'
        if c.currency is not None:
            out += f',"currencyCode":"{c.currency}"'
        if c.units_sold is not None and c.conversion_type in (None, "OFF_AMAZON_PURCHASES"):
            out += f',"unitsSold":{int(c.units_sold)!r}'
        if c.limited_data_use:
            out += ',"dataProcessingOptions":"LIMITED_DATA_USE"'
        return (out + "}").encode()

    def build_request(
        self,
        key: tuple[str, str],
        encoded_events: list[bytes],
        *,
        api_url: str,
        client_id: str,
        profile_id: str | None,
    ) -> OutgoingRequest:
        """`BatchImportConversionEventDataRequestV1` with the headers Amazon's guides send."""
        advertiser_id, source = key
        headers = {
            "Amazon-Advertising-API-ClientId": client_id,
            "Amazon-Ads-AccountId": advertiser_id,
            "Content-Type": DSP_EVENT_MEDIA_TYPE,
            "Accept": DSP_EVENT_MEDIA_TYPE,
        }
        if profile_id:
            headers["Amazon-Advertising-API-Scope"] = profile_id
        body = join_events(
            b'{"source":"' + source.encode() + b'","eventData":[', encoded_events, b"]}"
        )
        return OutgoingRequest(
            "POST",
            f"{api_url}/accounts/{advertiser_id}/dsp/conversionDefinitions/eventData",
            headers,
            body,
            len(encoded_events),
        )

    def read_multi_status(self, body: Any, count: int) -> ItemResults:
        """`BatchImportConversionEventDataResponseV1`: `error[].index` counts from 1."""
        results: ItemResults = [None] * count
        for index, item in error_items(body, 1, count):
            code = str(item.get("code") or "AMAZON_REJECTED")
            message = str(item.get("message") or code)
            sub_errors = [e for e in item.get("errors") or [] if isinstance(e, dict)]
            problems = [
                Problem(
                    str(e.get("errorType") or code),
                    f"{message}: {e.get('message')}" if e.get("message") else message,
                    e.get("fieldName"),
                )
                for e in sub_errors
            ] or [Problem(code, message, None)]
            results[index] = problems
        return results

    def read_error(self, status: int, body: Any) -> Problem:
        """`DspErrorV1`: `{message, requestId, errors[]}`."""
        if not isinstance(body, dict):
            return http_problem(status, None, None)
        details = [str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, dict)]
        message = "; ".join([str(body.get("message") or ""), *details]).strip("; ")
        return http_problem(status, None, message or None)
