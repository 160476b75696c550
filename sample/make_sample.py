"""Write sample/conversions.jsonl from the template, with event times relative to now.

Amazon refuses DSP conversions older than 7 days, so a sample with fixed dates would go stale.
The template's times keep their spacing; the newest becomes ten minutes ago. Run it before
`meltano run tap-jsonl target-amazon-dsp-conversions` (scripts/demo.sh does).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def shifted(lines: list[str], now: datetime) -> list[str]:
    """The records with eventTime moved so that the newest is ten minutes before `now`."""
    records = [json.loads(line) for line in lines if line.strip()]
    times = [datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")) for r in records]
    delta = now - timedelta(minutes=10) - max(times)
    for record, time in zip(records, times, strict=True):
        record["eventTime"] = (time + delta).astimezone(timezone.utc).isoformat(timespec="seconds")
    return [json.dumps(r, ensure_ascii=False) for r in records]


def main(argv: list[str]) -> None:
    """`make_sample.py [OUT]`: OUT defaults to sample/conversions.jsonl."""
    out = Path(argv[0]) if argv else HERE / "conversions.jsonl"
    template = (HERE / "conversions.template.jsonl").read_text(encoding="utf-8").splitlines()
    lines = shifted(template, datetime.now(timezone.utc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write(f"Wrote {len(lines)} sample conversions to {out}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
