"""The package's modules import each other without a cycle, type-only imports included
(issue 20): each module can be read, tested and changed knowing only the modules below it.

The graph is the plain one a reader draws from the source: every `import` and `from ... import`
of a package module, wherever it stands (in a function, under `if TYPE_CHECKING:`); `from
package import name` counts as importing the submodule `name` when there is one. A package's
own submodules importing it is not counted: Python loads a package before its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import target_amazon_dsp_conversions

PACKAGE = Path(target_amazon_dsp_conversions.__file__).parent
NAME = PACKAGE.name


def module_names() -> dict[str, Path]:
    """Dotted module name -> its file, for every module of the package."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` imports."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
            found.update(submodules or {base})
            if len(submodules) < len(node.names):  # names defined in `base` itself
                found.add(base)
    return {name for name in found if name in modules and name != module}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = module_names()
    return {module: imported(module, path, modules) for module, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as the modules along it (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the path, then "done"
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle is not None:
                    return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle is not None:
                return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40  # every module of the package was read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(m.removeprefix(NAME + ".") for m in cycle)


def test_the_cycle_check_sees_type_only_and_function_level_imports(tmp_path: Path) -> None:
    """The reading the test above relies on: a type-only import and one inside a function
    count, so a cycle made of them is found."""
    settings = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.apis import base"
    base = "def f():\n    from pkg import settings\n"
    modules = {"pkg.settings": tmp_path / "settings.py", "pkg.apis.base": tmp_path / "base.py"}
    modules["pkg.settings"].write_text(settings)
    modules["pkg.apis.base"].write_text(base)
    graph = {module: imported(module, path, modules) for module, path in modules.items()}
    assert graph == {"pkg.settings": {"pkg.apis.base"}, "pkg.apis.base": {"pkg.settings"}}
    assert find_cycle(graph) == ["pkg.apis.base", "pkg.settings", "pkg.apis.base"]
