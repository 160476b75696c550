"""Login with Amazon's authorization-code grant, run from a terminal (`... -auth login`).

Prints (and opens) the consent URL, takes the redirect on a loopback listener or pasted on
stdin, checks `state`, and exchanges the code for a refresh token, which goes to stdout or,
with `meltano config set`, into the Meltano project. Never prints the client secret.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shutil
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from target_amazon_dsp_conversions import redaction
from target_amazon_dsp_conversions.answers import Meaning, meaning
from target_amazon_dsp_conversions.errors import SettingError, UserError
from target_amazon_dsp_conversions.http_session import Sessions, read_json
from target_amazon_dsp_conversions.http_types import Call
from target_amazon_dsp_conversions.startup_checks import checked_settings

SCOPE = "advertising::campaign_management"
# Login with Amazon's consent page per region (NA from Amazon's LwA docs; EU/FE as Amazon Ads
# integrations use them).
AUTHORIZE_URLS = {
    "NA": "https://www.amazon.com/ap/oa",
    "EU": "https://eu.account.amazon.com/ap/oa",
    "FE": "https://apac.account.amazon.com/ap/oa",
}
DEFAULT_PORT = 8484
DEFAULT_WAIT_SECONDS = 600.0


def say(message: str = "") -> None:
    """Instructions and progress go to stderr: stdout carries only the refresh token."""
    print(redaction.redact(message), file=sys.stderr, flush=True)  # noqa: T201


def sign_in(
    config: Mapping[str, Any],
    *,
    authorize_url: str | None,
    redirect_uri: str | None,
    port: int,
    open_browser: bool,
    timeout: float,
    meltano_plugin: str | None,
    setting_hint: str,
    next_step: str,
) -> int:
    """Run the sign-in; save the refresh token with Meltano when `meltano_plugin` is given.

    `authorize_url` None means the region's consent page; `redirect_uri` None (or a loopback
    URL) means a listener on `port`; `setting_hint` says how client_id/client_secret are set
    where the user is ("set it ...").
    """
    # Only what login needs is checked: other settings may still be unfinished at this point.
    wanted = ("region", "auth_url", "request_timeout")
    settings = checked_settings({k: config[k] for k in wanted if k in config} | {"dry_run": True})
    fix = f"{setting_hint} (from your LwA security profile)"
    client_id = _required(config, "client_id", fix)
    client_secret = _required(config, "client_secret", fix)
    redaction.register(client_secret)
    authorize_url = authorize_url or AUTHORIZE_URLS[settings.region]
    state = secrets.token_urlsafe(24)
    answers: queue.Queue[str | None] = queue.Queue()
    listener = None
    if redirect_uri is None or _is_loopback(redirect_uri):
        listener = _start_listener(redirect_uri, port, state, answers)
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
    say("Open this address in a browser and sign in with the Amazon user that has access to")
    say("your Amazon DSP advertisers:")
    say()
    say(f"  {consent}")
    say()
    if open_browser and webbrowser.open(consent):
        say("(opened in your browser)")
    if listener:
        say(f"Waiting for Amazon to redirect to {redirect_uri} ...")
    say(
        "If the browser runs elsewhere, paste the address it was sent to "
        f"(it starts with {redirect_uri}?code=) and press Enter:"
    )
    threading.Thread(target=_read_pasted, args=(answers,), daemon=True).start()
    try:
        query = _wait_for_redirect(answers, timeout, listener is not None)
    finally:
        if listener:
            listener.stop()
    code = code_from_redirect(query, state)
    redaction.register(code)
    refresh_token = exchange_code(
        code,
        redirect_uri=redirect_uri,
        client_id=client_id,
        client_secret=client_secret,
        token_url=settings.auth_url,
        timeout=settings.request_timeout,
    )
    if meltano_plugin:
        try:
            _meltano_set(meltano_plugin, "refresh_token", refresh_token)
        except UserError as exc:
            # The sign-in worked: the token must not be lost with the error.
            say(f"Signed in, but the refresh token could not be saved: {exc}.")
            say("Save it yourself: run")
            say(f"  meltano config set {meltano_plugin} refresh_token --from-file -")
            say("in the project, paste the token printed below and press Ctrl-D (or put it in")
            say(f"the project's .env as {_env_var(meltano_plugin)}='<token>'):")
            print(refresh_token, flush=True)  # noqa: T201 - kept, as it could not be saved
            return 1
        say(f"Saved refresh_token {mask(refresh_token)} for {meltano_plugin} (meltano config set).")
    else:
        say("Signed in. The refresh token (set it as the refresh_token setting):")
        print(refresh_token, flush=True)  # noqa: T201 - the point of `login`
    say(f"Next: {next_step}")
    return 0


def _required(config: Mapping[str, Any], name: str, fix: str) -> str:
    value = config.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SettingError(name, f"is required: {fix}")
    return value.strip()


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
        response = Sessions().request("POST", token_url, data=form, headers={}, timeout=timeout)
    except requests.RequestException as exc:
        host = urlsplit(token_url).netloc
        raise UserError(
            f"could not reach Login with Amazon at {host} ({type(exc).__name__})"
        ) from None
    body = read_json(response)
    if not isinstance(body, dict):
        body = {}
    found = meaning(Call.TOKEN, response.status_code)
    if found is Meaning.DONE and isinstance(body.get("refresh_token"), str):
        return str(body["refresh_token"])
    error = str(body.get("error") or f"HTTP {response.status_code}")
    if found is Meaning.RETRY:  # the code may be spent: a new sign-in is the safe retry
        raise UserError(
            f"Login with Amazon could not exchange the code now ({error}); run login again"
        )
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


def _env_var(plugin: str) -> str:
    """The variable Meltano reads a plugin's refresh_token from."""
    return re.sub(r"[^A-Za-z0-9]", "_", plugin).upper() + "_REFRESH_TOKEN"


def meltano_command() -> list[str] | None:
    """The Meltano that started this process (`meltano invoke plugin:login` runs it from a
    project whose Meltano is often in a venv, not on PATH): the parent's command line, if it is
    Meltano's; else `meltano` on PATH; None when there is neither."""
    parent = _parent_command_line()
    for end in range(min(len(parent), 2)):
        # `meltano ...` (a launcher), or `python .../bin/meltano ...` (a console script).
        if Path(parent[end]).name == "meltano" and Path(parent[end]).is_file():
            return parent[: end + 1]
    found = shutil.which("meltano")
    return [found] if found else None


def _parent_command_line() -> list[str]:
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:  # no /proc (macOS): ask ps; arguments with spaces are rare here
        try:
            listed = subprocess.run(
                ["ps", "-o", "command=", "-p", str(os.getppid())],
                capture_output=True, text=True, check=False, timeout=10,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return []
        return listed.stdout.split()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _meltano_set(plugin: str, setting: str, value: str) -> None:
    meltano = meltano_command()
    if meltano is None:
        raise UserError("no Meltano started this command and meltano is not on PATH")
    # The value goes through stdin (Meltano >= 3.2 `--from-file -`), never the command line,
    # where `ps` would show it.
    result = subprocess.run(
        [*meltano, "config", "set", plugin, setting, "--from-file", "-"],
        input=value,
        capture_output=True,
        text=True,
        check=False,
        cwd=os.environ.get("MELTANO_PROJECT_ROOT"),
    )
    if result.returncode != 0:
        output = (result.stderr + result.stdout).strip().splitlines() or ["no message"]
        last = output[-1].replace(value, "****")
        raise UserError(f"meltano config set failed (exit {result.returncode}: {last})")


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
