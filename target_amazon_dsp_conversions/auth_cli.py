"""`target-amazon-dsp-conversions-auth`: Sign in with Amazon (`login`) and a connection check.

`login` runs Login with Amazon's authorization-code grant from a terminal: it prints (and opens)
the consent URL, takes the redirect on a loopback listener or pasted on stdin, checks `state`,
and exchanges the code for a refresh token. `check` gets an access token with the target's own
settings, lists the profiles and, for the DSP API, the advertiser's conversion definitions, and
prints one line per problem saying what to fix. Neither ever prints the client secret; `check`
never prints a token.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from dotenv import find_dotenv
from singer_sdk.configuration._dict_config import parse_environment_config

from target_amazon_dsp_conversions.amazon_fields import DSP_DEFINITION_MEDIA_TYPE
from target_amazon_dsp_conversions.apis.dsp import DspApi
from target_amazon_dsp_conversions.auth import AccessTokens
from target_amazon_dsp_conversions.definitions import PAGE_SIZE
from target_amazon_dsp_conversions.errors import SettingError, UserError
from target_amazon_dsp_conversions.settings import CONFIG_SCHEMA, Settings

PROGRAM = "target-amazon-dsp-conversions-auth"
PLUGIN = "target-amazon-dsp-conversions"
ENV_PREFIX = "TARGET_AMAZON_DSP_CONVERSIONS_"
SCOPE = "advertising::campaign_management"
# Login with Amazon's consent page per region (NA from Amazon's LwA docs; EU/FE as Amazon Ads
# integrations use them).
AUTHORIZE_URLS = {
    "NA": "https://www.amazon.com/ap/oa",
    "EU": "https://eu.account.amazon.com/ap/oa",
    "FE": "https://apac.account.amazon.com/ap/oa",
}
AUTHORIZE_URL_ENV = ENV_PREFIX + "AUTHORIZE_URL"
DEFAULT_PORT = 8484
DEFAULT_WAIT_SECONDS = 600.0
# The probe event is sent under a definition ID no advertiser has and marked limited data use,
# so Amazon refuses (or does not process) it; only the permission check on the call matters.
PROBE_DEFINITION_ID = "target-amazon-dsp-conversions-check-not-a-definition"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one line and exit 1, without a traceback."""
    args = _parser().parse_args(argv)
    try:
        status = args.run(args)
    except UserError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(status)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Sign in with Amazon and check the target's connection."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = (
        "JSON config file (repeatable; later files win) or ENV for "
        f"{ENV_PREFIX}* variables and .env; default: the environment"
    )

    login = commands.add_parser("login", help="get a refresh token (authorization-code grant)")
    login.add_argument("--config", action="append", default=[], help=config_help)
    login.add_argument("--region", choices=list(AUTHORIZE_URLS), help="overrides the setting")
    login.add_argument("--port", type=int, default=DEFAULT_PORT, help="loopback listener port")
    login.add_argument(
        "--redirect-uri",
        help="allow-listed return URL (default http://127.0.0.1:PORT/callback); a "
        "non-loopback URL means: paste the address the browser ends on",
    )
    login.add_argument(
        "--authorize-url", help=f"consent page (default by region; env {AUTHORIZE_URL_ENV})"
    )
    login.add_argument("--no-browser", action="store_true", help="print the URL, do not open it")
    login.add_argument(
        "--meltano",
        action="store_true",
        help="save the refresh token with `meltano config set` instead of printing it",
    )
    login.add_argument("--plugin", default=PLUGIN, help="Meltano plugin name for --meltano")
    login.add_argument("--timeout", type=float, default=DEFAULT_WAIT_SECONDS, help="seconds")
    login.set_defaults(run=_login)

    check = commands.add_parser("check", help="check the sign-in, profiles and definitions")
    check.add_argument("--config", action="append", default=[], help=config_help)
    check.add_argument(
        "--probe-upload",
        action="store_true",
        help="dsp: send one event Amazon must refuse, to verify event_manager_edit",
    )
    check.set_defaults(run=_check)
    return parser


def _fail(message: str, status: int = 1) -> None:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)  # noqa: T201
    sys.exit(status)


def _say(message: str = "") -> None:
    """Instructions and progress go to stderr: stdout carries only the refresh token."""
    print(message, file=sys.stderr, flush=True)  # noqa: T201


