"""`target-amazon-dsp-conversions-auth login|check` end to end against the emulator.

The login tests play the browser: they GET the printed consent URL from the emulator's
`/ap/oa` without following redirects, then deliver the 302's Location to the CLI's loopback
listener (or paste it on stdin, as a user on a headless machine would).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit, urlunsplit

import pytest
import requests

from tests.emulator import AmazonAdsEmulator
from tests.openapi_schemas import request_errors

AUTH = shutil.which("target-amazon-dsp-conversions-auth", path=str(Path(sys.executable).parent))
PROGRAM = "target-amazon-dsp-conversions-auth"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_AMAZON_DSP_")}
    return {**env, **(extra or {})}


# ---------------------------------------------------------------------------- login
class Login:
    """A running `login`: the consent URL it printed, and its process."""

    def __init__(
        self,
        emulator: AmazonAdsEmulator,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        **config: Any,
    ):
        assert AUTH, "console script not installed (pip install -e .)"
        settings = {
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "auth_url": emulator.token_url,
            **config,
        }
        self.secret = settings["client_secret"]
        (workdir / "config.json").write_text(json.dumps(settings))
        self.process = subprocess.Popen(
            [AUTH, "login", "--config", "config.json", "--no-browser", "--port", "0",
             "--authorize-url", emulator.authorize_url, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=workdir,
            env=_env(env),
        )  # fmt: skip
        self.lines: list[str] = []
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if "/ap/oa?" in line:
                self.consent_url = line.strip()
                break
        else:
            pytest.fail(f"login printed no consent URL: {''.join(self.lines)}")

    def consent(self) -> str:
        """Be the browser at Amazon: the address Amazon redirects to."""
        answer = requests.get(self.consent_url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302
        return answer.headers["Location"]

    def paste(self, address: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(address + "\n")
        self.process.stdin.flush()

    def finish(self) -> tuple[int, str, str]:
        # Read through the same file objects: the lines already read ahead stay in their buffers.
        self.process.wait(timeout=60)
        assert self.process.stdin and self.process.stdout and self.process.stderr
        self.process.stdin.close()
        out = self.process.stdout.read()
        err = "".join(self.lines) + self.process.stderr.read()
        # The client secret is never shown, whatever happened.
        assert self.secret not in out + err
        return self.process.returncode, out, err


@pytest.fixture
def kill_on_exit():
    started: list[Login] = []
    yield started.append
    for login in started:
        if login.process.poll() is None:
            login.process.kill()
            login.process.wait()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{PROGRAM}: error:")]


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_login_through_the_loopback_listener_then_check_passes(emulator, tmp_path, kill_on_exit):
    login = Login(emulator, tmp_path)
    kill_on_exit(login)
    asked = _query(login.consent_url)
    assert asked["scope"] == "advertising::campaign_management"
    assert asked["response_type"] == "code"
    assert asked["client_id"] == emulator.client_id
    assert urlsplit(asked["redirect_uri"]).hostname == "127.0.0.1"
    assert asked["redirect_uri"].endswith("/callback")

    location = login.consent()
    assert location.startswith(asked["redirect_uri"] + "?")
    page = requests.get(location, timeout=10)
    assert page.status_code == 200
    assert "close this window" in page.text

    status, out, err = login.finish()
    assert status == 0, err
    refresh_token = out.strip()
    assert refresh_token.startswith("Atzr|")
    assert refresh_token in emulator.refresh_tokens
    assert refresh_token not in err  # stdout only, so `$(... login)` captures just the token
    exchanges = [r for r in emulator.requests if r.path == "/auth/o2/token"]
    assert exchanges[0].body["grant_type"] == "authorization_code"
    assert exchanges[0].body["redirect_uri"] == asked["redirect_uri"]

    # The new token works for the target's settings.
    config = emulator.target_config(refresh_token=refresh_token)
    result = _check(tmp_path, config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: no problems found" in result.stdout


def test_headless_login_takes_the_pasted_address(emulator, tmp_path, kill_on_exit):
    # Amazon Ads' own guide uses an https return URL the user copies from the address bar.
    login = Login(emulator, tmp_path, "--redirect-uri", "https://amazon.example/")
    kill_on_exit(login)
    location = login.consent()
    assert location.startswith("https://amazon.example/?code=")
    login.paste(location)
    status, out, err = login.finish()
    assert status == 0, err
    assert "paste the address it was sent to (it starts with https://amazon.example/?code=)" in err
    assert "Waiting for Amazon" not in err  # no listener for a non-loopback return URL
    assert out.strip() in emulator.refresh_tokens


def test_login_refuses_a_redirect_with_another_state(emulator, tmp_path, kill_on_exit):
    login = Login(emulator, tmp_path)
    kill_on_exit(login)
    parts = urlsplit(login.consent())
    forged = {**{k: v[0] for k, v in parse_qs(parts.query).items()}, "state": "forged"}
    page = requests.get(urlunsplit(parts._replace(query=urlencode(forged))), timeout=10)
    assert page.status_code == 400
    status, out, err = login.finish()
    assert status == 1
    assert out == ""
    assert _error_lines(err) == [
        f"{PROGRAM}: error: the redirect's state does not match this login (an old or foreign "
        "sign-in link?); run login again and use the address it prints"
    ]
    assert "Traceback" not in err
    assert not [r for r in emulator.requests if r.path == "/auth/o2/token"]  # code not used


def test_login_says_when_consent_was_denied(emulator, tmp_path, kill_on_exit):
    emulator.authorize_denied = True
    login = Login(emulator, tmp_path)
    kill_on_exit(login)
    location = login.consent()
    assert _query(location)["error"] == "access_denied"
    requests.get(location, timeout=10)
    status, out, err = login.finish()
    assert status == 1
    assert out == ""
    assert _error_lines(err) == [
        f"{PROGRAM}: error: the sign-in was cancelled or access was denied (access_denied); "
        "run login again and choose Allow"
    ]


def test_login_names_the_client_credentials_when_the_exchange_is_refused(
    emulator, tmp_path, kill_on_exit
):
    login = Login(emulator, tmp_path, client_secret="not-the-secret")
    kill_on_exit(login)
    requests.get(login.consent(), timeout=10)
    status, out, err = login.finish()
    assert status == 1
    assert out == ""
    assert _error_lines(err) == [
        f"{PROGRAM}: error: Login with Amazon refused client_id/client_secret (invalid_client); "
        "check both settings"
    ]


def test_login_can_save_the_token_with_meltano(emulator, tmp_path, kill_on_exit):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "meltano"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(tmp_path / 'meltano.json')!r}, 'w').write("
        "json.dumps({'argv': sys.argv[1:], 'stdin': sys.stdin.read()}))\n"
    )
    fake.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    login = Login(emulator, tmp_path, "--meltano", env={"PATH": path})
    kill_on_exit(login)
    requests.get(login.consent(), timeout=10)
    status, out, err = login.finish()
    assert status == 0, err
    saved = json.loads((tmp_path / "meltano.json").read_text())
    assert saved["argv"] == [
        "config", "set", "target-amazon-dsp-conversions", "refresh_token", "--from-file", "-",
    ]  # fmt: skip
    token = saved["stdin"]
    assert token in emulator.refresh_tokens
    assert token not in out + err  # not printed, not on meltano's command line
    assert out == ""
    assert f"Saved refresh_token {token[:5]}...{token[-4:]}" in err


# ---------------------------------------------------------------------------- check
def _check(
    workdir: Path, config: dict[str, Any] | None, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert AUTH, "console script not installed (pip install -e .)"
    command = [AUTH, "check", *args]
    if config is not None:
        (workdir / "check.json").write_text(json.dumps(config))
        command += ["--config", "check.json"]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=workdir, env=_env(env), timeout=120,
        check=False,
    )  # fmt: skip
    # Tokens and the secret never show, whatever the outcome.
    for secret in ("Atza|", "Atzr|", "test-client-secret"):
        assert secret not in result.stdout + result.stderr
    return result


def _problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("problem: ")]


def test_check_prints_profiles_advertiser_and_definitions(emulator, tmp_path):
    result = _check(tmp_path, emulator.target_config())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "Sign-in: OK (Login with Amazon issued an access token)" in lines
    assert "Profiles (3):" in lines
    assert any(line.split()[:4] == ["3333333333", "US", "agency", "1234567890"] for line in lines)
    assert "Advertiser 1234567890: 'Test Advertiser', profile 3333333333" in lines
    assert "Conversion definitions of advertiser 1234567890 (5):" in lines
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  cd-")}
    assert rows["cd-purchase"] == ["purchase", "SERVER_TO_SERVER", "OFF_AMAZON_PURCHASES"]
    assert rows["cd-web-purchase"][1] == "AMAZON_AD_TAG"
    assert lines[-1] == "OK: no problems found"
    assert _problems(result) == []
    # Read-only unless asked: nothing was uploaded or created.
    assert [r.path for r in emulator.requests if r.method == "POST" and "eventData" in r.path] == []


def test_check_reads_settings_from_the_environment_as_meltano_passes_them(emulator, tmp_path):
    env = {
        f"TARGET_AMAZON_DSP_CONVERSIONS_{k.upper()}": v for k, v in emulator.target_config().items()
    }
    result = _check(tmp_path, None, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: no problems found" in result.stdout


def _revoke(emu: AmazonAdsEmulator) -> None:
    emu.revoked_refresh_tokens.update(emu.refresh_tokens)


def _reject_all_tokens(emu: AmazonAdsEmulator) -> None:
    emu.faults.token_expires_after_requests = 0


def _no_permissions(emu: AmazonAdsEmulator) -> None:
    emu.add_advertiser("7777777777", profile_id="8888888888", permissions=(), name="No Access")


CHECK_FAILURES = [
    pytest.param(
        {"refresh_token": None}, None,
        "refresh_token is not set: sign in with Amazon (target-amazon-dsp-conversions-auth login)",
        id="no-refresh-token",
    ),
    pytest.param(
        {}, _revoke,
        "Login with Amazon refused the refresh token (invalid_grant): it was revoked or is "
        "invalid. Sign in with Amazon again (target-amazon-dsp-conversions-auth login) and "
        "update the refresh_token setting",
        id="revoked-token",
    ),
    pytest.param(
        {"client_secret": "wrong"}, None,
        "Login with Amazon refused client_id/client_secret (invalid_client); check the "
        "client_id and client_secret settings",
        id="wrong-client-secret",
    ),
    pytest.param(
        {}, _reject_all_tokens,
        "the NA API host refused a fresh access token (HTTP 401): wrong region? set region to "
        "where your advertisers are (NA, EU or FE) and check that the app has Amazon Ads API "
        "access",
        id="401-wrong-region",
    ),
    pytest.param(
        {"advertiser_id": "ENTITY2ABCDEF123"}, None,
        "advertiser_id ENTITY2ABCDEF123 is a DSP entity ID: use the numeric DSP advertiser ID "
        "(the profiles listed above show the ones you can use)",
        id="entity-id",
    ),
    pytest.param(
        {"advertiser_id": "9999999999", "profile_id": None}, None,
        "advertiser_id 9999999999 is not among the advertisers this sign-in reaches in region "
        "NA; available: 1234567890, 2222222222, 5555555555",
        id="unknown-advertiser",
    ),
    pytest.param(
        {"profile_id": "4444444444"}, None,
        "profile_id 4444444444 is not the profile of advertiser 1234567890: set profile_id to "
        "3333333333 (or leave it unset)",
        id="other-profile",
    ),
    pytest.param(
        {"advertiser_id": "7777777777", "profile_id": "8888888888"}, _no_permissions,
        "no access to the conversion definitions of advertiser 7777777777 (HTTP 403 Missing "
        "permission event_manager_edit or event_manager_view): the user who signed in needs "
        "Events Manager permission (event_manager_view to list, event_manager_edit to upload) "
        "on this advertiser",
        id="no-events-manager-permission",
    ),
    pytest.param(
        {"advertiser_id": "2222222222", "profile_id": "4444444444", "source": "AMAZON_AD_TAG"},
        None,
        "advertiser 2222222222 has no conversion definition for source AMAZON_AD_TAG: create "
        "one in Amazon DSP (Events Manager), set create_missing_definitions: true, or change "
        "source",
        id="no-definition-for-source",
    ),
    pytest.param(
        {"conversion_definitions": {"purchase": "cd-web-purchase", "lead": "cd-gone"}}, None,
        "conversion_definitions.purchase: cd-web-purchase takes AMAZON_AD_TAG events but "
        "source is SERVER_TO_SERVER; pick a SERVER_TO_SERVER definition",
        id="configured-definition-other-source",
    ),
    pytest.param(
        {"conversion_definitions": {"lead": "cd-gone"}}, None,
        "conversion_definitions.lead: cd-gone is not a conversion definition of advertiser "
        "1234567890; use one of the IDs listed above",
        id="configured-definition-missing",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "setup", "problem"), CHECK_FAILURES)
def test_check_says_what_to_fix(emulator, tmp_path, overrides, setup, problem):
    if setup:
        setup(emulator)
    config = {k: v for k, v in emulator.target_config(**overrides).items() if v is not None}
    result = _check(tmp_path, config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"problem: {problem}" in _problems(result)
    assert "Traceback" not in result.stderr


def test_check_names_a_bad_setting_beside_missing_credentials(emulator, tmp_path):
    config = {"advertiser_id": "1234567890", "dryrun": True}
    result = _check(tmp_path, config)
    assert result.returncode == 1
    assert _problems(result) == [
        "problem: client_id is not set: the LwA client ID of your Amazon Ads API app",
        "problem: client_secret is not set: the LwA client secret of your Amazon Ads API app",
        "problem: refresh_token is not set: sign in with Amazon "
        "(target-amazon-dsp-conversions-auth login)",
        "problem: unknown setting 'dryrun'; did you mean 'dry_run'?",
    ]
    assert "Traceback" not in result.stderr


def test_check_lists_the_available_advertisers_for_an_entity_id(emulator, tmp_path):
    result = _check(tmp_path, emulator.target_config(advertiser_id="ENTITY2ABCDEF123"))
    assert result.returncode == 1
    assert "DSP advertiser IDs available: 1234567890, 2222222222, 5555555555" in result.stdout
    assert "advertiser_id is not set" not in result.stdout  # it is set, to the wrong kind of ID
    assert len(_problems(result)) == 1


def test_check_takes_an_entity_id_for_the_events_api(emulator, tmp_path):
    # The run takes one with api: events (Amazon's 2026 custom-attributes sample sends one as
    # Amazon-Ads-AccountId); check agrees, and says the first upload verifies it.
    config = emulator.target_config(api="events", advertiser_id="ENTITY1TESTADVERTISER")
    result = _check(tmp_path, config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _problems(result) == []
    assert (
        "Advertiser ENTITY1TESTADVERTISER: an entity ID, which no profile lists; the Events API "
        "checks it at the first upload"
    ) in result.stdout
    assert "OK: no problems found" in result.stdout


def test_check_says_wrong_region_when_there_are_no_profiles(tmp_path):
    with AmazonAdsEmulator(with_defaults=False) as emu:
        result = _check(tmp_path, emu.target_config())
    assert result.returncode == 1
    assert _problems(result) == [
        "problem: this sign-in has no advertising profiles in region NA: wrong region? set "
        "region (NA, EU, FE), or sign in as a user with access to the advertiser"
    ]


def test_probe_upload_finds_a_missing_edit_permission(emulator, tmp_path):
    config = emulator.target_config(advertiser_id="5555555555", profile_id="6666666666")
    plain = _check(tmp_path, config)
    assert plain.returncode == 0  # listing needs only event_manager_view
    assert "event_manager_edit: not checked" in plain.stdout

    probed = _check(tmp_path, config, "--probe-upload")
    assert probed.returncode == 1
    assert _problems(probed) == [
        "problem: the user who signed in cannot upload conversions for advertiser 5555555555 "
        "(HTTP 403 Missing permission event_manager_edit): ask an admin of the advertiser to "
        "grant Events Manager 'View and Edit' (event_manager_edit)"
    ]


def test_probe_upload_is_refused_by_amazon_and_uploads_nothing(emulator, tmp_path):
    result = _check(tmp_path, emulator.target_config(), "--probe-upload")
    assert result.returncode == 0, result.stdout
    assert (
        "event_manager_edit: OK (Amazon took the upload call; the probe event was refused, "
        "as intended)" in result.stdout
    )
    probes = [r for r in emulator.requests if r.path.endswith("/eventData")]
    assert len(probes) == 1
    assert request_errors("dsp", probes[0].body) == []
    assert probes[0].body["eventData"][0]["dataProcessingOptions"] == "LIMITED_DATA_USE"
    assert emulator.accepted == []
    assert [r["code"] for r in emulator.rejected] == ["CONVERSION_DEFINITION_NOT_FOUND"]


def test_check_reports_a_bad_setting_in_one_line(emulator, tmp_path):
    result = _check(tmp_path, emulator.target_config(region="MARS"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{PROGRAM}: error: setting 'region': must be one of NA, EU, FE, got 'MARS'"
    )


# ---------------------------------------------------------------- a server that echoes secrets
def _echoed(*values: str) -> list[str]:
    """The values as is and form-encoded, as a token request carries them."""
    return [*values, *(quote_plus(value) for value in values)]


def test_login_output_holds_no_secret_the_token_endpoint_echoes(emulator, tmp_path, kill_on_exit):
    emulator.faults.echo_request = True
    login = Login(emulator, tmp_path, client_secret="not-the-secret")
    kill_on_exit(login)
    location = login.consent()
    code = _query(location)["code"]
    requests.get(location, timeout=10)
    status, out, err = login.finish()
    assert status == 1
    (line,) = _error_lines(err)
    assert "[redacted]" in line  # the server's quote is shown, the secrets blanked out
    for secret in _echoed("not-the-secret", code):
        assert secret not in out + err


def _refuse_first_api_call(emu: AmazonAdsEmulator) -> None:
    emu.faults.fail_first_n, emu.faults.fail_status = 1, 400


@pytest.mark.parametrize("setup", [_revoke, _refuse_first_api_call], ids=["token-call", "api-call"])
def test_check_output_holds_no_secret_a_server_echoes(emulator, tmp_path, setup):
    emulator.faults.echo_request = True
    setup(emulator)
    result = _check(tmp_path, emulator.target_config())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[redacted]" in result.stdout + result.stderr
    tokens = {
        r.headers["Authorization"].split(" ", 1)[1]
        for r in emulator.requests
        if r.headers.get("Authorization", "").startswith("Bearer ")
    }
    for secret in _echoed(emulator.client_secret, *emulator.refresh_tokens, *tokens):
        assert secret not in result.stdout + result.stderr
