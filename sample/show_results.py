"""Print what a dry run would have sent, the rejects and the run report (used by scripts/demo.sh).

`python sample/show_results.py output/demo`: reads dry-run-requests.jsonl, rejects.jsonl and
run-report.json from that directory.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def say(*parts: str) -> None:
    """One line on stdout (the point of this script)."""
    sys.stdout.write(" ".join(parts) + "\n")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _events(body: dict[str, Any]) -> list[dict[str, Any]]:
    # dsp bodies carry `eventData`, events-API bodies `events`.
    return list(body.get("eventData") or body.get("events") or [])


def show(directory: Path) -> None:
    """Print the three outputs of a run in a form a person can check at a glance."""
    requests = _jsonl(directory / "dry-run-requests.jsonl")
    say(f"\n== What would have been sent ({directory / 'dry-run-requests.jsonl'})")
    for n, request in enumerate(requests, 1):
        events = _events(request["body"])
        kinds = Counter(str(e.get("name") or e.get("conversionDefinitionId")) for e in events)
        say(
            f"request {n}: {request['method']} {urlparse(request['url']).path} "
            f"source={request['body'].get('source', '-')} events={len(events)} "
            + ", ".join(f"{name}: {count}" for name, count in sorted(kinds.items()))
        )
    if requests and _events(requests[0]["body"]):
        headers = requests[0]["headers"]
        say("headers of request 1:", json.dumps(headers))
        say("first event (match keys SHA-256 hashed):")
        say(json.dumps(_events(requests[0]["body"])[0], indent=2))

    rejects = _jsonl(directory / "rejects.jsonl")
    say(f"\n== Rejected ({directory / 'rejects.jsonl'}): {len(rejects)}")
    for reject in rejects:
        record = reject["record"]
        reasons = "; ".join(f"{e['code']}: {e['message']}" for e in reject["errors"])
        say(f"{record.get('order_id', '?')}: {reasons}")

    report_path = directory / "run-report.json"
    say(f"\n== Run report ({report_path})")
    if report_path.exists():
        say(report_path.read_text(encoding="utf-8").rstrip())
    else:
        say("(no report: the run failed before the end, see the log above)")


if __name__ == "__main__":
    show(Path(sys.argv[1] if len(sys.argv) > 1 else "output/demo"))
