"""Amazon Ads Events API (Conversions API v2): `POST /adsApi/v1/create/events`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from target_amazon_dsp_conversions.amazon_fields import (
    EVENT_SOURCES,
    EVENTS_MAX_CUSTOM_DATA,
    SERVER_TO_SERVER,
)
from target_amazon_dsp_conversions.apis import base
from target_amazon_dsp_conversions.apis.base import (
    accepting_all,
    encode_json,
    http_problem,
    item_results,
    join_events,
    purchase_fields_sent,
)
from target_amazon_dsp_conversions.apis.rules import EVENTS_RULES
from target_amazon_dsp_conversions.conversion import Conversion, enum_value
from target_amazon_dsp_conversions.errors import Problem, SettingError, reject

# Events need nothing resolved: each is complete as encoded.
_COMPLETE = base.ResolvedKind(b"", b"", sends_purchase_fields=False)
PARTNER = "target_amazon_dsp_conversions"
FIRST_INDEX = 0  # of a 207's items: their position in the request's `events`
_DATA_SET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
_CUSTOM_TEXT = re.compile(r"^[A-Za-z0-9_]{1,256}$")
_CUSTOM_DATA_TYPES = frozenset({"STRING", "INTEGER", "TIMESTAMP"})
# DataType INTEGER is "32-bit signed integer" in Amazon's schema; a whole number beyond it is
# sent as a STRING (its digits unchanged) rather than as an INTEGER Amazon cannot read.
_INT32 = range(-(2**31), 2**31)
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")
# The words Amazon's GTM template reads as consent (docs/getting-started/using-the-template.md),
# case-insensitive; a dash or space reads as _ (opted-in).
_GRANTED = "granted true yes 1 on enabled opted_in optin opt_in".split()
_DENIED = "denied false no 0 off disabled opted_out optout opt_out".split()
_CONSENT_WORDS = {**dict.fromkeys(_GRANTED, "GRANTED"), **dict.fromkeys(_DENIED, "DENIED")}
# CreateDeviceInfo.userAgent: "Max 512 characters".
MAX_USER_AGENT_LENGTH = 512
# arefMeasurementTokens: "<token>.<unix_timestamp_ms>" pairs separated by "|"; a token is 10
# letters or digits, the time 13 digits (the schema's description).
_AREF_PAIR = r"[A-Za-z0-9]{10}\.[0-9]{13}"
_AREF_TOKENS = re.compile(rf"{_AREF_PAIR}(?:\|{_AREF_PAIR})*")
_DEVICE_AND_CLICK_FIELDS = frozenset({"userAgent", "amazonAdEventKey", "arefMeasurementTokens"})
INCOMPLETE_CONSENT_NOTICE = (
    "amazonAdStorage without amazonUserData: Amazon's amazonConsent needs amznUserData, so it "
    "was left out of those events and the events were sent without it"
)


class EventsApi:
    """Amazon Ads API v1 `CreateEvent`."""

    name = "events"
    summary = "Amazon Ads Events API (500 events per request)"
    rules = EVENTS_RULES
    # Amazon's Events API has one operation, CreateEvent: no user deletion.
    operations: Mapping[str, base.BatchOperation] = {}

    def __init__(self, *, region: str = "NA") -> None:
        """EU advertisers must send consent with every event, complete."""
        self._consent_required = region == "EU"

    def check_settings(self, settings: base.ApiSettings) -> None:
        """Events are server-to-server only."""
        if settings.source != SERVER_TO_SERVER:
            raise SettingError(
                "source", f"the Events API takes {SERVER_TO_SERVER} events only (api: events)"
            )

    def check_account(self, check: base.AccountCheck) -> None:
        """Nothing to ask: Amazon creates event definitions from the events themselves, and
        the Events API has no call that checks a permission without sending an event."""

    def encode(self, conversion: Conversion) -> base.EncodedEvent:
        """`event_payload` as compact UTF-8 JSON; one advertiser per request (header), the
        source is always server-to-server."""
        body = encode_json(self.event_payload(conversion)).encode()
        return base.EncodedEvent((conversion.advertiser_id, conversion.source), body, b"", None)

    def kind_resolver(
        self,
        settings: base.ApiSettings,  # noqa: ARG002
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
            if conversion.currency is None:
                # Amazon's GTM guide for this API: "Currency Code: Required for Off-Amazon
                # Purchases"; no conversion definition supplies one here, unlike the DSP API.
                raise reject(
                    "MISSING_CURRENCY",
                    "a purchase needs a currency in the Events API (set currency per record "
                    "or in defaults.currency)",
                    "currency",
                )
            event["currencyCode"] = conversion.currency
            if conversion.units_sold is not None:
                event["unitsSold"] = conversion.units_sold
        if conversion.limited_data_use:
            event["dataProcessingOptions"] = {"options": "LIMITED_DATA_USE"}
        consent, incomplete = _consent(extra, incomplete_is_error=self._consent_required)
        if incomplete:
            conversion.notices = (*conversion.notices, INCOMPLETE_CONSENT_NOTICE)
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
        if not _DEVICE_AND_CLICK_FIELDS.isdisjoint(extra):
            _device_and_click(extra, event)
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
        """`EventMultiStatusResponse`: `success[]` and `error[]`, indexed from 0."""
        return item_results(body, FIRST_INDEX, count, _item_problems)

    def dry_run_answer(self, request: base.OutgoingRequest) -> base.Response:
        """Every event accepted."""
        return accepting_all(request.item_count, FIRST_INDEX)

    def read_error(self, status: int, body: Any) -> Problem:
        """Error responses are `{code, message}`."""
        if not isinstance(body, dict):
            return http_problem(status, None, None)
        return http_problem(status, body.get("code"), body.get("message"))


def _item_problems(item: dict[str, Any]) -> list[Problem]:
    """`ErrorsIndex`: Amazon's `Error`s of one item."""
    problems = [
        Problem(
            str(e.get("code") or "AMAZON_REJECTED"),
            str(e.get("message") or e.get("code") or "rejected by Amazon"),
            e.get("fieldLocation"),
        )
        for e in item.get("errors") or []
        if isinstance(e, dict)
    ]
    return problems or [Problem("AMAZON_REJECTED", "rejected by Amazon")]


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
    word = str(raw).strip().lower().replace("-", "_").replace(" ", "_")
    status = _CONSENT_WORDS.get(word)
    if status is None:
        raise reject(
            "INVALID_CONSENT",
            f"{field} must be GRANTED or DENIED (or true/false, yes/no, 1/0, on/off, "
            "enabled/disabled, opted_in/opted_out, optin/optout)",
            field,
        )
    return status


