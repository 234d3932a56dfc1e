"""The package import graph (read with ast, nothing is imported): imports point one way.

- the stages import only earlier stages and the shared package:
  common <- simulation <- imaging <- model <- analysis, and `common` imports no stage;
- no module of the project imports another one inside a function (lazy imports of heavy
  third-party modules are fine; of the project's own modules they only hide a cycle);
- no dynamic imports (importlib, __import__) of project modules;
- the module graph has no cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the packages in pipeline order; a package may import itself and the ones before it
ORDER = ("common", "simulation", "imaging", "model", "analysis")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in ORDER for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The project modules an import statement loads (absolute names)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(package[: len(package) - (node.level - 1)])
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        # `from pkg import name` loads pkg.name when that is a module, else pkg
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    return sorted({n for n in names if n.split(".")[0] in ORDER})


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, path: Path) -> None:
        self.module, self.path = module, path
        self.top: set[str] = set()
        self.in_function: list[tuple[int, str]] = []
        self.dynamic: list[int] = []
        self.depth = 0

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        targets = _resolve(self.module, self.path, node)
        if self.depth:
            self.in_function += [(node.lineno, t) for t in targets]
        else:
            self.top.update(targets)

    visit_Import = visit_ImportFrom = _import

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__"):
            self.dynamic.append(node.lineno)
        self.generic_visit(node)


def _graph() -> dict[str, _Imports]:
    out = {}
    for module, path in MODULES.items():
        visitor = _Imports(module, path)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        out[module] = visitor
    return out


GRAPH = _graph()


def test_every_package_is_found():
    assert {m.split(".")[0] for m in MODULES} == set(ORDER)
    assert len(MODULES) > 40


@pytest.mark.parametrize("package", ORDER)
def test_a_stage_imports_only_earlier_stages_and_common(package):
    allowed = set(ORDER[: ORDER.index(package) + 1])
    bad = sorted((m, t) for m, v in GRAPH.items() if m.split(".")[0] == package
                 for t in v.top if t.split(".")[0] not in allowed)
    assert not bad, f"{package} imports a later stage: {bad} (allowed: {sorted(allowed)})"


def test_no_project_imports_inside_functions():
    bad = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {t}" for m, v in GRAPH.items() for line, t in v.in_function]
    assert not bad, "imports inside functions (move them to the top of the module):\n" + "\n".join(bad)


def test_no_dynamic_imports():
    bad = [f"{MODULES[m].relative_to(ROOT)}:{line}" for m, v in GRAPH.items() for line in v.dynamic]
    assert not bad, f"dynamic imports: {bad}"


def test_the_module_graph_has_no_cycle():
    edges = {m: sorted(t for t in v.top if t in MODULES and t != m) for m, v in GRAPH.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in edges[m]:
            if state.get(t) == 1:
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_what_it_checks(tmp_path):
    """The resolver follows relative imports and `from pkg import module` to the module itself."""
    assert "common.seeds" in GRAPH["model.training"].top
    assert "model.decoupled" in GRAPH["model.vae"].top  # `from . import decoupled`
    assert "imaging.h5schema" in GRAPH["analysis.inputs"].top
