"""The pytest-benchmark path measures noise as `bench run` does: its rounds give the same
intervals, its recorded load the same warnings, and two converted folders compare."""

import json

import numpy as np

from bench.cli import main
from bench.report import pbench


def _bench(backend, seconds, rounds, load, seed):
    times = list(seconds * np.exp(np.random.default_rng(seed).normal(0, 0.02, rounds)))
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return {
        "name": f"test_train[{backend}]",
        "extra_info": {
            "backend": backend,
            "model": "digits-64-100-10",
            "batch_size": 32,
            "threads": 1,
            "n_samples": 1437,
            "first_call_s": 2 * seconds,
            "rounds_s": times,
            "spread": (q3 - q1) / med,
            "noisy": False,
            "load": load,
        },
        "stats": {
            "median": med,
            "min": min(times),
            "max": max(times),
            "iqr": q3 - q1,
            "rounds": rounds,
        },
    }


def _json(tmp_path, name, torch_s=0.020, other_cpu_s=0.0, rounds=12):
    load = {
        "start": {"loadavg": [0.1, 0.1, 0.1], "cpu_count": 2},
        "other_cpu_s": other_cpu_s,
        "wall_s": 1.0,
        "other_cores": other_cpu_s,
    }
    data = {
        "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}},
        "benchmarks": [
            _bench("numpy-vec", 0.010, rounds, load, 1),
            _bench("torch", torch_s, rounds, load, 2),
        ],
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_converted_report_carries_intervals_and_the_load_warning(tmp_path):
    quiet = pbench.convert(_json(tmp_path, "quiet"), tmp_path / "quiet")[-1].read_text()
    verdict = quiet.split("## Verdict", 1)[1]
    assert (
        "numpy-vec fastest at batch 32 (1.9" in verdict
        or "numpy-vec fastest at batch 32 (2.0" in verdict
        and "95% interval" in verdict
    )
    assert "unreliable" not in quiet
    busy = pbench.convert(_json(tmp_path, "busy", other_cpu_s=1.5), tmp_path / "busy")[-1]
    text = busy.read_text()
    assert "**These figures are unreliable**" in text
    assert "other processes used 1.5 cores on average" in text


def test_two_converted_folders_compare(tmp_path, capsys):
    pbench.convert(_json(tmp_path, "a"), tmp_path / "a")
    pbench.convert(_json(tmp_path, "b", torch_s=0.030), tmp_path / "b")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--fail-above", "10"]) == 1
    out = capsys.readouterr().out
    torch = next(line for line in out.splitlines() if line.startswith("| torch"))
    assert "slower" in torch