def _consent(extra: Mapping[str, Any], *, incomplete_is_error: bool) -> tuple[dict[str, Any], bool]:
    """`CreateConsent`, and whether an amazonConsent without its required amznUserData was
    left out (an error instead with `incomplete_is_error`: EU advertisers)."""
    consent: dict[str, Any] = {}
    incomplete = False
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
        _consent_status(ad_storage, "amazonAdStorage")  # a word nobody can read is an error
        if incomplete_is_error:
            raise reject(
                "INVALID_CONSENT",
                "amazonAdStorage needs amazonUserData as well (Amazon requires amznUserData "
                "in amazonConsent)",
                "amazonUserData",
            )
        incomplete = True
    for key in ("tcf", "gpp"):
        raw = extra.get(key)
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise reject("INVALID_CONSENT", f"{key} must be the encoded {key.upper()} string", key)
        # A blank string states no consent, so it must not satisfy the EU check.
        if raw.strip():
            consent[key] = raw.strip()
    return consent, incomplete


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
    # JSON numbers often arrive as 3.0 (a float, or a Decimal as the reader parses them);
    # Amazon's values cannot hold a dot.
    if (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()
    ):
        value = int(value)
    data_type = item.get("dataType")
    if data_type is None:
        is_int32 = type(value) is int and value in _INT32
        data_type = "INTEGER" if is_int32 else "STRING"
    data_type = str(data_type).strip().upper()
    if data_type not in _CUSTOM_DATA_TYPES:
        raise reject(
            "INVALID_CUSTOM_DATA",
            "customData dataType must be STRING, INTEGER or TIMESTAMP",
            "customData",
        )
    name = str(item["name"]).strip()
    # Booleans as Amazon's custom-attributes guide writes them (Python would say "True").
    text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip()
    if data_type == "INTEGER" and not _is_int32(text):
        raise reject(
            "INVALID_CUSTOM_DATA",
            f"customData {name[:64]!r}: dataType INTEGER needs a whole number from "
            f"{_INT32.start} to {_INT32.stop - 1} (Amazon's 32-bit integer)",
            "customData",
        )
    # Amazon allows letters, digits and _ only, in both names and values.
    if not (_CUSTOM_TEXT.match(name) and _CUSTOM_TEXT.match(text)):
        raise reject(
            "INVALID_CUSTOM_DATA",
            f"customData {name[:64]!r}: names and values may hold only letters, digits and _ "
            "(up to 256 characters)",
            "customData",
        )
    return {"name": name, "value": text, "dataType": data_type}


def _is_int32(text: str) -> bool:
    return bool(_WHOLE_NUMBER.fullmatch(text)) and int(text) in _INT32


def _device_and_click(extra: Mapping[str, Any], event: dict[str, Any]) -> None:
    """`deviceInfo.userAgent`, `amazonAdEventKey` and `arefMeasurementTokens`, as given."""
    user_agent = _text(extra.get("userAgent"), "userAgent")
    if user_agent:
        # Amazon reads at most 512 characters; the start (browser and system) is what matters.
        event["deviceInfo"] = {"userAgent": user_agent[:MAX_USER_AGENT_LENGTH]}
    event_key = _text(extra.get("amazonAdEventKey"), "amazonAdEventKey")
    if event_key:
        event["amazonAdEventKey"] = event_key
    tokens = extra.get("arefMeasurementTokens")
    if isinstance(tokens, list):  # the pairs as a list
        tokens = "|".join(str(token).strip() for token in tokens)
    tokens = _text(tokens, "arefMeasurementTokens")
    if tokens:
        tokens = tokens.replace(" ", "")
        if not _AREF_TOKENS.fullmatch(tokens):
            raise reject(
                "INVALID_MEASUREMENT_TOKENS",
                "arefMeasurementTokens must be <token>.<epoch milliseconds> pairs (a token is "
                "10 letters or digits, the time 13 digits) separated by |",
                "arefMeasurementTokens",
            )
        event["arefMeasurementTokens"] = tokens


def _text(raw: Any, field: str) -> str:
    """A text field's value, trimmed ("" when blank or absent)."""
    if raw is None:
        return ""
    if isinstance(raw, (bool, dict, list)):
        raise reject("INVALID_FIELD", f"{field} must be text", field)
    return str(raw).strip()
