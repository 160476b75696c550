#!/usr/bin/env bash
# Runs the test suite on every Python the package claims (3.10 to 3.13) that this machine has,
# each in a venv of its own (.venv-3.10, .venv-3.11, ...; the project with its dev extra,
# editable), then prints one line per version. Meltano keeps its own .venv-meltano, as in
# scripts/test.sh. Arguments go to pytest, e.g.
#   bash scripts/test-pythons.sh                          # the whole suite on each version
#   bash scripts/test-pythons.sh tests/test_packaging.py -q
# Interpreters are looked for under pyenv (`pyenv root`, ~/.pyenv), then as python3.X on PATH.
# Logs: output/test-pythons/<version>.log. Exits non-zero when a version fails or is missing
# (ALLOW_MISSING=1 lets a missing one pass).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib.sh

VERSIONS=(3.10 3.11 3.12 3.13)
LOGS=output/test-pythons
mkdir -p "$LOGS"

# find_version 3.X: the path of a working python3.X, or nothing.
find_version() {
    local version=$1 pattern candidate roots=()
    command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root)")
    roots+=("${PYENV_ROOT:-$HOME/.pyenv}")
    for pattern in "${roots[@]/%//versions/$version.*/bin/python$version}" \
        "$(command -v "python$version" 2>/dev/null)" "/usr/bin/python$version"; do
        # (a glob that matched nothing stays literal and fails the test below)
        for candidate in $pattern; do
            if [ -x "$candidate" ] && "$candidate" -c "import sys, venv
sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$version')" 2>/dev/null; then
                echo "$candidate"
                return 0
            fi
        done
    done
    return 1
}

meltano_venv >/dev/null
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null; then
    log "Installing the PostgreSQL server (for the Meltano + tap-postgres end-to-end test)"
    apt_install postgresql
fi

declare -A result
status=0
for version in "${VERSIONS[@]}"; do
    if ! python=$(find_version "$version"); then
        result[$version]="missing (no python$version found)"
        [ "${ALLOW_MISSING:-}" = 1 ] || status=1
        continue
    fi
    venv=".venv-$version"
    log "Python $version: $python -> $venv"
    if ! PYTHON=$python make_venv "$venv" || ! pip_install "$venv" -e '.[dev]'; then
        result[$version]="FAILED to install (see above)"
        status=1
        continue
    fi
    started=$SECONDS
    "$venv/bin/python" -m pytest -p no:cacheprovider "$@" 2>&1 | tee "$LOGS/$version.log"
    code=${PIPESTATUS[0]}
    summary=$(grep -E '^=* ?[0-9]+ (passed|failed|error|skipped)|no tests ran' "$LOGS/$version.log" |
        tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
    result[$version]="$( [ "$code" = 0 ] && echo passed || echo "FAILED (exit $code)" ): ${summary:-no summary} [$((SECONDS - started))s, $("$venv/bin/python" --version)]"
    [ "$code" = 0 ] || status=1
done

log "Results (logs in $LOGS/)"
for version in "${VERSIONS[@]}"; do
    printf '  %-5s %s\n' "$version" "${result[$version]}"
done
exit "$status"
