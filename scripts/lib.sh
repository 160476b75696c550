# Shared by scripts/demo.sh and scripts/test.sh: find Python >= 3.10 and create the venvs.
# Works on a fresh Debian machine with only Python and the package registries.

log() { printf '\n==> %s\n' "$*"; }

# The Python that creates the venvs: $PYTHON, else python3.13 ... python3.10, else python3.
find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.10 or newer is needed (set PYTHON=/path/to/python3)" >&2
    return 1
}

# as root, install Debian packages (after one apt-get update per script run)
_apt_updated=""
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing $*; install it with: sudo apt-get install -y $*" >&2
        return 1
    fi
    if [ -z "$_apt_updated" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# make_venv DIR: a venv with an up-to-date pip (Debian's python3 needs python3-venv for this).
make_venv() {
    local dir=$1 python
    [ -x "$dir/bin/python" ] && "$dir/bin/python" -m pip --version >/dev/null 2>&1 && return 0
    python=$(find_python)
    log "Creating $dir with $("$python" --version)"
    rm -rf "$dir"
    if ! "$python" -m venv "$dir" 2>/dev/null; then
        rm -rf "$dir"
        local minor
        minor=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install "python${minor}-venv" || apt_install python3-venv
        "$python" -m venv "$dir"
    fi
    pip_install "$dir" --upgrade pip
}

# Meltano lives in its own venv: its pins may clash with the target's singer-sdk.
meltano_venv() {
    make_venv .venv-meltano
    log "Installing Meltano into .venv-meltano ($(cat scripts/requirements-meltano.txt))"
    pip_install .venv-meltano -r scripts/requirements-meltano.txt
}

# pip_install VENV ARGS...: quiet, without the warnings some pip configurations print about
# unreachable local indexes.
pip_install() {
    local venv=$1
    shift
    "$venv/bin/python" -m pip install --quiet "$@" 2> >(grep -v "is neither a file nor a directory" >&2)
}
