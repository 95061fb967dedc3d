"""The Dask worker's side of bench.cluster.executor: what a Dask task runs on a worker machine.

A task gets one cell, loads or generates the cell's data on this machine (once per Dask worker
process), measures this host's matmul peak for the cell's threads and dtype (once per run
session) and runs the cell with bench.worker.cell.run_cell, the function a run on one machine
uses, in worker processes kept per Dask worker process. It returns the CellResult.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import socket
import threading
from pathlib import Path

from bench.cluster.identity import describe_code, identity, same_code
from bench.worker import measure
from bench.worker.cell import ERROR, STOP_CHECK_S, CellResult, WorkerPool, run_cell

PROBE_TIMEOUT_S = 120.0  # one matmul probe on a worker's host

_STATE_LOCK = threading.Lock()
_DATA: dict[tuple, object] = {}  # data key -> DataRef, or the dataset's error message
_PROBES: dict[tuple, object] = {}  # (probe tag, threads, dtype) -> matmul probe
_POOLS: list[WorkerPool] = []  # this Dask worker process's pool, made on its first cell


@dataclasses.dataclass(frozen=True)
class Refused:
    """A task's answer when this worker's code differs from the client's: no cell ran."""

    reason: str


def _scratch() -> Path:
    """A folder on this Dask worker for prepared data and the bench workers' logs (inside
    the Dask worker's own local directory, which Dask removes when the worker closes)."""
    try:
        from distributed import get_worker

        base = Path(get_worker().local_directory)
    except (ImportError, ValueError):
        import tempfile

        base = Path(tempfile.gettempdir())
    folder = base / f"mlp-bench-{os.getpid()}"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    return folder


def _pool() -> WorkerPool:
    if not _POOLS:
        _POOLS.append(WorkerPool(_scratch() / "logs"))
    return _POOLS[0]


def _data(cell, data_dir):
    """The cell's dataset, loaded on this host once per Dask worker process: a DataRef, or
    the dataset's error message."""
    from bench.datasets import DatasetError, load_dataset
    from bench.worker.process import DataRef, save_arrays

    key = (cell.dataset, cell.preprocess, cell.split_seed, cell.test_size, cell.dtype, data_dir)
    if key in _DATA:
        return _DATA[key]
    try:
        ds = load_dataset(
            cell.dataset,
            preprocess=cell.preprocess,
            seed=cell.split_seed,
            data_dir=data_dir,
            test_size=cell.test_size,
            dtype=cell.dtype,
        )
    except (DatasetError, ValueError) as exc:
        _DATA[key] = str(exc).strip().splitlines()[0]
        return _DATA[key]
    folder = _scratch() / f"data-{len(_DATA)}"
    save_arrays(folder, ds.X_train, ds.Y_train, ds.X_test, ds.Y_test)
    _DATA[key] = DataRef(str(folder), ds.n_train, ds.n_test, ds.n_features, ds.n_classes)
    return _DATA[key]


def _probe(pool: WorkerPool, tag: str, threads: int, dtype: str):
    """The matmul peak on this host for `threads` and `dtype`, once per run session."""
    from bench.worker.process import WorkerDied, WorkerTimeout

    key = (tag, threads, dtype)
    if key not in _PROBES:
        try:
            worker = pool.get(None, threads)
            worker.send("matmul", dtype)
            message = worker.receive(measure.Deadline(PROBE_TIMEOUT_S))
            _PROBES[key] = message[1] if message[0] == "value" else None
        except (WorkerDied, WorkerTimeout):
            pool.drop(None, threads)
            _PROBES[key] = None
    return _PROBES[key]


def _cancelled(key) -> bool:
    """Whether the client no longer wants task `key` (cancelled, or the client is gone)."""
    try:
        from distributed import get_worker

        ts = get_worker().state.tasks.get(key)
    except Exception:
        return False
    return ts is None or ts.state in ("cancelled", "released", "forgotten")


def _current() -> tuple[str | None, object]:
    """(this Dask worker's address, the running task's key); (None, None) outside Dask."""
    try:
        from distributed import get_worker

        worker = get_worker()
        return worker.address, worker.get_current_task()
    except Exception:
        return None, None


def run_cell_task(job: dict) -> CellResult | Refused:
    """The Dask task of one cell (`job`: the cell, the sweep's data folder, timeout and
    target accuracy, the client's code identity and the session's probe tag)."""
    host = socket.gethostname()
    address, key = _current()
    mine = identity()
    if not same_code(job["code"], mine):
        return Refused(
            f"Dask worker {address} on {host} runs {describe_code(mine)}, not "
            f"{describe_code(job['code'])}"
        )
    with _STATE_LOCK:  # one cell at a time per Dask worker process, whatever its threads
        return _run_here(job, host, key)


def _run_here(job: dict, host: str, key=None) -> CellResult:
    from bench.sweep.values import FULL_BATCH

    cell = job["cell"]
    ref = _data(cell, job["data_dir"])
    if isinstance(ref, str):
        return CellResult(cell, ERROR, f"{host}: {ref}", host=host, started_at=measure.now_iso())
    if cell.batch_size == FULL_BATCH:
        cell = dataclasses.replace(cell, batch_size=ref.n_train)
    pool = _pool()
    probe = None
    if cell.backend not in pool.unavailable:
        probe = _probe(pool, job["probe_tag"], cell.threads, cell.dtype)
    check = measure.Deadline(STOP_CHECK_S)

    def should_stop() -> bool:  # the client cancelled it (Ctrl-C) or is gone
        nonlocal check
        if key is None or not check.expired():
            return False
        check = measure.Deadline(STOP_CHECK_S)
        return _cancelled(key)

    result = run_cell(
        cell,
        ref,
        pool,
        timeout=job["timeout"],
        target_acc=job["target_acc"],
        timing_budget=job.get("timing_budget", 0.0),
        host=host,
        should_stop=should_stop,
    )
    result.host_probe = probe
    return result


def _stop_all() -> None:
    for pool in _POOLS:
        pool.close(timeout=2.0)


atexit.register(_stop_all)  # the bench workers of a Dask worker stop with it
