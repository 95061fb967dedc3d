"""Worker processes: one per backend and thread count, reused across that backend's cells.

Frameworks never share a process. A worker pins its threads before its framework does any
work, imports the framework once, then runs the cells it is sent one at a time and streams
back each epoch's record and the cell's result. Its own stdout and stderr (framework logs)
go to a log file in the run folder so they cannot garble the parent's progress display.

Messages, parent -> worker: ("cell", payload) | ("matmul", dtype) | ("verify", payload) |
("stop",). Worker -> parent: ("ready", info), ("epoch", record), ("done", result),
("failed", message, traceback), ("value", object).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

_CONTEXT = multiprocessing.get_context("spawn")
_DATA_CACHE: dict[str, SimpleNamespace] = {}


@dataclass
class DataRef:
    """Where a prepared dataset's arrays lie (written once by the parent as .npy files)."""

    folder: str
    n_train: int
    n_test: int
    n_features: int
    n_classes: int


def save_arrays(folder, X_train, Y_train, X_test, Y_test) -> None:
    os.makedirs(folder, exist_ok=True)
    for name, array in (
        ("X_train", X_train),
        ("Y_train", Y_train),
        ("X_test", X_test),
        ("Y_test", Y_test),
    ):
        np.save(os.path.join(folder, f"{name}.npy"), np.ascontiguousarray(array))


def _load(folder: str) -> SimpleNamespace:
    data = _DATA_CACHE.get(folder)
    if data is None:
        arrays = {
            name: np.load(os.path.join(folder, f"{name}.npy"))
            for name in ("X_train", "Y_train", "X_test", "Y_test")
        }
        data = _DATA_CACHE[folder] = SimpleNamespace(**arrays)
    return data


def _redirect_output(log_path: str | None) -> None:
    if log_path is None:
        return
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _run_cell(model_class, payload, send):
    from impls import init_params

    from . import measure

    start = measure.perf_clock()
    cell, data_ref = payload["cell"], payload["data"]
    data = _load(data_ref.folder)
    spec = cell.spec(data_ref.n_features, data_ref.n_classes)
    params = init_params(
        spec, seed=cell.seed, scheme=cell.init, scale=cell.init_scale, bias=cell.init_bias
    )
    model, build_s = measure.timed(model_class, spec, params)
    result = measure.train_and_measure(
        model,
        data,
        epochs=cell.epochs,
        batch_size=cell.batch_size,
        seed=cell.seed,
        loss=cell.loss,
        n_weights=spec.n_weights,
        order=cell.order,
        eval_every=cell.eval_every,
        target_acc=payload.get("target_acc"),
        on_epoch=lambda record: send(("epoch", record.as_row())),
    )
    row = result.as_row()
    row.update(build_s=build_s, n_params=spec.n_params, cell_s=measure.perf_clock() - start)
    send(("done", {"row": row, "curves": [r.as_row() for r in result.epochs]}))


def _run_verify(model_class, payload, send):
    """Train from given params on given orders; return final params and predictions."""
    from impls import MLPSpec

    spec = MLPSpec(**payload["spec"])
    model = model_class(spec, payload["params"])
    losses = [
        model.train_epoch(payload["X"], payload["Y"], payload["batch_size"], order)
        for order in payload["orders"]
    ]
    send(
        (
            "value",
            {
                "params": model.get_params(),
                "proba": model.predict_proba(payload["X"]),
                "losses": losses,
            },
        )
    )


def _start_backend(backend: str | None, threads: int, log_path: str | None):
    """Pin threads and import `backend`'s framework: (threads in effect, model class).

    Raises BackendUnavailable when the framework is not installed, or is installed but fails
    to import (a broken install raises anything from ImportError to RuntimeError); its
    traceback then goes to the worker's log.
    """
    from impls.registry import (
        BACKENDS,
        BackendUnavailable,
        available_backends,
        backend_class,
        install_hint,
    )

    from .threads import pin_threads

    if backend is not None:
        reason = available_backends().get(backend)
        if reason is not None:  # checked before pinning: pinning imports the framework
            raise BackendUnavailable(f"backend {backend!r} is unavailable: {reason}")
    try:
        effective = pin_threads(threads, backend)
        return effective, (backend_class(backend) if backend is not None else None)
    except BackendUnavailable:
        raise
    except Exception as exc:
        extra = BACKENDS[backend].extra if backend in BACKENDS else None
        if extra is None:  # NumPy backends need nothing extra: a real fault, not a skip
            raise
        traceback.print_exc()  # into the worker's log
        where = f" (traceback: {os.path.basename(log_path)})" if log_path else ""
        raise BackendUnavailable(
            f"backend {backend!r} failed to import its framework ({type(exc).__name__}: "
            f"{exc}); reinstall with {install_hint(extra)}{where}"
        ) from exc


