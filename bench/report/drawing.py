"""What every figure of a run shares: one colour per backend, markers, line styles, the
matplotlib style, and the helpers that make, title and save a figure.

matplotlib is imported inside the functions, so importing this module stays light. Figures
are built with matplotlib's object API (`matplotlib.figure.Figure` on the Agg canvas): no
pyplot state, no display needed, and each figure is freed as soon as it is saved.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

DPI = 110
# One colour per backend in every figure: the NumPy pair in blues/purples, frameworks warm,
# the peers (JAX, Keras on other engines, scikit-learn) each a colour of its own.
BACKEND_COLORS = {
    "numpy-loop": "#9467bd",
    "numpy-vec": "#1f77b4",
    "cupy": "#17becf",
    "keras": "#d62728",
    "torch": "#ff7f0e",
    "jax": "#2ca02c",
    "keras-jax": "#e377c2",
    "keras-torch": "#8c564b",
    "sklearn": "#bcbd22",
}
# Any other backend (a user's own): a colour from this palette, chosen by a hash of its name.
OTHER_COLORS = ("#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#ff9896")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


LOG_DECADES = 2  # a log axis when the data spans more than this many powers of ten


def backend_color(backend: str) -> str:
    """The backend's colour: fixed for the registered ones, stable by name for any other."""
    if backend in BACKEND_COLORS:
        return BACKEND_COLORS[backend]
    return OTHER_COLORS[zlib.crc32(str(backend).encode()) % len(OTHER_COLORS)]


def over_repeats(frame: pd.DataFrame, x: str, ys: Sequence[str]) -> pd.DataFrame:
    """Mean, min and max of `ys` at each `x` across repeats (missing values skipped)."""
    agg = frame.groupby(x)[list(ys)].agg(["mean", "min", "max"])
    agg.columns = [f"{col}_{stat}" for col, stat in agg.columns]
    return agg.sort_index()


def spans_decades(values) -> bool:
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x) and x > 0], dtype=float)
    return len(v) > 1 and v.max() / v.min() > 10**LOG_DECADES


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def save_figure(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    fig.clear()
    return path


def new_figure(n_panels: int, width: float = 4.2, height: float = 3.3, **kw):
    from matplotlib.figure import Figure

    nrows, ncols = grid_shape(n_panels)
    fig = Figure(figsize=(width * ncols + 1.8, height * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n_panels])


def set_titles(fig, main: str, subtitle: str, note: str) -> None:
    lines = [main] + ([subtitle] if subtitle else [])
    fig.suptitle("\n".join(lines))
    if note:
        fig.supxlabel(note, fontsize=8, color="0.35")


def backend_handles(backends: Sequence[str]) -> list:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color=backend_color(b), linewidth=2, marker="o", markersize=4, label=b)
        for b in backends
    ]


def repeats_range(counts: pd.Series) -> str:
    if counts.empty:
        return "no repeats"
    lo, hi = int(counts.min()), int(counts.max())
    word = "repeat" if hi == 1 else "repeats"
    return f"{lo} {word}" if lo == hi else f"{lo}–{hi} {word}"
