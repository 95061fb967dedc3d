"""Cells on a Dask cluster (`--scheduler`, bench.cluster), with real Dask: a LocalCluster of
worker processes, and a `dask scheduler` with two `dask worker` processes started here on
127.0.0.1 (bounded in time and stopped at the end). Sweeps are tiny: numpy-vec on synthetic
data."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import bench_env, read_env, results_frame

from bench.cluster import executor as cluster
from bench.cluster import hosts as cluster_hosts
from bench.cluster import identity as code
from bench.cluster import tasks as cluster_tasks
from bench.errors import UsageError
from bench.run.runner import execute
from bench.sweep.build import build_sweep

HOST = socket.gethostname()
START_TIMEOUT_S = 90.0  # a scheduler and two workers on a busy 2-core machine

SMALL = {
    "title": "dask",
    "datasets": ["synthetic:n=240"],
    "backends": ["numpy-vec"],
    "losses": ["cce", "mse"],
    "lrs": ["0.5"],
    "batch_sizes": ["8", "64"],
    "epochs": ["3"],
    "threads": ["1"],
}


def _sweep(**changes):
    return build_sweep({**SMALL, **changes})


def _quiet(_text):
    pass


# -- no cluster needed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, workers, address",
    [
        ("local:2", 2, None),
        ("tcp://10.0.0.5:8786", None, "tcp://10.0.0.5:8786"),
        ("node7:8786", None, "tcp://node7:8786"),
    ],
)
def test_scheduler_argument(text, workers, address):
    spec = cluster.parse_scheduler(text)
    assert (spec.local_workers, spec.address) == (workers, address)


@pytest.mark.parametrize("text", ["", "local", "local:0", "local:x", "local:65", "a b", "tcp://"])
def test_bad_scheduler_argument_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--scheduler"):
        cluster.parse_scheduler(text)


def test_missing_distributed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(UsageError, match=r'pip install "mlp-bench\[dask\]"'):
        cluster.connect("tcp://127.0.0.1:1", _quiet)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_stops_before_anything_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    from bench.cli import main

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    code = main(
        [
            "run",
            "--datasets",
            "synthetic:n=100",
            "--backends",
            "numpy-vec",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--scheduler",
            address,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: cannot reach the Dask scheduler at {address}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_code_identity_is_stable_and_compared():
    mine = code.identity()
    assert mine["code"] == code.code_hash() and len(mine["code"]) == 12
    assert code.same_code(mine, dict(mine))
    assert not code.same_code(mine, {**mine, "code": "0" * 12})
    assert not code.same_code(mine, {**mine, "version": "0.0.0"})


# -- a LocalCluster of worker processes -----------------------------------------------------------


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The comparison sweep (4 cells) run on this machine, without Dask."""
    run_dir, status = execute(
        _sweep(),
        out=tmp_path_factory.mktemp("local"),
        progress=False,
        note=_quiet,
    )
    assert status == "complete"
    return results_frame(run_dir)


def _same_rows(remote: pd.DataFrame, local: pd.DataFrame) -> None:
    assert len(remote) == len(local) == 4
    keys = ["cell_id", "repeat", "batch_size", "loss", "lr", "status", "epochs_run", "n_train"]
    assert remote[keys].equals(local[keys])
    for column in ("test_acc", "train_loss"):
        assert remote[column].round(6).tolist() == local[column].round(6).tolist()
    assert set(remote["host"]) == {HOST}
    assert remote["roofline"].notna().all()


@pytest.mark.slow  # a real cluster: .ci/run runs these apart (pytest -m slow tests/test_cluster.py)
def test_local_cluster_gives_the_local_rows(local_run, tmp_path):
    pytest.importorskip("distributed")
    run_dir, status = execute(
        _sweep(),
        out=tmp_path,
        progress=False,
        note=_quiet,
        scheduler="local:2",
    )
    assert status == "complete"
    remote = results_frame(run_dir)
    _same_rows(remote, local_run)
    assert remote["shared_host"].all()  # two Dask workers on one machine, by the user's choice
    env = read_env(run_dir)
    host = env["hosts"][HOST]
    assert host["machine"]["cores"] >= 1 and host["blas"]
    assert host["matmul"]["0"]["1"]["float32"]
    assert env["schedulers"][0]["address"] == "local:2"
    assert len(env["schedulers"][0]["hosts"][HOST]) == 2
    curves = pd.read_csv(Path(run_dir) / "curves.csv")
    assert len(curves) == 4 * 3
    summary = (Path(run_dir) / "summary.md").read_text()
    assert "## Hosts" in summary and f"| {HOST} |" in summary
    assert "4 cells ran beside other cells of the run on the same machine" in summary


# -- `dask scheduler` and two `dask worker` processes on 127.0.0.1 --------------------------------


