"""The Dask worker's side of bench.cluster.executor: what a Dask task runs on a worker machine.

A cell arrives as a plain dict (its Cell, the run's data folder, the client's code identity);
the task loads or generates the cell's data on this machine, starts (or reuses) the project's
own worker process for the cell's backend with its threads pinned, runs the cell there and
returns its row and curves. The code identity of this copy (version and a hash of bench/ and
impls/) is defined here too, since workers and client both report it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import os
import socket
import sys
import threading
from pathlib import Path

from bench.worker import measure
from bench.worker.process import env_tag, process_env

CANCEL_CHECK_S = 0.5  # how often a running cell asks whether the client still wants it
_PROJECT_ROOT = Path(__file__).resolve().parents[2]  # holds bench/ and impls/


# -- the code a process runs ------------------------------------------------------------------


def _package_version() -> str | None:
    try:
        return importlib.metadata.version("mlp-bench")
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """A short hash of this copy's bench/ and impls/ Python sources (paths and contents)."""
    digest = hashlib.sha256()
    for package in ("bench", "impls"):
        for path in sorted((_PROJECT_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(_PROJECT_ROOT)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def identity() -> dict:
    """What code this process runs, and on which machine: compared at connection."""
    from bench.worker import envinfo

    return {
        "host": socket.gethostname(),
        "version": _package_version(),
        "commit": envinfo.git_commit(_PROJECT_ROOT),
        "code": code_hash(),
        "python": sys.version.split()[0],
    }


def _describe_code(ident: dict) -> str:
    commit = ident.get("commit")
    where = (
        f", commit {commit[:12]}{' with local changes' if commit.endswith('-dirty') else ''}"
        if commit
        else ""
    )
    return f"mlp-bench {ident.get('version') or 'unknown'} (sources {ident.get('code')}{where})"


def same_code(mine: dict, theirs: dict) -> bool:
    return mine.get("version") == theirs.get("version") and mine.get("code") == theirs.get("code")


def worker_facts() -> dict:
    """Run on a Dask worker at connection: its code and its machine (no framework import)."""
    from bench.worker import envinfo

    facts = envinfo.collect()
    return {"identity": identity(), **facts}


# -- the Dask worker side -------------------------------------------------------------------------

_STATE_LOCK = threading.Lock()
_DATA: dict[tuple, object] = {}  # data key -> DataRef, or the dataset's error message
_WORKERS: dict[tuple, object] = {}  # (backend, threads, env) -> bench.worker.process.Worker
_UNAVAILABLE: dict[str, str] = {}  # backend -> why it cannot run on this host
_PROBES: dict[tuple, object] = {}  # (probe tag, threads, dtype) -> matmul probe


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


def _alive(worker) -> bool:
    alive = getattr(worker, "alive", None)
    return alive() if alive is not None else worker.process.is_alive()


def _bench_worker(backend: str | None, threads: int, env: tuple = ()):
    """This host's worker process for `backend` (None: the matmul probe) with `env`
    (bench.worker.process.process_env), started once."""
    from bench.worker.process import Worker, WorkerDied, WorkerTimeout

    key = (backend, threads, env)
    worker = _WORKERS.get(key)
    if worker is not None and _alive(worker):
        return worker
    tag = env_tag(env)
    log = _scratch() / "logs" / f"worker-{backend or 'probe'}-t{threads}{tag}.log"
    worker = Worker(backend, threads, str(log), env)
    try:
        info = worker.wait_ready(measure.Deadline(600.0))
    except (WorkerDied, WorkerTimeout) as exc:
        worker.kill()
        raise WorkerDied(f"{backend} worker did not start: {exc or 'timed out'}") from None
    if info.get("unavailable"):
        worker.stop()
        _UNAVAILABLE[backend] = info["unavailable"]
        raise WorkerDied(info["unavailable"])
    _WORKERS[key] = worker
    return worker


def _drop(backend, threads, env: tuple = ()) -> None:
    worker = _WORKERS.pop((backend, threads, env), None)
    if worker is not None:
        worker.kill()


def _stop_all() -> None:
    for key in list(_WORKERS):
        worker = _WORKERS.pop(key)
        with contextlib.suppress(Exception):
            worker.stop(timeout=2.0)


def _probe(tag: str, threads: int, dtype: str):
    """The matmul peak on this host for `threads` and `dtype`, once per run session."""
    from bench.worker.process import WorkerDied, WorkerTimeout

    key = (tag, threads, dtype)
    if key not in _PROBES:
        try:
            worker = _bench_worker(None, threads)
            worker.send("matmul", dtype)
            message = worker.receive(measure.Deadline(120.0))
            _PROBES[key] = message[1] if message[0] == "value" else None
        except (WorkerDied, WorkerTimeout):
            _drop(None, threads)
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


def run_cell_task(job: dict) -> dict:
    """The Dask task of one cell: {"row", "curves", "trace", "probe", "host"}, or
    {"refused": why} when this worker's code differs from the client's."""
    host = socket.gethostname()
    address, key = _current()
    mine = identity()
    if not same_code(job["code"], mine):
        return {
            "refused": f"Dask worker {address} on {host} runs {_describe_code(mine)}, not "
            f"{_describe_code(job['code'])}"
        }
    with _STATE_LOCK:  # one cell at a time per Dask worker process, whatever its threads
        return _run_cell_here(job, host, key)


def _run_cell_here(job: dict, host: str, key=None) -> dict:
    from bench.sweep.build import FULL_BATCH
    from bench.worker.process import WorkerDied, WorkerTimeout

    cell = job["cell"]
    row = {**cell.row(), "host": host, "started_at": measure.now_iso()}
    out = {"row": row, "curves": [], "trace": None, "probe": None, "host": host}
    ref = _data(cell, job["data_dir"])
    if isinstance(ref, str):
        row.update(status="error", error=f"{host}: {ref}")
        return out
    if cell.batch_size == FULL_BATCH:
        cell = dataclasses.replace(cell, batch_size=ref.n_train)
        row["batch_size"] = ref.n_train
    row.update(
        n_train=ref.n_train,
        n_test=ref.n_test,
        n_features=ref.n_features,
        n_classes=ref.n_classes,
        device=cell.spec(ref.n_features, ref.n_classes).device,
    )
    if cell.backend in _UNAVAILABLE:
        row.update(status="skipped", error=f"{host}: {_UNAVAILABLE[cell.backend]}")
        return out
    out["probe"] = _probe(job["probe_tag"], cell.threads, cell.dtype)
    try:
        worker = _bench_worker(cell.backend, cell.threads, process_env(cell))
    except WorkerDied as exc:
        status = "skipped" if cell.backend in _UNAVAILABLE else "error"
        row.update(status=status, error=f"{host}: {exc}")
        return out
    row["threads_effective"] = worker.info["threads_effective"]
    payload = {"cell": cell, "data": ref, "target_acc": job["target_acc"]}
    deadline = measure.Deadline(job["timeout"])
    check = measure.Deadline(CANCEL_CHECK_S)
    try:
        worker.send("cell", payload)
        while True:
            if check.expired():  # the client cancelled it (Ctrl-C) or is gone: stop the cell
                check = measure.Deadline(CANCEL_CHECK_S)
                if key is not None and _cancelled(key):
                    _drop(cell.backend, cell.threads, process_env(cell))
                    row.update(status="error", error="cancelled")
                    return out
            try:
                message = worker.receive(measure.Deadline(_poll_s(deadline)))
            except WorkerTimeout:
                if deadline.expired():
                    raise
                continue
            if message[0] == "epoch":
                out["curves"].append(message[1])
            elif message[0] == "done":
                row.update(message[1]["row"])
                row["host"] = host
                out["curves"] = message[1]["curves"]
                return out
            elif message[0] == "failed":
                _, text, trace = message
                row.update(status="error", error=f"{host}: {text}")
                out["trace"] = trace
                return out
    except WorkerTimeout:
        _drop(cell.backend, cell.threads, process_env(cell))
        row.update(status="timeout", error=f"stopped after {job['timeout']:g} s (--timeout)")
    except WorkerDied as exc:
        _drop(cell.backend, cell.threads, process_env(cell))
        row.update(status="error", error=f"{host}: {exc}")
    return out


def _poll_s(deadline) -> float:
    remaining = deadline.remaining()
    return CANCEL_CHECK_S if remaining is None else max(0.0, min(CANCEL_CHECK_S, remaining))


import atexit  # noqa: E402  (the bench workers of a Dask worker stop with it)

atexit.register(_stop_all)
