"""One cell path: every outcome of a cell reads the same on this machine's worker processes
and on a Dask cluster (bench.worker.cell.run_cell behind both executors); a resume reruns the
cells skipped for a cause that can change; the time accounting adds up with cells side by
side; a Dask scheduler that goes away ends the run as an interruption."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from helpers import read_env, read_rows

from bench.run.accounting import describe_accounting, in_parallel, time_accounting
from bench.run.runner import execute
from bench.sweep.build import build_sweep

HOST = socket.gethostname()
OUTCOMES = Path(__file__).resolve().parent / "outcome_backends.py"
TIMEOUT_S = 3

# backend -> (status, error): what each outcome backend's row must say on every executor
EXPECTED = {
    "numpy-vec": ("ok", ""),
    f"{OUTCOMES}:Ok": ("ok", ""),
    f"{OUTCOMES}:NotSupported": ("skipped", "not supported: NotImplementedError: no sgd here"),
    f"{OUTCOMES}:Raises": ("error", "ValueError: the outcome backend raises (traceback: *)"),
    f"{OUTCOMES}:Crashes": ("error", "worker process exited with status 3"),
    f"{OUTCOMES}:Hangs": ("timeout", f"stopped after {TIMEOUT_S} s (--timeout)"),
    f"{OUTCOMES}:Diverges": ("diverged", "loss became NaN or inf in epoch 1"),
}


def _quiet(_text):
    pass


def _outcome_sweep():
    return build_sweep(
        {
            "title": "outcomes",
            "datasets": ["synthetic:n=200"],
            "backends": list(EXPECTED),
            "losses": ["cce"],
            "batch_sizes": ["32"],
            "epochs": ["2"],
            "threads": ["1"],
            "timeout": TIMEOUT_S,
        }
    )


def _outcomes(run_dir) -> dict:
    """backend -> (status, error), a traceback's file name replaced by *."""
    found = {}
    for row in read_rows(run_dir):
        error = row["error"]
        if "(traceback: " in error:
            log = Path(run_dir) / "logs" / error.split("(traceback: ")[1].rstrip(")")
            assert "Traceback" in log.read_text()
            error = error.split("(traceback: ")[0] + "(traceback: *)"
        found[row["backend"]] = (row["status"], error)
    return found


def _check_outcomes(run_dir) -> list[dict]:
    assert _outcomes(run_dir) == EXPECTED
    rows = read_rows(run_dir)
    assert {r["host"] for r in rows} == {HOST}
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 2 and all(float(r["test_acc"]) > 0 and r["roofline"] for r in ok)
    assert ok[0]["test_acc"] == ok[1]["test_acc"]  # the plug-in trains as numpy-vec does
    diverged = next(r for r in rows if r["status"] == "diverged")
    assert diverged["diverged_epoch"] == "1"
    return rows


@pytest.fixture(scope="module")
def local_outcomes(tmp_path_factory):
    run_dir, status = execute(
        _outcome_sweep(), out=tmp_path_factory.mktemp("local"), progress=False, note=_quiet
    )
    assert status == "complete"
    return run_dir


def test_every_outcome_on_this_machine(local_outcomes):
    rows = _check_outcomes(local_outcomes)
    logs = {p.name for p in (local_outcomes / "logs").iterdir()}
    # a file-path plug-in's worker log has a file-safe name
    assert any(name.startswith("worker-") and "outcome_backends.py_Ok" in name for name in logs)
    assert read_env(local_outcomes)["status"] == "complete"
    assert all(r["shared_host"] == "" for r in rows)


