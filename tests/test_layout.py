"""The layout the design promises (docs: bench/ is one subpackage per layer, imports running
one way), checked on the source of bench/ and impls/:

- each bench subpackage imports only the packages below it (PACKAGE_MAY_IMPORT), and impls
  imports nothing of bench; imports inside functions count;
- no import cycle anywhere, and the report modules depend one way among themselves;
- no module over MAX_LINES lines;
- no module uses another module's underscore names;
- no `# noqa: F401` re-export of project names.

A failure lists each offending import or file, so a maintainer sees what to fix. Each rule is
also run on a small made-up source tree, to show that it finds what it looks for.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "impls")
MAX_LINES = 500

# Which bench package may import which: the layers of the design, top to bottom. A package
# always may import its own modules; "bench" is bench/__init__.py (the Python API) and
# "bench.__main__" the `python -m bench` entry point. impls knows nothing of bench.
# The base: the error types, and the statistics of a time's precision (worker and report).
_BASE = {"bench.errors", "bench.precision"}
PACKAGE_MAY_IMPORT: dict[str, set[str]] = {
    "bench": {"*"},  # the Python API: runs and reads runs
    "bench.__main__": {"bench.cli"},
    "bench.cli": {"*"},  # parses and dispatches to every command
    "bench.listing": {"bench.sweep", "bench.datasets", "impls", *_BASE},
    "bench.run": {
        "bench.cluster",
        "bench.worker",
        "bench.sweep",
        "bench.datasets",
        "bench.store",
        "bench.report",  # a run ends by writing its summary
        "impls",
        *_BASE,
    },
    "bench.cluster": {"bench.worker", "bench.sweep", "bench.datasets", "bench.store", "impls"}
    | _BASE,
    "bench.worker": {"bench.store", "impls", *_BASE},  # the records it returns
    "bench.check": {"bench.worker", "bench.sweep", "bench.datasets", "impls", *_BASE},
    "bench.report": {"bench.store", *_BASE},  # reads the records, nothing else
    "bench.sweep": {"bench.datasets", "bench.store", "impls", *_BASE},  # store: the axes
    "bench.store": set(_BASE),
    "bench.datasets": {"impls", *_BASE},
    "bench.errors": set(),
    "bench.precision": set(),
    "impls": set(),
}
# inside bench/report: lower modules never import the ones that assemble the report
REPORT_LOW = ("bench.report.tables", "bench.report.markdown")
REPORT_HIGH = {"bench.report.summary", "bench.report.write", "bench.report.plots"}


# ---------------------------------------------------------------------------------------------
# reading the source


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    """module name -> file, for every module of `packages` under `root`."""
    files = [p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))]
    return {_module_name(p, root): p for p in files}


def _package_of(path: Path, name: str) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _absolute(node: ast.ImportFrom, package: str) -> str:
    base = node.module or ""
    if node.level:
        anchor = package.split(".")
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return base


def _known(target: str, known: set[str]) -> str | None:
    """The longest known module that `target` (a module, or a name in one) lies in."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in its body (functions included)."""
    package = _package_of(path, name)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            module = _known(target, known)
            if module and module != name:
                found.add(module)
    return found


def _graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    names = _modules(root, packages)
    known = set(names)
    graph = {n: _imports(p, n, known) for n, p in names.items()}
    # a package's __init__ is run by importing any module inside it: not an edge back up
    return {n: {t for t in ts if not n.startswith(t + ".")} for n, ts in graph.items()}


# ---------------------------------------------------------------------------------------------
# the rules: each returns what breaks it, as lines a maintainer reads


