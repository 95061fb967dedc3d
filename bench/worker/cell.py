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
import math
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

    def get(self, backend: str | None, threads: int, env: tuple = (), deadline=None) -> Worker:
        """The worker for `backend` (None: a matmul probe worker), started if needed. Raises
        WorkerDied when it cannot start, or when the backend is unavailable (then also
        remembered in `unavailable`); WorkerTimeout when its start runs past `deadline` (a
        measure.Deadline: a cell's --timeout covers its worker's start and imports)."""
        key = (backend, threads, env)
        worker = self.workers.get(key)
        if worker is not None and worker.alive():
            return worker
        log = self.log_path(backend, threads, env)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with measure.Stopwatch() as watch:
            worker = Worker(backend, threads, str(log), env)
            limit = STARTUP_TIMEOUT_S
            if deadline is not None and deadline.remaining() is not None:
                limit = min(limit, deadline.remaining())
            try:
                info = worker.wait_ready(measure.Deadline(limit))
            except WorkerTimeout:
                worker.kill()
                if deadline is not None and deadline.expired():
                    raise
                raise WorkerDied(f"{backend} worker did not start in {limit:g} s") from None
            except WorkerDied as exc:
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
    timing_budget: float = 0.0,
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
    deadline = measure.Deadline(timeout)  # the worker's start and imports count
    try:
        worker = pool.get(cell.backend, cell.threads, env, deadline)
    except WorkerTimeout:
        return _ended(
            result, TIMEOUT, f"stopped after {timeout:g} s (--timeout) while its worker started"
        )
    except WorkerDied as exc:
        status = SKIPPED if cell.backend in pool.unavailable else ERROR
        return _ended(result, status, str(exc))
    finally:
        result.startup_s = pool.startup_s - before
    result.row["threads_effective"] = worker.info["threads_effective"]
    try:
        payload = _payload(cell, data, target_acc, timing_budget, deadline.remaining())
        _follow(worker, payload, result, deadline, on_epoch, should_stop)
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


def _payload(cell, data: DataRef, target_acc, timing_budget, time_left=None) -> dict:
    """What a worker is sent to open a cell (bench.worker.stepper.OpenedCell): `time_left`,
    the seconds before the cell's --timeout (None: none), keeps its extra timing epochs
    inside it."""
    return {
        "cell": cell,
        "data": data,
        "target_acc": target_acc,
        "timing_budget": timing_budget,
        "time_left": time_left,
    }


def _follow(worker, payload, result, deadline, on_epoch, should_stop) -> None:
    """Send the cell to `worker` and follow it to the end (or `deadline`), filling `result`."""
    worker.send("cell", payload)
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
        elif message[0] in ("done", "failed"):
            settle(result, message)
            return


def settle(result: CellResult, message: tuple) -> CellResult:
    """End `result` as the worker's last message about its cell says: "done" (its row and
    curves: ok or diverged) or "failed" (skipped when the backend raised
    NotImplementedError, else an error with its traceback)."""
    if message[0] == "done":
        row = dict(message[1]["row"])
        status = row.pop("status", OK)
        result.host = row.pop("host", None) or result.host
        result.row.update(row)
        result.curves = message[1]["curves"]
        if status == DIVERGED:
            return _ended(result, DIVERGED, _diverged(row.get("diverged_epoch"), result.curves))
        return _ended(result, status, None)
    _, text, trace = message
    if text.startswith("NotImplementedError"):  # the backend cannot express it
        return _ended(result, SKIPPED, f"{NOT_SUPPORTED}{text}")
    _ended(result, ERROR, text)
    result.trace = trace
    return result


def _diverged(epoch, curves) -> str:
    """Why a cell stopped as diverged: its training loss, or, when the loss train_epoch
    returned was finite, the predictions the harness evaluated after that epoch."""
    last = curves[-1] if curves else {}
    loss = last.get("epoch_loss")
    if loss is not None and math.isfinite(loss):
        return (
            f"predictions became NaN or inf after epoch {epoch}, though the training loss "
            f"train_epoch returned was finite ({loss:.6g}): check predict_proba"
        )
    return f"loss became NaN or inf in epoch {epoch}"


def _wait_s(deadline, should_stop) -> float | None:
    """How long one receive waits: to the deadline, and at most STOP_CHECK_S when someone
    may ask the cell to stop."""
    remaining = deadline.remaining()
    if should_stop is None:
        return remaining
    return STOP_CHECK_S if remaining is None else max(0.0, min(STOP_CHECK_S, remaining))


