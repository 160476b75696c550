"""What `check` asks Amazon about a DSP advertiser: its conversion definitions (and whether the
configured ones fit), and optionally one upload Amazon must refuse, to verify the
event_manager_edit permission."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from target_amazon_dsp_conversions.answers import Meaning, meaning, set_up_line
from target_amazon_dsp_conversions.apis.base import (
    AccountCheck,
    ApiSettings,
    BatchKey,
    CheckCalls,
    CheckReport,
    OutgoingRequest,
    answer_message,
)
from target_amazon_dsp_conversions.apis.dsp_definitions import (
    DefinitionCalls,
    DefinitionsUnavailableError,
)
from target_amazon_dsp_conversions.endpoints import Endpoint
from target_amazon_dsp_conversions.http_types import Call

# The probe event is sent under a definition ID no advertiser has and marked limited data use,
# so Amazon refuses (or does not process) it; only the permission check on the call matters.
PROBE_DEFINITION_ID = "target-amazon-dsp-conversions-check-not-a-definition"


# The upload request of the DSP API (`DspApi.build_request`).
BuildUpload = Callable[[BatchKey, list[bytes], Endpoint], OutgoingRequest]


def check_advertiser(check: AccountCheck, build_upload: BuildUpload) -> None:
    """The advertiser's definitions, then the upload permission (`check.probe_upload`, with a
    request `build_upload` makes) or a line saying it was not checked."""
    calls, settings, report, probe_upload = check
    listed = _check_definitions(calls, settings, report)
    if listed is not None and probe_upload:
        _probe_upload(calls, settings, report, build_upload)
    elif listed is not None:
        report.line(
            "event_manager_edit: not checked (Amazon has no read-only check); it shows at "
            "the first upload, or run check --probe-upload"
        )


def _check_definitions(
    calls: CheckCalls, settings: ApiSettings, report: CheckReport
) -> list[dict[str, Any]] | None:
    advertiser = settings.advertiser_id
    assert advertiser
    definitions = DefinitionCalls(calls.send, settings.endpoint())
    try:
        found = definitions.list_all(advertiser)
    except DefinitionsUnavailableError as exc:
        if exc.status == 403:  # noqa: PLR2004 - said as the permissions to ask for
            report.problem(
                f"no access to the conversion definitions of advertiser {advertiser} (HTTP 403 "
                f"{answer_message(exc.body)}): the user who signed in needs Events Manager "
                "permission (event_manager_view to list, event_manager_edit to upload) on this "
                "advertiser"
            )
        elif meaning(Call.DEFINITIONS_LIST, exc.status) is Meaning.SET_UP:
            report.problem(set_up_line(Call.DEFINITIONS_LIST, exc.status, exc.body, advertiser))
        else:
            report.problem(
                f"listing conversion definitions of advertiser {advertiser}: HTTP {exc.status} "
                f"{answer_message(exc.body)}".rstrip()
            )
        return None
    report.line()
    report.line(f"Conversion definitions of advertiser {advertiser} ({len(found)}):")
    rows = [
        (
            str(d.get("conversionDefinitionId", "")),
            str(d.get("name", "")),
            str(d.get("source", "")),
            str(d.get("conversionType", "")),
        )
        for d in found
    ]
    if rows:
        report.table(("ID", "NAME", "SOURCE", "TYPE"), rows)
    _check_configured_definitions(settings, found, report)
    return found


def _check_configured_definitions(
    settings: ApiSettings, found: list[dict[str, Any]], report: CheckReport
) -> None:
    advertiser = settings.advertiser_id
    by_id = {str(d.get("conversionDefinitionId")): d for d in found}
    for key, value in settings.conversion_definitions.items():
        wanted = value.get(advertiser) if isinstance(value, Mapping) else value
        if wanted is None:
            continue
        definition = by_id.get(str(wanted))
        if definition is None:
            report.problem(
                f"conversion_definitions.{key}: {wanted} is not a conversion definition of "
                f"advertiser {advertiser}; use one of the IDs listed above"
            )
        elif definition.get("source") != settings.source:
            report.problem(
                f"conversion_definitions.{key}: {wanted} takes {definition.get('source')} "
                f"events but source is {settings.source}; pick a {settings.source} definition"
            )
    if not any(d.get("source") == settings.source for d in found):
        if settings.create_missing_definitions:
            report.line(
                f"No {settings.source} definition yet: the target creates them as needed "
                "(create_missing_definitions)"
            )
        else:
            report.problem(
                f"advertiser {advertiser} has no conversion definition for source "
                f"{settings.source}: create one in Amazon DSP (Events Manager), set "
                "create_missing_definitions: true, or change source"
            )


def _probe_upload(
    calls: CheckCalls, settings: ApiSettings, report: CheckReport, build_upload: BuildUpload
) -> None:
    """Verify event_manager_edit with one event Amazon must refuse (see PROBE_DEFINITION_ID)."""
    assert settings.advertiser_id
    event = {
        "conversionDefinitionId": PROBE_DEFINITION_ID,
        "name": "connection check",
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "countryCode": "US",
        "matchKeys": [{"type": "EMAIL", "values": [hashlib.sha256(b"check@invalid").hexdigest()]}],
        "clientDedupeId": "connection-check-" + secrets.token_hex(8),
        "dataProcessingOptions": "LIMITED_DATA_USE",
    }
    request = build_upload(
        (settings.advertiser_id, settings.source), [json.dumps(event).encode()], settings.endpoint()
    )
    answer = calls.send(request)
    status, body, found = answer.status, answer.body, meaning(Call.UPLOAD, answer.status)
    if found is Meaning.READ_ITEMS:
        refused = isinstance(body, dict) and bool(body.get("error"))
        report.line(
            "event_manager_edit: OK (Amazon took the upload call; "
            + (
                "the probe event was refused, as intended)"
                if refused
                else "the probe event is marked LIMITED_DATA_USE, so Amazon does not process it)"
            )
        )
    elif status == 403:  # noqa: PLR2004 - said as the permission to ask for
        report.problem(
            f"the user who signed in cannot upload conversions for advertiser "
            f"{settings.advertiser_id} (HTTP 403 {answer_message(body)}): ask an admin of the "
            "advertiser to grant Events Manager 'View and Edit' (event_manager_edit)"
        )
    elif found is Meaning.SET_UP:
        report.problem(set_up_line(Call.UPLOAD, status, body, settings.advertiser_id))
    else:
        report.problem(f"upload probe answered HTTP {status} {answer_message(body)}".rstrip())
