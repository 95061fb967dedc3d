"""End to end: real sweeps in real worker processes, written to real run folders."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_backend

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


def _rows(run_dir):
    with open(Path(run_dir) / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _curves(run_dir):
    with open(Path(run_dir) / "curves.csv", newline="") as f:
        return list(csv.DictReader(f))


def _run(args, capsys):
    code = main(["run", *args])
    out = capsys.readouterr().out.strip().splitlines()
    return code, Path(out[-1]) if out else None


def test_two_backends_end_to_end(tmp_path, capsys):
    require_backend("torch")
    code, run_dir = _run([*TINY, "--backends", "numpy-vec,torch", "--out", str(tmp_path)], capsys)
    assert code == 0 and run_dir.parent == tmp_path  # the last line printed is the folder
    rows = _rows(run_dir)
    assert [(r["backend"], r["status"]) for r in rows] == [("numpy-vec", "ok"), ("torch", "ok")]
    for r in rows:
        assert float(r["epoch_s"]) > 0 and float(r["first_epoch_s"]) > 0
        assert 0.5 < float(r["test_acc"]) <= 1 and int(r["n_train"]) == 1437
        assert json.loads(r["threads_effective"])["openblas"] == 1
    # the same problem: same weights, same orders -> the same accuracy on both backends
    assert rows[0]["test_acc"] == rows[1]["test_acc"]
    assert json.loads(rows[1]["threads_effective"])["torch_intra"] == 1
    curves = _curves(run_dir)
    assert [(c["backend"], c["epoch"]) for c in curves] == [
        ("numpy-vec", "1"),
        ("numpy-vec", "2"),
        ("torch", "1"),
        ("torch", "2"),
    ]
    env = json.loads((run_dir / "env.json").read_text())
    assert env["status"] == "complete" and env["threads"] == 1
    assert env["matmul_gflops"]["float32"] > 0 and env["versions"]["numpy"]
    assert "--backends numpy-vec,torch" in env["command"]
    # where the wall time went: the buckets come from the rows and add up to the wall time
    acc = env["time_accounting"]
    assert acc["training_s"] == pytest.approx(sum(float(r["train_s"]) for r in rows))
    assert acc["evaluation_s"] == pytest.approx(
        sum(float(r["eval_s"]) + float(r["predict_s"]) for r in rows)
    )
    work = acc["training_s"] + acc["evaluation_s"] + acc["framework_startup_s"]
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


def test_interrupt_then_resume(tmp_path):
    """Ctrl-C keeps every finished cell; --resume runs the rest and repeats none."""
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "run",
        "--datasets",
        "digits",
        "--losses",
        "cce",
        "--backends",
        "numpy-vec,numpy-loop",
        "--batch-sizes",
        "1,4",
        "--epochs",
        "20",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    run_dir = None
    while time.monotonic() < deadline:
        folders = [p for p in tmp_path.iterdir() if p.is_dir()]
        if folders and (folders[0] / "results.csv").exists() and _rows(folders[0]):
            run_dir = folders[0]
            break
        time.sleep(0.1)
    assert run_dir is not None, "no cell finished in time"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"--resume {run_dir}" in err
    first = _rows(run_dir)
    assert 1 <= len(first) < 4
    assert json.loads((run_dir / "env.json").read_text())["status"] == "interrupted"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--resume", str(run_dir), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(run_dir)
    rows = _rows(run_dir)
    keys = [(r["cell_id"], r["repeat"]) for r in rows]
    assert len(rows) == 4 and len(set(keys)) == 4
    assert rows[: len(first)] == first  # the first session's cells were not run again
    assert json.loads((run_dir / "env.json").read_text())["status"] == "complete"
    per_cell = {}
    for c in _curves(run_dir):
        per_cell.setdefault((c["cell_id"], c["repeat"]), []).append(int(c["epoch"]))
    assert all(epochs == list(range(1, 21)) for epochs in per_cell.values())


def test_failures_are_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    """A cell that diverges and one that runs past --timeout: each recorded; every other
    cell runs. (A backend that raises: tests/test_faults.py.)"""
    config = tmp_path / "faults.toml"
    config.write_text(
        """
[sweep]
title = "faults"
datasets = ["digits"]
threads = [1]
epochs = [2]
[[sweep.parts]]
name = "diverge"
backends = ["numpy-vec"]
losses = ["mse"]
output = "linear"
lrs = [1e6]
batch_sizes = [8]
[[sweep.parts]]
name = "slow"
backends = ["numpy-loop"]
batch_sizes = [1]
epochs = [1000]
[[sweep.parts]]
name = "after"
backends = ["numpy-vec"]
batch_sizes = [64]
"""
    )
    code, run_dir = _run(
        ["--config", str(config), "--timeout", "4", "--out", str(tmp_path), "--quiet"], capsys
    )
    assert code == 0
    rows = {(r["part"], r["backend"]): r for r in _rows(run_dir)}
    diverged = rows[("diverge", "numpy-vec")]
    assert diverged["status"] == "diverged" and diverged["diverged_epoch"] == "1"
    assert "NaN or inf in epoch 1" in diverged["error"]
    slow = rows[("slow", "numpy-loop")]
    assert slow["status"] == "timeout" and "stopped after 4 s" in slow["error"]
    assert rows[("after", "numpy-vec")]["status"] == "ok"  # a new worker took over


def test_missing_framework_cells_are_skipped(tmp_path):
    """With Keras pointed at a backend it cannot train on, its cells are skipped with the
    reason; the others run and the sweep completes."""
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            *TINY,
            "--backends",
            "numpy-vec,keras",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = {r["backend"]: r for r in _rows(done.stdout.strip().splitlines()[-1])}
    assert rows["numpy-vec"]["status"] == "ok"
    assert (
        rows["keras"]["status"] == "skipped" and "KERAS_BACKEND='numpy'" in rows["keras"]["error"]
    )
