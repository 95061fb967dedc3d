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
import tempfile
import warnings
from pathlib import Path

from . import envinfo, measure
from .errors import BenchError, UsageError
from .store import RunStore
from .sweep import FULL_BATCH, Cell, Sweep, build_sweep, expand, hidden_text
from .worker import DataRef, Worker, WorkerDied, WorkerTimeout, save_arrays

STARTUP_TIMEOUT_S = 600.0  # a worker's import of its framework
INTERRUPTED_EXIT = 130


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM during a run."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def _interrupts_raise():
    """SIGINT and SIGTERM raise Interrupted in the main thread while the sweep runs."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, _raise_interrupted)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Progress:
    """Progress over cells: tqdm bars on a terminal (cells, and the current cell's epochs),
    one line per finished cell otherwise (logs, CI), nothing when disabled."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.bars = self.enabled and self.stream.isatty()
        self.total = total
        self.done = 0
        self._cells = self._epochs = None
        if self.bars:
            from tqdm.auto import tqdm

            self._tqdm = tqdm
            self._cells = tqdm(
                total=total, unit="cell", dynamic_ncols=True, position=0, file=self.stream
            )

    def start_cell(self, label: str, epochs: int) -> None:
        self._label = label
        if self.bars:
            self._cells.set_description_str(label)
            self._epochs = self._tqdm(
                total=epochs,
                unit="epoch",
                leave=False,
                position=1,
                dynamic_ncols=True,
                file=self.stream,
            )

    def epoch(self, record: dict) -> None:
        if self._epochs is not None:
            acc = record.get("test_acc")
            if acc is not None and not math.isnan(acc):
                self._epochs.set_postfix_str(f"test acc {acc:.3f}")
            self._epochs.update(1)

    def end_cell(self, row: dict) -> None:
        self.done += 1
        if self._epochs is not None:
            self._epochs.close()
            self._epochs = None
        if self._cells is not None:
            self._cells.update(1)
        elif self.enabled:
            if row["status"] == "ok":
                what = f"test acc {row['test_acc']:.3f}, {format_seconds(row['epoch_s'])}/epoch"
            else:
                what = row["status"]
            print(f"[{self.done}/{self.total}] {self._label}: {what}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        if self.bars:
            self._tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._epochs is not None:
            self._epochs.close()
        if self._cells is not None:
            self._cells.close()


def format_seconds(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def _data_key(cell: Cell) -> tuple:
    return (cell.dataset, cell.preprocess, cell.split_seed, cell.test_size, cell.dtype)


def prepare_data(cells, data_dir, folder: Path, note) -> dict[tuple, DataRef]:
    """Load and check every dataset the cells use, once, before anything trains.

    The prepared arrays are saved as .npy files under `folder` for the workers to load.
    """
    from .datasets import DatasetError, load_dataset

    refs = {}
    for key in dict.fromkeys(_data_key(c) for c in cells):
        name, preprocess, split_seed, test_size, dtype = key
        try:
            ds = load_dataset(
                name,
                preprocess=preprocess,
                seed=split_seed,
                data_dir=data_dir,
                test_size=test_size,
                dtype=dtype,
            )
        except DatasetError as exc:
            raise BenchError(str(exc)) from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        sub = folder / f"data-{len(refs)}"
        save_arrays(sub, ds.X_train, ds.Y_train, ds.X_test, ds.Y_test)
        refs[key] = DataRef(str(sub), ds.n_train, ds.n_test, ds.n_features, ds.n_classes)
        note(
            f"data: {name} ({ds.preprocess}, {dtype}): {ds.n_train} train, {ds.n_test} test, "
            f"{ds.n_features} features, {ds.n_classes} classes — {ds.source}"
        )
    return refs


def resolve_batches(cells, refs, note) -> list[Cell]:
    """Full-batch cells get the training set's size; oversize batches are said once."""
    resolved, oversize = [], {}
    for cell in cells:
        n = refs[_data_key(cell)].n_train
        if cell.batch_size == FULL_BATCH:
            cell = dataclasses.replace(cell, batch_size=n)
        elif cell.batch_size > n:
            oversize.setdefault((cell.dataset, n), set()).add(cell.batch_size)
        resolved.append(cell)
    for (dataset, n), sizes in oversize.items():
        many = len(sizes) > 1
        note(
            f"note: batch size{'s' if many else ''} {', '.join(map(str, sorted(sizes)))} "
            f"{'are' if many else 'is'} larger than {dataset}'s {n} training samples; "
            "those cells run one batch per epoch"
        )
    return resolved


class Runner:
    """Runs cells in worker processes and records them in a RunStore."""

    def __init__(
        self, store: RunStore, sweep: Sweep, refs, progress: Progress, run_id: str, matmul: dict
    ):
        self.store = store
        self.sweep = sweep
        self.refs = refs
        self.progress = progress
        self.run_id = run_id
        self.matmul = matmul  # threads -> {dtype: GFLOP/s}
        self.workers: dict[tuple, Worker] = {}
        self.unavailable: dict[str, str] = {}
        self.threads_effective: dict[str, dict] = {}
        self.startup_s = 0.0  # starting workers: interpreter, imports, framework start-up

    def _worker(self, backend: str, threads: int) -> Worker:
        key = (backend, threads)
        worker = self.workers.get(key)
        if worker is not None and worker.process.is_alive():
            return worker
        log = self.store.logs_dir / f"worker-{backend}-t{threads}.log"
        start = measure.perf_clock()
        worker = Worker(backend, threads, str(log))
        try:
            info = worker.wait_ready(measure.Deadline(STARTUP_TIMEOUT_S))
        except (WorkerDied, WorkerTimeout) as exc:
            worker.kill()
            raise WorkerDied(
                f"{backend} worker did not start: {exc or 'timed out'} (see {log})"
            ) from None
        finally:
            self.startup_s += measure.perf_clock() - start
        if info["unavailable"]:
            worker.stop()
            self.unavailable[backend] = info["unavailable"]
            raise WorkerDied(info["unavailable"])
        self.threads_effective[f"{backend}/t{threads}"] = info["threads_effective"]
        self.store.update_env(threads_effective=self.threads_effective)
        self.workers[key] = worker
        return worker

    def _drop_worker(self, backend: str, threads: int) -> None:
        worker = self.workers.pop((backend, threads), None)
        if worker is not None:
            worker.kill()

    def run_cell(self, cell: Cell) -> dict:
        ref = self.refs[_data_key(cell)]
        row = {
            **cell.row(),
            "run_id": self.run_id,
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
            worker = self._worker(cell.backend, cell.threads)
        except WorkerDied as exc:
            status = "skipped" if cell.backend in self.unavailable else "error"
            row.update(status=status, error=str(exc))
            return self._finish(row, curves)
        row["threads_effective"] = worker.info["threads_effective"]
        payload = {"cell": cell, "data": ref, "target_acc": self.sweep.target_acc}
        deadline = measure.Deadline(self.sweep.timeout)
        try:
            worker.send("cell", payload)
            while True:
                message = worker.receive(deadline)
                if message[0] == "epoch":
                    curves.append(message[1])
                    self.progress.epoch(message[1])
                elif message[0] == "done":
                    row.update(message[1]["row"])
                    curves = message[1]["curves"]
                    break
                elif message[0] == "failed":
                    _, text, trace = message
                    log = self.store.write_log(f"{cell.cell_id}-r{cell.repeat}", trace)
                    row.update(status="error", error=f"{text} (traceback: {log.name})")
                    break
        except WorkerTimeout:
            self._drop_worker(cell.backend, cell.threads)
            row.update(
                status="timeout", error=f"stopped after {self.sweep.timeout:g} s (--timeout)"
            )
        except WorkerDied as exc:
            self._drop_worker(cell.backend, cell.threads)
            row.update(status="error", error=str(exc))
        if row.get("status") == "diverged":
            row["error"] = f"loss became NaN or inf in epoch {row['diverged_epoch']}"
        peak = self.matmul.get(cell.threads, {}).get(cell.dtype)
        if peak and isinstance(row.get("gflops"), float) and math.isfinite(row["gflops"]):
            row["roofline"] = row["gflops"] / peak
        return self._finish(row, curves)

    def _finish(self, row: dict, curves: list[dict]) -> dict:
        row.setdefault("status", "ok")
        row["finished_at"] = measure.now_iso()
        keys = {k: row[k] for k in ("run_id", "cell_id", "part", "repeat")}
        for name in (
            "dataset",
            "backend",
            "loss",
            "optimizer",
            "lr",
            "batch_size",
            "hidden",
            "activation",
            "epochs",
            "dtype",
            "threads",
        ):
            keys[name] = row[name]
        self.store.append_cell(row, [{**keys, **c} for c in curves])
        return row

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        self.workers.clear()


def measure_matmul(threads_list, dtypes, note) -> dict:
    """The machine's matmul GFLOP/s per thread count and dtype, in pinned probe processes."""
    result = {}
    for threads in threads_list:
        worker = Worker(None, threads, None)
        try:
            worker.wait_ready(measure.Deadline(120))
            rates = {}
            for dtype in dtypes:
                worker.send("matmul", dtype)
                message = worker.receive(measure.Deadline(120))
                if message[0] == "value":
                    rates[dtype] = message[1]
            result[threads] = rates
            note(
                "matmul peak with {} thread{}: {}".format(
                    threads,
                    "" if threads == 1 else "s",
                    ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in rates.items()),
                )
            )
        except (WorkerDied, WorkerTimeout) as exc:
            note(f"warning: could not measure the matmul peak with {threads} threads: {exc}")
        finally:
            worker.stop()
    return result


def _summary_line(rows) -> str:
    counts = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def execute(
    sweep: Sweep, *, out="results", resume=None, progress=True, command=None, note=None
) -> tuple[Path, str]:
    """Run `sweep` (or finish the run folder `resume`); return (run folder, final status).

    Raises UsageError / BenchError for problems found before training starts.
    """
    note = note or (lambda text: print(text, file=sys.stderr))
    cells = expand(sweep)
    if resume is not None:
        store = RunStore.open(resume)
        finished = store.recover()
        env = store.read_env()
        run_id = env.get("run_id", store.path.name)
    else:
        store = RunStore.create(out, sweep.title)
        finished = set()
        run_id = store.path.name
        env = {"run_id": run_id, "name": sweep.title}
    started = measure.perf_clock()
    phases = {"data_s": 0.0, "matmul_probe_s": 0.0}
    tmp = Path(tempfile.mkdtemp(prefix="mlp-bench-data-"))
    status = "interrupted"
    rows = []
    runner = None
    bar = None
    begun = resume is not None  # env.json holds the sweep: the folder can be resumed
    try:
        with _interrupts_raise():
            refs, phases["data_s"] = measure.timed(prepare_data, cells, sweep.data_dir, tmp, note)
            cells = resolve_batches(cells, refs, note)
            todo = [c for c in cells if (c.cell_id, c.repeat) not in finished]
            if resume is not None:
                note(
                    f"resuming {store.path}: {len(cells) - len(todo)} of {len(cells)} cells "
                    f"already finished, {len(todo)} to run"
                )
            threads_list = sorted({c.threads for c in todo})
            dtypes = sorted({c.dtype for c in todo})
            env.update(envinfo.collect())
            env.update(
                status="running",
                command=command or " ".join(sys.argv),
                started_at=env.get("started_at") or measure.now_iso(),
                resumed_at=measure.now_iso() if resume is not None else None,
                threads=threads_list[0] if len(threads_list) == 1 else threads_list,
                sweep=sweep.to_dict(),
                cells=len(cells),
            )
            store.write_env(env)
            begun = True
            matmul, phases["matmul_probe_s"] = measure.timed(
                measure_matmul, threads_list, dtypes, note
            ) if todo else ({}, 0.0)
            if matmul:
                first = matmul[threads_list[0]]
                store.update_env(
                    matmul_gflops=first,
                    matmul_gflops_by_threads={str(k): v for k, v in matmul.items()},
                )
            runner = Runner(store, sweep, refs, None, run_id, matmul)
            bar = Progress(len(todo), progress)
            runner.progress = bar
            for cell in todo:
                bar.start_cell(cell.label(), cell.epochs)
                row = runner.run_cell(cell)
                rows.append(row)
                bar.end_cell(row)
                if row["status"] != "ok":
                    bar.note(f"{cell.label()}: {row['status']}: {row.get('error', '')}")
            status = "complete"
    except Interrupted as exc:
        if not begun:
            raise KeyboardInterrupt from None  # before the sweep started: nothing to resume
        # said even with --quiet: the user needs the folder to resume
        print(
            f"\ninterrupted ({exc}): {len(rows)} cells of this session are saved; "
            f"finish with: python -m bench run --resume {store.path}",
            file=sys.stderr,
        )
    finally:
        if bar is not None:
            bar.close()
        if runner is not None:
            runner.close()
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            if begun:
                store.update_env(status=status, finished_at=measure.now_iso())
        finally:
            store.close()
            if not begun:  # stopped before the sweep started (e.g. bad data): leave no folder
                shutil.rmtree(store.path, ignore_errors=True)
    if rows:
        note(f"cells: {_summary_line(rows)}")
    _, phases["report_s"] = measure.timed(_render, store.path, note)
    accounting = time_accounting(
        rows, measure.perf_clock() - started, runner.startup_s if runner else 0.0, **phases
    )
    with contextlib.suppress(OSError, BenchError):
        RunStore.write_env_field(store.path, time_accounting=accounting)
    if rows:
        note(describe_accounting(accounting))
    return store.path, status


def _total(rows, column: str) -> float:
    values = (row.get(column) for row in rows)
    return sum(v for v in values if isinstance(v, (int, float)) and math.isfinite(v))


def time_accounting(rows, wall_s: float, startup_s: float, **phases) -> dict:
    """Where a run's wall time went: the work being compared (training, the evaluations,
    the frameworks' start-up: worker imports and model building) and the harness around it
    (data preparation, the matmul probe, the report, messages and bookkeeping)."""
    training = _total(rows, "train_s")
    evaluation = _total(rows, "eval_s") + _total(rows, "predict_s")
    startup = startup_s + _total(rows, "build_s")
    in_cells = _total(rows, "cell_s") - training - evaluation - _total(rows, "build_s")
    work = training + evaluation + startup
    return {
        "wall_s": wall_s,
        "training_s": training,
        "evaluation_s": evaluation,
        "framework_startup_s": startup,
        "harness_s": wall_s - work,
        "harness_in_cells_s": in_cells,  # loading the cell's arrays, init_params, messages
        **phases,
        "work_share": work / wall_s if wall_s > 0 else math.nan,
    }


def describe_accounting(acc: dict) -> str:
    def share(seconds):
        return f"{100 * seconds / acc['wall_s']:.0f}%"

    return (
        f"time: {format_seconds(acc['wall_s'])} in all: training {share(acc['training_s'])}, "
        f"evaluation {share(acc['evaluation_s'])}, framework start-up "
        f"{share(acc['framework_startup_s'])}, harness {share(acc['harness_s'])} (data "
        f"{share(acc['data_s'])}, matmul probe {share(acc['matmul_probe_s'])}, report "
        f"{share(acc['report_s'])})"
    )


def _render(run_dir: Path, note) -> None:
    """Write summary.md and plots; a failure here is reported and never loses the run."""
    from .report import write_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            write_report(run_dir)
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
    from .presets import preset_mapping
    from .report import load_run

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
    from .sweep import PART_KEYS

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
    if "sweep" not in env:
        raise UsageError(f"{run_dir}/env.json holds no sweep to resume")
    return build_sweep(env["sweep"], where=f"{run_dir}/env.json: ")