def _stop(processes) -> None:
    for p in processes:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A scheduler and two workers (with nannies, which restart a killed one), each offering
    one `bench` slot, as the README starts them; yields the address, stops them after."""
    pytest.importorskip("distributed")
    from distributed import Client

    scratch = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = bench_env()
    log = (scratch / "dask.log").open("w")
    common = {"env": env, "stdout": log, "stderr": subprocess.STDOUT, "start_new_session": True}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                address.rsplit(":", 1)[1],
                "--no-dashboard",
            ],
            **common,
        )
    ]
    try:
        for n in range(2):
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--resources",
                        "bench=1",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                        "--name",
                        f"w{n}",
                        "--local-directory",
                        str(scratch / f"w{n}"),
                        "--death-timeout",
                        "60",
                    ],
                    **common,
                )
            )
        with Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield address
    finally:
        _stop(processes)
        log.close()


def _wait_for_workers(address, n=2):
    from distributed import Client

    with Client(address, timeout=START_TIMEOUT_S) as client:
        client.wait_for_workers(n, timeout=START_TIMEOUT_S)


@pytest.mark.slow  # a real cluster: .ci/run runs these apart (pytest -m slow tests/test_cluster.py)
def test_two_workers_give_the_local_rows(scheduler, local_run, tmp_path):
    run_dir, status = execute(
        _sweep(),
        out=tmp_path,
        progress=False,
        note=_quiet,
        scheduler=scheduler,
    )
    assert status == "complete"
    remote = results_frame(run_dir)
    _same_rows(remote, local_run)
    assert remote["shared_host"].all()  # both workers run on this one machine


def _cell_killer(address, kills: dict, done: threading.Event, log: list):
    """Kill the Dask worker process running each cell key prefix in `kills`, that many times
    (each time on the worker that runs it then), once the cell has run a moment."""
    from distributed import Client

    seen: dict[tuple, float] = {}
    with Client(address, timeout=START_TIMEOUT_S) as client:
        while not done.is_set() and any(kills.values()):
            for worker, keys in client.processing().items():
                for key in keys:
                    target = next((k for k in kills if k in str(key) and kills[k] > 0), None)
                    if target is None:
                        continue
                    first = seen.setdefault((key, worker), time.monotonic())
                    if time.monotonic() - first < 1.0:
                        continue
                    with contextlib.suppress(Exception):
                        pid = client.run(os.getpid, workers=[worker])[worker]
                        os.kill(pid, signal.SIGKILL)
                        kills[target] -= 1
                        log.append((target, worker))
            time.sleep(0.1)


@pytest.mark.slow  # a real cluster: .ci/run runs these apart (pytest -m slow tests/test_cluster.py)
def test_worker_killed_mid_cell_is_retried_once_then_lost(scheduler, tmp_path):
    long = {
        "datasets": ["synthetic:n=1500"],
        "batch_sizes": ["1"],
        "epochs": ["40"],
        "losses": ["cce"],
        "lrs": ["0.01", "0.02"],
    }
    sweep = _sweep(**long)
    from bench.sweep.build import expand

    ids = sorted(cell.cell_id for cell in expand(sweep))
    kills = {ids[0]: 1, ids[1]: 2}  # the first is retried and finishes; the second is lost
    done, log = threading.Event(), []
    killer = threading.Thread(target=_cell_killer, args=(scheduler, kills, done, log))
    killer.start()
    try:
        run_dir, status = execute(
            sweep, out=tmp_path, progress=False, note=_quiet, scheduler=scheduler
        )
    finally:
        done.set()
        killer.join(60)
    assert status == "complete", log
    rows = results_frame(run_dir).set_index("cell_id")
    assert len(log) == 3, log
    retried, lost = rows.loc[ids[0]], rows.loc[ids[1]]
    assert retried["status"] == "ok" and retried["lost_on"] == HOST
    assert lost["status"] == "error" and lost["error"] == f"worker lost ({HOST})"
    _wait_for_workers(scheduler)  # the nannies restart the killed workers


@pytest.mark.slow  # a real cluster: .ci/run runs these apart (pytest -m slow tests/test_cluster.py)
def test_interrupted_run_resumes_only_the_rest(scheduler, tmp_path):
    command = [
        sys.executable,
        "-m",
        "bench",
        "run",
        "--datasets",
        "synthetic:n=1200",
        "--backends",
        "numpy-vec",
        "--losses",
        "cce",
        "--lrs",
        "0.01,0.02,0.03",
        "--batch-sizes",
        "1,4",
        "--epochs",
        "6",
        "--threads",
        "1",
        "--name",
        "resume",
        "--out",
        str(tmp_path),
        "--scheduler",
        scheduler,
    ]
    env = bench_env()
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        results = None
        while time.monotonic() < deadline and run.poll() is None:
            found = list(tmp_path.glob("*/results.csv"))
            if found and len(found[0].read_text().splitlines()) >= 3:  # header + 2 cells
                results = found[0]
                break
            time.sleep(0.1)
        assert results is not None, run.communicate(timeout=30)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, err
    assert "--resume" in err
    run_dir = results.parent
    before = results_frame(run_dir)
    assert 2 <= len(before) < 6 and before["status"].eq("ok").all()
    assert read_env(run_dir)["status"] == "interrupted"
    _, status = execute(
        _sweep_of(run_dir),
        resume=run_dir,
        progress=False,
        note=_quiet,
        scheduler=scheduler,
    )
    after = results_frame(run_dir)
    assert status == "complete"
    assert len(after) == 6 and not after.duplicated(["cell_id", "repeat"]).any()
    kept = after.set_index("cell_id").loc[before["cell_id"], "finished_at"]
    assert kept.tolist() == before["finished_at"].tolist()  # finished cells were not rerun


def _sweep_of(run_dir):
    from bench.run.runner import sweep_of_run

    return sweep_of_run(run_dir)


def test_host_without_the_data_fails_its_cells_with_the_message_and_host(monkeypatch):
    """A Dask worker loads the data itself; its dataset error becomes the cell's error,
    with the host's name (run here as the task function, outside Dask)."""
    import bench.datasets
    from bench.sweep.build import expand

    def missing(name, **_):
        raise bench.datasets.DatasetError(f"{name}: data files not found in 3 searched folders")

    monkeypatch.setattr(bench.datasets, "load_dataset", missing)
    monkeypatch.setattr(cluster_tasks, "_DATA", {})
    cell = expand(_sweep(datasets=["mnist"], losses=["cce"], batch_sizes=["8"]))[0]
    job = {
        "key": "k",
        "cell": cell,
        "data_dir": None,
        "timeout": None,
        "target_acc": None,
        "code": code.identity(),
        "probe_tag": "t/0",
        "lost": [],
    }
    out = cluster_tasks.run_cell_task(job)
    assert out.status == "error"
    assert out.error == f"{HOST}: mnist: data files not found in 3 searched folders"
    assert out.host == HOST and out.curves == []


