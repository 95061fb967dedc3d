"""The overhead pairs of pytest-benchmark JSON keep their device: a backend's pair on the CPU
and its pair on a GPU (tests/benchmarks/test_plain_torch_overhead.py) are two rows, and the
summary's table names the device once a pair is not on the CPU."""

import json
import re

import pandas as pd
import pytest

from bench.report import pbench


def _overhead(variant, device, median, ratio=None):
    info = {
        "backend": "torch",
        "variant": variant,
        "model": "synthetic65536-784-256-128-10",
        "batch_size": 1024,
        "order": "shuffled",
        "kind": "overhead",
        "n_samples": 3 * 65536,
    }
    if device is not None:
        info["device"] = device
    if ratio is not None:
        info.update(ratio_to_plain=ratio, ratio_p10=ratio - 0.05, ratio_p90=ratio + 0.05)
    stats = {"min": median, "max": median, "median": median, "mean": median, "rounds": 5}
    return {"group": "g", "name": f"t[{variant}-{device}]", "stats": stats, "extra_info": info}


def test_overhead_pairs_are_kept_apart_by_device(tmp_path):
    path = tmp_path / "bench.json"
    benchmarks = [
        _overhead("mlp-bench", None, 0.6, ratio=1.2),  # before devices were recorded: the CPU
        _overhead("plain", "cpu", 0.5),
        _overhead("mlp-bench", "cuda", 0.11, ratio=1.05),
        _overhead("plain", "cuda", 0.1),
    ]
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    paths = pbench.convert(path, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "overhead.csv")
    assert list(table["device"]) == ["cpu", "cuda"]
    assert list(table["ratio"]) == pytest.approx([1.2, 1.1])
    summary = paths[-1].read_text()
    assert "| device |" in summary and "test_plain_torch_overhead.py" in summary
    assert re.search(r"\| torch\s+\| \S+ \| shuffled \| cuda\s+\|\s+1024 \|.*1\.05×", summary)


def test_a_cpu_only_overhead_table_has_no_device_column(tmp_path):
    path = tmp_path / "bench.json"
    benchmarks = [_overhead("mlp-bench", "cpu", 0.6, ratio=1.2), _overhead("plain", "cpu", 0.5)]
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    summary = pbench.convert(path, tmp_path / "out")[-1].read_text()
    assert "| device |" not in summary and "## Against plain framework code" in summary
