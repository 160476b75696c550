#!/usr/bin/env bash
# The README's demo: a Meltano pipeline, tap-jsonl -> target-amazon-dsp-conversions, on the
# sample in sample/, in dry run: every request is built and validated but nothing is sent, so no
# Amazon account is needed. Creates .venv-meltano and installs the plugins on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

meltano_venv
MELTANO=(.venv-meltano/bin/meltano --environment=demo)
export NO_COLOR=1 MELTANO_SEND_ANONYMOUS_USAGE_STATS=false

log "Installing the Meltano plugins (tap-jsonl from PyPI, this repository as the target)"
mkdir -p output/demo
"${MELTANO[@]}" install >output/demo/meltano-install.log 2>&1 || {
    cat output/demo/meltano-install.log >&2
    exit 1
}

log "Writing the sample with event times relative to now"
"$(find_python)" sample/make_sample.py

log "meltano --environment=demo run --full-refresh tap-jsonl target-amazon-dsp-conversions"
rm -f output/demo/*.jsonl output/demo/run-report.json
status=0
"${MELTANO[@]}" run --full-refresh tap-jsonl target-amazon-dsp-conversions \
    >output/demo/meltano.log 2>&1 || status=$?
# The target's own lines (no metrics) from Meltano's log; the whole log is in output/demo/.
grep ' target-amazon-dsp-conversions ' output/demo/meltano.log | grep -v 'METRIC' || true
if [ "$status" != 0 ]; then
    echo "meltano run failed ($status); full log: output/demo/meltano.log" >&2
    tail -n 40 output/demo/meltano.log >&2
    exit "$status"
fi

"$(find_python)" sample/show_results.py output/demo
echo
echo "Full Meltano log: output/demo/meltano.log. Nothing was sent: the 'demo' environment in"
echo "meltano.yml sets dry_run: true. See README > Meltano for a real run."