@pytest.mark.slow  # a real cluster: .ci/run runs these apart (pytest -m slow -n 0 ...)
def test_every_outcome_on_a_dask_cluster_reads_as_on_this_machine(local_outcomes, tmp_path):
    pytest.importorskip("distributed")
    run_dir, status = execute(
        _outcome_sweep(), out=tmp_path, progress=False, note=_quiet, scheduler="local:2"
    )
    assert status == "complete"
    _check_outcomes(run_dir)
    local = {r["backend"]: r for r in read_rows(local_outcomes)}
    for row in read_rows(run_dir):
        assert row["cell_id"] == local[row["backend"]]["cell_id"]
        assert row["shared_host"] == "True"
    acc = read_env(run_dir)["time_accounting"]
    assert 0 <= acc["harness_s"] <= acc["wall_s"]
    assert acc["training_s"] + acc["evaluation_s"] + acc["framework_startup_s"] <= acc["wall_s"]


# -- resume ---------------------------------------------------------------------------------------


def test_resume_reruns_cells_skipped_for_a_framework_that_did_not_import(tmp_path, monkeypatch):
    """A torch that fails to import skips its cells; once it imports, --resume runs them
    (and says so), while a backend's NotImplementedError stays skipped."""
    pytest.importorskip("torch")
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("libtorch_cpu.so: cannot open")\n')
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))  # the workers' environment
    sweep = build_sweep(
        {
            "datasets": ["synthetic:n=200"],
            "backends": ["numpy-vec", "torch", f"{OUTCOMES}:NotSupported"],
            "losses": ["cce"],
            "batch_sizes": ["32"],
            "epochs": ["1"],
            "threads": ["1"],
        }
    )
    run_dir, status = execute(sweep, out=tmp_path / "out", progress=False, note=_quiet)
    assert status == "complete"
    first = {r["backend"]: r for r in read_rows(run_dir)}
    assert first["torch"]["status"] == "skipped"
    assert "failed to import its framework" in first["torch"]["error"]
    monkeypatch.delenv("PYTHONPATH")
    notes = []
    _, status = execute(sweep, resume=run_dir, progress=False, note=notes.append)
    assert status == "complete"
    said = "\n".join(notes)
    assert (
        "rerunning 1 cell skipped because its framework was not installed or did not import" in said
    )
    assert "2 of 3 cells already finished, 1 to run" in said
    rows = read_rows(run_dir)
    assert len(rows) == 3
    after = {r["backend"]: r for r in rows}
    assert after["torch"]["status"] == "ok" and after["torch"]["session"] == "1"
    assert after["numpy-vec"]["finished_at"] == first["numpy-vec"]["finished_at"]
    assert after[f"{OUTCOMES}:NotSupported"]["status"] == "skipped"
    assert after[f"{OUTCOMES}:NotSupported"]["session"] == "0"


# -- time accounting ------------------------------------------------------------------------------


def test_accounting_with_cells_side_by_side_adds_up():
    """Two cells that ran at once for 10 s each in a 12 s run measured 16 s of training: the
    cells' sums are divided by the cells in flight, so the buckets add up to the wall time."""
    rows = [
        {"train_s": 8.0, "eval_s": 0.5, "predict_s": 0.1, "build_s": 0.4, "cell_s": 9.5},
        {"train_s": 8.0, "eval_s": 0.5, "predict_s": 0.1, "build_s": 0.4, "cell_s": 9.5},
    ]
    parallel = in_parallel(busy_s=20.0, cells_wall_s=10.0)
    assert parallel == 2.0
    acc = time_accounting(rows, 12.0, 1.0, parallel=parallel, data_s=0.0, report_s=1.0)
    assert acc["training_s"] == pytest.approx(8.0)
    assert acc["evaluation_s"] == pytest.approx(0.6)
    assert acc["framework_startup_s"] == pytest.approx(0.9)  # (1 s start-up + 0.8 s build) / 2
    parts = acc["training_s"] + acc["evaluation_s"] + acc["framework_startup_s"]
    assert parts + acc["harness_s"] == pytest.approx(acc["wall_s"])
    assert acc["harness_s"] == pytest.approx(2.5) and acc["cells_in_parallel"] == 2.0
    text = describe_accounting(acc)
    assert "training 67%" in text and "harness 21%" in text and "2.0 cells ran at a time" in text
    # counted as one at a time, the same rows would read 133% training: never more than all
    acc = time_accounting(rows, 12.0, 1.0, parallel=1.0)
    assert acc["harness_s"] >= 0
    assert acc["training_s"] + acc["evaluation_s"] + acc["framework_startup_s"] == pytest.approx(
        12.0
    )
    assert in_parallel(busy_s=5.0, cells_wall_s=10.0) == 1.0  # one at a time, with gaps


