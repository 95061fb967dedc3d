"""Running a sweep: data preparation, workers, the cell loop, and the run folder.

One cell runs at a time, in its backend's worker process. Each finished cell is written to
the run folder at once; a cell that raises, crashes its worker, runs past the timeout or
diverges is recorded with its status and the sweep goes on. Ctrl-C or SIGTERM stops the
sweep, keeps every finished cell and marks the folder interrupted, for `--resume`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from bench.errors import BenchError
from bench.report import noise
from bench.run import session
from bench.run.accounting import describe_accounting, in_parallel, time_accounting
from bench.run.executors import Job, check_scheduler, local_executor
from bench.run.interrupts import Interrupted, Interrupts
from bench.run.plugins import check_unchanged, plugin_sources
from bench.run.prepare import prepare_data, resolve_batches
from bench.run.progress import Progress, cell_labels
from bench.run.record import Recorder
from bench.run.session import Session
from bench.store.folder import RunStore
from bench.sweep.build import (
    Sweep,
    build_sweep,
    expand,
    merge_duplicates,
    stored_sweep,
)
from bench.sweep.values import hidden_text
from bench.worker import envinfo, measure
from bench.worker.cell import skip_can_change

INTERRUPTED_EXIT = 130
TMP_DATA = ".data-tmp"  # prepared arrays for the workers, inside the run folder


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
    executor: object = None  # bench.run.executors.Executor
    todo: list = dataclasses.field(default_factory=list)
    refs: dict | None = None  # the prepared data (this machine's executor)
    recorder: Recorder | None = None  # set when the cells start
    phases: dict = dataclasses.field(
        default_factory=lambda: {"data_s": 0.0, "matmul_probe_s": 0.0, "report_s": 0.0}
    )
    cells_s: float = 0.0  # the wall time of the cell loop
    status: str = "interrupted"

    @property
    def data_folder(self) -> Path:
        # absolute: a worker whose backend changes folder (os.chdir) still finds its data
        return self.store.path.resolve() / TMP_DATA

    @property
    def rows(self) -> list:
        return self.recorder.rows if self.recorder else []

    @property
    def saved(self) -> int:
        """Cells this session wrote to the run folder."""
        return len(self.recorder.written) if self.recorder else 0

    @property
    def not_run(self) -> int:
        done = self.finished | (self.recorder.written if self.recorder else set())
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
    tls=None,
    env_extra=None,
    allow_changed_plugins: bool = False,
) -> tuple[Path, str]:
    """Run `sweep` (or finish the run folder `resume`); return (run folder, final status).

    `scheduler` (a Dask scheduler's address, or local:N) runs the cells on a Dask cluster
    (bench.cluster) instead of this machine's workers; `tls`, its --tls-* options
    ({"ca_file", "cert", "key"}: bench.cluster.security). `env_extra`: fields added to env.json
    (e.g. `verify`, from `bench run --verify`). `allow_changed_plugins`: a resume goes on
    when a user's backend's source changed since the run started (bench.run.plugins).

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
    check_scheduler(sweep, scheduler)
    executor = _connect(scheduler, note, cells, tls)
    try:
        command = command or " ".join(sys.argv)
        plugins = plugin_sources(cells)  # users' own backends: their files' hashes
        env_extra = {**(env_extra or {}), **({"plugins": plugins} if plugins else {})}
        run = _open_run(
            sweep, cells, out, resume, command, warnings_, note, env_extra, allow_changed_plugins
        )
    except BaseException:
        if executor is not None:
            executor.close()
        raise
    run.executor = executor or local_executor(sweep, run.store.logs_dir.resolve())
    interrupts = Interrupts()
    with interrupts.active(), session.tool_homes(run.store.path.resolve()):
        try:
            remote = run.executor.remote  # on Dask, data and probes happen on each host
            if not remote:
                _prepare(run)
            _plan(run)
            if not remote:
                _probe(run)
            _run_cells(run, progress, guard=interrupts.hold)
            run.status = "complete"
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, or a Dask scheduler gone
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


def _connect(scheduler: str | None, note, cells, tls=None):
    """The Dask cluster for `--scheduler`, connected and checked before any folder exists
    (a scheduler that cannot be reached is a usage error); None for a local run."""
    if scheduler is None:
        return None
    from bench.cluster.executor import connect

    return connect(scheduler, note, cells, tls=tls)


def _open_run(
    sweep, cells, out, resume, command, warnings_, note, env_extra=None, allow_changed=False
) -> _Run:
    """Open the run folder and write env.json (status "running", the sweep, this session)
    before anything else, so that a run killed at any point can be resumed. A resume whose
    users' backends changed source is refused unless `allow_changed` (bench.run.plugins)."""
    if resume is not None:
        store = RunStore.open(resume)
        try:
            stored = store.read_env().get("plugins")
            for text in check_unchanged(
                stored, (env_extra or {}).get("plugins", {}), allow_changed
            ):
                note(f"warning: {text}")
                warnings_.append(text)
        except BaseException:
            store.close()
            raise
        rerun = []  # the backends of the cells to run again
        finished = store.recover(rerun=lambda row: _rerun(row, rerun))
        if rerun:
            note(_say_rerun(rerun))
        started_at = store.read_env().get("started_at")
    else:
        store = RunStore.create(out, sweep.title)
        finished = set()
        started_at = None
    facts = envinfo.collect()
    this = Session(command, warnings_, facts.get("git_commit"))
    threads = sorted({c.threads for c in cells})
    fields = dict(
        facts,
        status="running",
        started_at=started_at or this.entry["started_at"],
        resumed_at=this.entry["started_at"] if resume is not None else None,
        threads=threads[0] if len(threads) == 1 else threads,
        cells=len(cells),
        **(env_extra or {}),
    )
    if resume is None:  # a folder's stored sweep is never replaced
        fields.update(
            run_id=store.path.name, name=sweep.title, command=command, sweep=sweep.to_dict()
        )
    this.start(store, **fields)
    env = store.read_env()
    return _Run(sweep, cells, store, env, this, finished, note, fresh=resume is None)


def _rerun(row: dict, rerun: list) -> bool:
    """Whether a finished row is to run again: skipped for a cause that can change (its
    framework was not installed or did not import); its backend is added to `rerun`."""
    if skip_can_change(row.get("status"), row.get("error")):
        rerun.append(row.get("backend"))
        return True
    return False


def _say_rerun(backends: list) -> str:
    n = len(backends)
    return (
        f"rerunning {n} cell{'s' if n > 1 else ''} skipped because {'its' if n == 1 else 'their'}"
        f" framework was not installed or did not import ({', '.join(sorted(set(backends)))})"
    )


def _prepare(run: _Run) -> None:
    """Load the datasets into the run folder's temporary data folder (swept first: a run
    killed before may have left one); full-batch cells get their training set's size."""
    shutil.rmtree(run.data_folder, ignore_errors=True)
    run.refs, run.phases["data_s"] = measure.timed(
        prepare_data, run.cells, run.sweep.data_dir, run.data_folder, run.note
    )
    run.cells, merged = merge_duplicates(resolve_batches(run.cells, run.refs, run.note))
    for text in merged:
        run.note(text)


def _plan(run: _Run) -> None:
    """The cells still to run; a resumed run says how many are finished."""
    run.todo = [c for c in run.cells if (c.cell_id, c.repeat) not in run.finished]
    if not run.fresh:
        run.note(
            f"resuming {run.store.path}: {len(run.cells) - len(run.todo)} of {len(run.cells)} "
            f"cells already finished, {len(run.todo)} to run"
        )


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
    run.session.record_matmul(run.store, matmul, gpu)


def _run_cells(run: _Run, progress: bool, guard=None) -> None:
    """Hand the cells still to run to the executor; each finished one is recorded as it
    comes back (under `guard`: an interrupt waits until the row is written)."""
    bar = Progress(len(run.todo), progress)
    run.recorder = Recorder(
        run.store,
        run_id=run.env.get("run_id", run.store.path.name),
        session=run.session,
        sweep=run.sweep,
        progress=bar,
        labels=cell_labels(run.todo),
        guard=guard,
    )
    if not run.todo:
        return
    job = Job(run.sweep, run.refs, f"{run.recorder.run_id}/{run.session.index}")
    watch = measure.Stopwatch()
    try:
        run.executor.run(run.todo, job, run.recorder)
    finally:
        run.cells_s = watch.elapsed()
        bar.close()


def _say_interrupted(run: _Run, exc: KeyboardInterrupt) -> None:
    if run.fresh and run.recorder is None:
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
    started = run.recorder is not None
    try:
        if run.executor is not None:
            run.executor.close()
        shutil.rmtree(run.data_folder, ignore_errors=True)
        if not started and run.fresh:
            return
        run.session.finish(run.status, run.saved, run.not_run)
        run.session.save(
            run.store, status=run.status, finished_at=measure.now_iso(), cells_not_run=run.not_run
        )
    finally:
        run.store.close()
        if not started and run.fresh:
            shutil.rmtree(run.store.path, ignore_errors=True)
    if run.rows:
        run.note(f"cells: {_summary_line(run.rows)}")


def _report(run: _Run, interrupts: Interrupts) -> None:
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
    executor = run.executor
    startup = run.recorder.startup_s if run.recorder else 0.0
    parallel = in_parallel(executor.busy_s, run.cells_s) if executor else 1.0
    phases = {**run.phases, **(executor.phases if executor else {})}
    accounting = time_accounting(run.rows, wall_s, startup, parallel=parallel, **phases)
    with contextlib.suppress(OSError, BenchError):
        RunStore.write_env_field(run.store.path, time_accounting=accounting)
    if run.rows:
        run.note(describe_accounting(accounting))


def _say_noise(run: _Run) -> None:
    """The console's verdict on the run's timings: nothing when they can be trusted."""
    if not run.rows:
        return
    try:
        from bench.report.loading import load_run

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
    from bench.report.loading import load_run
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
    from bench.sweep.keys import PART_KEYS

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
