"""summary.md's generated verdict, its noise rules, the noise warning, and what the header says
about resumes, interrupted runs, parity figures and pytest-benchmark conversions."""

import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_report import ENV, result_row

from bench.report import loading, noise, pbench, tables
from bench.report.summary import render_summary
from bench.store.schema import CURVE_KEYS


def _results(cells, **fields):
    """Rows from {(backend, batch): [(epoch_s, test_acc, epoch_s_min, epoch_s_max), ...]}."""
    rows = []
    for (backend, bs), repeats in cells.items():
        for repeat, (epoch_s, acc, lo, hi) in enumerate(repeats):
            row = result_row("digits", backend, bs, repeat, (epoch_s, acc))
            row.update(epoch_s_min=lo, epoch_s_max=hi, **fields)
            rows.append(row)
    return loading.typed(pd.DataFrame(rows).astype(str).replace({"None": "", "nan": ""}))


def _verdict(text):
    return text.split("## Verdict", 1)[1].split("\n## ", 1)[0].split("**How to read", 1)[0]


def _cell(text, backend, column):
    block = text.split("## digits · loss cce", 1)[1]
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == backend:
            return cells[column]
    raise AssertionError(backend)


def _timed(cells, seed=0):
    """(results, curves) from {(backend, batch): [epoch times of repeat 0], ...}: each
    cell's first epoch is its warm-up (twice the second), the rest its steady epochs."""
    rows, curves = [], []
    for (backend, bs), epochs in cells.items():
        steady = np.asarray(epochs, dtype=float)
        row = result_row("digits", backend, bs, 0, (float(np.median(steady)), 0.95))
        q1, q3 = np.percentile(steady, [25, 75])
        row.update(
            epoch_s_min=steady.min(),
            epoch_s_max=steady.max(),
            epochs_run=len(steady) + 1,
            epoch_s_spread=(q3 - q1) / np.median(steady) if len(steady) >= 3 else None,
        )
        rows.append(row)
        times = [2 * steady[0], *steady]
        for epoch, t in enumerate(times, 1):
            curve = {k: row.get(k) for k in CURVE_KEYS}
            curve.update(epoch=epoch, epoch_s=t, elapsed_s=sum(times[:epoch]), epoch_loss=0.5)
            curves.append(curve)

    def table(frame):
        return loading.typed(pd.DataFrame(frame).astype(str).replace({"None": "", "nan": ""}))

    return table(rows), table(curves)


def _epochs(seconds, n=9, jitter=0.02, seed=0):
    rng = np.random.default_rng(seed)
    return list(seconds * np.exp(rng.normal(0, jitter, n)))


def test_a_clear_win_is_called_with_its_ratio_and_interval():
    results, curves = _timed(
        {("numpy-vec", 32): _epochs(0.020, seed=1), ("torch", 32): _epochs(0.010, seed=2)}
    )
    text = render_summary(results, curves, ENV)
    assert text.index("## Verdict") < text.index("**How to read this.**")
    assert text.index("## Verdict") < text.index("## digits · loss cce")
    line = _verdict(text)
    found = re.search(
        r"torch fastest at batch 32 \(([\d.]+)× \[([\d.]+), ([\d.]+)\] numpy-vec", line
    )
    ratio, lo, hi = map(float, found.groups())
    assert lo < 2.0 < hi and 1.9 < ratio < 2.1 and hi / lo < 1.1
    assert "95% interval" in line
    assert "agree within 0.01 in every cell" in line
    # the table of each backend against the reference, with its interval and verdict
    table = text.split("**Speed against the reference.**", 1)[1]
    assert re.search(r"\| 32 +\| numpy-vec \| +[\d.]+× \[[\d.]+, [\d.]+\] \*\*faster\*\*", table)
    assert "unreliable" not in text


def test_a_small_difference_is_no_clear_difference():
    # torch's epochs are 3% faster and known precisely, but 3% is below the 5% threshold
    results, curves = _timed(
        {
            ("numpy-vec", 32): _epochs(0.0200, n=30, jitter=0.005, seed=1),
            ("torch", 32): _epochs(0.0194, n=30, jitter=0.005, seed=2),
        }
    )
    line = _verdict(render_summary(results, curves, ENV))
    assert "fastest" not in line
    assert "at batch 32 no clear difference (torch 1.0" in line
    # overlapping epochs: no clear difference either
    results, curves = _timed(
        {
            ("numpy-vec", 32): _epochs(0.020, jitter=0.3, seed=3),
            ("torch", 32): _epochs(0.019, jitter=0.3, seed=4),
        }
    )
    assert "no clear difference" in _verdict(render_summary(results, curves, ENV))


