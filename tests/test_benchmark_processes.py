"""The pytest-benchmark suite runs each framework's benchmarks in a process of its own, never
in the process that collected them, and reports their outcomes there."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_each_group_runs_in_its_own_process(tmp_path):
    junit = tmp_path / "junit.xml"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MLP_BENCH_BENCHMARK_GROUP", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/benchmarks",
            "-p",
            "no:cacheprovider",
            "-q",
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
