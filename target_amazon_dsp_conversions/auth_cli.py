"""`target-amazon-dsp-conversions-auth`: Sign in with Amazon (`login`) and a connection check.

The console entry only: it parses the command line, reads the settings the way the target
does (--config files, ENV, .env), and hands them to `login.sign_in` or
`connection_check.check`. User errors print one line and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from target_amazon_dsp_conversions import package_version, redaction
from target_amazon_dsp_conversions.config_sources import (
    ENV_PREFIX,
    MELTANO_LOADER_NAME,
    load_config,
)
from target_amazon_dsp_conversions.connection_check import check
from target_amazon_dsp_conversions.errors import UserError
from target_amazon_dsp_conversions.login import (
    AUTHORIZE_URLS,
    DEFAULT_PORT,
    DEFAULT_WAIT_SECONDS,
    sign_in,
)

PROGRAM = "target-amazon-dsp-conversions-auth"
PLUGIN = "target-amazon-dsp-conversions"
AUTHORIZE_URL_ENV = ENV_PREFIX + "AUTHORIZE_URL"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one line and exit 1, without a traceback."""
    redaction.install()
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
    parser.add_argument("--version", action="version", version=f"%(prog)s v{package_version()}")
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
    login.add_argument(
        "--plugin",
        default=os.environ.get(MELTANO_LOADER_NAME) or PLUGIN,
        help=f"Meltano plugin name for --meltano (default: the one running it, else {PLUGIN})",
    )
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
    print(f"{PROGRAM}: error: {redaction.redact(message)}", file=sys.stderr)  # noqa: T201
    sys.exit(status)


# ---------------------------------------------------------------------------- commands
def _login(args: argparse.Namespace) -> int:
    config = _config(args.config)
    if args.region:
        config["region"] = args.region
    return sign_in(
        config,
        authorize_url=args.authorize_url or os.environ.get(AUTHORIZE_URL_ENV),
        redirect_uri=args.redirect_uri,
        port=args.port,
        open_browser=not args.no_browser,
        timeout=args.timeout,
        meltano_plugin=args.plugin if args.meltano else None,
        setting_hint=_how_to_set(),
        next_step=_command("check", args.plugin if args.meltano else None),
    )


def _check(args: argparse.Namespace) -> int:
    return check(
        _config(args.config), probe_upload=args.probe_upload, login_command=_command("login")
    )


def _how_to_set() -> str:
    """How the user sets a setting where they are: under `meltano invoke`, with Meltano."""
    plugin = os.environ.get(MELTANO_LOADER_NAME)
    if plugin:
        return f"set it with `meltano config set {plugin} <setting> <value>`"
    return f"set it in the config file or {ENV_PREFIX}<NAME>"


def _command(name: str, plugin: str | None = None) -> str:
    """How the user runs one of these commands where they are: inside Meltano, through the
    loader (`meltano invoke <loader>:check`), else as this program."""
    plugin = plugin or os.environ.get(MELTANO_LOADER_NAME)
    if plugin:
        return f"meltano invoke {plugin}:{name}"
    return f"{PROGRAM} {name}"


def _config(sources: list[str]) -> dict[str, Any]:
    """Config as the target reads it (files merged in order, then ENV). Without --config the
    environment is read, which is how `meltano invoke` passes settings."""
    return load_config(sources, environment=not sources)


if __name__ == "__main__":
    main()