@pytest.mark.parametrize("steady", [0, 1, 3])
def test_too_few_epochs_name_no_winner_and_no_zero_width_interval(steady):
    # 1 or 2 epochs (0 or 1 steady) give no interval: never "1.39–1.39×" in bold
    cells = {("numpy-vec", 1): [0.014] * max(steady, 1), ("torch", 1): [0.010] * max(steady, 1)}
    results, curves = _timed(cells)
    if steady == 0:
        curves = curves[curves["epoch"] == 1]  # --epochs 1: the only epoch is the warm-up
    text = _verdict(render_summary(results, curves, ENV))
    line = text.split("**Speed against the reference.**")[0]
    assert "fastest" not in line and "**faster**" not in text.split("|", 1)[1]
    assert "too few steady epochs or repeats for an interval, so no winner is named" in line
    assert "(too few samples for an interval)" in line
    assert "too few samples for an interval" in text.split("|", 1)[1]


def test_one_epoch_cells_without_a_steady_time_name_no_winner():
    """A --epochs 1 run has no steady epoch to time: the verdict says so (the report failed
    with "Encountered all NA values" and wrote no summary.md)."""
    results, curves = _timed({("numpy-vec", 32): [0.014], ("torch", 32): [0.010]})
    results["epochs_run"] = 1
    curves = curves[curves["epoch"] == 1]
    line = _verdict(render_summary(results, curves, ENV)).split("**Speed against")[0]
    assert "too few steady epochs or repeats for an interval, so no winner is named" in line
    assert "fastest" not in line


def test_without_curves_repeats_give_the_interval():
    # no curves.csv: 4 repeats a side are enough, 1 is not
    rows = []
    for backend, t in (("numpy-vec", 0.02), ("torch", 0.01)):
        for repeat, jitter in enumerate((1.0, 1.01, 0.99, 1.02)):
            row = result_row("digits", backend, 32, repeat, (t * jitter, 0.95))
            row.update(epochs_run=10)
            rows.append(row)
    results = loading.typed(pd.DataFrame(rows).astype(str).replace({"None": "", "nan": ""}))
    assert "torch fastest at batch 32 (2" in _verdict(render_summary(results, None, ENV))
    one = results[results["repeat"] == 0]
    assert "no winner is named" in _verdict(render_summary(one, None, ENV))


def test_the_noise_band_uses_the_spread_and_repeats():
    # with epoch_s_spread the band is the interquartile range, not the min-max of epochs
    results = _results(
        {
            ("numpy-vec", 32): [(0.020, 0.95, 0.001, 0.2)],
            ("torch", 32): [(0.010, 0.95, 0.001, 0.2)],
        },
        epoch_s_spread=0.1,
    )
    s = tables.summarize(results)
    torch = s[s["backend"] == "torch"].iloc[0]
    assert (torch["epoch_s_lo"], torch["epoch_s_hi"]) == pytest.approx((0.0095, 0.0105))


def test_a_spread_above_two_keeps_the_band_within_the_epochs_measured():
    # a jittery 2.6 ms cell spreading 300%: median -/+ half the spread would go below zero
    # (the summary printed "0.0647–-0.0742×"); the band stays within its fastest and slowest epoch
    results = _results(
        {
            ("numpy-vec", 64): [(0.00324, 0.9, 0.0031, 0.0036)],
            ("torch", 64): [(0.00258, 0.9, 0.0020, 0.0140)],
        },
        epoch_s_spread=3.0,
    )
    s = tables.summarize(results)
    fast = s[s["backend"] == "torch"].iloc[0]
    # low end: the fastest epoch (the spread would give -1.3 ms); high end: median + half the spread
    assert (fast["epoch_s_lo"], fast["epoch_s_hi"]) == pytest.approx((0.0020, 0.00645))


def test_accuracy_split_quotes_measured_parity_and_never_a_fixed_figure():
    cells = {
        ("numpy-vec", 1): [(0.02, 0.936, 0.019, 0.021)],
        ("torch", 1): [(0.01, 0.969, 0.0095, 0.0105)],
        ("numpy-vec", 32): [(0.002, 0.958, 0.0019, 0.0021)],
        ("torch", 32): [(0.001, 0.958, 0.00095, 0.00105)],
    }
    results = _results(cells)
    plain = _verdict(render_summary(results, None, ENV))
    assert "backends part at batch 1 (numpy-vec 0.936, torch 0.969)" in plain
    assert "agree within 0.01 in the 1 other cell" in plain
    assert "`python -m bench verify` checks it" in plain and "1e-7" not in plain
    measured = {
        "ran_at": "2026-01-01T00:00:00+00:00",
        "epochs": 3,
        "cases": 12,
        "tolerance": {"float32": 1e-4, "float64": 1e-9},
        "worst": {"torch": {"float32": 3.2e-6, "float64": 1e-12}, "keras": {"float32": 4e-5}},
        "passed": True,
    }
    text = render_summary(results, None, {**ENV, "verify": measured})
    assert "`bench verify`: within 4e-05 after 3 epochs on this machine" in _verdict(text)
    failed = render_summary(results, None, {**ENV, "verify": {**measured, "passed": False}})
    assert "beyond its tolerance" in _verdict(failed)


