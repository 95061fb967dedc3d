"""The harness's side of a finished cell: a CellResult becomes the stored row.

Whatever ran the cell (bench.run.executors' local worker processes, or a Dask worker through
bench.cluster), its result comes back here as a `CellResult` (bench.worker.cell) and is turned
into one results.csv row and its curve rows by `record_cell`, the only place that does it.
`Recorder` is what an executor hands its results to: it records them, keeps the run's count,
and draws the progress.
"""

from __future__ import annotations

import contextlib
import math

from bench.store.schema import AXES, RESULT_COLUMNS
from bench.worker import measure
from bench.worker.cell import OK, CellResult

CURVE_KEYS = ("run_id", "cell_id", "part", *AXES, "repeat")  # a curve row's cell columns


def record_cell(
    store, result: CellResult, *, run_id: str, session: int, target_acc, peak: float | None
) -> dict:
    """Append `result` to `store` (results.csv and curves.csv, the traceback into logs/) and
    return the row written. `peak` (GFLOP/s): the matmul rate of the cell's host and device
    for its dtype and threads, the roofline's denominator (None: no roofline)."""
    cell = result.cell
    row = {
        **cell.row(),
        **result.row,
        "run_id": run_id,
        "session": session,
        "host": result.host,
        "status": result.status,
        "error": result.error,
        "target_acc": target_acc,
        "started_at": result.started_at,
        "shared_host": result.shared_host,
        "lost_on": result.lost_on,
    }
    if result.trace:
        log = store.write_log(f"{cell.cell_id}-r{cell.repeat}", result.trace)
        row["error"] = f"{result.error} (traceback: {log.name})"
    gflops = row.get("gflops")
    if peak and isinstance(gflops, float) and math.isfinite(gflops):
        row["roofline"] = gflops / peak
    row["finished_at"] = measure.now_iso()
    row = {c: row[c] for c in RESULT_COLUMNS if c in row}
    keys = {k: row.get(k) for k in CURVE_KEYS}
    store.append_cell(row, [{**keys, **c} for c in result.curves])
    return row


class Recorder:
    """Receives an executor's cells as they start, train and finish: records each finished
    one (`record_cell`, under `guard`, so that the row on disk and the count here agree even
    on Ctrl-C), says it on the progress display, and keeps what the run's end needs (the rows,
    the keys written, the workers' start-up seconds)."""

    def __init__(self, store, *, run_id, session, sweep, progress, labels, guard=None):
        self.store = store
        self.run_id = run_id
        self.session = session  # bench.run.session.Session: its index and its matmul probes
        self.target_acc = sweep.target_acc
        self.progress = progress
        self.labels = {(c.cell_id, c.repeat): text for c, text in labels.items()}
        self.guard = guard or contextlib.nullcontext
        self.rows: list[dict] = []
        self.written: set[tuple[str, int]] = set()  # (cell_id, repeat) written by this session
        self.startup_s = 0.0  # starting worker processes, all cells together
        self.threads_effective: dict[str, dict] = {}
        self._started = None

    def label(self, cell) -> str:
        """The cell's progress label (bench.run.progress.cell_labels), by its key."""
        return self.labels.get((cell.cell_id, cell.repeat)) or cell.label()

    def started(self, cell) -> None:
        """A cell starts here and now (the local executor: its epochs are drawn as they end)."""
        self._started = cell
        self.progress.start_cell(self.label(cell), cell.epochs)

    def epoch(self, record: dict) -> None:
        self.progress.epoch(record)

    def note(self, text: str) -> None:
        self.progress.note(text)

    def finished(self, result: CellResult) -> dict | None:
        """Record a finished cell; an interrupted one is not recorded (it runs again)."""
        self.startup_s += result.startup_s
        if not result.recorded:
            return None
        cell = result.cell
        with self.guard():
            row = record_cell(
                self.store,
                result,
                run_id=self.run_id,
                session=self.session.index,
                target_acc=self.target_acc,
                peak=self._peak(result),
            )
            self.rows.append(row)
            self.written.add((cell.cell_id, cell.repeat))
            self._record_env(result)
        label = self.label(cell)
        if self._started is None:  # run elsewhere (Dask): drawn when it ends, with its host
            label += f" @ {result.host}" if result.host else ""
            self.progress.start_cell(label, 0)
        self._started = None
        self.progress.end_cell(row)
        if row["status"] != OK:
            self.progress.note(f"{label}: {row['status']}: {row.get('error') or ''}")
        return row

    def _peak(self, result: CellResult) -> float | None:
        if result.host_probe is not None:  # measured on the cell's own host (Dask)
            return _median(result.host_probe)
        return self.session.peak_for(result.cell)

    def _record_env(self, result: CellResult) -> None:
        """env.json's per-run facts a cell brings: the threads each worker had in effect,
        and the matmul peak measured on the cell's host (Dask)."""
        cell = result.cell
        threads = result.row.get("threads_effective")
        key = f"{cell.backend}/t{cell.threads}"
        if threads is not None and self.threads_effective.get(key) != threads:
            self.threads_effective[key] = threads
            self.store.update_env(threads_effective=self.threads_effective)
        if result.host_probe is not None and result.host is not None:
            self.store.record_probe(
                result.host, self.session.index, cell.threads, cell.dtype, result.host_probe
            )

    def hosts(self, hosts: dict, scheduler: dict) -> None:
        """The machines of a Dask cluster ({host: facts}) and this session's scheduler entry,
        into env.json's `hosts` and `schedulers`."""
        self.store.record_cluster(self.session.index, hosts, scheduler)


def _median(probe) -> float | None:
    """A matmul probe's median rate (GFLOP/s), when it is a usable one."""
    median = probe.get("median") if isinstance(probe, dict) else probe
    usable = isinstance(median, float) and math.isfinite(median) and median > 0
    return median if usable else None
