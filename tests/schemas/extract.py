"""Regenerate the structure-only schema copies in this folder from Amazon's OpenAPI files.

Run from the repository root: ``python tests/schemas/extract.py``. Reads
``../shared/reference/openapi`` (relative to the repository root) and keeps only the
``components.schemas`` entries the tests need, plus everything they reach through
``$ref``, with ``description``/``example``/``summary`` removed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent.parent / "shared" / "reference" / "openapi"
DROP_KEYS = {"description", "example", "summary"}

WANTED: dict[str, list[str]] = {
    "dsp-conversions-api.json": [
        "BatchImportConversionEventDataRequestV1",
        "BatchImportConversionEventDataResponseV1",
        "DspErrorV1",
        "ListConversionDefinitionsRequestV1",
        "ListConversionDefinitionsResponseV1",
        "BatchCreateConversionDefinitionsRequestV1",
        "ConversionDefinitionsBatchResponseV1",
        "BatchDeleteUserEventsRequestV1",
        "BatchDeleteUserEventsResponseV1",
    ],
    "events-api.json": [
        "CreateEventRequest",
        "EventMultiStatusResponse",
        "BadRequestResponseContent",
        "UnauthorizedResponseContent",
        "ForbiddenResponseContent",
        "NotFoundResponseContent",
        "ContentTooLargeResponseContent",
        "TooManyRequestsResponseContent",
        "InternalServerErrorResponseContent",
        "BadGatewayResponseContent",
        "ServiceUnavailableErrorResponseContent",
        "GatewayTimeoutResponseContent",
    ],
}


def strip(node: Any) -> Any:
    """Copy ``node`` without prose keys."""
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def reachable(schemas: dict[str, Any], roots: list[str]) -> set[str]:
    """Names of ``roots`` and every schema they reference, transitively."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        stack: list[Any] = [schemas[name]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                    todo.append(ref.rsplit("/", 1)[1])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return seen


def main() -> None:
    """Write one trimmed schema file per API."""
    for filename, roots in WANTED.items():
        spec = json.loads((SOURCE / filename).read_text())
        schemas = spec["components"]["schemas"]
        keep = {name: strip(schemas[name]) for name in sorted(reachable(schemas, roots))}
        # Amazon's ErrorsIndex.index has "maximum": 0, an artefact (207 indexes run 0..499).
        if "ErrorsIndex" in keep:
            keep["ErrorsIndex"]["properties"]["index"].pop("maximum", None)
        out = {"components": {"schemas": keep}}
        (HERE / filename).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