def test_accuracy_split_within_the_repeats_spread_says_so():
    results = _results(
        {
            ("numpy-vec", 1): [(0.02, 0.93, 0.019, 0.021), (0.02, 0.97, 0.019, 0.021)],
            ("torch", 1): [(0.01, 0.96, 0.0095, 0.0105), (0.01, 0.98, 0.0095, 0.0105)],
        }
    )
    line = _verdict(render_summary(results, None, ENV))
    assert "within the noise of their repeats" in line and "rounding" not in line
    # repeats that agree closely on a gap of 0.03: the gap is beyond their noise
    results = _results(
        {
            ("numpy-vec", 1): [(0.02, 0.930, 0.019, 0.021), (0.02, 0.931, 0.019, 0.021)],
            ("torch", 1): [(0.01, 0.960, 0.0095, 0.0105), (0.01, 0.962, 0.0095, 0.0105)],
        }
    )
    line = _verdict(render_summary(results, None, ENV))
    assert "backends part at batch 1" in line and "within the noise of their repeats" not in line


def test_noise_warning_is_plain_and_absent_for_a_quiet_run(monkeypatch):
    results = _results(
        {
            ("numpy-vec", 32): [(0.02, 0.95, 0.019, 0.021)],
            ("torch", 32): [(0.01, 0.95, 0.0095, 0.0105)],
        }
    )
    seen = {}

    def unreliable(env, rows, precise=None):
        seen["rows"] = len(rows)
        return SimpleNamespace(
            reliable=False,
            reasons=["the machine was busy: load average 3.1 on 2 cores at the start"],
            advice="Use --threads 1; add --repeats 3.",
            noisy_cells=set(),
        )

    monkeypatch.setattr(noise, "assess", unreliable)
    text = render_summary(results, None, ENV)
    first = _verdict(text).strip().splitlines()[0]
    assert first == (
        "- **These figures are unreliable**: the machine was busy: load average 3.1 on 2 "
        "cores at the start. Use --threads 1; add --repeats 3."
    )
    assert seen["rows"] == 2
    quiet = SimpleNamespace(reliable=True, reasons=[], advice="", noisy_cells=set())
    monkeypatch.setattr(noise, "assess", lambda env, rows, precise=None: quiet)
    assert "unreliable" not in render_summary(results, None, ENV)


def test_noisy_cells_are_marked_and_the_real_assessment_speaks():
    noise = pytest.importorskip("bench.report.noise")
    results = _results(
        {("numpy-vec", 32): [(0.02, 0.95, 0.01, 0.04)], ("torch", 32): [(0.01, 0.95, 0.009, 0.011)]}
    )
    results["noisy"] = pd.array([True, False], dtype="boolean")
    results["epoch_s_spread"] = [0.5, 0.02]
    assert noise.assess(ENV, results).reliable is False
    text = render_summary(results, None, ENV)
    assert "**These figures are unreliable**" in _verdict(text)
    assert "1 of 2 cells are noisy" in _verdict(text)
    assert _cell(text, "numpy-vec", 1).startswith("0.950 · 20 ms† · 1.0×")
    assert "†: a noisy cell" in text
    results["noisy"] = pd.array([False, False], dtype="boolean")
    assert "unreliable" not in render_summary(results, None, ENV)


def test_interrupted_run_counts_the_cells_that_did_not_run():
    results = _results({("numpy-vec", 32): [(0.02, 0.95, 0.019, 0.021)]})
    env = {**ENV, "status": "interrupted", "cells": 6}
    text = render_summary(results, None, env)
    assert "5 of 6 cells (cells × repeats) did not run" in text.split("**How to read")[0]
    failed = text.split("## Failed cells", 1)[1]
    assert "All 1 cells finished ok" not in text
    assert "5 of 6 cells (cells × repeats) did not run" in failed
    # the run's own count, where it recorded one, wins over the arithmetic
    recorded = render_summary(results, None, {**env, "cells_not_run": 2})
    assert "2 of 6 cells (cells × repeats) did not run" in recorded