class SteppedCell:
    """A cell run an epoch at a time in its backend's worker from `pool` (bench.run.interleave):
    `open` builds its model and stages its data there, each `step` runs one epoch, and the
    cell closes by itself after its last epoch (or a diverged one), evaluated as `run_cell`'s
    are. Its outcomes are run_cell's; `ended` says when `result` holds its final one.
    `timeout` bounds the seconds this cell's own messages take (its worker's start
    included), not the time it waits while other cells run their epochs."""

    def __init__(self, cell, data: DataRef, pool: WorkerPool, *, timeout, target_acc, host):
        self.cell, self.pool, self.timeout = cell, pool, timeout
        self.env = process_env(cell)
        self.result = CellResult(cell, OK, host=host, started_at=measure.now_iso())
        self.result.row.update(
            n_train=data.n_train,
            n_test=data.n_test,
            n_features=data.n_features,
            n_classes=data.n_classes,
            device=cell.spec(data.n_features, data.n_classes).device,  # where it runs
        )
        self.ended = False
        self.spent_s = 0.0  # the seconds of this cell's own messages, against `timeout`
        self.worker = None
        # no extra timing epochs: an interleaved cell's paired rounds are its samples
        self._payload = _payload(cell, data, target_acc, timing_budget=0.0)
        self._rounds: dict[int, int] = {}  # epoch -> the round it ran in

    def open(self) -> None:
        """Start (or reuse) the cell's worker and open the cell there."""
        cell, pool, result = self.cell, self.pool, self.result
        if cell.backend in pool.unavailable:
            return self._end(SKIPPED, pool.unavailable[cell.backend])
        before = pool.startup_s
        try:
            with measure.Stopwatch() as watch:
                self.worker = pool.get(cell.backend, cell.threads, self.env, self._deadline())
        except WorkerTimeout:
            return self._end(
                TIMEOUT, f"stopped after {self.timeout:g} s (--timeout) while its worker started"
            )
        except WorkerDied as exc:
            return self._end(SKIPPED if cell.backend in pool.unavailable else ERROR, str(exc))
        finally:
            result.startup_s = pool.startup_s - before
        self.spent_s += watch.seconds
        result.row["threads_effective"] = self.worker.info["threads_effective"]
        self._exchange(("open", self._payload))

    def step(self, round_: int) -> dict | None:
        """Run the cell's next epoch as part of round `round_`; its curve row (None when the
        cell ended instead)."""
        if self.ended:
            return None
        message = self._exchange(("step",))
        if message is None:
            return None
        _, record, done = message
        self._rounds[record["epoch"]] = round_
        self.result.curves.append({**record, "round": round_})
        if done:
            self._exchange(("close",))
        return record

    def abandon(self) -> None:
        """Stop the cell unfinished (Ctrl-C): its worker goes, nothing is recorded."""
        if not self.ended:
            self.pool.drop(self.cell.backend, self.cell.threads, self.env)
            self._end(INTERRUPTED, "stopped before it finished")

    def _deadline(self):
        return measure.Deadline(None if self.timeout is None else self.timeout - self.spent_s)

    def _exchange(self, message: tuple) -> tuple | None:
        """Send `message`, wait for the answer within the cell's time left, and end the cell
        when the answer is its last ("done", "failed") or the worker timed out or died."""
        try:
            with measure.Stopwatch() as watch:
                try:
                    self.worker.send(*message)
                    answer = self.worker.receive(self._deadline())
                finally:
                    self.spent_s += watch.elapsed()
        except WorkerTimeout:
            self.pool.drop(self.cell.backend, self.cell.threads, self.env)
            return self._end(TIMEOUT, f"stopped after {self.timeout:g} s (--timeout)")
        except WorkerDied as exc:
            self.pool.drop(self.cell.backend, self.cell.threads, self.env)
            return self._end(ERROR, str(exc))
        if answer[0] in ("done", "failed"):
            settle(self.result, answer)
            if answer[0] == "done":
                self.result.curves = [
                    {**c, "round": self._rounds.get(c["epoch"])} for c in self.result.curves
                ]
            self.ended = True
            return None
        return answer

    def _end(self, status: str, error: str | None) -> None:
        _ended(self.result, status, error)
        self.ended = True
        return None