# -- a scheduler that goes away -------------------------------------------------------------------


@pytest.mark.slow  # a real cluster: .ci/run runs these apart (pytest -m slow -n 0 ...)
def test_a_scheduler_that_goes_away_is_an_interruption(tmp_path, monkeypatch, capsys):
    """The LocalCluster's scheduler is closed while a cell runs: the run ends interrupted
    (summary, the resume command, exit 130 from the CLI), with no cell recorded as lost, no
    raw Dask error and no traceback."""
    pytest.importorskip("distributed")
    from bench.cluster import executor as cluster
    from bench.cluster import hosts as cluster_hosts

    monkeypatch.setattr(cluster_hosts, "LOST_AFTER_S", 1.0)
    made = []
    real_connect = cluster.DaskExecutor.connect

    def connect(self):
        made.append(self)
        return real_connect(self)

    monkeypatch.setattr(cluster.DaskExecutor, "connect", connect)
    sweep = build_sweep(
        {
            "datasets": ["synthetic:n=3000"],
            "backends": ["numpy-loop"],
            "losses": ["cce"],
            "batch_sizes": ["1"],
            "epochs": ["20"],
            "lrs": ["0.01", "0.02", "0.03"],
            "threads": ["1"],
        }
    )

    def close_scheduler_soon():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ex = made[0] if made else None
            client = getattr(ex, "client", None)
            if client is not None and ex.cluster is not None:
                try:
                    processing = client.processing()
                except Exception:
                    processing = {}
                if any(processing.values()):
                    time.sleep(2.0)  # the cell is well under way
                    ex.cluster.loop.add_callback(ex.cluster.scheduler.close)
                    return
            time.sleep(0.1)

    killer = threading.Thread(target=close_scheduler_soon, daemon=True)
    killer.start()
    run_dir, status = execute(sweep, out=tmp_path, progress=False, note=_quiet, scheduler="local:1")
    killer.join(30)
    err = capsys.readouterr().err
    assert status == "interrupted", err
    assert "interrupted (the Dask scheduler at local:1" in err
    assert f"finish with: python -m bench run --resume {run_dir}" in err
    assert "distributed.client - ERROR" not in err and "Traceback" not in err
    assert "KeyError" not in err
    assert read_rows(run_dir) == []  # the cell in flight is not recorded (as lost or at all)
    assert read_env(run_dir)["status"] == "interrupted"
    assert (run_dir / "summary.md").is_file()


# -- one cell, stopped on request -------------------------------------------------------------


def test_a_cell_asked_to_stop_is_interrupted_and_its_worker_goes(tmp_path):
    """`should_stop` (a Dask task whose client cancelled it) ends the cell as interrupted, not
    recorded, and kills its worker; the pool starts a new one for the next cell."""
    from bench.run.prepare import data_key, prepare_data
    from bench.sweep.build import expand
    from bench.worker.cell import INTERRUPTED, WorkerPool, run_cell

    sweep = build_sweep(
        {
            "datasets": ["synthetic:n=100"],
            "backends": [f"{OUTCOMES}:Hangs"],
            "losses": ["cce"],
            "batch_sizes": ["32"],
            "epochs": ["1"],
            "threads": ["1"],
        }
    )
    (cell,) = expand(sweep)
    refs = prepare_data([cell], None, tmp_path / "data", _quiet)
    pool = WorkerPool(tmp_path / "logs")
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 2

    try:
        result = run_cell(cell, refs[data_key(cell)], pool, timeout=60, should_stop=should_stop)
        assert result.status == INTERRUPTED and not result.recorded
        assert pool.workers == {} and result.startup_s > 0
    finally:
        pool.close()
