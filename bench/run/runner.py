"""Running a sweep: data preparation, workers, the cell loop, and the run folder.

One cell runs at a time, in its backend's worker process. Each finished cell is written to
the run folder at once; a cell that raises, crashes its worker, runs past the timeout or
diverges is recorded with its status and the sweep goes on. Ctrl-C or SIGTERM stops the
sweep, keeps every finished cell and marks the folder interrupted, for `--resume`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from bench.errors import BenchError
from bench.report import noise
from bench.run import session
from bench.run.prepare import _data_key, prepare_data, resolve_batches
from bench.run.progress import Progress, cell_labels, describe_accounting, time_accounting
from bench.run.session import Session
from bench.store.folder import RunStore
from bench.store.schema import AXES
from bench.sweep.build import (
    Cell,
    Sweep,
    build_sweep,
    expand,
    hidden_text,
    merge_duplicates,
    stored_sweep,
)
from bench.worker import envinfo, measure
from bench.worker.process import DataRef, Worker, WorkerDied, WorkerTimeout, env_tag, process_env
from impls.registry import file_safe  # a backend name in a file name

STARTUP_TIMEOUT_S = 600.0  # a worker's import of its framework
INTERRUPTED_EXIT = 130
TMP_DATA = ".data-tmp"  # prepared arrays for the workers, inside the run folder


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run."""


