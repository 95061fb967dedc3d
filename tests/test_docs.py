"""The README and the documentation under docs/ point at real things and say what runs.

- every project path and module they name exists;
- the README links the design document, and no text states a backend count that the
  registry would have to keep true;
- every command block marked runnable (an HTML comment `<!-- runnable -->` on the line
  before a ```bash block) runs and exits 0, each line in a fresh folder;
- every `--option` written after `python -m bench COMMAND` exists in that command's --help;
- the README is at most 15k characters, its quick start says which backends the default
  run covers as the registry decides, and its results block is what scripts/front-page
  writes from the committed run it names.
"""

import argparse
import contextlib
import importlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import bench_env

from bench.cli import build_parser
from bench.report.loading import load_env

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")))
PATH = re.compile(r"(?<![\w./-])((?:bench|impls|tests|scripts|examples|docs)/[\w./-]*\w)")
MODULE = re.compile(r"(?<![\w./-])((?:bench|impls)(?:\.[A-Za-z_]\w*)+)")
NOT_MODULES = {"bench.json"}  # a file name in the pytest-benchmark commands
# "four interchangeable backends" goes stale with the next backend; the registry says how many
COUNTED = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|\d+)\s+interchangeable\s+(?:MLP\s+)?backends",
    re.I,
)
RUNNABLE = re.compile(r"<!-- runnable -->\s*\n\s*```(?:bash|console|sh)\n(.*?)\n\s*```", re.S)
# `python -m bench COMMAND ...` up to the end of the line or of a `code span`
COMMAND = re.compile(r"python -m bench ((?:--debug )?)([a-z]+)\b([^`\n]*)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
README_LIMIT = 15_000


def _text(doc: str) -> str:
    return (ROOT / doc).read_text(encoding="utf-8")


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
    text = _text(doc)
    paths = set(PATH.findall(text))
    assert [p for p in sorted(paths) if not (ROOT / p).exists()] == []
    modules = set(MODULE.findall(text)) - NOT_MODULES
    assert [m for m in sorted(modules) if not _resolves(m)] == []


def test_the_documents_name_paths_and_modules():
    named = [d for d in DOCS if PATH.findall(_text(d))]
    assert "README.md" in named and "docs/design.md" in named


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
    readme = _text("README.md")
    assert "](docs/design.md)" in readme
    import impls

    for name, text in (("README.md", readme), ("impls/__init__.py", impls.__doc__)):
        assert not COUNTED.search(text), (name, COUNTED.search(text).group(0))


def test_the_readme_is_a_front_page():
    readme = _text("README.md")
    assert len(readme) <= README_LIMIT, f"README.md is {len(readme)} characters"
    assert readme.index("## Results at a glance") < readme.index("## Quick start")


def test_the_quick_start_names_the_default_backends():
    from impls.registry import DEFAULT_BACKENDS

    quick = _text("README.md").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "every backend" not in quick
    assert all(name in quick for name in DEFAULT_BACKENDS), DEFAULT_BACKENDS
    assert "every installed" not in build_parser().format_help()


# --------------------------------------------------------------------------- runnable commands


def _runnable() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for block in RUNNABLE.findall(_text(doc)):
            for line in block.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    found.append((doc, line))
    return found


RUNNABLE_COMMANDS = _runnable()


def test_a_few_commands_are_marked_runnable():
    assert 2 <= len(RUNNABLE_COMMANDS) <= 6, RUNNABLE_COMMANDS
    assert any(doc == "README.md" for doc, _ in RUNNABLE_COMMANDS)


@pytest.mark.parametrize(
    "doc, command", RUNNABLE_COMMANDS, ids=[f"{d}:{c[:40]}" for d, c in RUNNABLE_COMMANDS]
)
def test_a_runnable_command_runs(doc, command, tmp_path):
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=tmp_path,
        env=bench_env({"MLP_BENCH_NO_PLOTS": "1"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{doc}: {command}\n{done.stderr[-3000:]}"


# --------------------------------------------------------------------------- documented options


def _help_options() -> dict[str, set[str]]:
    parser = build_parser()
    top = set(OPTION.findall(parser.format_help()))
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    out = {}
    for name in sub.choices:
        out[name] = top | set(OPTION.findall(_format_help(parser, name)))
    return out


def _format_help(parser, name: str) -> str:
    """What `python -m bench NAME --help` prints."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        parser.parse_args([name, "--help"])
    return buffer.getvalue()


def _documented() -> list[tuple[str, str, str]]:
    """(document, command, option) for each option written after `python -m bench COMMAND`."""
    found = []
    for doc in DOCS:
        text = _text(doc).replace("\\\n", " ")  # a command continued on the next line
        for _, command, rest in COMMAND.findall(text):
            rest = rest.split("#", 1)[0]  # a shell comment after the command
            found += [(doc, command, option) for option in OPTION.findall(rest)]
    return found


def test_documented_options_exist_in_help():
    helps = _help_options()
    assert {"run", "report", "list", "verify"} <= helps.keys()
    documented = _documented()
    assert len(documented) > 10
    unknown = sorted(
        {
            f"{doc}: python -m bench {command} {option}"
            for doc, command, option in documented
            if option not in helps.get(command, set())
        }
    )
    assert unknown == []


def test_the_option_check_sees_a_wrong_option():
    helps = _help_options()
    assert "--epochs" in helps["run"] and "--epochz" not in helps["run"]
    line = "run `python -m bench run --epochz 3` then `python -m bench list`"
    assert COMMAND.findall(line)[0][1:] == ("run", " --epochz 3")


# --------------------------------------------------------------------------- the front page


def test_the_results_block_is_generated_from_its_run():
    readme = _text("README.md")
    named = re.search(r"generated by scripts/front-page from (\S+?);", readme)
    assert named, "README.md's results block names the run it comes from"
    assert (ROOT / named.group(1) / "results.csv").is_file()
    done = subprocess.run(
        [sys.executable, "scripts/front-page", named.group(1), "--check"],
        cwd=ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # a quiet run's table carries its verdict; a run that is not quiet is not quoted at all
    block = readme.split("<!-- results:begin -->", 1)[1].split("<!-- results:end -->", 1)[0]
    assert "Noise verdict: **quiet**" in block or (
        "No timing is quoted here yet" in block and "×" not in block
    )


def _front_page():
    from importlib.machinery import SourceFileLoader

    return SourceFileLoader("front_page", str(ROOT / "scripts" / "front-page")).load_module()


def test_the_performance_block_quotes_only_a_quiet_run(tmp_path):
    front_page = _front_page()
    readme = _text("README.md")
    block = readme.split(front_page.PERF_BEGIN, 1)[1].split(front_page.PERF_END, 1)[0]
    assert "Noise verdict: **quiet**" in block or (
        "No performance figure is quoted" in block and "×" not in block
    )
    run_dir, passed = front_page.performance_run()
    assert run_dir is None or front_page.quiet(run_dir)
    for reason in passed:  # each run passed over is said why, in the block
        assert reason in block
    # a quiet run, its session recorded as the load record records a busy machine
    quiet_run = sorted((ROOT / "results" / "examples").glob("*-noise-quiet"))[-1]
    busy = tmp_path / quiet_run.name
    shutil.copytree(quiet_run, busy)
    env = json.loads((busy / "env.json").read_text(encoding="utf-8"))
    for session in env["sessions"]:
        session["load"].update(busy=True, other_cores=1.1, other_cpu_s=4.2)
    (busy / "env.json").write_text(json.dumps(env), encoding="utf-8")
    assert front_page.quiet(quiet_run) and not front_page.quiet(busy)
    text = front_page.performance_block(None, ["no throughput run yet"])
    assert "No performance figure is quoted yet: no throughput run yet" in text
    assert "×" not in text


def test_the_readme_states_how_long_the_reference_runs_take():
    front_page = _front_page()
    readme = _text("README.md")
    block = readme.split(front_page.EXAMPLES_BEGIN, 1)[1].split(front_page.EXAMPLES_END, 1)[0]
    assert "`scripts/examples.sh all` remakes them, one after another, in about " in block
    runs = [front_page.newest_run(name) for name in front_page.EXAMPLE_RUNS]
    counted = [run for run in runs if run is not None and load_env(run).get("status") == "complete"]
    total = sum(front_page.run_seconds(load_env(run)) for run in counted)
    assert f"about {front_page.format_seconds(total)} " in block  # the runs' own times, summed
    assert f"the sum of the {len(counted)} runs' own times" in block
    cpus = {load_env(run)["machine"]["cpu"] for run in counted}
    if len(cpus) > 1:  # made on several machines: each one named with its share
        assert all(f"{cpu}: " in block for cpu in cpus)


def test_a_quiet_run_with_noisy_cells_says_so():
    import pandas as pd

    front_page = _front_page()
    ids = {"cell_id": ["a", "b", "c"], "repeat": [0, 0, 0]}
    assert front_page.settled_note(pd.DataFrame({**ids, "noisy": [False, False, False]})) == ""
    note = front_page.settled_note(pd.DataFrame({**ids, "noisy": [True, False, "True"]}))
    assert note.startswith(" (2 of 3 cells' epochs spread more than 10%, marked †")
    readme = _text("README.md")
    block = readme.split("<!-- results:begin -->", 1)[1].split("<!-- results:end -->", 1)[0]
    named = re.search(r"generated by scripts/front-page from (\S+?);", block).group(1)
    rows = pd.read_csv(ROOT / named / "results.csv")
    flagged = int(rows["noisy"].astype(str).str.lower().eq("true").sum())
    if flagged and "**quiet**" in block:  # the table drops the †: the verdict says they exist
        assert f"{flagged} of {len(rows)} cells' epochs spread more than" in block
