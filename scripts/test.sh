#!/usr/bin/env bash
# Everything CI runs: creates .venv (the project with its dev extra) and .venv-meltano, installs
# the PostgreSQL server when missing (Debian package; the Meltano end-to-end test starts a
# throwaway cluster with it), then ruff, mypy and the whole pytest suite.
# Exits non-zero when any step fails; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

make_venv .venv  # first and alone: it may install python3-venv with apt
# The two installs are independent and each is mostly pip waiting on itself: side by side
# (on 2 cores ~35 s sooner). Meltano's output is shown once it is done.
meltano_log=$(mktemp)
(meltano_venv) >"$meltano_log" 2>&1 &
meltano_pid=$!
log "Installing the project with its dev extra into .venv"
pip_install .venv -e '.[dev]'
meltano_status=0
wait "$meltano_pid" || meltano_status=$?
cat "$meltano_log"
rm -f "$meltano_log"
if [ "$meltano_status" != 0 ]; then
    log "FAILED: creating .venv-meltano (exit $meltano_status)"
    exit 1
fi

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null; then
    log "Installing the PostgreSQL server (for the Meltano + tap-postgres end-to-end test)"
    apt_install postgresql
fi

failed=()
log "ruff check"
.venv/bin/ruff check . || failed+=(ruff)
log "mypy"
.venv/bin/mypy || failed+=(mypy)
# In parallel (TEST_WORKERS=N to choose); a test file runs in one worker, so its module fixtures
# (Meltano projects, built wheels) are made once. Many tests wait on a server or a subprocess,
# so one worker more than there are cores keeps every core busy (2 cores: 8.3 min, not 10.8).
workers=${TEST_WORKERS:-$(($(nproc) + 1))}
# Hundreds of tests start the target (and its workers) as new processes. The editable install
# leaves the package's bytecode unwritten until an import writes it, and under
# PYTHONDONTWRITEBYTECODE (set on this machine) no import does: each process would compile
# the package again (~0.15 s of CPU). Written once here; a file edited later is recompiled.
.venv/bin/python -m compileall -q target_amazon_dsp_conversions tests >/dev/null
log "pytest ($workers workers)"
status=0
.venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    failed+=("pytest (no tests collected)")
elif [ "$status" != 0 ]; then
    failed+=("pytest (exit $status)")
fi

if [ "${#failed[@]}" != 0 ]; then
    log "FAILED: ${failed[*]}"
    exit 1
fi
log "All checks passed"