class _Interrupts:
    """SIGINT and SIGTERM raise Interrupted in the main thread, once: a second Ctrl-C while
    the run is stopping is said and ignored, so that env.json is always closed."""

    def __init__(self):
        self.raised = False
        self.holding = False  # writing a cell or closing the folder: an interrupt waits
        self.pending = None

    def _handle(self, signum, frame):
        if self.raised:
            print("still stopping: saving the run folder", file=sys.stderr, flush=True)
        elif self.holding:
            self.pending = signal.Signals(signum).name
        else:
            self.raised = True
            raise Interrupted(signal.Signals(signum).name)

    @contextlib.contextmanager
    def hold(self, closing: bool = False):
        """Interrupts wait until the block is done: then they are raised, or, while the run
        folder is being closed (`closing`), only said."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            pending, self.pending = self.pending, None
            if pending and closing:
                print("still stopping: saving the run folder", file=sys.stderr, flush=True)
            elif pending and not self.raised:
                self.raised = True
                raise Interrupted(pending)

    @contextlib.contextmanager
    def active(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only; there the caller handles Ctrl-C
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, self._handle)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class Runner:
    """Runs cells in worker processes and records them in a RunStore."""

    def __init__(
        self, store: RunStore, sweep: Sweep, refs, progress: Progress, session, guard=None
    ):
        self.store = store
        self.guard = guard or contextlib.nullcontext  # around writing a finished cell
        self.finished: set[tuple[str, int]] = set()  # (cell_id, repeat) written by this one
        self.sweep = sweep
        self.refs = refs
        self.progress = progress
        self.session = session  # its index goes into every row; its probe into the roofline
        self.run_id = store.read_env().get("run_id", store.path.name)
        self.host = envinfo.host()
        self.workers: dict[tuple, Worker] = {}
        self.unavailable: dict[str, str] = {}
        self.threads_effective: dict[str, dict] = {}
        self.startup_s = 0.0  # starting workers: interpreter, imports, framework start-up

    def _worker(self, backend: str, threads: int, env: tuple = ()) -> Worker:
        key = (backend, threads, env)
        worker = self.workers.get(key)
        if worker is not None and worker.alive():
            return worker
        tag = env_tag(env)
        log = self.store.logs_dir / f"worker-{file_safe(backend)}-t{threads}{tag}.log"
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
        self.threads_effective[f"{backend}/t{threads}"] = info["threads_effective"]
        self.store.update_env(threads_effective=self.threads_effective)
        self.workers[key] = worker
        return worker

    def _drop_worker(self, backend: str, threads: int, env: tuple = ()) -> None:
        worker = self.workers.pop((backend, threads, env), None)
        if worker is not None:
            worker.kill()

    def run_cell(self, cell: Cell) -> dict:
        ref = self.refs[_data_key(cell)]
        row = {
            **cell.row(),
            "run_id": self.run_id,
            "session": self.session.index,
            "host": self.host,
            "device": cell.spec(ref.n_features, ref.n_classes).device,  # where it runs
            "n_train": ref.n_train,
            "n_test": ref.n_test,
            "n_features": ref.n_features,
            "n_classes": ref.n_classes,
            "target_acc": self.sweep.target_acc,
            "started_at": measure.now_iso(),
        }
        curves = []
        if cell.backend in self.unavailable:
            row.update(status="skipped", error=self.unavailable[cell.backend])
            return self._finish(row, curves)
        try:
            worker = self._worker(cell.backend, cell.threads, process_env(cell))
        except WorkerDied as exc:
            status = "skipped" if cell.backend in self.unavailable else "error"
            row.update(status=status, error=str(exc))
            return self._finish(row, curves)
        row["threads_effective"] = worker.info["threads_effective"]
        try:
            curves = self._train(worker, cell, ref, row)
        except WorkerTimeout:
            self._drop_worker(cell.backend, cell.threads, process_env(cell))
            row.update(
                status="timeout", error=f"stopped after {self.sweep.timeout:g} s (--timeout)"
            )
        except WorkerDied as exc:
            self._drop_worker(cell.backend, cell.threads, process_env(cell))
            row.update(status="error", error=str(exc))
        if row.get("status") == "diverged":
            row["error"] = f"loss became NaN or inf in epoch {row['diverged_epoch']}"
        peak = self.session.peak_for(cell)
        if peak and isinstance(row.get("gflops"), float) and math.isfinite(row["gflops"]):
            row["roofline"] = row["gflops"] / peak
        return self._finish(row, curves)

    def _train(self, worker: Worker, cell: Cell, ref: DataRef, row: dict) -> list[dict]:
        """Send the cell to its worker and follow it to the end; fills `row`, returns the
        curve rows."""
        curves = []
        payload = {"cell": cell, "data": ref, "target_acc": self.sweep.target_acc}
        deadline = measure.Deadline(self.sweep.timeout)
        worker.send("cell", payload)
        while True:
            message = worker.receive(deadline)
            if message[0] == "epoch":
                curves.append(message[1])
                self.progress.epoch(message[1])
            elif message[0] == "done":
                row.update(message[1]["row"])
                return message[1]["curves"]
            elif message[0] == "failed":
                _, text, trace = message
                if text.startswith("NotImplementedError"):  # the backend cannot express it
                    row.update(status="skipped", error=f"not supported: {text}")
                    return curves
                log = self.store.write_log(f"{cell.cell_id}-r{cell.repeat}", trace)
                row.update(status="error", error=f"{text} (traceback: {log.name})")
                return curves

    def _finish(self, row: dict, curves: list[dict]) -> dict:
        row.setdefault("status", "ok")
        row["finished_at"] = measure.now_iso()
        keys = {k: row[k] for k in ("run_id", "cell_id", "part", *AXES, "repeat")}
        with self.guard():  # the row on disk and its count here agree, even on Ctrl-C
            self.store.append_cell(row, [{**keys, **c} for c in curves])
            self.finished.add((row["cell_id"], row["repeat"]))
        return row

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        self.workers.clear()


def _summary_line(rows) -> str:
    counts = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


@dataclasses.dataclass
class _Run:
    """What one execute() call works with, step by step."""

    sweep: Sweep
    cells: list
    store: RunStore
    env: dict
    session: Session
    finished: set
    note: Callable
    fresh: bool  # a new folder (removed again if the run stops before any cell ran)
    todo: list = dataclasses.field(default_factory=list)
    rows: list = dataclasses.field(default_factory=list)
    runner: Runner | None = None
    phases: dict = dataclasses.field(
        default_factory=lambda: {"data_s": 0.0, "matmul_probe_s": 0.0, "report_s": 0.0}
    )
    status: str = "interrupted"

    @property
    def data_folder(self) -> Path:
        return self.store.path / TMP_DATA

    @property
    def saved(self) -> int:
        """Cells this session wrote to the run folder."""
        return len(self.runner.finished) if self.runner else 0

    @property
    def not_run(self) -> int:
        done = self.finished | (self.runner.finished if self.runner else set())
        return sum((c.cell_id, c.repeat) not in done for c in self.cells)


def execute(
    sweep: Sweep,
    *,
    out="results",
    resume=None,
    progress=True,
    command=None,
    note=None,
    scheduler: str | None = None,
    env_extra=None,
) -> tuple[Path, str]:
    """Run `sweep` (or finish the run folder `resume`); return (run folder, final status).

    `scheduler` (a Dask scheduler's address, or local:N) runs the cells on a Dask cluster
    (bench.cluster) instead of this machine's workers. `env_extra`: fields added to env.json
    (e.g. `verify`, from `bench run --verify`).

    Raises UsageError / BenchError for problems found before training starts.
    """
    note = note or (lambda text: print(text, file=sys.stderr))
    watch = measure.Stopwatch()
    cells = expand(sweep)
    warnings_ = []
    if (
        scheduler is None
    ):  # with Dask, the cells' machines are the workers' (bench.cluster.executor)
        gpus = session.check_devices(cells)
        if gpus is not None:  # what each GPU library sees: env.json's `devices`
            env_extra = {**(env_extra or {}), "devices": gpus}
        warnings_ = session.thread_warnings(cells)
    warnings_ += tf32_warnings(sweep, cells)
    for text in warnings_:
        note(f"warning: {text}")
    executor = _connect(scheduler, note, cells)
    try:
        run = _open_run(
            sweep, cells, out, resume, command or " ".join(sys.argv), warnings_, note, env_extra
        )
    except BaseException:
        if executor is not None:
            executor.close()
        raise
    interrupts = _Interrupts()
    with interrupts.active(), session.tool_homes(run.store.path):
        try:
            if executor is not None:  # bench.cluster.executor: data, probe and cells on Dask
                executor.run(run, progress, guard=interrupts.hold)
            else:
                _prepare(run, guard=interrupts.hold)
                _probe(run)
                _run_cells(run, progress)
            run.status = "complete"
        except Interrupted as exc:
            _say_interrupted(run, exc)
        finally:
            with interrupts.hold(closing=True):
                _close(run)
        _report(run, interrupts)
    _account(run, watch.elapsed())
    _say_noise(run)
    return run.store.path, run.status


def tf32_warnings(sweep: Sweep, cells) -> list[str]:
    """A warning when --tf32 was asked for and no cell can use it (it applies to float32
    cells on a GPU only): such a run computes in full float32, as its tf32 column says."""
    if any(part.tf32 for part in sweep.parts) and not any(c.tf32 for c in cells):
        return [
            "--tf32 applies to float32 cells on a GPU and this sweep has none: every cell "
            "computes in full precision (add --devices cuda)"
        ]
    return []


def _connect(scheduler: str | None, note, cells):
    """The Dask cluster for `--scheduler`, connected and checked before any folder exists
    (a scheduler that cannot be reached is a usage error); None for a local run."""
    if scheduler is None:
        return None
    from bench.cluster.executor import connect

    return connect(scheduler, note, cells)


def _open_run(sweep, cells, out, resume, command, warnings_, note, env_extra=None) -> _Run:
    """Open the run folder and write env.json (status "running", the sweep, this session)
    before anything else, so that a run killed at any point can be resumed."""
    if resume is not None:
        store = RunStore.open(resume)
        finished = store.recover()
        env = store.read_env()
    else:
        store = RunStore.create(out, sweep.title)
        finished = set()
        env = {"run_id": store.path.name, "name": sweep.title, "command": command}
    env.update(envinfo.collect())
    this = Session(env, command, warnings_)
    threads = sorted({c.threads for c in cells})
    env.update(
        status="running",
        started_at=env.get("started_at") or this.entry["started_at"],
        resumed_at=this.entry["started_at"] if resume is not None else None,
        threads=threads[0] if len(threads) == 1 else threads,
        cells=len(cells),
        **(env_extra or {}),
    )
    if resume is None:  # a folder's stored sweep is never replaced
        env["sweep"] = sweep.to_dict()
    store.write_env(env)
    return _Run(sweep, cells, store, env, this, finished, note, fresh=resume is None)


def _prepare(run: _Run, guard=None) -> None:
    """Load the datasets into the run folder's temporary data folder (swept first: a run
    killed before may have left one) and decide which cells are still to run."""
    shutil.rmtree(run.data_folder, ignore_errors=True)
    refs, run.phases["data_s"] = measure.timed(
        prepare_data, run.cells, run.sweep.data_dir, run.data_folder, run.note
    )
    run.cells, merged = merge_duplicates(resolve_batches(run.cells, refs, run.note))
    for text in merged:
        run.note(text)
    run.todo = [c for c in run.cells if (c.cell_id, c.repeat) not in run.finished]
    if not run.fresh:
        run.note(
            f"resuming {run.store.path}: {len(run.cells) - len(run.todo)} of {len(run.cells)} "
            f"cells already finished, {len(run.todo)} to run"
        )
    run.runner = Runner(run.store, run.sweep, refs, None, run.session, guard)


def _probe(run: _Run) -> None:
    """This session's matmul probes: NumPy's rate on the CPU for the thread counts and dtypes
    of the CPU cells still to run, and each GPU's own rate for its cells' dtypes (and TF32)."""
    if not run.todo:
        return
    on_cpu = [c for c in run.todo if c.device == "cpu"]
    on_gpu = sorted({(c.device, c.dtype, c.tf32) for c in run.todo if c.device != "cpu"})
    with measure.Stopwatch() as watch:
        matmul = {}
        if on_cpu:
            threads = sorted({c.threads for c in on_cpu})
            dtypes = sorted({c.dtype for c in on_cpu})
            matmul = session.measure_matmul(threads, dtypes, run.note, run.store.logs_dir)
        gpu = session.measure_device_matmul(on_gpu, run.note, run.store.logs_dir)
    run.phases["matmul_probe_s"] = watch.seconds
    env = run.store.read_env()
    env["sessions"][run.session.index] = run.session.entry
    run.store.update_env(**run.session.record_matmul(env, matmul, gpu))


def _run_cells(run: _Run, progress: bool) -> None:
    labels = cell_labels(run.todo)
    bar = Progress(len(run.todo), progress)
    run.runner.progress = bar
    try:
        for cell in run.todo:
            bar.start_cell(labels[cell], cell.epochs)
            row = run.runner.run_cell(cell)
            run.rows.append(row)
            bar.end_cell(row)
            if row["status"] != "ok":
                bar.note(f"{labels[cell]}: {row['status']}: {row.get('error', '')}")
    finally:
        bar.close()


def _say_interrupted(run: _Run, exc: Interrupted) -> None:
    if run.fresh and run.runner is None:
        raise KeyboardInterrupt from None  # before the sweep started: nothing to resume
    # said even with --quiet: the user needs the folder to resume
    print(
        f"\ninterrupted ({exc}): {run.saved} cells of this session are saved, "
        f"{run.not_run} of {len(run.cells)} cells did not run; "
        f"finish with: python -m bench run --resume {run.store.path}",
        file=sys.stderr,
    )


def _close(run: _Run) -> None:
    """Stop the workers, remove the temporary data and close this session in env.json;
    a fresh folder that never reached its cells (bad data, Ctrl-C while loading) goes."""
    try:
        if run.runner is not None:
            run.runner.close()
        shutil.rmtree(run.data_folder, ignore_errors=True)
        if run.runner is None and run.fresh:
            return
        run.session.finish(run.status, run.saved, run.not_run)
        env = run.store.read_env()
        env["sessions"][run.session.index] = run.session.entry
        run.store.update_env(
            status=run.status,
            finished_at=measure.now_iso(),
            cells_not_run=run.not_run,
            sessions=env["sessions"],
        )
    finally:
        run.store.close()
        if run.runner is None and run.fresh:
            shutil.rmtree(run.store.path, ignore_errors=True)
    if run.rows:
        run.note(f"cells: {_summary_line(run.rows)}")


def _report(run: _Run, interrupts: _Interrupts) -> None:
    """Write summary.md and plots, after an interrupted sweep too. Ctrl-C or SIGTERM here
    keeps what is written (summary.md comes first) and says how to finish; the run folder
    stays as it is, resumable."""
    watch = measure.Stopwatch()
    said = []
    interrupts.raised = False  # a (further) interrupt now stops the report
    try:
        # summary.md is written whole before an interrupt is taken (it is quick; a second
        # Ctrl-C right after the first would otherwise leave no report at all), the figures
        # after it, interruptibly.
        with interrupts.hold():
            from bench.report.write import (
                plots_wanted,  # (pandas and matplotlib load here: seconds)
            )

            _render(run.store.path, said.append, plots=False)
        if plots_wanted(None):
            _render(run.store.path, said.append)
    except Interrupted as exc:
        done = (run.store.path / "summary.md").is_file()
        print(
            f"\ninterrupted ({exc}) while writing the report"
            f"{' (summary.md is written)' if done else ''}; the results are saved. "
            f"Finish the report with: python -m bench report {run.store.path}",
            file=sys.stderr,
        )
        run.status = "interrupted"
    finally:
        run.phases["report_s"] = watch.elapsed()


def _account(run: _Run, wall_s: float) -> None:
    startup = run.runner.startup_s if run.runner else 0.0
    accounting = time_accounting(run.rows, wall_s, startup, **run.phases)
    with contextlib.suppress(OSError, BenchError):
        RunStore.write_env_field(run.store.path, time_accounting=accounting)
    if run.rows:
        run.note(describe_accounting(accounting))


def _say_noise(run: _Run) -> None:
    """The console's verdict on the run's timings: nothing when they can be trusted."""
    if not run.rows:
        return
    try:
        from bench.report.write import load_run

        results, _ = load_run(run.store.path)
        assessment = noise.assess(run.store.read_env(), results)
    except Exception:  # the report already said what is wrong with the folder
        return
    for line in assessment.lines():
        run.note(line)


def _render(run_dir: Path, note=None, plots: bool | None = None) -> None:
    """Write summary.md and plots; a failure here is reported and never loses the run."""
    from bench.report.write import write_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            write_report(run_dir, note=note, plots=plots)
        except Exception as exc:  # the CSVs are safe; the report can be made again
            print(
                f"warning: the report could not be written ({type(exc).__name__}: {exc}); "
                f"the results are saved, retry with: python -m bench report {run_dir}",
                file=sys.stderr,
            )


def run_sweep(
    config=None,
    *,
    preset: str | None = None,
    resume=None,
    out="results",
    progress: bool = False,
    **overrides,
):
    """Run a sweep and return its results as a pandas DataFrame (results.csv).

    `config` is a mapping as in a TOML file's [sweep] table (or a Sweep); `preset` names a
    preset; keyword overrides (e.g. backends=["numpy-vec"], epochs=3) replace the same keys.
    The run folder's path is in `df.attrs["run_dir"]`.
    """
    from bench.report.write import load_run
    from bench.sweep.presets import preset_mapping

    if resume is not None:
        sweep = sweep_of_run(resume)
    elif isinstance(config, Sweep):
        sweep = config
    else:
        base = dict(preset_mapping(preset)) if preset else {}
        base.update(config or {})
        sweep = build_sweep(base, _listify(overrides))
    run_dir, _ = execute(
        sweep,
        out=out,
        resume=resume,
        progress=progress,
        command=f"bench.run_sweep(preset={preset!r})",
        note=(lambda text: None) if not progress else None,
    )
    results, _ = load_run(run_dir)
    results.attrs["run_dir"] = str(run_dir)
    return results


def _listify(overrides: dict) -> dict:
    from bench.sweep.build import PART_KEYS

    out = {}
    for key, value in overrides.items():
        spec = PART_KEYS.get(key)
        if spec is not None and spec.axis and not isinstance(value, (list, tuple)):
            value = [value]
        if key == "hidden":
            value = [hidden_text(v) if isinstance(v, tuple) else v for v in value]
        out[key] = value
    return out


def sweep_of_run(run_dir) -> Sweep:
    """The sweep stored in a run folder's env.json."""
    store = RunStore.open(run_dir)
    try:
        env = store.read_env()
    finally:
        store.close()
    return stored_sweep(env.get("sweep"), where=f"{run_dir}/env.json: ")
