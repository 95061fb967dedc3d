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

from bench.store.schema import AXES as AXES_OF_A_CELL

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


# --------------------------------------------------------------------------- threads (Amdahl)
# With n threads, Amdahl's law splits the 1-thread time T1 into a serial part s·T1, which no
# thread count shortens, and the rest, shared by the threads:
#     T(n) = T1 · (s + (1 − s) / n) = a + b / n,   a = s·T1,  b = (1 − s)·T1
# which is linear in 1/n, so least squares on (1/n, T) gives a and b, and s = a / (a + b).
# Two thread counts determine it exactly; more give a fit and its r².

# a fit's cells share every axis but the threads (and the device: CPU cells only)
THREAD_KEYS = ("part", *(axis for axis in AXES_OF_A_CELL if axis not in ("threads", "device")))
AMDAHL_MIN_THREADS = 2  # thread counts a fit needs


def amdahl_fit(threads, epoch_s) -> tuple[float, float, float]:
    """(serial fraction s, fitted 1-thread time T1, r²) of T(n) = T1 (s + (1 − s) / n) by least
    squares. s is not clipped: above 1 says the time grew with the threads, below 0 that it fell
    faster than 1/n (noise, or caches that more cores bring). r² is NaN for two thread counts."""
    n = np.asarray(threads, dtype=float)
    t = np.asarray(epoch_s, dtype=float)
    if len(np.unique(n)) < AMDAHL_MIN_THREADS:
        raise ValueError(f"an Amdahl fit needs at least {AMDAHL_MIN_THREADS} thread counts")
    b, a = np.polyfit(1.0 / n, t, 1)
    t1 = a + b
    residual = t - (a + b / n)
    spread = ((t - t.mean()) ** 2).sum()
    r2 = 1 - (residual**2).sum() / spread if len(np.unique(n)) > 2 and spread > 0 else math.nan
    return float(a / t1) if t1 else math.nan, float(t1), float(r2)


def fit_amdahl(results: pd.DataFrame) -> pd.DataFrame:
    """One row per backend and setting (THREAD_KEYS) whose ok cells ran at two or more thread
    counts on the CPU: the serial fraction, the fitted 1-thread epoch time, and the speed-up
    the fit predicts at the most threads measured. Median epoch time per thread count."""
    columns = [*THREAD_KEYS, "serial_fraction", "t1_s", "r2", "threads", "speedup"]
    ok = results[results["status"] == "ok"].dropna(subset=["epoch_s"])
    if "device" in ok:
        ok = ok[ok["device"].fillna("cpu").astype(str).str.startswith("cpu")]
    keys = [k for k in THREAD_KEYS if k in ok]
    # only settings whose cells ran at two thread counts or more can be fitted: the others
    # (most of a sweep without a thread axis) are left out in one pass, not group by group
    group = ok.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    counts = pd.DataFrame({"g": group, "n": ok["threads"].to_numpy()}).groupby("g")["n"].nunique()
    ok = ok[(counts.reindex(group).to_numpy() >= AMDAHL_MIN_THREADS)]
    rows = []
    for key, cells in ok.groupby(keys, sort=False, dropna=False):
        times = cells.groupby("threads")["epoch_s"].median()
        times = times[(times.index > 0) & (times > 0)]
        if len(times) < AMDAHL_MIN_THREADS:
            continue
        s, t1, r2 = amdahl_fit(times.index.to_numpy(), times.to_numpy())
        most = int(times.index.max())
        speedup = float(times.iloc[0] / times.loc[most]) if times.index[0] == 1 else math.nan
        named = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        rows.append(
            [named.get(k) for k in THREAD_KEYS]
            + [s, t1, r2, ",".join(str(int(n)) for n in times.index), speedup]
        )
    return pd.DataFrame(rows, columns=columns)
