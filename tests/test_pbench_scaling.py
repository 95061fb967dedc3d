"""pytest-benchmark JSON -> the project's tables (bench.report.pbench), and the log-log scaling fits
(bench.report.scaling) on results whose slopes are known."""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bench.errors import UsageError
from bench.report import loading, pbench, scaling, sections
from bench.report.loading import load_run


def benchmark_entry(kind, backend, batch, median, model="digits-64-100-10"):
    return {
        "group": f"{kind} | {model} | batch {batch}",
        "name": f"test_{kind}[{model}-{batch}-{backend}]",
        "stats": {
            "min": median * 0.9,
            "max": median * 1.2,
            "median": median,
            "mean": median,
            "rounds": 7,
            "total": 7 * median,
        },
        "extra_info": {
            "backend": backend,
            "model": model,
            "batch_size": batch,
            "kind": kind,
            "n_samples": 1437 if kind == "train" else batch,
            "threads": 2,
            "first_call_s": median * 3,
            "samples_per_s": 1437 / median,
            "gflops": 6 * 7510 * 1437 / median / 1e9,
            "matmul_peak_gflops": 50.0,
            "roofline": 0.01,
        },
    }


def _overhead(framework, variant, median):
    bench = benchmark_entry("overhead", framework, 32, median)
    bench["extra_info"]["variant"] = variant
    if variant == "mlp-bench":  # timed in alternating rounds against plain code
        bench["extra_info"].update(ratio_to_plain=1.1, ratio_p10=1.05, ratio_p90=1.18)
    return bench


@pytest.fixture
def pbench_json(tmp_path):
    data = {
        "machine_info": {
            "python_version": "3.11.9",
            "system": "Linux",
            "cpu": {"brand_raw": "Test CPU", "count": 2},
        },
        "commit_info": {"id": "abc123"},
        "datetime": "2026-11-25T10:00:00",
        "version": "5.1.0",
        "benchmarks": [
            benchmark_entry("train", "numpy-vec", 32, 0.010),
            benchmark_entry("train", "torch", 32, 0.020),
            benchmark_entry("predict", "numpy-vec", 32, 0.0001),
            benchmark_entry("train", "numpy-vec", 256, 0.004),
            _overhead("torch", "mlp-bench", 0.30),
            _overhead("torch", "plain", 0.25),
            _overhead("keras", "plain", 0.5),  # no mlp-bench partner: no ratio
            # a benchmark without the project's extra_info (e.g. someone's own) is ignored
            {"group": None, "name": "test_other", "stats": {"median": 1.0}, "extra_info": {}},
        ],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    return path


def test_pytest_benchmark_json_converts_to_run_tables(pbench_json, tmp_path):
    out = tmp_path / "report"
    paths = pbench.convert(pbench_json, out)
    assert [p.name for p in paths] == ["results.csv", "env.json", "overhead.csv", "summary.md"]
    results, _ = load_run(out)
    assert len(results) == 3
    row = results[(results["backend"] == "numpy-vec") & (results["batch_size"] == 32)].iloc[0]
    assert row["epoch_s"] == pytest.approx(0.010)
    assert row["epoch_s_max"] == pytest.approx(0.012)
    assert row["predict_s"] == pytest.approx(0.0001)  # the predict benchmark fills its row
    assert row["hidden"] == "100" and row["dataset"] == "digits-64-100-10"
    assert row["status"] == "ok"
    torch = results[results["backend"] == "torch"].iloc[0]
    assert math.isnan(torch["predict_s"])
    env = json.loads((out / "env.json").read_text())
    assert env["matmul_gflops"] == {"float32": 50.0} and env["threads"] == 2
    summary = (out / "summary.md").read_text()
    assert "numpy-vec" in summary and "torch" in summary and "Test CPU" in summary
    # the framework-overhead pairs: not result rows, but a table of ratios
    assert "## Against plain framework code" in summary
    assert re.search(
        r"\| torch\s+\| digits-64-100-10 \| fixed \|\s+32 \|.*\| 1\.20× \|\s+"
        r"1\.10× \(1\.05–1\.18\) \|",
        summary,
    )
    overhead = pd.read_csv(out / "overhead.csv")
    assert list(overhead["framework"]) == ["torch"]
    assert overhead["ratio"].iloc[0] == pytest.approx(1.2)
    assert overhead["ratio_interleaved"].iloc[0] == pytest.approx(1.1)


def test_pytest_benchmark_conversion_via_cli(pbench_json, tmp_path):
    out = tmp_path / "cli-report"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "report",
            "--pytest-benchmark",
            str(pbench_json),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].endswith("summary.md")
    assert (out / "results.csv").exists()