# ---------------------------------------------------------------------------- configuration
def load_config(sources: list[str]) -> dict[str, Any]:
    """Config as the target reads it: files merged in order, plus env vars for ENV.

    Without --config the environment is read, which is how `meltano invoke` passes settings.
    """
    config: dict[str, Any] = {}
    parse_env = not sources
    for source in sources:
        if source == "ENV":
            parse_env = True
            continue
        try:
            loaded = json.loads(Path(source).read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read config file {source}: {exc.strerror}") from None
        except ValueError:
            raise UserError(f"config file {source} is not valid JSON") from None
        if not isinstance(loaded, dict):
            raise UserError(f"config file {source} must hold a JSON object")
        config.update(loaded)
    if parse_env:
        # usecwd: the project's .env, not one next to the installed package; devnull: none.
        dotenv = find_dotenv(usecwd=True) or os.devnull
        try:
            config.update(parse_environment_config(CONFIG_SCHEMA, ENV_PREFIX, dotenv))
        except ValueError as exc:
            raise UserError(f"cannot read settings from {ENV_PREFIX}* variables: {exc}") from None
    return config


def _required(config: Mapping[str, Any], name: str, fix: str) -> str:
    value = config.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SettingError(name, f"is required: {fix}")
    return value.strip()


# ---------------------------------------------------------------------------- login
def _login(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.region:
        config["region"] = args.region
    # Only what login needs is checked: other settings may still be unfinished at this point.
    wanted = ("region", "auth_url", "request_timeout")
    settings = Settings.from_config(
        {k: config[k] for k in wanted if k in config} | {"dry_run": True}
    )
    fix = f"set it in the config file or {ENV_PREFIX}<NAME> (from your LwA security profile)"
    client_id = _required(config, "client_id", fix)
    client_secret = _required(config, "client_secret", fix)
    authorize_url = (
        args.authorize_url or os.environ.get(AUTHORIZE_URL_ENV) or AUTHORIZE_URLS[settings.region]
    )
    state = secrets.token_urlsafe(24)
    answers: queue.Queue[str | None] = queue.Queue()
    listener = None
    redirect_uri = args.redirect_uri
    if redirect_uri is None or _is_loopback(redirect_uri):
        listener = _start_listener(redirect_uri, args.port, state, answers)
        redirect_uri = listener.redirect_uri
    consent = f"{authorize_url}?" + urlencode(
        {
            "client_id": client_id,
            "scope": SCOPE,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    _say("Open this address in a browser and sign in with the Amazon user that has access to")
    _say("your Amazon DSP advertisers:")
    _say()
    _say(f"  {consent}")
    _say()
    if not args.no_browser and webbrowser.open(consent):
        _say("(opened in your browser)")
    if listener:
        _say(f"Waiting for Amazon to redirect to {redirect_uri} ...")
    _say(
        "If the browser runs elsewhere, paste the address it was sent to "
        f"(it starts with {redirect_uri}?code=) and press Enter:"
    )
    threading.Thread(target=_read_pasted, args=(answers,), daemon=True).start()
    try:
        query = _wait_for_redirect(answers, args.timeout, listener is not None)
    finally:
        if listener:
            listener.stop()
    code = code_from_redirect(query, state)
    refresh_token = exchange_code(
        code,
        redirect_uri=redirect_uri,
        client_id=client_id,
        client_secret=client_secret,
        token_url=settings.auth_url,
        timeout=settings.request_timeout,
    )
    if args.meltano:
        _meltano_set(args.plugin, "refresh_token", refresh_token)
        _say(f"Saved refresh_token {mask(refresh_token)} for {args.plugin} (meltano config set).")
    else:
        _say("Signed in. The refresh token (set it as the refresh_token setting):")
        print(refresh_token, flush=True)  # noqa: T201 - the point of `login`
    _say(f"Next: {PROGRAM} check")
    return 0


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}


def _read_pasted(answers: queue.Queue[str | None]) -> None:
    # Raw reads on fd 0: a daemon thread blocked in sys.stdin would hold its buffer lock
    # while the interpreter shuts down after a redirect arrived through the listener.
    pending = b""
    while True:
        try:
            chunk = os.read(0, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            answers.put(None)  # stdin closed
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                answers.put(line.decode("utf-8", "replace").strip())
                return


def _wait_for_redirect(answers: queue.Queue[str | None], timeout: float, listening: bool) -> str:
    while True:
        try:
            answer = answers.get(timeout=timeout)
        except queue.Empty:
            raise UserError(
                f"no redirect from Amazon within {timeout:.0f} seconds; run login again"
            ) from None
        if answer is not None:
            return answer
        if not listening:
            raise UserError("no redirected address was pasted; run login again")


def code_from_redirect(address: str, state: str) -> str:
    """The authorization code from the redirected URL (or its query), with `state` checked."""
    query = urlsplit(address).query if "?" in address else address
    params = {k: v[0] for k, v in parse_qs(query).items()}
    error = params.get("error")
    if params.get("state") != state and (params.get("state") or not error):
        raise UserError(
            "the redirect's state does not match this login (an old or foreign sign-in "
            "link?); run login again and use the address it prints"
        )
    if error == "access_denied":
        raise UserError(
            "the sign-in was cancelled or access was denied (access_denied); run login again "
            "and choose Allow"
        )
    if error:
        detail = params.get("error_description", "")
        hint = {
            "invalid_client": "check the client_id setting",
            "invalid_scope": f"the app must be approved for the Amazon Ads API ({SCOPE})",
            "unauthorized_client": "the security profile does not allow this grant",
        }.get(error, "see the message above")
        raise UserError(f"Amazon refused the sign-in ({error}: {detail}); {hint}")
    code = params.get("code")
    if not code:
        raise UserError("the address has no code parameter; paste the full redirected address")
    return code


def exchange_code(
    code: str,
    *,
    redirect_uri: str,
    client_id: str,
    client_secret: str,
    token_url: str,
    timeout: float,
) -> str:
    """Trade the authorization code for a refresh token at the region's LwA token endpoint."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    try:
        response = requests.post(token_url, data=form, timeout=timeout)
    except requests.RequestException as exc:
        raise UserError(
            f"could not reach Login with Amazon at {_host(token_url)} ({type(exc).__name__})"
        ) from None
    body = _json(response)
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 200 and isinstance(body.get("refresh_token"), str):  # noqa: PLR2004
        return str(body["refresh_token"])
    error = str(body.get("error") or f"HTTP {response.status_code}")
    if error == "invalid_grant":
        raise UserError(
            "Login with Amazon refused the authorization code (invalid_grant): it expired, "
            "was already used, or the redirect URI differs; run login again"
        )
    if error in {"invalid_client", "unauthorized_client"}:
        raise UserError(
            f"Login with Amazon refused client_id/client_secret ({error}); check both settings"
        )
    raise UserError(f"Login with Amazon refused the code exchange ({error})")


def mask(token: str) -> str:
    """Enough of a token to tell two apart, not enough to use it."""
    return f"{token[:5]}...{token[-4:]}" if len(token) > 12 else "****"  # noqa: PLR2004


def _meltano_set(plugin: str, setting: str, value: str) -> None:
    meltano = shutil.which("meltano")
    if meltano is None:
        raise UserError("meltano is not on PATH; run login without --meltano and set it yourself")
    # The value goes through stdin (Meltano >= 3.2 `--from-file -`), never the command line,
    # where `ps` would show it.
    result = subprocess.run(
        [meltano, "config", "set", plugin, setting, "--from-file", "-"],
        input=value,
        capture_output=True,
        text=True,
        check=False,
        cwd=os.environ.get("MELTANO_PROJECT_ROOT"),
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1].replace(value, "****")
        raise UserError(
            f"meltano config set {plugin} {setting} failed (exit {result.returncode}: {last}); "
            "run login again without --meltano"
        )


class _Listener:
    """A one-shot loopback HTTP server for the redirect (RFC 8252 §7.3)."""

    def __init__(self, server: HTTPServer, redirect_uri: str) -> None:
        self.server = server
        self.redirect_uri = redirect_uri
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _start_listener(
    redirect_uri: str | None, port: int, state: str, answers: queue.Queue[str | None]
) -> _Listener:
    parts = urlsplit(redirect_uri or f"http://127.0.0.1:{port}/callback")
    path = parts.path or "/"
    listen_port = parts.port if redirect_uri else port

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != path:
                self._page(404, "Not the sign-in callback.")
                return
            answers.put(self.path)
            params = parse_qs(urlsplit(self.path).query)
            if params.get("state") == [state] and params.get("code"):
                self._page(200, "Amazon sign-in received. You can close this window.")
            else:
                self._page(400, "The sign-in did not succeed; the terminal says why.")

        def _page(self, status: int, text: str) -> None:
            body = f"<html><body><p>{text}</p></body></html>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the request line carries the authorization code."""

    try:
        server = HTTPServer(("127.0.0.1", listen_port or 0), Callback)
    except OSError as exc:
        raise UserError(
            f"cannot listen on 127.0.0.1:{listen_port} ({exc.strerror}); choose another --port "
            "and allow-list that redirect URI in the security profile"
        ) from None
    host = parts.hostname if redirect_uri else "127.0.0.1"
    actual = server.server_address[1]
    return _Listener(server, f"http://{host}:{actual}{path}")


# ---------------------------------------------------------------------------- check
class _Api:
    """One-shot API calls with a Bearer token: statuses come back as they are, for diagnosis.

    HttpTransport is built for delivery (retries for minutes, a repeated 401 becomes an error
    message); a check wants each status once, so it can say what it means.
    """

    def __init__(self, tokens: AccessTokens, client_id: str, timeout: float) -> None:
        self._tokens = tokens
        self._client_id = client_id
        self._timeout = timeout
        self._session = requests.Session()

    def call(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, Any]:
        token = self._tokens.current()
        for attempt in range(2):
            sent = {"Amazon-Advertising-API-ClientId": self._client_id, **(headers or {})}
            sent["Authorization"] = f"Bearer {token}"
            try:
                answer = self._session.request(
                    method, url, headers=sent, data=body or None, timeout=self._timeout
                )
            except requests.RequestException as exc:
                raise UserError(
                    f"could not reach {_host(url)} ({type(exc).__name__}); check api_url/region"
                ) from None
            if answer.status_code != 401 or attempt:  # noqa: PLR2004
                return answer.status_code, _json(answer) if answer.content else None
            token = self._tokens.refresh_after_401(token)
        raise AssertionError("unreachable")


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def line(self, text: str = "") -> None:
        print(text, flush=True)  # noqa: T201

    def table(self, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.line(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )

    def problem(self, text: str) -> None:
        self.problems.append(text)


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    report = _Report()
    for name, fix in (
        ("client_id", "the LwA client ID of your Amazon Ads API app"),
        ("client_secret", "the LwA client secret of your Amazon Ads API app"),
        ("refresh_token", f"sign in with Amazon ({PROGRAM} login)"),
    ):
        if not str(config.get(name) or "").strip():
            report.problem(f"{name} is not set: {fix}")
    missing = bool(report.problems)
    advertiser = str(config.get("advertiser_id") or "").strip()
    if advertiser.upper().startswith("ENTITY"):
        report.problem(
            f"advertiser_id {advertiser} is a DSP entity ID: use the numeric DSP advertiser ID "
            "(the profiles listed above show the ones you can use)"
        )
        config = {k: v for k, v in config.items() if k != "advertiser_id"}
    if missing:
        return _finish(report)
    # A check tests the real connection even when the config is set up for a dry run.
    settings = Settings.from_config({**config, "dry_run": False})
    report.line(f"Region {settings.region}, API {settings.api}, host {settings.api_url}")
    assert settings.client_id and settings.client_secret and settings.refresh_token
    tokens = AccessTokens(
        token_url=settings.auth_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        refresh_token=settings.refresh_token,
        timeout=settings.request_timeout,
        max_retries=1,
        wait=lambda seconds: threading.Event().wait(min(seconds, 2.0)),
    )
    try:
        tokens.current()
    except UserError as exc:
        report.problem(str(exc))
        return _finish(report)
    report.line("Sign-in: OK (Login with Amazon issued an access token)")
    api = _Api(tokens, settings.client_id, settings.request_timeout)
    profiles = _check_profiles(api, settings, report)
    if profiles is not None and settings.advertiser_id and settings.api == "dsp":
        listed = _check_definitions(api, settings, report)
        if listed is not None and args.probe_upload:
            _probe_upload(api, settings, report)
        elif listed is not None:
            report.line(
                "event_manager_edit: not checked (Amazon has no read-only check); it shows at "
                "the first upload, or run check --probe-upload"
            )
    return _finish(report)


def _finish(report: _Report) -> int:
    report.line()
    for problem in report.problems:
        report.line(f"problem: {problem}")
    if not report.problems:
        report.line("OK: no problems found")
    return 1 if report.problems else 0


def _check_profiles(api: _Api, settings: Settings, report: _Report) -> list[Any] | None:
    status, body = api.call("GET", f"{settings.api_url}/v2/profiles")
    if status == 401:  # noqa: PLR2004
        report.problem(
            f"the {settings.region} API host refused a fresh access token (HTTP 401): wrong "
            "region? set region to where your advertisers are (NA, EU or FE) and check that "
            "the app has Amazon Ads API access"
        )
        return None
    if status != 200 or not isinstance(body, list):  # noqa: PLR2004
        report.problem(f"GET /v2/profiles answered HTTP {status} {_message(body)}".rstrip())
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
    if not settings.advertiser_id:
        report.line(f"advertiser_id is not set; advertisers available: {', '.join(agencies)}")
        return profiles
    found = by_account.get(settings.advertiser_id)
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


def _dsp_headers(settings: Settings) -> dict[str, str]:
    assert settings.advertiser_id
    headers = {
        "Amazon-Ads-AccountId": settings.advertiser_id,
        "Content-Type": DSP_DEFINITION_MEDIA_TYPE,
        "Accept": DSP_DEFINITION_MEDIA_TYPE,
    }
    if settings.profile_id:
        headers["Amazon-Advertising-API-Scope"] = settings.profile_id
    return headers


def _check_definitions(
    api: _Api, settings: Settings, report: _Report
) -> list[dict[str, Any]] | None:
    advertiser = settings.advertiser_id
    url = f"{settings.api_url}/accounts/{advertiser}/dsp/conversionDefinitions/list"
    found: list[dict[str, Any]] = []
    page: dict[str, Any] = {"maxResults": PAGE_SIZE}
    while True:
        status, body = api.call("POST", url, _dsp_headers(settings), json.dumps(page).encode())
        if status == 403:  # noqa: PLR2004
            report.problem(
                f"no access to the conversion definitions of advertiser {advertiser} (HTTP 403 "
                f"{_message(body)}): the user who signed in needs Events Manager permission "
                "(event_manager_view to list, event_manager_edit to upload) on this advertiser"
            )
            return None
        if status != 200 or not isinstance(body, dict):  # noqa: PLR2004
            report.problem(
                f"listing conversion definitions of advertiser {advertiser}: HTTP {status} "
                f"{_message(body)}".rstrip()
            )
            return None
        found.extend(d for d in body.get("conversionDefinitions") or [] if isinstance(d, dict))
        if not body.get("nextToken"):
            break
        page = {"maxResults": PAGE_SIZE, "nextToken": body["nextToken"]}
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
    settings: Settings, found: list[dict[str, Any]], report: _Report
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


def _probe_upload(api: _Api, settings: Settings, report: _Report) -> None:
    """Verify event_manager_edit with one event Amazon must refuse (see PROBE_DEFINITION_ID)."""
    assert settings.advertiser_id and settings.client_id
    event = {
        "conversionDefinitionId": PROBE_DEFINITION_ID,
        "name": "connection check",
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "countryCode": "US",
        "matchKeys": [{"type": "EMAIL", "values": [hashlib.sha256(b"check@invalid").hexdigest()]}],
        "clientDedupeId": "connection-check-" + secrets.token_hex(8),
        "dataProcessingOptions": "LIMITED_DATA_USE",
    }
    request = DspApi().build_request(
        (settings.advertiser_id, settings.source),
        [json.dumps(event).encode()],
        api_url=settings.api_url,
        client_id=settings.client_id,
        profile_id=settings.profile_id,
    )
    status, body = api.call(request.method, request.url, request.headers, request.body)
    if status == 207:  # noqa: PLR2004
        refused = isinstance(body, dict) and bool(body.get("error"))
        report.line(
            "event_manager_edit: OK (Amazon took the upload call; "
            + (
                "the probe event was refused, as intended)"
                if refused
                else "the probe event is marked LIMITED_DATA_USE, so Amazon does not process it)"
            )
        )
    elif status == 403:  # noqa: PLR2004
        report.problem(
            f"the user who signed in cannot upload conversions for advertiser "
            f"{settings.advertiser_id} (HTTP 403 {_message(body)}): ask an admin of the "
            "advertiser to grant Events Manager 'View and Edit' (event_manager_edit)"
        )
    else:
        report.problem(f"upload probe answered HTTP {status} {_message(body)}".rstrip())


# ---------------------------------------------------------------------------- helpers
def _json(response: requests.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("details") or body.get("code") or "")
    return ""


def _host(url: str) -> str:
    return urlsplit(url).netloc


if __name__ == "__main__":
    main()
