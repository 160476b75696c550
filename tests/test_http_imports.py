"""The HTTP modules import in one direction (type-only imports included): the transport types
are a leaf, `answers.py` reads only them (and the leaf that redacts secrets), and no cycle runs
through the sign-in or the transport (`auth` once imported `http_client`, which imported
`auth`)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "target_amazon_dsp_conversions"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
HTTP_MODULES = ("http_types", "answers", "http_session", "auth", "http_client")


def package_imports(module: str) -> set[str]:
    """Modules of the package `module` imports, wherever the import stands."""
    tree = ast.parse((ROOT / f"{module.replace('.', '/')}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith(PACKAGE + "."):
                inner = name[len(PACKAGE) + 1 :]
                if (ROOT / f"{inner.replace('.', '/')}.py").exists():
                    found.add(inner)
    return found


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for imported in package_imports(todo.pop()):
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def test_the_transport_types_are_a_leaf_and_answers_reads_only_them() -> None:
    assert package_imports("http_types") == set()
    assert package_imports("redaction") == set()
    # Amazon's words are redacted before they are cut (a cut secret is no longer known).
    assert package_imports("answers") == {"http_types", "redaction"}


def test_no_import_cycle_runs_through_the_http_modules() -> None:
    for module in HTTP_MODULES:
        assert module not in reachable(module), f"{module} imports itself through a cycle"
