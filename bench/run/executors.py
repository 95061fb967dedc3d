"""Where a run's cells run: the executor interface, and this machine's worker processes.

An executor takes the cells still to run and hands each one's `CellResult` to a `Recorder`
(bench.run.record) as it finishes; it writes nothing itself. Two implement it, and both run a
cell with the one function bench.worker.cell.run_cell:

- `LocalExecutor` (the default): one cell at a time, in this machine's worker processes, on
  the data the runner prepared in the run folder;
- `bench.run.interleave.InterleavedExecutor` (`--interleave`): the same workers, the backends
  of each configuration in paired rounds, an epoch at a time (`local_executor` chooses);
- `bench.cluster.executor.DaskExecutor` (`--scheduler`): each cell on a Dask worker, which
  loads the data and keeps the worker processes on its own machine.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

from bench.errors import UsageError
from bench.run.interleave import InterleavedExecutor
from bench.run.prepare import data_key
from bench.worker import envinfo, measure
from bench.worker.cell import WorkerPool, run_cell


@dataclasses.dataclass
class Job:
    """What every cell of a session shares."""

    sweep: object  # bench.sweep.build.Sweep: timeout, target accuracy, data folder
    refs: dict | None  # data_key -> DataRef prepared by the runner; None where workers load
    probe_tag: str  # "<run_id>/<session>": a host's matmul probe is measured once per tag


class Sink(Protocol):
    """What an executor reports to (bench.run.record.Recorder)."""

    def started(self, cell) -> None: ...
    def epoch(self, record: dict) -> None: ...
    def finished(self, result) -> dict | None: ...
    def note(self, text: str) -> None: ...
    def label(self, cell) -> str: ...
    def hosts(self, hosts: dict, scheduler: dict) -> None: ...


class Executor(Protocol):
    """Runs cells and reports them to a Sink; Ctrl-C (KeyboardInterrupt) stops it, leaving
    the cells in flight unrecorded."""

    remote: bool  # its cells run elsewhere: their data and matmul probes happen there
    busy_s: float  # cell-seconds in flight, summed over the cells (side by side: > wall time)
    phases: dict  # its own harness phases for the time accounting (e.g. connecting)

    def run(self, cells, job: Job, sink: Sink) -> None: ...
    def close(self) -> None: ...


class LocalExecutor:
    """This machine's worker processes, one cell at a time (bench.worker.process)."""

    remote = False

    def __init__(self, logs_dir: Path):
        self.pool = WorkerPool(logs_dir)
        self.host = envinfo.host()
        self.busy_s = 0.0
        self.phases: dict = {}

    def run(self, cells, job: Job, sink: Sink) -> None:
        for cell in cells:
            sink.started(cell)
            with measure.Stopwatch() as watch:
                try:
                    result = run_cell(
                        cell,
                        job.refs[data_key(cell)],
                        self.pool,
                        timeout=job.sweep.timeout,
                        target_acc=job.sweep.target_acc,
                        timing_budget=job.sweep.timing_budget,
                        host=self.host,
                        on_epoch=sink.epoch,
                    )
                finally:
                    self.busy_s += watch.elapsed()
            sink.finished(result)

    def close(self) -> None:
        self.pool.close()


def local_executor(sweep, logs_dir: Path):
    """This machine's executor for `sweep`: paired rounds with --interleave, else one cell
    after another."""
    return InterleavedExecutor(logs_dir) if sweep.interleave else LocalExecutor(logs_dir)


def check_scheduler(sweep, scheduler: str | None) -> None:
    """--interleave runs on this machine only: with --scheduler it is a usage error. (Paired
    rounds need one machine running one epoch at a time; a Dask cluster spreads the cells
    over workers that run side by side.)"""
    if scheduler is not None and sweep.interleave:
        raise UsageError(
            "--interleave runs the cells on this machine's workers, one epoch at a time: it "
            "cannot be used with --scheduler (drop one of them; a resumed folder keeps its "
            "sweep's interleave setting)"
        )
