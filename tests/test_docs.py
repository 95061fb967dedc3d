"""The README and docs/design.md point at real things: every project path and module they
name exists, the README links the design document, and no text states a backend count that
the registry would have to keep true."""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/design.md")
PATH = re.compile(r"(?<![\w./-])((?:bench|impls|tests|scripts|examples|docs)/[\w./-]*\w)")
MODULE = re.compile(r"(?<![\w./-])((?:bench|impls)(?:\.[A-Za-z_]\w*)+)")
NOT_MODULES = {"bench.json"}  # a file name in the README's pytest-benchmark commands
# "four interchangeable backends" goes stale with the next backend; the registry says how many
COUNTED = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|\d+)\s+interchangeable\s+(?:MLP\s+)?backends",
    re.I,
)


def _resolves(dotted: str) -> bool:
    """Whether `dotted` is a module, or an attribute reached from one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("doc", DOCS)
def test_named_paths_and_modules_exist(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    paths = set(PATH.findall(text))
    assert paths, "the pattern finds the paths a document names"
    assert [p for p in sorted(paths) if not (ROOT / p).exists()] == []
    modules = set(MODULE.findall(text)) - NOT_MODULES
    assert modules
    assert [m for m in sorted(modules) if not _resolves(m)] == []


def test_the_checks_see_what_is_not_there():
    assert not _resolves("bench.runner") and not _resolves("bench.report.tables.ratio_band")
    assert _resolves("bench.report.loading.load_run") and _resolves("impls.core")
    assert PATH.findall("see `bench/presets.py`, docs/design.md.") == [
        "bench/presets.py",
        "docs/design.md",
    ]
    assert COUNTED.search("runs four interchangeable backends")
    assert COUNTED.search('"""Four interchangeable MLP backends behind one contract.')
    assert not COUNTED.search("the four backends' figures in that run")


def test_the_readme_links_the_design_and_states_no_backend_count():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/design.md)" in readme
    import impls

    for name, text in (("README.md", readme), ("impls/__init__.py", impls.__doc__)):
        assert not COUNTED.search(text), (name, COUNTED.search(text).group(0))
