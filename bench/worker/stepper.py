"""A cell in its worker, trained one epoch at a time: opened, stepped, closed.

Both ways the parent drives a worker run a cell through `OpenedCell`: the whole-cell message
("cell") opens it, runs its epochs back to back and closes it; the interleaved ones ("open",
"step", "close": bench.run.interleave) do the same a message at a time, while other
backends' workers run their epochs in between. The training and its clock are
bench.worker.measure's `Training` either way, so a cell trains and is measured alike.
"""

from __future__ import annotations

import socket

from bench.worker import devices, measure


def peak_rss_reset() -> bool:
    """Reset this process's peak resident set (Linux: writing 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's peak resident set since the last reset, MB (Linux's VmHWM)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


class OpenedCell:
    """One cell of the worker's backend: its model built and its data staged (`Training`),
    ready for its epochs. `payload` is the parent's {"cell", "data", "target_acc",
    "timing_budget"}; `load` gives a prepared data folder's arrays."""

    def __init__(self, model_class, payload, load):
        from impls import init_params

        self.watch = measure.Stopwatch()
        self.busy_s = 0.0  # the seconds spent in this cell's messages (cell_s)
        cell, data_ref = payload["cell"], payload["data"]
        self.spec = spec = cell.spec(data_ref.n_features, data_ref.n_classes)
        # The peaks are reset here, so they cover this cell: its model, staged data, training
        # and evaluation, on top of what stays resident (the framework, the loaded data).
        # Unknown (NaN) where the platform cannot reset it: a peak since the worker started is
        # another figure.
        self.peak_known = peak_rss_reset()
        devices.reset_peak(spec.device)
        data = load(data_ref.folder)
        params = init_params(
            spec, seed=cell.seed, scheme=cell.init, scale=cell.init_scale, bias=cell.init_bias
        )
        model, self.build_s = measure.timed(model_class, spec, params)
        self.training = measure.Training(
            model,
            data,
            epochs=cell.epochs,
            batch_size=cell.batch_size,
            seed=cell.seed,
            loss=cell.loss,
            flops_per_sample=spec.flops_per_sample,
            order=cell.order,
            eval_every=cell.eval_every,
            target_acc=payload.get("target_acc"),
            timing_budget=payload.get("timing_budget", 0.0),
            deadline=measure.Deadline(payload.get("time_left")),
        )
        self._pause()

    def _pause(self) -> None:
        """The cell waits for its next message: the time so far is its own."""
        self.busy_s += self.watch.elapsed()

    @property
    def done(self) -> bool:
        return self.training.done

    def epoch(self) -> dict:
        """Run the next epoch; its curve row."""
        self.watch.restart()
        try:
            return self.training.epoch().as_row()
        finally:
            self._pause()

    def close(self) -> dict:
        """The cell's result, as the "done" message carries it: its row and curve rows."""
        self.watch.restart()
        result = self.training.measurement()
        self._pause()
        row = result.as_row()
        spec = self.spec
        row.update(
            build_s=self.build_s,
            n_params=spec.n_params,
            cell_s=self.busy_s,
            peak_host_mb=peak_rss_mb() if self.peak_known else float("nan"),
            peak_device_mb=devices.peak_mb(spec.device),
            host=socket.gethostname(),
            device=spec.device,
        )
        return {"row": row, "curves": [r.as_row() for r in result.epochs]}


class Steps:
    """The worker's side of the interleaved messages: at most one opened cell at a time.
    Each method returns the message to send back; a cell whose step raises is dropped (the
    worker reports the failure and waits for the next cell)."""

    def __init__(self):
        self.cell: OpenedCell | None = None
        self.folder: str | None = None  # the data folder of the cell opened last

    def open(self, model_class, payload, load) -> tuple:
        self.cell, self.folder = None, payload["data"].folder
        self.cell = OpenedCell(model_class, payload, load)
        return ("opened", {})

    def step(self) -> tuple:
        cell = self._current()
        try:
            record = cell.epoch()
        except BaseException:
            self.cell = None
            raise
        return ("epoch", record, cell.done)

    def close(self) -> tuple:
        cell, self.cell = self._current(), None
        return ("done", cell.close())

    def _current(self) -> OpenedCell:
        if self.cell is None:
            raise RuntimeError("no cell is open in this worker: send ('open', payload) first")
        return self.cell
