"""The layout the design promises: imports that run one way (no cycle anywhere in bench/ or
impls/, imports inside functions included) and report modules of a readable size."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "impls")
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in its body (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    names = {_module_name(p): p for p in files}
    known = set(names)
    graph = {n: _imports(p, n, known) for n, p in names.items()}
    # a package's __init__ is run by importing any module inside it: not an edge back up
    return {n: {t for t in ts if not n.startswith(t + ".")} for n, ts in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state, stack, found = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_import_graph_finds_a_cycle_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_bench_or_impls():
    graph = _graph()
    assert "bench.report.tables" in graph["bench.report.summary"]  # the graph sees real imports
    assert "bench.report.summary" not in graph["bench.report.tables"]
    assert "bench.report.write" in graph["bench.cli"]  # imported inside a function: seen too
    assert _cycles(graph) == []


def test_reports_depend_one_way():
    graph = _graph()
    assert "bench.report.write" not in graph["bench.report.plots"]
    assert (
        "bench.report.write" not in graph["bench.report.pbench"]
        or "bench.report.pbench" not in graph["bench.report.write"]
    )
    for low in ("bench.report.tables", "bench.report.markdown"):
        assert not graph[low] & {"bench.report.summary", "bench.report.write", "bench.report.plots"}


REPORT_MODULES = (
    "tables",
    "markdown",
    "header",
    "verdict",
    "summary",
    "plots",
    "write",
    "pbench",
    "scaling",
)


def test_no_report_module_over_the_size_limit():
    big = {
        name: n
        for name in REPORT_MODULES
        if (
            n := len(
                (ROOT / "bench" / "report" / f"{name}.py").read_text(encoding="utf-8").splitlines()
            )
        )
        > MAX_LINES
    }
    assert big == {}
