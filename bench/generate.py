"""Synthetic Singer input for the benchmark: N conversions with the seeds' column names.

Every record carries a raw email and a raw phone (the target normalizes and hashes both), an
order ID as key property, a recent timestamp, a value and a currency. Customers repeat (each
appears about three times) as they do in a real order table, which is what a phone cache sees.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "eventTime": {"type": "string", "format": "date-time"},
        "conversionType": {"type": "string"},
        "conversionValue": {"type": ["number", "null"]},
        "currency": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"]},
        "countryCode": {"type": ["string", "null"]},
    },
}
STATE_EVERY = 10_000
_PHONE_FORMATS = ("({a}) {b}-{c}", "+1 {a} {b} {c}", "{a}.{b}.{c}", "1{a}{b}{c}")


def write_input(
    path: Path, records: int, stream: str = "conversions", state_every: int = STATE_EVERY
) -> Path:
    """Write SCHEMA, `records` RECORDs and a STATE every `state_every` records (and at the
    end)."""
    now = datetime.now(timezone.utc)
    customers = max(1, records // 3)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with path.open("w", encoding="utf-8") as out:
        schema = {"type": "SCHEMA", "stream": stream, "schema": SCHEMA}
        out.write(dumps({**schema, "key_properties": ["order_id"]}) + "\n")
        for i in range(records):
            c = (i * 7919) % customers  # spread repeats over the whole input
            area, exchange, line = 201 + c % 700, 200 + (c // 700) % 800, c % 10_000
            phone = _PHONE_FORMATS[c % 4].format(a=area, b=exchange, c=f"{line:04d}")
            record = {
                "order_id": f"order-{i:08d}",
                "eventTime": (now - timedelta(minutes=5 + i % 2880)).isoformat(),
                "conversionType": "purchase",
                "conversionValue": round(10 + (i % 5000) * 0.37, 2),
                "currency": "USD",
                "email": f" Customer.{c}@Example.com ",
                "phone": phone,
                "countryCode": "US",
            }
            out.write(dumps({"type": "RECORD", "stream": stream, "record": record}) + "\n")
            if (i + 1) % state_every == 0 or i + 1 == records:
                state = {"type": "STATE", "value": {"bookmarks": {stream: {"n": i + 1}}}}
                out.write(dumps(state) + "\n")
    return path


if __name__ == "__main__":
    write_input(Path(sys.argv[1]), int(sys.argv[2]))
