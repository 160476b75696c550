"""Amazon Ads Events API (Conversions API v2): `POST /adsApi/v1/create/events`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from target_amazon_dsp_conversions.amazon_fields import (
    EVENT_SOURCES,
    EVENTS_MAX_CUSTOM_DATA,
    EVENTS_RULES,
    SERVER_TO_SERVER,
)
from target_amazon_dsp_conversions.apis import base
from target_amazon_dsp_conversions.apis.base import (
    encode_json,
    error_items,
    http_problem,
    join_events,
    purchase_fields_sent,
)
from target_amazon_dsp_conversions.conversion import Conversion, enum_value
from target_amazon_dsp_conversions.errors import Problem, reject

if TYPE_CHECKING:
    from target_amazon_dsp_conversions.settings import Settings

# Events need nothing resolved: each is complete as encoded.
_COMPLETE = base.ResolvedKind(b"", b"", sends_purchase_fields=False)
PARTNER = "target_amazon_dsp_conversions"
_DATA_SET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
_CUSTOM_TEXT = re.compile(r"^[A-Za-z0-9_]{1,256}$")
_CUSTOM_DATA_TYPES = frozenset({"STRING", "INTEGER", "TIMESTAMP"})
_CONSENT_WORDS = {"granted": "GRANTED", "true": "GRANTED", "1": "GRANTED", "yes": "GRANTED",
                  "denied": "DENIED", "false": "DENIED", "0": "DENIED", "no": "DENIED"}  # fmt: skip


class EventsApi:
    """Amazon Ads API v1 `CreateEvent`."""

    name = "events"
    rules = EVENTS_RULES

    def __init__(self, *, region: str = "NA") -> None:
        """EU advertisers must send consent with every event."""
        self._consent_required = region == "EU"

    def encode(self, conversion: Conversion) -> base.EncodedEvent:
        """`event_payload` as compact UTF-8 JSON; one advertiser per request (header), the
        source is always server-to-server."""
        body = encode_json(self.event_payload(conversion)).encode()
        return base.EncodedEvent((conversion.advertiser_id, conversion.source), body, b"", None)

    def kind_resolver(
        self,
        settings: Settings,  # noqa: ARG002
        lookups: base.Transport | None,  # noqa: ARG002
    ) -> EventKinds:
        """Nothing to look up: Amazon creates event definitions from the events themselves."""
        return EventKinds()

    def event_payload(self, conversion: Conversion) -> dict[str, Any]:
        """`EventCreate`."""
        if conversion.source != SERVER_TO_SERVER:
            raise reject(
                "UNSUPPORTED_SOURCE",
                f"the Events API takes SERVER_TO_SERVER events only, not {conversion.source}",
                "source",
            )
        if conversion.conversion_type is None:
            raise reject(
                "MISSING_FIELD",
                "conversionType is required by the Events API "
                "(set it per record or in defaults.conversionType)",
                "conversionType",
            )
        extra = conversion.extra
        description: dict[str, Any] = {
            "name": conversion.name,
            "conversionType": conversion.conversion_type,
            "eventSource": _event_source(extra.get("eventSource")),
            "eventIngestionMethod": SERVER_TO_SERVER,
        }
        if extra.get("dataSetName") is not None:
            description["dataSetName"] = _data_set_name(extra["dataSetName"])
        event: dict[str, Any] = {
            "eventDescription": description,
            "eventTime": conversion.event_time,
            "countryCode": conversion.country_code,
            "matchKeys": [{"type": t, "values": [v]} for t, v in conversion.match_keys],
            "eventId": conversion.dedupe_id,
            "partner": PARTNER,
        }
        if conversion.value is not None:
            event["value"] = float(conversion.value)
        # Amazon takes currency and units for purchases only (Segment sends them likewise).
        if purchase_fields_sent(conversion.conversion_type):
            if conversion.currency is not None:
                event["currencyCode"] = conversion.currency
            if conversion.units_sold is not None:
                event["unitsSold"] = conversion.units_sold
        if conversion.limited_data_use:
            event["dataProcessingOptions"] = {"options": "LIMITED_DATA_USE"}
        consent = _consent(extra)
        if consent:
            event["consent"] = consent
        elif self._consent_required:
            raise reject(
                "MISSING_CONSENT",
                "EU events need consent: ipAddress, amazonUserData, tcf or gpp",
                "consent",
            )
        custom_data = _custom_data(extra.get("customData"))
        if custom_data:
            event["customData"] = custom_data
        return event

    def build_request(
        self, key: base.BatchKey, encoded_events: list[bytes], endpoint: base.Endpoint
    ) -> base.OutgoingRequest:
        """`CreateEventRequest` (the Events API has no profile scope)."""
        headers = {
            "Amazon-Ads-ClientId": endpoint.client_id,
            "Amazon-Ads-AccountId": key[0],
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        body = join_events(b'{"events":[', encoded_events, b"]}")
        return base.OutgoingRequest(
            "POST",
            f"{endpoint.api_url}/adsApi/v1/create/events",
            headers,
            body,
            len(encoded_events),
        )

    def read_multi_status(self, body: Any, count: int) -> base.ItemResults:
        """`EventMultiStatusResponse`: `error[].index` counts from 0."""
        results: base.ItemResults = [None] * count
        for index, item in error_items(body, 0, count):
            problems = [
                Problem(
                    str(e.get("code") or "AMAZON_REJECTED"),
                    str(e.get("message") or e.get("code") or "rejected by Amazon"),
                    e.get("fieldLocation"),
                )
                for e in item.get("errors") or []
                if isinstance(e, dict)
            ]
            problems = problems or [Problem("AMAZON_REJECTED", "rejected by Amazon")]
            # An index listed twice keeps the problems of both entries.
            results[index] = (results[index] or []) + problems
        return results

    def read_error(self, status: int, body: Any) -> Problem:
        """Error responses are `{code, message}`."""
        if not isinstance(body, dict):
            return http_problem(status, None, None)
        return http_problem(status, body.get("code"), body.get("message"))


class EventKinds:
    """Events API events need nothing from outside the record."""

    def resolve(self, definition: base.DefinitionQuery | None) -> base.ResolvedKind:  # noqa: ARG002
        """Events are complete as encoded."""
        return _COMPLETE


def _event_source(raw: Any) -> str:
    if raw is None:
        return "OFFLINE"
    return enum_value(
        raw,
        EVENT_SOURCES,
        "INVALID_EVENT_SOURCE",
        "eventSource",
        lambda _: f"eventSource must be one of {', '.join(sorted(EVENT_SOURCES))}",
    )


def _data_set_name(raw: Any) -> str:
    name = str(raw).strip()
    if not _DATA_SET_NAME.match(name):
        raise reject(
            "INVALID_DATA_SET_NAME",
            "dataSetName must start with a letter and hold only letters, digits, _ and -",
            "dataSetName",
        )
    return name


def _present(raw: Any) -> bool:
    return raw is not None and not (isinstance(raw, str) and not raw.strip())


def _consent_status(raw: Any, field: str) -> str:
    status = _CONSENT_WORDS.get(str(raw).strip().lower())
    if status is None:
        raise reject("INVALID_CONSENT", f"{field} must be GRANTED or DENIED", field)
    return status


def _consent(extra: Mapping[str, Any]) -> dict[str, Any]:
    consent: dict[str, Any] = {}
    if _present(extra.get("ipAddress")):
        try:
            address = str(ipaddress.ip_address(str(extra["ipAddress"]).strip()))
        except ValueError:
            raise reject(
                "INVALID_CONSENT", "ipAddress is not an IPv4 or IPv6 address", "ipAddress"
            ) from None
        consent["geo"] = {"ipAddress": address}
    user_data = extra.get("amazonUserData") if _present(extra.get("amazonUserData")) else None
    ad_storage = extra.get("amazonAdStorage") if _present(extra.get("amazonAdStorage")) else None
    if user_data is not None:
        # amznUserData is the one required member of Amazon's consent object.
        amazon = {"amznUserData": _consent_status(user_data, "amazonUserData")}
        if ad_storage is not None:
            amazon["amznAdStorage"] = _consent_status(ad_storage, "amazonAdStorage")
        consent["amazonConsent"] = amazon
    elif ad_storage is not None:
        raise reject(
            "INVALID_CONSENT", "amazonAdStorage needs amazonUserData as well", "amazonUserData"
        )
    for key in ("tcf", "gpp"):
        raw = extra.get(key)
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise reject("INVALID_CONSENT", f"{key} must be the encoded {key.upper()} string", key)
        # A blank string states no consent, so it must not satisfy the EU check.
        if raw.strip():
            consent[key] = raw.strip()
    return consent


def _custom_data(raw: Any) -> list[dict[str, str]]:
    """`customData`: an object {name: value} or a list of {name, value, dataType}."""
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        # A null column of a wide record is no attribute, not an error.
        items: list[Any] = [{"name": k, "value": v} for k, v in raw.items() if v is not None]
    elif isinstance(raw, list):
        items = raw
    else:
        raise reject("INVALID_CUSTOM_DATA", "customData must be an object or a list", "customData")
    if len(items) > EVENTS_MAX_CUSTOM_DATA:
        raise reject(
            "INVALID_CUSTOM_DATA",
            f"customData holds at most {EVENTS_MAX_CUSTOM_DATA} entries, not {len(items)}",
            "customData",
        )
    return [_custom_item(item) for item in items]


def _custom_item(item: Any) -> dict[str, str]:
    if not isinstance(item, Mapping) or item.get("name") is None or item.get("value") is None:
        raise reject(
            "INVALID_CUSTOM_DATA", "customData entries need a name and a value", "customData"
        )
    value = item["value"]
    if isinstance(value, (dict, list)):
        raise reject(
            "INVALID_CUSTOM_DATA", "customData values must be text or numbers", "customData"
        )
    # JSON numbers often arrive as floats (3.0); Amazon's values cannot hold a dot.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    is_integer = isinstance(value, int) and not isinstance(value, bool)
    data_type = item.get("dataType")
    if data_type is None:
        data_type = "INTEGER" if is_integer else "STRING"
    data_type = str(data_type).strip().upper()
    if data_type not in _CUSTOM_DATA_TYPES:
        raise reject(
            "INVALID_CUSTOM_DATA",
            "customData dataType must be STRING, INTEGER or TIMESTAMP",
            "customData",
        )
    name, text = str(item["name"]).strip(), str(value).strip()
    # Amazon allows letters, digits and _ only, in both names and values.
    if not (_CUSTOM_TEXT.match(name) and _CUSTOM_TEXT.match(text)):
        raise reject(
            "INVALID_CUSTOM_DATA",
            f"customData {name[:64]!r}: names and values may hold only letters, digits and _ "
            "(up to 256 characters)",
            "customData",
        )
    return {"name": name, "value": text, "dataType": data_type}