def test_overhead_only_json_converts(tmp_path):
    path = tmp_path / "overhead.json"
    path.write_text(
        json.dumps(
            {
                "benchmarks": [
                    _overhead("torch", "mlp-bench", 0.3),
                    _overhead("torch", "plain", 0.25),
                ]
            }
        )
    )
    paths = pbench.convert(path, tmp_path / "out")
    assert [p.name for p in paths] == ["results.csv", "env.json", "overhead.csv", "summary.md"]
    assert "## Against plain framework code" in paths[-1].read_text()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("{not json", "is not pytest-benchmark JSON"),
        ('{"benchmarks": []}', "holds no mlp-bench training benchmarks"),
    ],
)
def test_pytest_benchmark_bad_input(tmp_path, content, message):
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message):
        pbench.convert(path, tmp_path / "out")


def scaling_results(slopes, noise=0.0):
    """Results rows of three scaling parts with time = c * x**slope per backend."""
    rng = np.random.default_rng(0)
    rows = []
    for backend, slope in slopes.items():
        for part, axis, values in [
            ("batch", "batch_size", [1, 4, 16, 64, 256]),
            ("width", "hidden", [32, 64, 128, 256]),
            ("samples", "n_train", [1000, 2000, 4000, 8000]),
        ]:
            for x in values:
                row = {
                    "part": part,
                    "backend": backend,
                    "status": "ok",
                    "batch_size": 128,
                    "hidden": "256",
                    "n_train": 5000,
                    "loss": "cce",
                    "lr": 0.01,
                }
                row[axis] = str(x) if axis == "hidden" else x
                row["epoch_s"] = 0.5 * x**slope * math.exp(noise * rng.standard_normal())
                rows.append(row)
    rows.append(
        {
            "part": "batch",
            "backend": "torch",
            "status": "error",
            "batch_size": 2,
            "hidden": "256",
            "n_train": 5000,
            "loss": "cce",
            "lr": 0.01,
            "epoch_s": float("nan"),
        }
    )
    return pd.DataFrame(rows)


def test_scaling_slopes_recovered():
    fits = scaling.fit_slopes(scaling_results({"numpy-vec": -0.8, "torch": 1.0}))
    assert len(fits) == 6
    assert set(fits["axis"]) == {"batch_size", "width", "n_train"}
    for backend, slope in {"numpy-vec": -0.8, "torch": 1.0}.items():
        got = fits[fits["backend"] == backend]["slope"].to_numpy()
        np.testing.assert_allclose(got, slope, atol=1e-9)
    assert (fits["r2"] > 0.999).all()


def test_scaling_needs_one_varying_axis_and_four_points():
    assert scaling.MIN_POINTS == 4
    results = scaling_results({"numpy-vec": 1.0})
    two_axes = results.copy()
    in_batch = two_axes["part"] == "batch"
    two_axes.loc[in_batch, "lr"] = np.linspace(0.01, 0.1, in_batch.sum())
    assert set(scaling.fit_slopes(two_axes)["part"]) == {"width", "samples"}
    samples = results["part"] == "samples"
    assert sorted(results.loc[samples, "n_train"]) == [1000, 2000, 4000, 8000]
    assert "samples" in set(scaling.fit_slopes(results)["part"])  # four points: a slope
    three = results[~(samples & (results["n_train"] == 8000))]
    assert sorted(three.loc[three["part"] == "samples", "n_train"]) == [1000, 2000, 4000]
    assert "samples" not in set(scaling.fit_slopes(three)["part"])  # three: none
    deep = results.copy()
    in_width = deep["part"] == "width"
    deep.loc[in_width, "hidden"] = deep.loc[in_width, "hidden"] + "x16"
    assert "width" not in set(scaling.fit_slopes(deep)["part"])


def test_summary_has_scaling_section():
    fits = scaling.fit_slopes(scaling_results({"numpy-vec": -0.5, "torch": 1.0}))
    text = sections.scaling_section(scaling_results({"numpy-vec": -0.5, "torch": 1.0}))
    assert text.startswith("## Scaling")
    assert "batch size 1–256 (batch)" in text and "hidden width 32–256 (width)" in text
    assert "-0.50 (r² 1.00, 5 pts)" in text and "+1.00 (r² 1.00, 4 pts)" in text
    assert len(fits) == 6


def test_scaling_study_is_drawn_in_one_figure(tmp_path):
    from bench.report import plots

    results = loading.typed(scaling_results({"numpy-vec": -0.5, "torch": 1.0}))
    results["dataset"] = "synthetic:n=5000,d=784,k=10"
    written = plots.write_plots(results, pd.DataFrame(), tmp_path)
    assert [p.name for p in written] == ["scaling.png"]  # no figure per cell of a study
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
