"""Paired rounds (`--interleave`): the backends of one configuration train in turn, epoch by
epoch, on this machine.

A configuration is the cells that differ only in their backend (same part, dataset, batch,
loss, optimiser, lr, hidden layers, dtype, threads, device, repeat...). Its cells are opened
side by side, each in its backend's worker (one `WorkerPool` holds them: model built, data
staged, waiting), then run in rounds: in round k each cell still running trains its epoch k,
one epoch at a time, in an order drawn afresh each round from a generator seeded by the
configuration (the same run draws the same orders). A change in the machine's load then
reaches every backend of the pair within the round, and each round gives one time ratio per
pair of backends; curves.csv records each epoch's `round`.

The training and every outcome are `run_cell`'s (bench.worker.cell.SteppedCell): a cell that
fails, times out, crashes or diverges ends and is recorded as it would be alone, and the
others go on. Each cell is recorded when it ends, so an interrupted configuration keeps its
finished cells and a resume runs the others, interleaved among themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bench.run.prepare import data_key
from bench.worker import envinfo, measure
from bench.worker.cell import SteppedCell, WorkerPool


def configuration(cell):
    """What the cells of one configuration share: the cell with its backend left out."""
    return dataclasses.replace(cell, backend="")


def configurations(cells: Iterable) -> list[list]:
    """`cells` grouped by configuration, in the order each configuration first appears."""
    groups: dict = {}
    for cell in cells:
        groups.setdefault(configuration(cell), []).append(cell)
    return list(groups.values())


def round_orders(cells) -> np.random.Generator:
    """The generator of a configuration's orders within each round, seeded by the
    configuration (its cell id without the backend, and its seed): reproducible."""
    first = configuration(cells[0])
    return np.random.default_rng([int(first.cell_id, 16), first.seed])


class InterleavedExecutor:
    """This machine's worker processes, the cells of each configuration in paired rounds."""

    remote = False

    def __init__(self, logs_dir: Path):
        self.pool = WorkerPool(logs_dir)
        self.host = envinfo.host()
        self.busy_s = 0.0
        self.phases: dict = {}

    def run(self, cells, job, sink) -> None:
        for group in configurations(cells):
            with measure.Stopwatch() as watch:
                try:
                    self._run_configuration(group, job, sink)
                finally:
                    self.busy_s += watch.elapsed()

    def _run_configuration(self, cells, job, sink) -> None:
        running = []
        try:
            for cell in cells:
                stepped = SteppedCell(
                    cell,
                    job.refs[data_key(cell)],
                    self.pool,
                    timeout=job.sweep.timeout,
                    target_acc=job.sweep.target_acc,
                    host=self.host,
                )
                running.append(stepped)
                stepped.open()
                if stepped.ended:
                    running.remove(stepped)
                    _report(stepped, sink)
            orders = round_orders(cells)
            round_ = 0
            while running:
                round_ += 1
                for i in orders.permutation(len(running)):
                    running[i].step(round_)
                for stepped in [s for s in running if s.ended]:
                    running.remove(stepped)
                    _report(stepped, sink)
        except BaseException:  # Ctrl-C: the cells still running go unrecorded
            for stepped in running:
                stepped.abandon()
            raise

    def close(self) -> None:
        self.pool.close()


def _report(stepped: SteppedCell, sink) -> None:
    """A cell that ended, to the sink: drawn and recorded at once (its epochs ran in rounds,
    between the other backends')."""
    sink.started(stepped.cell)
    for record in stepped.result.curves:
        sink.epoch(record)
    sink.finished(stepped.result)