def worker_main(conn, backend: str | None, threads: int, log_path: str | None) -> None:
    """Entry point of a worker process (runs in a fresh interpreter)."""
    _redirect_output(log_path)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    from impls.registry import BackendUnavailable

    from . import measure

    send = conn.send
    info = {"pid": os.getpid(), "backend": backend, "unavailable": None}
    try:
        start = measure.perf_clock()
        info["threads_effective"], model_class = _start_backend(backend, threads, log_path)
        info["startup_s"] = measure.perf_clock() - start
    except BackendUnavailable as exc:
        info["unavailable"] = str(exc)
        model_class = None
    _freeze_heap()
    send(("ready", info))
    handlers = {
        "cell": lambda payload: _run_cell(model_class, payload, send),
        "verify": lambda payload: _run_verify(model_class, payload, send),
        "matmul": lambda dtype: send(("value", measure.matmul_gflops(dtype))),
    }
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "stop":
            return
        try:
            handlers[message[0]](*message[1:])
        except Exception as exc:  # a failing cell is reported and the worker goes on
            send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        _freeze_heap()


def _freeze_heap() -> None:
    """Collect garbage, then move every live object out of the collector's sight.

    The harness collects garbage before each timed epoch so that no collection lands inside
    one. A framework's heap (its modules, op registries, caches) holds millions of objects,
    and scanning it made every such collection cost 100-200 ms, most of a small cell's time.
    Frozen after start-up and after each cell, the collections only see what the current
    cell created; the cell's own garbage is still collected as before.
    """
    gc.collect()
    gc.freeze()


class WorkerDied(Exception):
    """The worker process ended without answering (crash, kill, out of memory)."""


class WorkerTimeout(Exception):
    """The worker did not answer within the deadline."""


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, backend: str | None, threads: int, log_path: str | None = None):
        from .threads import thread_env

        self.backend = backend
        self.threads = threads
        self._conn, child = _CONTEXT.Pipe()
        saved = {k: os.environ.get(k) for k in thread_env(threads)}
        os.environ.update(thread_env(threads))  # the child inherits the environment at start
        try:
            self.process = _CONTEXT.Process(
                target=worker_main,
                args=(child, backend, threads, log_path),
                daemon=True,
                name=f"bench-worker-{backend or 'probe'}-{threads}",
            )
            self.process.start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        child.close()
        self.info = None

    def send(self, *message) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, OSError):
            raise WorkerDied(self.exit_description()) from None

    def receive(self, deadline) -> tuple:
        """The next message; WorkerTimeout past `deadline`, WorkerDied if the process ended."""
        while True:
            remaining = deadline.remaining()
            wait = 0.5 if remaining is None else min(0.5, remaining)
            try:
                if self._conn.poll(wait):
                    return self._conn.recv()
            except (EOFError, OSError):
                raise WorkerDied(self.exit_description()) from None
            if not self.process.is_alive() and not self._conn.poll(0):
                raise WorkerDied(self.exit_description())
            if deadline.expired():
                raise WorkerTimeout()

    def wait_ready(self, deadline) -> dict:
        message = self.receive(deadline)
        if message[0] != "ready":
            raise WorkerDied(f"unexpected first message {message[0]!r}")
        self.info = message[1]
        return self.info

    def exit_description(self) -> str:
        self.process.join(timeout=1.0)
        code = self.process.exitcode
        if code is None:
            return "worker process stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (killed from outside, e.g. out of memory)" if name == "SIGKILL" else ""
            return f"worker process died from {name}{hint}"
        return f"worker process exited with status {code}"

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.is_alive():
            try:
                self._conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            self.process.join(timeout)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        self._conn.close()
