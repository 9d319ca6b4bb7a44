"""The package layering of ARCHITECTURE.md holds: no import runs upward and no package imports itself back.

Read from the source with ``ast`` (every ``import``, also those inside functions), so a lazy import
cannot hide a cycle.
"""

import ast
from collections import defaultdict
from pathlib import Path

import skingen

SRC = Path(skingen.__file__).parent

# Bottom up; a unit may import its own layer or lower ones. A unit is a top-level module or a package.
LAYERS = [
    {"errors", "seeding", "runs", "run_folder", "config", "imageio", "viz", "stats", "checkpoint",
     "sample_checks", "workers"},
    {"data", "nn", "diffusion"},
    {"inpaint"},
    {"models"},
    {"registry"},
    {"train", "eval", "generation"},
    {"analysis", "downstream", "rating"},
    {"chain"},
    {"cli", "console"},
]


def unit_of(module: str) -> str:
    """``skingen.data.masks`` -> ``data``; the root ``skingen`` (its ``__version__``) -> ``errors``' layer."""
    parts = [p for p in module.split(".") if p != "__init__"]
    return parts[1] if len(parts) > 1 else "skingen"


def imports() -> dict[str, set[tuple[str, str]]]:
    """unit -> {(importing file, imported unit)} for every skingen import in the package."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for file in SRC.rglob("*.py"):
        parts = ("skingen",) + file.relative_to(SRC).with_suffix("").parts
        package = parts[:-1]  # the package a relative import starts from (also for __init__.py)
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this file's package
                    base = list(package[: len(package) - node.level + 1])
                    names = [".".join(base + ([node.module] if node.module else []))]
                else:
                    names = [node.module or ""]
            else:
                continue
            for name in names:
                if name == "skingen" or name.startswith("skingen."):
                    found[unit_of(".".join(parts))].add((str(file.relative_to(SRC)), unit_of(name)))
    return found


def layer(unit: str) -> int:
    if unit == "skingen":
        return 0
    for i, units in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(f"skingen.{unit} is in no layer: add it to LAYERS here and to ARCHITECTURE.md")


def test_every_unit_has_a_layer():
    units = {unit_of(".".join(("skingen",) + p.relative_to(SRC).with_suffix("").parts))
             for p in SRC.rglob("*.py")}
    for unit in units:
        layer(unit)
    assert ("models/inpaint.py", "diffusion") in imports()["models"]  # the reader sees imports at all


def upward_imports(edges: dict[str, set[tuple[str, str]]]) -> list[str]:
    return sorted(f"{file} imports skingen.{target} (layer {layer(target)} > {layer(unit)})"
                  for unit, found in edges.items() for file, target in found if layer(target) > layer(unit))


def package_cycles(edges: dict[str, set[tuple[str, str]]]) -> list[str]:
    graph = {unit: {t for _, t in found if t != unit} for unit, found in edges.items()}
    cycles: set[str] = set()

    def visit(unit: str, path: list[str]) -> None:
        for nxt in graph.get(unit, ()):
            if nxt in path:
                cycles.add(" -> ".join(path[path.index(nxt):] + [nxt]))
            else:
                visit(nxt, path + [nxt])

    for start in graph:
        visit(start, [start])
    return sorted(cycles)


def test_no_import_runs_upward():
    assert not (found := upward_imports(imports())), "\n".join(found)


def test_no_package_cycle():
    assert not (found := package_cycles(imports())), "\n".join(found)


def test_the_checks_see_a_planted_upward_import_and_cycle():
    planted = {"data": {("data/x.py", "eval")}, "eval": {("eval/y.py", "data")}}
    assert upward_imports(planted) == ["data/x.py imports skingen.eval (layer 5 > 1)"]
    assert package_cycles(planted) == ["data -> eval -> data", "eval -> data -> eval"]


def module_graph() -> dict[str, set[str]]:
    """module -> the skingen modules it imports (``from skingen.data import masks`` names the module ``masks``
    when it is one), every import including those inside functions; a package is its ``__init__``."""
    modules = {".".join(("skingen",) + p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
               for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for file in SRC.rglob("*.py"):
        me = ".".join(("skingen",) + file.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            else:
                continue
            graph[me] |= {t for t in targets if t in modules and t != me}
    return graph


def module_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other round a circle (strongly connected, more than one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in list(graph):
        if v not in index:
            connect(v)
    return sorted(groups)


def test_no_module_circle():
    # issue 30: downstream/probe.py <-> downstream/train.py imported each other (lazily, so nothing failed)
    assert not (found := module_cycles(module_graph())), "\n".join(" <-> ".join(g) for g in found)


def test_the_module_check_sees_a_planted_circle():
    assert module_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_function_over_complexity_15_and_no_unused_name():
    # issue 30: ruff's McCabe check (C901) at 15 and pyflakes (F), as configured in pyproject.toml
    import subprocess
    import sys

    root = SRC.parent.parent
    ruff = Path(sys.executable).parent / "ruff"
    res = subprocess.run([str(ruff), "check", "--no-cache", str(SRC)], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:]
