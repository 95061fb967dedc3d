"""How cost grows with work: log-log slopes of time per epoch against one axis per sweep part.

A part is a scaling study when, for a backend, exactly one of batch size, hidden width or the
number of training samples varies across its ok cells (at least 4 values). The slope of
log(epoch_s) against log(x), fitted by least squares, says how the epoch time grows:
against samples and width, 1 is proportional growth; against batch size (a fixed number of
samples per epoch), -1 means time per step is constant (per-call overhead dominates) and 0
means the epoch costs the same however it is cut (the arithmetic dominates).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

AXES = {
    "batch_size": "batch size",
    "width": "hidden width",
    "n_train": "training samples",
}
MIN_POINTS = 4  # fewer points make a line through noise, not a slope


def hidden_width(hidden: str) -> float:
    """The width of a single hidden layer ("256"), NaN for deeper or no hidden layers."""
    text = str(hidden)
    return float(text) if text.isdigit() else math.nan


def scaling_axis(cells: pd.DataFrame) -> str | None:
    """The one axis that varies among these cells (of one part and backend), or None."""
    values = {
        "batch_size": cells["batch_size"].nunique(),
        "width": cells["hidden"].nunique(),
        "n_train": cells["n_train"].nunique(),
    }
    varying = [axis for axis, n in values.items() if n > 1]
    other = [
        k
        # the device too: times on a CPU and on a GPU make no one line
        for k in ("loss", "optimizer", "lr", "activation", "dtype", "threads", "epochs", "device")
        if k in cells and cells[k].nunique() > 1
    ]
    if len(varying) != 1 or other or values[varying[0]] < MIN_POINTS:
        return None
    if varying[0] == "width" and cells["hidden"].map(hidden_width).isna().any():
        return None
    return varying[0]


def fit_slopes(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (part, backend) scaling study: axis, slope, intercept, points, r2."""
    columns = ["part", "axis", "backend", "slope", "intercept", "points", "r2", "x_min", "x_max"]
    ok = results[results["status"] == "ok"].dropna(subset=["epoch_s"])
    rows = []
    for (part, backend), cells in ok.groupby(["part", "backend"], sort=False):
        axis = scaling_axis(cells)
        if axis is None:
            continue
        x = cells["hidden"].map(hidden_width) if axis == "width" else cells[axis].astype(float)
        frame = pd.DataFrame({"x": x.to_numpy(), "t": cells["epoch_s"].astype(float).to_numpy()})
        frame = frame[(frame["x"] > 0) & (frame["t"] > 0)].groupby("x", as_index=False).median()
        if len(frame) < MIN_POINTS:
            continue
        lx, lt = np.log(frame["x"].to_numpy()), np.log(frame["t"].to_numpy())
        slope, intercept = np.polyfit(lx, lt, 1)
        residual = lt - (slope * lx + intercept)
        spread = ((lt - lt.mean()) ** 2).sum()
        r2 = 1 - (residual**2).sum() / spread if spread > 0 else math.nan
        rows.append(
            [
                part,
                axis,
                backend,
                float(slope),
                float(intercept),
                len(frame),
                float(r2),
                float(frame["x"].min()),
                float(frame["x"].max()),
            ]
        )
    return pd.DataFrame(rows, columns=columns)