def _layer(module: str, table: dict[str, set[str]]) -> str | None:
    """The entry of `table` that `module` belongs to: its longest prefix there."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in table and (n == len(parts) or key != "bench"):  # "bench": its __init__ only
            return key
    return None


def direction_violations(graph: dict[str, set[str]], table=PACKAGE_MAY_IMPORT) -> list[str]:
    """Every import from one package to another that `table` does not allow."""
    found = []
    for module in sorted(graph):
        source = _layer(module, table)
        for target in sorted(graph[module]):
            dest = _layer(target, table)
            if source is None or dest is None:
                found.append(f"{module} -> {target}: a package the layout table does not name")
            elif dest != source and "*" not in table[source] and dest not in table[source]:
                allowed = ", ".join(sorted(table[source])) or "nothing of the project"
                found.append(f"{module} -> {target} ({source} may import: {allowed})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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


def long_modules(modules: dict[str, Path], root: Path = ROOT, limit: int = MAX_LINES) -> list[str]:
    found = []
    for path in sorted(modules.values()):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > limit:
            found.append(f"{path.relative_to(root)}: {n} lines")
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def underscore_uses(modules: dict[str, Path]) -> list[str]:
    """Another module's underscore names, used here: `from m import _x` (relative imports
    too) and `m._x` where `m` names a project module imported here."""
    known = set(modules)
    found = []
    for name, path in sorted(modules.items()):
        here = []  # (line, column, what)
        package = _package_of(path, name)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}  # local name -> the project module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if _known(a.name, known):
                        local = a.asname or a.name.partition(".")[0]
                        aliases[local] = a.name if a.asname else local
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, package)
                if not _known(base, known):
                    continue
                for a in node.names:
                    full = f"{base}.{a.name}"
                    if full in known:
                        aliases[a.asname or a.name] = full
                    if _is_private(a.name) and base != name:
                        here.append((node.lineno, node.col_offset, f"from {base} import {a.name}"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            dotted = _dotted(node.value)
            if dotted is None or dotted.partition(".")[0] not in aliases:
                continue
            head, _, rest = dotted.partition(".")
            target = aliases[head] + (f".{rest}" if rest else "")
            if target in known and target != name:
                here.append((node.lineno, node.col_offset, f"{dotted}.{node.attr}"))
        found += [f"{name}:{line}: {what}" for line, _, what in sorted(here)]
    return found


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


NOQA_F401 = re.compile(r"#\s*noqa\s*:[^#\n]*\bF401\b", re.IGNORECASE)


def reexports(modules: dict[str, Path]) -> list[str]:
    """`# noqa: F401` on an import of project names: names kept only for others to import
    from here (a facade). An import for its side effect (e.g. of a third-party library) is
    not one."""
    known = set(modules)
    found = []
    for name, path in sorted(modules.items()):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        package = _package_of(path, name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                project = _known(_absolute(node, package), known)
            elif isinstance(node, ast.Import):
                project = any(_known(a.name, known) for a in node.names)
            else:
                continue
            span = lines[node.lineno - 1 : node.end_lineno]
            if project and any(NOQA_F401.search(line) for line in span):
                found.append(f"{name}:{node.lineno}: {span[0].strip()}")
    return found


def _grouped(found: list[str]) -> str:
    return "\n" + "\n".join(found)


# ---------------------------------------------------------------------------------------------
# bench/ and impls/ keep the rules


def test_the_graph_sees_real_imports():
    graph = _graph()
    assert "bench.report.tables" in graph["bench.report.summary"]
    assert "bench.report.summary" not in graph["bench.report.tables"]
    assert "bench.report.write" in graph["bench.cli.run"]  # imported inside a function: seen too
    assert "impls.spec" in graph["impls.registry"]  # relative imports are seen too
    assert set(PACKAGE_MAY_IMPORT) >= {_layer(m, PACKAGE_MAY_IMPORT) for m in graph}


def test_packages_import_only_the_layers_below_them():
    found = direction_violations(_graph())
    assert not found, _grouped(found)


def test_no_import_cycle_in_bench_or_impls():
    found = [" -> ".join(c) for c in cycles(_graph())]
    assert not found, _grouped(found)


def test_reports_depend_one_way():
    graph = _graph()
    found = [f"{low} -> {high}" for low in REPORT_LOW for high in sorted(graph[low] & REPORT_HIGH)]
    assert not found, _grouped(found)


def test_no_module_over_the_size_limit():
    found = long_modules(_modules())
    assert not found, _grouped(found)


def test_no_module_uses_another_modules_underscore_names():
    found = underscore_uses(_modules())
    assert not found, _grouped(found)


def test_no_reexport_facades():
    found = reexports(_modules())
    assert not found, _grouped(found)


# ---------------------------------------------------------------------------------------------
# each rule finds a violation where there is one


def _tree(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return _modules(root, ("bench", "impls"))


def test_the_direction_rule_finds_an_upward_import(tmp_path):
    _tree(
        tmp_path,
        {
            "bench/__init__.py": "",
            "bench/worker/__init__.py": "",
            "bench/worker/measure.py": "def f():\n    from bench.report.noise import g\n",
            "bench/report/__init__.py": "",
            "bench/report/noise.py": "from ..store import schema\nfrom bench.errors import E\n",
            "bench/store/__init__.py": "",
            "bench/store/schema.py": "import impls\n",
            "bench/errors.py": "",
            "impls/__init__.py": "from bench.store.schema import x\n",
        },
    )
    graph = _graph(tmp_path)
    assert graph["bench.worker.measure"] == {"bench.report.noise"}  # inside a function
    relative = {"bench.store", "bench.store.schema", "bench.errors"}  # the package, its module
    assert graph["bench.report.noise"] == relative
    found = direction_violations(graph)
    assert found == [
        "bench.store.schema -> impls (bench.store may import: bench.errors, bench.precision)",
        "bench.worker.measure -> bench.report.noise "
        "(bench.worker may import: bench.errors, bench.precision, bench.store, impls)",
        "impls -> bench.store.schema (impls may import: nothing of the project)",
    ]
    assert direction_violations({"bench.worker.process": {"bench.store.folder"}}) == []
    assert direction_violations({"bench.cli": {"bench.run.runner", "bench.report"}}) == []
    assert direction_violations({"bench.newpkg.a": {"bench.errors"}}) == [
        "bench.newpkg.a -> bench.errors: a package the layout table does not name"
    ]


def test_the_cycle_rule_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_size_rule_finds_a_long_module(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "bench/__init__.py": "",
            "bench/sweep/__init__.py": "",
            "bench/sweep/long.py": "x = 1\n" * 501,
            "bench/sweep/short.py": "x = 1\n" * 500,
        },
    )
    assert long_modules(modules, tmp_path) == [f"{Path('bench/sweep/long.py')}: 501 lines"]


def test_the_underscore_rule_finds_each_form(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "bench/__init__.py": "",
            "bench/a.py": "_x = 1\n__version__ = '1'\nprint(_x)\n",
            "bench/b.py": (
                "from bench.a import _x, __version__\n"  # 1: an underscore name
                "from bench import a as _a\n"  # an underscore alias of a public module: fine
                "import bench.a\n"
                "from . import a\n"
                "def f(obj):\n"
                "    from .a import (\n"
                "        __version__,\n"
                "        _x as y,\n"  # 6: relative, on a line of its own
                "    )\n"
                "    obj._private = 1\n"  # not a project module: fine
                "    return a._x + bench.a._x + _a._x + a.__doc__\n"  # 11: three uses
            ),
            "impls/__init__.py": "",
            "impls/base.py": "def _is_identity():\n    pass\n",
            "impls/torch_mlp.py": "from .base import MLPModel, _is_identity\n",
        },
    )
    assert underscore_uses(modules) == [
        "bench.b:1: from bench.a import _x",
        "bench.b:6: from bench.a import _x",
        "bench.b:11: a._x",
        "bench.b:11: bench.a._x",
        "bench.b:11: _a._x",
        "impls.torch_mlp:1: from impls.base import _is_identity",
    ]


def test_the_reexport_rule_finds_a_facade(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "bench/__init__.py": "",
            "bench/keys.py": "KEYS = {}\n",
            "bench/build.py": (
                "from bench.keys import KEYS  # noqa: F401 (re-exported)\n"
                "from .keys import (  # noqa:F401\n"
                "    KEYS as K,\n"
                ")\n"
                "import numpy  # noqa: F401  (loads the BLAS)\n"  # a side effect: fine
                "from bench.keys import KEYS as Z  # noqa: E402\n"  # not F401: fine
            ),
        },
    )
    assert reexports(modules) == [
        "bench.build:1: from bench.keys import KEYS  # noqa: F401 (re-exported)",
        "bench.build:2: from .keys import (  # noqa:F401",
    ]
