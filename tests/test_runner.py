"""End to end: real sweeps in real worker processes, written to real run folders."""

import json
from pathlib import Path

import pytest
from conftest import require_backend
from helpers import read_curves, read_env, read_rows

from bench.cli import main

TINY = [
    "--datasets",
    "digits",
    "--losses",
    "cce",
    "--epochs",
    "2",
    "--batch-sizes",
    "64",
    "--threads",
    "1",
    "--quiet",
]


def _run(args, capsys):
    code = main(["run", *args])
    out = capsys.readouterr().out.strip().splitlines()
    return code, Path(out[-1]) if out else None


def test_two_backends_end_to_end(tmp_path, capsys, monkeypatch):
    require_backend("torch")
    monkeypatch.setenv("MLP_BENCH_NO_PLOTS", "")  # this run's figures are checked too
    code, run_dir = _run([*TINY, "--backends", "numpy-vec,torch", "--out", str(tmp_path)], capsys)
    assert code == 0 and run_dir.parent == tmp_path  # the last line printed is the folder
    rows = read_rows(run_dir)
    assert [(r["backend"], r["status"]) for r in rows] == [("numpy-vec", "ok"), ("torch", "ok")]
    for r in rows:
        assert float(r["epoch_s"]) > 0 and float(r["first_epoch_s"]) > 0
        assert 0.5 < float(r["test_acc"]) <= 1 and int(r["n_train"]) == 1437
        assert json.loads(r["threads_effective"])["openblas"] == 1
    # the same problem: same weights, same orders -> the same accuracy on both backends
    assert rows[0]["test_acc"] == rows[1]["test_acc"]
    assert json.loads(rows[1]["threads_effective"])["torch_intra"] == 1
    curves = read_curves(run_dir)
    assert [(c["backend"], c["epoch"]) for c in curves] == [
        ("numpy-vec", "1"),
        ("numpy-vec", "2"),
        ("torch", "1"),
        ("torch", "2"),
    ]
    env = read_env(run_dir)
    assert env["status"] == "complete" and env["threads"] == 1
    assert env["matmul_gflops"]["float32"] > 0 and env["versions"]["numpy"]
    assert "--backends numpy-vec,torch" in env["command"]
    # where the wall time went: the buckets come from the rows and add up to the wall time
    acc = env["time_accounting"]
    assert acc["training_s"] == pytest.approx(sum(float(r["train_s"]) for r in rows))
    assert acc["evaluation_s"] == pytest.approx(
        sum(float(r["eval_s"]) + float(r["predict_s"]) for r in rows)
    )
    extra = sum(sum(json.loads(r["extra_epoch_s"])) for r in rows)
    assert acc["extra_timing_s"] == pytest.approx(extra)
    work = acc["training_s"] + acc["extra_timing_s"] + acc["evaluation_s"]
    work += acc["framework_startup_s"]
    assert acc["framework_startup_s"] > 0 and 0 < work < acc["wall_s"]
    assert acc["harness_s"] == pytest.approx(acc["wall_s"] - work)
    assert acc["work_share"] == pytest.approx(work / acc["wall_s"])
    for part in ("data_s", "matmul_probe_s", "report_s", "harness_in_cells_s"):
        assert 0 <= acc[part] <= acc["harness_s"]
    for r in rows:
        assert float(r["cell_s"]) >= float(r["train_s"]) + float(r["eval_s"]) > 0
    summary = (run_dir / "summary.md").read_text()
    assert "numpy-vec" in summary and "torch" in summary
    assert list((run_dir / "plots").glob("*.png"))


def test_python_api(tmp_path):
    import bench

    df = bench.run_sweep(
        backends=["numpy-vec"],
        epochs=1,
        batch_sizes=[128],
        losses=["cce"],
        threads=[1],
        out=tmp_path,
    )
    assert list(df["status"]) == ["ok"] and df.loc[0, "backend"] == "numpy-vec"
    results, curves = bench.load_run(df.attrs["run_dir"])
    assert len(results) == 1 and len(curves) == 1
