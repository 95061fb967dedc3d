"""The speed targets of a pytest-benchmark run (tests/benchmarks/test_bench_targets.py) become a
Targets section of its summary, each ratio with its spread and goal, and no result rows."""

import json

from bench.report import pbench, targets
from bench.report.loading import load_run


def target_entry(target, batch, ratio, goal, backend="numpy-vec", optimizer=None, timed=True):
    info = {
        "backend": backend,
        "model": "mnist-784-256-128-10",
        "batch_size": batch,
        "kind": "target",
        "target": target,
        "goal": goal,
        "n_samples": 2048,
        "threads": 2,
    }
    if optimizer:
        info["optimizer"] = optimizer
    if timed:  # run as a test, a target benchmark has no alternating ratio
        info.update(ratio=ratio, ratio_p10=ratio * 0.9, ratio_p90=ratio * 1.1, ratio_pairs=9)
    return {
        "group": f"target | {target}",
        "name": f"test_target_{target}[{batch}]",
        "stats": {"min": 0.1, "max": 0.2, "median": 0.15, "mean": 0.15, "rounds": 5},
        "extra_info": info,
    }


def test_targets_become_a_section_with_spread_and_goal_and_no_result_rows(tmp_path):
    data = {
        "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}},
        "benchmarks": [
            target_entry("torch", 1024, 0.90, 0.95, optimizer="adam"),
            target_entry("torch", 32, 1.20, 1.0, optimizer="sgd"),
            target_entry("products", 1024, 0.93, 0.90),
            target_entry("yardstick", 1, 2.5, 2.0, backend="numpy-loop", timed=False),
        ],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    paths = pbench.convert(path, tmp_path / "report")
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "## Targets" in summary
    lines = [line for line in summary.splitlines() if line.startswith("| numpy-vec")]
    assert len(lines) == 3  # the untimed yardstick benchmark has no ratio to show
    assert "products ÷ its epoch" in lines[0] and "0.93 (0.84–1.02)" in lines[0]
    assert "met" in lines[0] and "not met" not in lines[0]
    sgd, adam = lines[2], lines[1]
    assert "| adam " in adam and "0.90 (0.81–0.99)" in adam and "≥ 0.95" in adam
    assert "not met" in adam and "| sgd " in sgd and "1.20" in sgd
    assert paths[-1].name == "summary.md"
    results, _ = load_run(tmp_path / "report")
    assert results.empty  # a target is a ratio, not a cell of the results


def test_no_target_benchmarks_no_section():
    assert targets.targets_table([]).empty
    assert targets.targets_section(targets.targets_table([])) == ""