def test_gpu_cells_go_only_to_hosts_where_torch_sees_cuda():
    """`--devices cuda,cpu` with --scheduler: each host is asked what its GPU libraries see; GPU
    cells go only to hosts with CUDA, other cells anywhere; no CUDA anywhere is a usage error."""
    import collections

    from bench.sweep.build import expand

    class FakeClient:  # what client.run returns: {worker address: worker_devices()}
        def __init__(self, cuda):
            self.cuda = cuda

        def run(self, fn, workers):
            assert fn is cluster_hosts.worker_devices
            count = int(workers[0] in self.cuda)
            return {workers[0]: {"torch": {"library": "torch", "version": "2", "count": count}}}

    def executor(cuda):
        ex = cluster.DaskExecutor(cluster.parse_scheduler("local:1"), _quiet)
        ex.machines.hosts = {
            "gpu-box": cluster_hosts.Host("gpu-box", {}, ["tcp://10.0.0.1:1"]),
            "cpu-box": cluster_hosts.Host("cpu-box", {}, ["tcp://10.0.0.2:1"]),
        }
        ex.client = FakeClient(cuda)
        return ex

    cells = expand(
        _sweep(
            backends=["torch", "numpy-vec"],
            losses=["cce"],
            batch_sizes=["8"],
            devices=["cuda", "cpu"],
        )
    )
    torch_cell = next(c for c in cells if c.backend == "torch" and c.device == "cuda:0")
    numpy_cell = next(c for c in cells if c.backend == "numpy-vec")
    ex = executor({"tcp://10.0.0.1:1"})
    ex.check_devices(cells)
    machines = ex.machines
    assert machines.cuda_hosts == {"gpu-box"}
    assert machines.hosts["cpu-box"].facts["devices"]["torch"]["count"] == 0
    assert machines.fits(torch_cell, "gpu-box") and not machines.fits(torch_cell, "cpu-box")
    assert machines.fits(numpy_cell, "cpu-box")
    queue = collections.deque([{"cell": torch_cell}, {"cell": numpy_cell}])
    assert machines.next_for(queue, "cpu-box")["cell"] is numpy_cell
    assert machines.next_for(queue, "cpu-box") is None and len(queue) == 1
    with pytest.raises(UsageError, match="--devices cuda:0: no host of the Dask cluster has"):
        executor(set()).check_devices(cells)
    cpu_only = expand(_sweep(backends=["torch"], losses=["cce"], batch_sizes=["8"]))
    ex = executor(set())
    ex.check_devices(cpu_only)  # nothing asked: no GPU cells
    assert ex.machines.cuda_hosts is None


def test_a_worker_is_lost_only_after_missing_for_a_while(monkeypatch):
    """The scheduler's worker list can come back empty once on a busy machine: a cell in
    flight is given up only when its worker stays missing (seen: two cells restarted)."""
    machines = cluster_hosts.Hosts(_quiet)
    address = "tcp://127.0.0.1:1"
    assert not machines.gone(address, {address: "vm"})
    assert not machines.gone(address, {})  # missing once
    monkeypatch.setattr(cluster_hosts, "LOST_AFTER_S", 0.0)
    assert machines.gone(address, {})  # still missing past the grace period
    assert not machines.gone(address, {address: "vm"}) and address not in machines.missing
