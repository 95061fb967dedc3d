"""Worker processes: one per backend and thread count, reused across that backend's cells.

Frameworks never share a process. A worker pins its threads before its framework does any
work, imports the framework once, then runs the cells it is sent one at a time and streams
back each epoch's record and the cell's result. Its own stdout and stderr (framework logs)
go to a log file in the run folder so they cannot garble the parent's progress display.

A worker is its own program, `python -m bench.worker.process`, started with subprocess and talking
over a socket pair: unlike multiprocessing's spawn it never re-imports the caller's main
module, so `bench.run_sweep` works from a script without a `__main__` guard, from a pipe
and from a notebook. It dies with its parent: Linux's parent-death signal where there is
one, and everywhere a watchdog thread that notices the parent is gone within WATCHDOG_S.

Messages, parent -> worker: ("cell", payload) | ("open", payload) | ("step",) | ("close",) |
("matmul", dtype) | ("device_matmul", dtype, device, tf32) | ("verify", payload) | ("stop",).
Worker -> parent: ("ready", info), ("epoch", record), ("done", result), ("failed", message,
traceback), ("value", object); to "open", ("opened", {}); to "step", ("epoch", record, done).
"cell" runs a whole cell; "open", "step" (one epoch) and "close" (evaluate, the "done" result)
run it an epoch at a time, as bench.run.interleave does (bench.worker.stepper).
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench.worker.plugins import describe_failure, pin_loaded_frameworks, read_only
from bench.worker.stepper import OpenedCell, Steps

CELL_MESSAGES = ("cell", "open", "step", "close")  # the messages that train a cell
WATCHDOG_S = 0.25  # how often a worker checks that its parent is alive
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])  # holds bench/ and impls/
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
        read_only(data)  # shared by every cell of this worker and the harness's own losses
    return data


def _run_cell(model_class, payload, send):
    """The whole cell at once: opened, its epochs streamed back as they end, closed."""
    opened = OpenedCell(model_class, payload, _load)
    while not opened.done:
        send(("epoch", opened.epoch()))
    send(("done", opened.close()))


def _run_verify(model_class, payload, send):
    """Train from given params on given orders; return final params and predictions."""
    from impls import MLPSpec

    spec = MLPSpec(**payload["spec"])
    model = model_class(spec, payload["params"])
    X, Y, batch_size = payload["X"], payload["Y"], payload["batch_size"]
    send(("value", train_for_verify(model, X, Y, batch_size, payload["orders"])))


def train_for_verify(model, X, Y, batch_size, orders) -> dict:
    """Train `model` on the orders as `bench run` does (the data staged once where the model
    computes, when it can stage) and return its parameters, predictions and epoch losses."""
    if callable(getattr(model, "stage", None)):
        data = model.stage(X, Y)
        losses = [model.train_epoch(data, batch_size, order) for order in orders]
        from impls import MLPModel

        proba = model.predict_proba(data if isinstance(model, MLPModel) else X)
    else:
        losses = [model.train_epoch(X, Y, batch_size, order) for order in orders]
        proba = model.predict_proba(X)
    return {"params": model.get_params(), "proba": proba, "losses": losses}


def _start_backend(backend: str | None, threads: int, log_path: str | None):
    """Pin threads and import `backend`'s framework: (threads in effect, model class).

    Raises BackendUnavailable when the framework is not installed, or is installed but fails
    to import (a broken install raises anything from ImportError to RuntimeError); its
    traceback then goes to the worker's log.
    """
    from bench.worker.threads import pin_threads
    from impls.registry import (
        BACKENDS,
        BackendUnavailable,
        available_backends,
        backend_class,
        backend_install_hint,
    )

    if backend is not None:
        reason = available_backends().get(backend)
        if reason is not None:  # checked before pinning: pinning imports the framework
            raise BackendUnavailable(f"backend {backend!r} is unavailable: {reason}")
    if backend is not None and backend not in BACKENDS:
        # a user's class: imported first, then whatever frameworks it loaded are pinned as
        # their registered backends are (its import runs under the parent's --timeout)
        model_class = backend_class(backend)
        return pin_loaded_frameworks(threads), model_class
    try:
        effective = pin_threads(threads, backend)
        return effective, (backend_class(backend) if backend is not None else None)
    except BackendUnavailable:
        raise
    except Exception as exc:
        hint = backend_install_hint(backend) if backend is not None else None
        if hint is None:  # NumPy backends need nothing extra: a real fault, not a skip
            raise
        traceback.print_exc()  # into the worker's log
        where = f" (traceback: {os.path.basename(log_path)})" if log_path else ""
        raise BackendUnavailable(
            f"backend {backend!r} failed to import its framework ({type(exc).__name__}: "
            f"{exc}); reinstall with {hint}{where}"
        ) from exc


def _die_with_parent(parent_pid: int, signal_ok: bool = True) -> None:
    """End this process within about WATCHDOG_S of its parent's end, whatever it is doing.

    Linux: the kernel sends SIGKILL when the parent ends (prctl PR_SET_PDEATHSIG), even in
    the middle of a long C call. The kernel means the parent's *thread* that started this
    process, so it is used only for workers started from the parent's main thread
    (`signal_ok`); a Dask task's thread may end while its worker lives on. Everywhere: a
    daemon thread compares the parent's pid with the one it started with (a worker whose
    parent ended is adopted by another process).
    """
    if signal_ok and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent ended before the signal was set up
        os._exit(1)

    def watch():
        while os.getppid() == parent_pid:
            threading.Event().wait(WATCHDOG_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def worker_main(conn, backend: str | None, threads: int, log_path: str | None) -> None:
    """Serve the parent's requests over `conn` until it says stop or goes away."""
    from bench.worker import measure, probes
    from impls.registry import BackendUnavailable

    send = conn.send
    info = {"pid": os.getpid(), "backend": backend, "unavailable": None}
    try:
        watch = measure.Stopwatch()
        info["threads_effective"], model_class = _start_backend(backend, threads, log_path)
        info["startup_s"] = watch.elapsed()
    except BackendUnavailable as exc:
        info["unavailable"] = str(exc)
        model_class = None
    _freeze_heap()
    send(("ready", info))
    steps = Steps()  # the interleaved messages' opened cell (bench.run.interleave)
    handlers = {
        "cell": lambda payload: _run_cell(model_class, payload, send),
        "open": lambda payload: send(steps.open(model_class, payload, _load)),
        "step": lambda: send(steps.step()),
        "close": lambda: send(steps.close()),
        "verify": lambda payload: _run_verify(model_class, payload, send),
        "matmul": lambda dtype: send(("value", probes.matmul_probe(dtype))),
        "device_matmul": lambda dtype, device, tf32: send(
            ("value", probes.device_matmul_probe(dtype, device, tf32))
        ),
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
        except (Exception, KeyboardInterrupt, SystemExit) as exc:
            # a failing cell is reported and the worker goes on; the worker ignores SIGINT,
            # so a KeyboardInterrupt or SystemExit here was raised by the backend's own code
            folder = message[1]["data"].folder if message[0] in ("cell", "open") else steps.folder
            data = _DATA_CACHE.get(folder) if message[0] in CELL_MESSAGES else None
            send(("failed", describe_failure(exc, data), traceback.format_exc()))
        if steps.cell is None:  # between cells (an open cell's objects stay collectable)
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


def process_env(cell) -> tuple[tuple[str, str], ...]:
    """What a worker for `cell` must have in its environment before its framework loads.
    CuPy reads its TF32 switch (CUPY_TF32) once, so cupy cells with and without TF32 run in
    workers of their own. Part of the key the runners keep their workers by."""
    if cell.backend == "cupy":
        return (("CUPY_TF32", "1" if cell.tf32 else "0"),)
    if cell.backend == "jax":
        # JAX takes 75% of a GPU's memory when it starts unless told not to: the other
        # backends' workers could not run beside it, and its peak memory would say nothing
        return (("XLA_PYTHON_CLIENT_PREALLOCATE", "false"),)
    from impls.registry import backend_devices

    if "cuda" not in backend_devices(cell.backend):
        # A CPU-only backend sees no GPU: Keras on JAX or PyTorch (or TensorFlow with CUDA)
        # would otherwise move to a GPU by itself while its cells record the CPU
        return (("CUDA_VISIBLE_DEVICES", ""),)
    return ()


def env_tag(env: tuple) -> str:
    """What tells apart, in its log's name, a worker started with `env` from the backend's
    other workers: "-tf32" for cupy's TF32 workers, else nothing."""
    return "-tf32" if ("CUPY_TF32", "1") in env else ""


class WorkerDied(Exception):
    """The worker process ended without answering (crash, kill, out of memory)."""


class WorkerTimeout(Exception):
    """The worker did not answer within the deadline."""


def _command(fd: int, threads: int, backend: str | None, log_path: str | None) -> list[str]:
    """The worker program's command line (see `main`)."""
    main_thread = threading.current_thread() is threading.main_thread()
    args = (str(fd), str(os.getpid()), str(threads), backend or "", log_path or "")
    args += ("1" if main_thread else "0",)
    return [sys.executable, "-m", "bench.worker.process", *args]


class Worker:
    """The parent's handle on one worker process (`python -m bench.worker.process`)."""

    def __init__(
        self, backend: str | None, threads: int, log_path: str | None = None, env: tuple = ()
    ):
        """`env`: (name, value) pairs set in the worker's environment (`process_env`)."""
        from bench.worker.threads import thread_env

        self.backend = backend
        self.threads = threads
        self.log_path = log_path
        self.info = None
        parent_end, child_end = socket.socketpair()
        env = {**os.environ, **thread_env(threads), **dict(env)}
        # the worker imports this very copy of bench and impls, whatever the caller's path
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PROJECT_ROOT, os.environ.get("PYTHONPATH")) if p
        )
        command = _command(child_end.fileno(), threads, backend, log_path)
        log = open(log_path, "ab") if log_path else None  # noqa: SIM115 (closed below)
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log if log else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if log else None,
                pass_fds=(child_end.fileno(),),
                env=env,
                start_new_session=True,  # Ctrl-C reaches the parent only; it stops workers
            )
        finally:
            child_end.close()
            if log:
                log.close()
        self._conn = Connection(parent_end.detach())

    def send(self, *message) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, OSError):
            raise WorkerDied(self.exit_description()) from None

    def alive(self) -> bool:
        return self.process.poll() is None

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
            if not self.alive() and not self._conn.poll(0):
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
        try:
            code = self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "worker process stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (killed from outside, e.g. out of memory)" if name == "SIGKILL" else ""
            return f"worker process died from {name}{hint}"
        return f"worker process exited with status {code}{self._log_tail()}"

    def _log_tail(self) -> str:
        """The last line the worker wrote to its log (e.g. an import error), if any."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
                lines = f.read().decode(errors="replace").strip().splitlines()
        except (OSError, TypeError):
            return ""
        return f": {lines[-1].strip()}" if lines else ""

    def stop(self, timeout: float = 5.0) -> None:
        if self.alive():
            try:
                self._conn.send(("stop",))
                self.process.wait(timeout)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        for end in (self.process.terminate, self.process.kill):
            if self.alive():
                end()
                try:
                    self.process.wait(2.0)
                except subprocess.TimeoutExpired:
                    pass
        self._conn.close()


def main(argv=None) -> None:
    """`python -m bench.worker.process FD PARENT_PID THREADS BACKEND LOG MAIN_THREAD`: the worker
    program (MAIN_THREAD: 1 when the parent started it from its main thread)."""
    fd, parent_pid, threads, backend, log_path, main_thread = (argv or sys.argv[1:])[:6]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    _die_with_parent(int(parent_pid), signal_ok=main_thread == "1")
    conn = Connection(int(fd))
    try:
        worker_main(conn, backend or None, int(threads), log_path or None)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent went away


if __name__ == "__main__":
    # Run this module's imported copy, not this __main__ one, so that the classes the parent
    # pickles (bench.worker.process.DataRef) and the caches are one and the same.
    from bench.worker import process as _worker

    _worker.main()