def test_resumed_run_shows_the_original_command_and_each_resume():
    results = _results(
        {
            ("numpy-vec", 32): [(0.02, 0.95, 0.019, 0.021)],
            ("torch", 32): [(0.01, 0.95, 0.009, 0.011)],
        }
    )
    results["session"] = pd.array([0, 1], dtype="Int64")
    env = {
        **ENV,
        "command": "python -m bench run --backends numpy-vec,torch",
        "sessions": [
            {
                "index": 0,
                "command": "python -m bench run --backends numpy-vec,torch",
                "started_at": "2025-01-05T14:00:00+00:00",
                "matmul": {"1": {"float32": {"median": 100.0, "spread": 0.01}}},
            },
            {
                "index": 1,
                "command": "python -m bench run --resume results/r1",
                "started_at": "2025-01-05T15:00:00+00:00",
                "matmul": {"1": {"float32": {"median": 80.0, "spread": 0.01}}},
            },
        ],
    }
    text = render_summary(results, None, env)
    head = text.split("**How to read")[0]
    compute = text.split("## Compute", 1)[1].split("\n## ", 1)[0]
    assert "(session 0: 100 GFLOP/s float32; session 1: 80 GFLOP/s float32)" in compute
    assert "the peak of the session (start or resume) it ran in" in compute
    assert "Command: `python -m bench run --backends numpy-vec,torch`, resumed 1 time:" in head
    assert "- `python -m bench run --resume results/r1` at 2025-01-05 15:00 UTC (1 row)" in head
    assert "session 0: 100 GFLOP/s float32; session 1: 80 GFLOP/s float32" in head


def test_a_name_with_a_newline_keeps_the_heading_on_one_line():
    results = _results({("numpy-vec", 32): [(0.02, 0.95, 0.019, 0.021)]})
    text = render_summary(results, None, {**ENV, "name": "two\nlines | here"})
    assert text.splitlines()[0] == "# mlp-bench: two lines | here (`r1`)"


def _pbench_json(tmp_path, command=None):
    from test_pbench_scaling import benchmark_entry

    data = {
        "benchmarks": [
            benchmark_entry("train", "numpy-vec", 32, 0.010),
            benchmark_entry("train", "torch", 32, 0.0735),
        ]
    }
    for bench in data["benchmarks"]:
        bench["stats"]["iqr"] = bench["stats"]["median"] * 0.05
    if command:
        data["command"] = command
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    return path


def test_pytest_benchmark_summary_says_what_its_cells_hold(tmp_path):
    path = _pbench_json(tmp_path)
    summary = pbench.convert(path, tmp_path / "out")[-1].read_text()
    assert "A cell is `time per epoch · ×`" in summary
    assert (
        _cell(summary.replace("## digits-64-100-10 · loss cce", "## digits · loss cce"), "torch", 1)
        == "73.5 ms · 0.14×"
    )
    assert "—" not in _cell(
        summary.replace("## digits-64-100-10 · loss cce", "## digits · loss cce"), "numpy-vec", 1
    )
    assert "its JSON does not record the command line" in summary
    assert f"converted with: `python -m bench report --pytest-benchmark {path} --out" in summary
    assert "pytest tests/benchmarks --benchmark-only`" not in summary  # never a made-up one
    recorded = "pytest tests/benchmarks -k digits --benchmark-only --benchmark-json bench.json"
    summary = pbench.convert(_pbench_json(tmp_path, recorded), tmp_path / "o2")[-1].read_text()
    assert f"Measured with: `{recorded}`" in summary


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"benchmarks": {"a": 1}}', "'benchmarks' is a dict, not a list"),
        ('{"benchmarks": [3]}', "benchmark 0 is a int, not an object"),
        (
            '{"benchmarks": [{"name": "t", "extra_info": [], "stats": {}}]}',
            "benchmark 0 (t): 'extra_info' is a list",
        ),
        (
            '{"benchmarks": [{"extra_info": {"backend": "torch", "model": "m", "batch_size": "x"},'
            ' "stats": {"median": 1}}]}',
            "extra_info.batch_size missing or of the wrong type",
        ),
        (
            '{"benchmarks": [{"extra_info": {"backend": "torch", "model": "m", "batch_size": 2},'
            ' "stats": {"median": "fast"}}]}',
            "stats.median missing or of the wrong type",
        ),
        ("[1, 2]", "no 'benchmarks' list"),
    ],
)
def test_pytest_benchmark_json_of_the_wrong_shape(tmp_path, content, message):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(pbench.UsageError, match=re.escape(message)):
        pbench.convert(path, tmp_path / "out")


def test_pytest_benchmark_given_a_folder(tmp_path):
    with pytest.raises(pbench.UsageError, match="is a folder, not a pytest-benchmark JSON file"):
        pbench.convert(tmp_path, tmp_path / "out")
