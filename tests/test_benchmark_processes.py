"""The pytest-benchmark suite runs each framework's benchmarks in a process of its own, never
in the process that collected them, and reports their outcomes there."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = [sys.executable, "-m", "pytest", "tests/benchmarks", "-p", "no:cacheprovider"]


def _pytest_env(**extra):
    """The environment of a pytest started here: a run of its own, not a benchmark group's
    process nor a pytest-xdist worker (which this test may run in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env.pop("MLP_BENCH_BENCHMARK_GROUP", None)
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_each_group_runs_in_its_own_process(tmp_path):
    junit = tmp_path / "junit.xml"
    env = _pytest_env()
    proc = subprocess.Popen(
        [
            *BENCHMARKS,
            "-q",
            "-n",
            "2",  # two workers, whatever the cores: a group still runs once, in one process
            "-k",
            "test_predict_proba and digits and -1- and (numpy or torch)",
            f"--junitxml={junit}",
            "--benchmark-disable",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    cases = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert case.find("failure") is None and case.find("error") is None, output
        props["skipped"] = case.find("skipped") is not None
        cases[case.get("name")] = props
    groups = {}
    for name, props in cases.items():
        backend = name.split("-1-")[-1].rstrip("]")
        group = "torch" if backend == "torch" else "numpy"
        groups.setdefault(group, set()).add(props["pid"])
        if not props["skipped"]:
            assert "tensorflow" not in props["frameworks"], name
            assert ("torch" in props["frameworks"]) == (group == "torch"), name
    assert len(cases) == 3  # numpy-loop, numpy-vec, torch
    assert all(len(pids) == 1 for pids in groups.values())  # one process per group...
    pids = {pid for pids in groups.values() for pid in pids}
    assert len(pids) == len(groups) and str(proc.pid) not in pids  # ...not the collecting one


def test_benchmarks_measure_without_parallel_workers(tmp_path):
    """The suite runs on pytest-xdist workers (pyproject.toml), but a measuring run does not:
    pytest-benchmark would switch itself off, and parallel work would disturb the timings."""
    out = tmp_path / "b.json"
    env = _pytest_env(MLP_BENCH_BUDGET_S="0.05")
    done = subprocess.run(
        [
            *BENCHMARKS,
            "--benchmark-only",
            "-k",
            "test_predict_proba and digits and -1- and numpy-vec",
            f"--benchmark-json={out}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "workers" not in output and "disabled" not in output, output
    (measured,) = json.loads(out.read_text())["benchmarks"]
    assert measured["stats"]["rounds"] >= 1 and measured["stats"]["median"] > 0


def test_the_tests_run_without_pytest_xdist():
    """Parallel workers are added only where pytest-xdist is installed (tests/conftest.py):
    a Python with pytest alone, like the GPU machine's, still runs the suite."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider"]
        + ["-q", "tests/test_layout.py"],
        cwd=ROOT,
        env=_pytest_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout and "workers" not in done.stdout
