"""The `check` command: is the target's configuration able to deliver, and if not, why.

Gets an access token with the target's own settings, lists the profiles, then asks what the
API asks of the advertiser (`ConversionApi.check_account`; DSP: its conversion definitions and,
optionally, one upload Amazon must refuse, to verify event_manager_edit), and prints one line
per problem saying what to fix. Never prints the client secret or a token.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.answers import Meaning, meaning, proves_token, set_up_line
from target_amazon_dsp_conversions.apis import API_NAMES, DEFAULT_API, api_for
from target_amazon_dsp_conversions.apis.base import AccountCheck, answer_message
from target_amazon_dsp_conversions.auth import AccessTokens
from target_amazon_dsp_conversions.errors import UserError
from target_amazon_dsp_conversions.http_session import Sessions, read_json
from target_amazon_dsp_conversions.http_types import Call, OutgoingRequest, Response
from target_amazon_dsp_conversions.settings import Settings
from target_amazon_dsp_conversions.startup_checks import checked_settings


def check(config: Mapping[str, Any], *, probe_upload: bool, login_command: str) -> int:
    """Print what the connection reaches and one line per problem; 1 when there are problems.

    `login_command` is what to run to get a refresh token, for the message when it is missing.
    """
    report = _Report()
    for name, fix in (
        ("client_id", "the LwA client ID of your Amazon Ads API app"),
        ("client_secret", "the LwA client secret of your Amazon Ads API app"),
        ("refresh_token", f"sign in with Amazon ({login_command})"),
    ):
        if not str(config.get(name) or "").strip():
            report.problem(f"{name} is not set: {fix}")
    missing = bool(report.problems)
    advertiser = str(config.get("advertiser_id") or "").strip()
    # Whether the API takes an entity ID as the account (the Events API does, DSP's does not).
    api_name = str(config.get("api") or DEFAULT_API).strip().lower()
    takes_entity_ids = api_name in API_NAMES and api_for(api_name).rules.entity_account_ids
    entity_id = advertiser.upper().startswith("ENTITY")
    refused = entity_id and not takes_entity_ids
    if refused:
        report.problem(
            f"advertiser_id {advertiser} is a DSP entity ID: use the numeric DSP advertiser ID "
            "(the profiles listed above show the ones you can use)"
        )
        config = {k: v for k, v in config.items() if k != "advertiser_id"}
    if missing:
        # The other settings are checked all the same (as a dry run's, which needs no
        # credentials), so that one pass names every problem.
        try:
            checked_settings({**config, "dry_run": True})
        except UserError as exc:
            report.problem(str(exc))
        return _finish(report)
    # A check tests the real connection even when the config is set up for a dry run.
    settings = checked_settings({**config, "dry_run": False})
    report.line(f"Region {settings.region}, API {settings.api}, host {settings.api_url}")
    sessions = Sessions()
    tokens = AccessTokens.for_settings(
        settings, max_retries=1, stopping=threading.Event(), sessions=sessions
    )
    try:
        tokens.current()
    except UserError as exc:
        report.problem(str(exc))
        return _finish(report)
    report.line("Sign-in: OK (Login with Amazon issued an access token)")
    assert settings.client_id  # for_settings needed it
    api = _Api(tokens, sessions, settings.client_id, settings.request_timeout)
    profiles = _check_profiles(api, settings, report, entity_id_refused=refused)
    if profiles is not None and settings.advertiser_id:
        check_account = api_for(settings.api, region=settings.region).check_account
        check_account(AccountCheck(api, settings, report, probe_upload))
    return _finish(report)


class _Api:
    """One-shot API calls with a Bearer token: statuses come back as they are, for diagnosis.

    HttpTransport is built for delivery (retries for minutes, a set-up answer stops the run);
    a check wants each status once, so it can say what it means (`answers.meaning`). A 401
    refreshes the token as in a run (`AccessTokens.refused`).
    """

    def __init__(
        self, tokens: AccessTokens, sessions: Sessions, client_id: str, timeout: float
    ) -> None:
        self._tokens = tokens
        self._sessions = sessions
        self._client_id = client_id
        self._timeout = timeout

    def send(self, request: OutgoingRequest) -> Response:
        """Amazon's answer to one request, after a token refresh if a 401 asks for one."""
        token = self._tokens.current()
        while True:
            sent = {"Amazon-Advertising-API-ClientId": self._client_id, **request.headers}
            sent["Authorization"] = f"Bearer {token}"
            try:
                answer = self._sessions.request(
                    request.method,
                    request.url,
                    headers=sent,
                    data=request.body or None,
                    timeout=self._timeout,
                )
            except requests.RequestException as exc:
                host = urlsplit(request.url).netloc
                raise UserError(
                    f"could not reach {host} ({type(exc).__name__}); check api_url/region"
                ) from None
            status = answer.status_code
            if proves_token(request.call, status):
                self._tokens.proven(token)
            if meaning(request.call, status) is Meaning.REFRESH_TOKEN:
                fresh = self._tokens.refused(token)
                if fresh is not None:
                    token = fresh
                    continue  # else the fresh token was refused too: the caller says why
            return Response(status, read_json(answer))


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def line(self, text: str = "") -> None:
        print(redaction.redact(text), flush=True)  # noqa: T201

    def table(self, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.line(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )

    def problem(self, text: str) -> None:
        self.problems.append(text)


def _finish(report: _Report) -> int:
    report.line()
    for problem in report.problems:
        report.line(f"problem: {problem}")
    if not report.problems:
        report.line("OK: no problems found")
    return 1 if report.problems else 0


def _check_profiles(
    api: _Api, settings: Settings, report: _Report, *, entity_id_refused: bool
) -> list[Any] | None:
    url = f"{settings.api_url}/v2/profiles"
    answer = api.send(OutgoingRequest("GET", url, {}, b"", call=Call.PROFILES))
    status, body = answer.status, answer.body
    if meaning(Call.PROFILES, status) is Meaning.REFRESH_TOKEN:  # even with a fresh token
        report.problem(
            f"the {settings.region} API host refused a fresh access token (HTTP 401): wrong "
            "region? set region to where your advertisers are (NA, EU or FE) and check that "
            "the app has Amazon Ads API access"
        )
        return None
    if meaning(Call.PROFILES, status) is Meaning.SET_UP:
        report.problem(set_up_line(Call.PROFILES, status, body, ""))
        return None
    if meaning(Call.PROFILES, status) is not Meaning.DONE or not isinstance(body, list):
        report.problem(f"GET /v2/profiles answered HTTP {status} {answer_message(body)}".rstrip())
        return None
    profiles = [p for p in body if isinstance(p, dict)]
    report.line()
    report.line(f"Profiles ({len(profiles)}):")
    rows = []
    for p in profiles:
        info = p.get("accountInfo") or {}
        rows.append(
            (
                str(p.get("profileId", "")),
                str(p.get("countryCode", "")),
                str(info.get("type", "")),
                str(info.get("id", "")),
                str(info.get("name", "")),
            )
        )
    if rows:
        report.table(("PROFILE", "COUNTRY", "TYPE", "ACCOUNT ID", "NAME"), rows)
    if not profiles:
        report.problem(
            f"this sign-in has no advertising profiles in region {settings.region}: wrong "
            "region? set region (NA, EU, FE), or sign in as a user with access to the advertiser"
        )
        return None
    by_account = {row[3]: row for row in rows}
    agencies = [row[3] for row in rows if row[2] == "agency"] or [row[3] for row in rows]
    if entity_id_refused:  # a problem already says so; these are what it can be instead
        report.line(f"DSP advertiser IDs available: {', '.join(agencies)}")
        return profiles
    if not settings.advertiser_id:
        report.line(f"advertiser_id is not set; advertisers available: {', '.join(agencies)}")
        return profiles
    found = by_account.get(settings.advertiser_id)
    if found is None and settings.advertiser_id.upper().startswith("ENTITY"):
        # Only an API that takes entity IDs gets here with one (see `check`).
        report.line(
            f"Advertiser {settings.advertiser_id}: an entity ID, which no profile lists; the "
            "Events API checks it at the first upload"
        )
        return profiles
    if found is None:
        report.problem(
            f"advertiser_id {settings.advertiser_id} is not among the advertisers this sign-in "
            f"reaches in region {settings.region}; available: {', '.join(agencies)}"
        )
        return None
    report.line(f"Advertiser {settings.advertiser_id}: {found[4]!r}, profile {found[0]}")
    if settings.profile_id and settings.profile_id != found[0]:
        report.problem(
            f"profile_id {settings.profile_id} is not the profile of advertiser "
            f"{settings.advertiser_id}: set profile_id to {found[0]} (or leave it unset)"
        )
    return profiles
