"""What a run shows the person watching it: progress over cells, and their labels."""

from __future__ import annotations

import math
import sys

from bench.report.markdown import format_seconds
from bench.store.schema import AXES, SETTINGS


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


_LABEL_ALWAYS = ("dataset", "backend", "batch_size")
_LABEL_BARE = ("dataset", "backend", "loss", "optimizer", "activation", "dtype", "device")


def cell_labels(cells) -> dict:
    """A progress label per cell naming every axis and setting that varies in the sweep
    (dataset, backend and batch size always), so no two different cells read alike."""
    rows = {cell: cell.row() for cell in cells}
    first = next(iter(rows.values()), {})
    names = [n for n in dict.fromkeys(("part", *AXES, *SETTINGS, "repeat")) if n in first]
    shown = [n for n in names if n in _LABEL_ALWAYS or len({str(r[n]) for r in rows.values()}) > 1]

    def label(row):
        bits = []
        for name in shown:
            value = row[name]
            if name == "batch_size":
                bits.append(f"b{value}")
            elif name == "repeat":
                bits.append(f"r{value}")
            elif name in _LABEL_BARE:
                bits.append(str(value))
            else:
                bits.append(f"{name} {value}")
        return " · ".join(bits)

    return {cell: label(row) for cell, row in rows.items()}
