"""One cell, run in its backend's worker process: the function every executor drives.

`run_cell` takes a worker for the cell's backend from a `WorkerPool`, sends it the cell and
its prepared data, follows it to the end and returns a `CellResult`. Every outcome is decided
here, once, for this machine's runs (bench.run.executors) and for Dask tasks
(bench.cluster.tasks) alike:

- ok, or diverged ("loss became NaN or inf in epoch N"): the worker's measurements;
- skipped: the backend's framework is not installed or fails to import (a cause that can
  change: a resume runs such cells again), or the backend raised NotImplementedError (it
  cannot express the cell's setting: "not supported: ...");
- error: the cell raised (its traceback is returned for the run folder's logs/), its worker
  did not start, or died under it;
- timeout: it ran past the sweep's timeout; its worker is killed;
- interrupted: the caller asked it to stop (`should_stop`); its worker is killed and nothing
  is recorded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.worker import measure
from bench.worker.process import DataRef, Worker, WorkerDied, WorkerTimeout, env_tag, process_env
from impls.registry import file_safe  # a backend name in a file name

STARTUP_TIMEOUT_S = 600.0  # a worker's import of its framework
STOP_CHECK_S = 0.5  # how often a running cell asks `should_stop`
NOT_SUPPORTED = "not supported: "  # a skip's message when the backend raised NotImplementedError

OK, DIVERGED, SKIPPED, ERROR, TIMEOUT = "ok", "diverged", "skipped", "error", "timeout"
INTERRUPTED = "interrupted"  # stopped on request: never recorded, the cell runs again


@dataclasses.dataclass
class CellResult:
    """What running one cell gave: its status and message, the worker's measurements (the
    columns of results.csv it filled) and curve rows, and what the harness needs to record
    it (the traceback of a failure, where and when it ran, the seconds its worker took to
    start)."""

    cell: object  # the bench.sweep.build.Cell as run (a full batch resolved to its size)
    status: str
    error: str | None = None
    row: dict = dataclasses.field(default_factory=dict)  # measurement and data columns
    curves: list[dict] = dataclasses.field(default_factory=list)  # one row per epoch
    trace: str | None = None  # a failed cell's traceback: written to the run folder's logs/
    host: str | None = None
    started_at: str | None = None
    startup_s: float = 0.0  # starting the worker process for this cell (imports included)
    host_probe: dict | None = None  # the matmul peak measured on the cell's host (Dask)
    shared_host: bool | None = None  # its host ran other cells of the run beside it (Dask)
    lost_on: str | None = None  # hosts whose Dask worker died while running it

    @property
    def recorded(self) -> bool:
        """Whether the cell is finished (written to the run folder); an interrupted one is not."""
        return self.status != INTERRUPTED


def skip_can_change(status: str, error: str | None) -> bool:
    """Whether a row recorded `status` with `error` was skipped for a cause that can change
    (a framework not installed, or failing to import): a resume runs it again. A backend that
    cannot express the setting (NotImplementedError) stays skipped."""
    return status == SKIPPED and not (error or "").startswith(NOT_SUPPORTED)


class WorkerPool:
    """Worker processes kept by (backend, threads, env) and reused across cells; logs in
    `logs_dir`. A backend whose framework is unavailable is remembered (`unavailable`)."""

    def __init__(self, logs_dir: Path):
        self.logs_dir = Path(logs_dir)
        self.workers: dict[tuple, Worker] = {}
        self.unavailable: dict[str, str] = {}  # backend -> why it cannot run here
        self.startup_s = 0.0  # every worker start, all together

    def log_path(self, backend: str | None, threads: int, env: tuple = ()) -> Path:
        name = file_safe(backend) if backend is not None else "probe"
        return self.logs_dir / f"worker-{name}-t{threads}{env_tag(env)}.log"

    def get(self, backend: str | None, threads: int, env: tuple = ()) -> Worker:
        """The worker for `backend` (None: a matmul probe worker), started if needed. Raises
        WorkerDied when it cannot start, or when the backend is unavailable (then also
        remembered in `unavailable`)."""
        key = (backend, threads, env)
        worker = self.workers.get(key)
        if worker is not None and worker.alive():
            return worker
        log = self.log_path(backend, threads, env)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with measure.Stopwatch() as watch:
            worker = Worker(backend, threads, str(log), env)
            try:
                info = worker.wait_ready(measure.Deadline(STARTUP_TIMEOUT_S))
            except (WorkerDied, WorkerTimeout) as exc:
                worker.kill()
                where = f" (see {log})" if log.is_file() and log.stat().st_size else ""
                raise WorkerDied(
                    f"{backend} worker did not start: {exc or 'timed out'}{where}"
                ) from None
            finally:
                self.startup_s += watch.elapsed()
        if info["unavailable"]:
            worker.stop()
            self.unavailable[backend] = info["unavailable"]
            raise WorkerDied(info["unavailable"])
        self.workers[key] = worker
        return worker

    def drop(self, backend: str | None, threads: int, env: tuple = ()) -> None:
        worker = self.workers.pop((backend, threads, env), None)
        if worker is not None:
            worker.kill()

    def close(self, timeout: float = 5.0) -> None:
        while self.workers:
            _, worker = self.workers.popitem()
            try:
                worker.stop(timeout)
            except Exception:  # a worker that cannot be stopped politely is killed
                worker.kill()


def run_cell(
    cell,
    data: DataRef,
    pool: WorkerPool,
    *,
    timeout: float | None,
    target_acc: float | None = None,
    host: str | None = None,
    on_epoch=None,
    should_stop=None,
) -> CellResult:
    """Run `cell` on the prepared `data` in its backend's worker from `pool`; see the
    module's docstring for the outcomes. `on_epoch(record)` sees each epoch's curve row as it
    ends; `should_stop()`, asked every STOP_CHECK_S, ends the cell as interrupted."""
    result = CellResult(cell, OK, host=host, started_at=measure.now_iso())
    result.row.update(
        n_train=data.n_train,
        n_test=data.n_test,
        n_features=data.n_features,
        n_classes=data.n_classes,
        device=cell.spec(data.n_features, data.n_classes).device,  # where it runs
    )
    env = process_env(cell)
    if cell.backend in pool.unavailable:
        return _ended(result, SKIPPED, pool.unavailable[cell.backend])
    before = pool.startup_s
    try:
        worker = pool.get(cell.backend, cell.threads, env)
    except WorkerDied as exc:
        status = SKIPPED if cell.backend in pool.unavailable else ERROR
        return _ended(result, status, str(exc))
    finally:
        result.startup_s = pool.startup_s - before
    result.row["threads_effective"] = worker.info["threads_effective"]
    try:
        _follow(worker, cell, data, result, timeout, target_acc, on_epoch, should_stop)
    except WorkerTimeout:
        pool.drop(cell.backend, cell.threads, env)
        _ended(result, TIMEOUT, f"stopped after {timeout:g} s (--timeout)")
    except WorkerDied as exc:
        pool.drop(cell.backend, cell.threads, env)
        _ended(result, ERROR, str(exc))
    except KeyboardInterrupt:  # Ctrl-C: the worker is mid-cell, it goes at once
        pool.drop(cell.backend, cell.threads, env)
        raise
    if result.status == INTERRUPTED:
        pool.drop(cell.backend, cell.threads, env)
    return result


def _ended(result: CellResult, status: str, error: str | None) -> CellResult:
    result.status, result.error = status, error
    return result


def _follow(worker, cell, data, result, timeout, target_acc, on_epoch, should_stop) -> None:
    """Send the cell to `worker` and follow it to the end, filling `result`."""
    deadline = measure.Deadline(timeout)
    worker.send("cell", {"cell": cell, "data": data, "target_acc": target_acc})
    while True:
        if should_stop is not None and should_stop():
            _ended(result, INTERRUPTED, "stopped before it finished")
            return
        try:
            message = worker.receive(measure.Deadline(_wait_s(deadline, should_stop)))
        except WorkerTimeout:
            if deadline.expired():
                raise
            continue
        if message[0] == "epoch":
            result.curves.append(message[1])
            if on_epoch is not None:
                on_epoch(message[1])
        elif message[0] == "done":
            row = dict(message[1]["row"])
            status = row.pop("status", OK)
            result.host = row.pop("host", None) or result.host
            result.row.update(row)
            result.curves = message[1]["curves"]
            if status == DIVERGED:
                error = f"loss became NaN or inf in epoch {row.get('diverged_epoch')}"
                _ended(result, DIVERGED, error)
            else:
                _ended(result, status, None)
            return
        elif message[0] == "failed":
            _, text, trace = message
            if text.startswith("NotImplementedError"):  # the backend cannot express it
                _ended(result, SKIPPED, f"{NOT_SUPPORTED}{text}")
            else:
                _ended(result, ERROR, text)
                result.trace = trace
            return


def _wait_s(deadline, should_stop) -> float | None:
    """How long one receive waits: to the deadline, and at most STOP_CHECK_S when someone
    may ask the cell to stop."""
    remaining = deadline.remaining()
    if should_stop is None:
        return remaining
    return STOP_CHECK_S if remaining is None else max(0.0, min(STOP_CHECK_S, remaining))
