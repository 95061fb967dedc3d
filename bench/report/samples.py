"""The timing samples of each cell of a run, as the intervals (bench.report.intervals) use them.

A cell is one configuration and backend (GROUP_KEYS: the part and every axis), its repeats
together. Its samples are:

- its repeats' median steady epoch times (results.csv `epoch_s`) when it has at least
  MIN_REPEATS ok repeats: each repeat then counts once, so a disturbance that lasted a whole
  repeat is not mistaken for many independent epochs;
- else its steady epochs (curves.csv, epochs 2..E of every ok repeat; epoch 1 holds the
  warm-up: tracing, compilation, caches) and its extra timing epochs (results.csv
  `extra_epoch_s`, run after the last evaluation until the median was precise);
- else (a folder without curves) the repeats' `epoch_s` of cells that ran 2 epochs or more.

A run made with `--interleave` records a `round` per epoch in curves.csv: the backends of one
configuration ran epoch k in turn, so their epochs of one round are paired and their ratio
is taken round by round (`CellTimes.speedup` pairs them wherever both cells have rounds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.intervals import (
    MIN_REPEATS,
    Interval,
    clean,
    paired_interval,
    ratio_interval,
)
from bench.report.tables import GROUP_KEYS, cell_key, ok_rows
from bench.store.values import finite_numbers

MIN_ROUNDS = 6  # paired rounds a 95% signed-rank interval needs


class CellTimes:
    """Each cell's steady timing samples, and intervals on the ratio of two cells' times."""

    def __init__(self, results: pd.DataFrame, curves: pd.DataFrame | None):
        self.times: dict[tuple, np.ndarray] = {}
        self.source: dict[tuple, str] = {}
        self.rounds: dict[tuple, dict] = {}  # (repeat, round) -> median epoch_s
        ok = ok_rows(results) if len(results) else results
        if ok.empty:
            return
        steady, self.rounds = _steady_curves(ok, curves)
        extra = _extra_epochs(ok)
        epoch_s = ok["epoch_s"].to_numpy() if "epoch_s" in ok else None
        usable = None  # the rows that ran 2 epochs or more (or say nothing), once needed
        for key, at in _positions(ok).items():
            epochs = _joined(steady.get(key), extra.get(key))
            repeat_medians = clean(epoch_s[at]) if epoch_s is not None else np.array([])
            if len(repeat_medians) >= MIN_REPEATS:
                self.times[key], self.source[key] = repeat_medians, "repeats"
            elif epochs is not None and len(epochs):
                self.times[key], self.source[key] = clean(epochs), "epochs"
            else:
                if "epochs_run" in ok:
                    if usable is None:
                        ran = pd.to_numeric(ok["epochs_run"], errors="coerce")
                        usable = (ran.isna() | (ran >= 2)).to_numpy(dtype=bool)
                    at = at[usable[at]]
                self.times[key], self.source[key] = clean(ok["epoch_s"].to_numpy()[at]), "repeats"

    def samples(self, key: tuple) -> np.ndarray:
        return self.times.get(key, np.array([]))

    def speedup(self, slow: tuple, fast: tuple) -> Interval:
        """How many times faster cell `fast` is than cell `slow`: slow's time over fast's,
        from their paired rounds where both have at least MIN_ROUNDS in common, else from
        their samples."""
        a, b = self.rounds.get(slow), self.rounds.get(fast)
        if a is not None and b is not None:
            both = [(a[k], b[k]) for k in a if k in b and a[k] > 0 and b[k] > 0]
            if len(both) >= MIN_ROUNDS:
                pairs = np.array(both, dtype=float)
                return paired_interval(np.log(pairs[:, 0]) - np.log(pairs[:, 1]))
        sources = (self.source.get(slow), self.source.get(fast))
        method = "repeats" if "repeats" in sources else "epochs"
        return ratio_interval(self.samples(slow), self.samples(fast), method=method)


def _joined(*arrays) -> np.ndarray | None:
    present = [a for a in arrays if a is not None and len(a)]
    return np.concatenate(present) if present else None


def _extra_epochs(ok: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """Each cell's extra timing epochs (results.csv `extra_epoch_s`, a JSON list per row),
    its repeats together; a value that is not a list of numbers counts as none."""
    if "extra_epoch_s" not in ok:
        return {}
    out: dict[tuple, list] = {}
    for key, at in _positions(ok).items():
        for value in ok["extra_epoch_s"].to_numpy()[at]:
            out.setdefault(key, []).extend(finite_numbers(value))
    return {key: clean(values) for key, values in out.items() if values}


def _positions(frame: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """The row positions of each cell (GROUP_KEYS) of `frame`, cells in order of appearance."""
    out: dict[tuple, list] = {}
    for i, record in enumerate(frame[list(GROUP_KEYS)].to_dict("records")):
        out.setdefault(cell_key(record), []).append(i)
    return {key: np.asarray(at, dtype=np.intp) for key, at in out.items()}


def _steady_curves(
    ok: pd.DataFrame, curves: pd.DataFrame | None
) -> tuple[dict[tuple, np.ndarray], dict[tuple, dict]]:
    """The steady epochs (epoch >= 2, a finite positive epoch_s) of the ok rows, by cell: their
    epoch_s, and where curves.csv has rounds, the median epoch_s per (repeat, round)."""
    if curves is None or curves.empty or "epoch_s" not in curves:
        return {}, {}
    keys = set(zip(ok["cell_id"].astype(str), pd.to_numeric(ok["repeat"], errors="coerce")))
    c = curves.copy()
    c["epoch"] = pd.to_numeric(c["epoch"], errors="coerce")
    c["epoch_s"] = pd.to_numeric(c["epoch_s"], errors="coerce")
    c["repeat"] = pd.to_numeric(c["repeat"], errors="coerce")
    if "round" in c:
        c["round"] = pd.to_numeric(c["round"], errors="coerce")
    mine = [(str(ci), r) in keys for ci, r in zip(c["cell_id"], c["repeat"])]
    c = c[np.asarray(mine, dtype=bool) & (c["epoch"] >= 2).to_numpy()]
    c = c[np.isfinite(c["epoch_s"]) & (c["epoch_s"] > 0)]
    if c.empty:
        return {}, {}
    where = _positions(c)
    epoch_s = c["epoch_s"].to_numpy(dtype=float)
    steady = {key: epoch_s[at] for key, at in where.items()}
    rounds: dict[tuple, dict] = {}
    if "round" in c and c["round"].notna().any():
        cell = np.empty(len(c), dtype=np.intp)
        for n, at in enumerate(where.values()):
            cell[at] = n
        paired = pd.Series(
            epoch_s, index=pd.MultiIndex.from_arrays([cell, c["repeat"], c["round"]])
        )
        medians = paired.groupby(level=[0, 1, 2]).median()
        cells = list(where)
        for (n, repeat, rnd), value in zip(medians.index, medians.to_numpy()):
            rounds.setdefault(cells[n], {})[(repeat, rnd)] = value
    return steady, rounds
