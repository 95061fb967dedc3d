"""Figures of speed drawn from a run's results (results.csv): training throughput against
batch size, and how time per epoch grows along a scaling study's axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.report import scaling
from bench.report.drawing import (
    backend_color,
    backend_handles,
    new_figure,
    repeats_range,
    set_titles,
)
from bench.report.tables import equals, ordered_backends


def throughput_figure(cells: pd.DataFrame, losses: Sequence, dataset: str, subtitle: str):
    cells = cells.copy()
    cells["samples_per_s"] = pd.to_numeric(cells["samples_per_s"], errors="coerce")
    cells["batch_size"] = pd.to_numeric(cells["batch_size"], errors="coerce")
    cells = cells.dropna(subset=["samples_per_s", "batch_size"])
    if cells.empty:
        return None
    from matplotlib.ticker import FixedLocator, NullLocator

    losses = [loss for loss in losses if equals(cells["loss"], loss).any()]
    fig, axes = new_figure(len(losses), width=4.6, height=3.6, sharey=True)
    backends = ordered_backends(cells["backend"])
    barred = False
    for ax, loss in zip(axes, losses):
        here = cells[equals(cells["loss"], loss)]
        for backend in backends:
            mine = here[equals(here["backend"], backend)]
            if mine.empty:
                continue
            s = mine.groupby("batch_size")["samples_per_s"].agg(["median", "min", "max", "size"])
            s = s.sort_index()
            several = s["size"] > 1  # a bar only where there is more than one value
            barred |= bool(several.any())
            yerr = np.vstack(
                [
                    (s["median"] - s["min"]).where(several, 0),
                    (s["max"] - s["median"]).where(several, 0),
                ]
            )
            ax.errorbar(
                s.index,
                s["median"],
                yerr=yerr if several.any() else None,
                color=backend_color(backend),
                marker="o",
                markersize=4,
                capsize=3,
                linewidth=1.6,
                label=backend,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted(here["batch_size"].unique())
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{int(b)}" for b in sizes])
        ax.set_xlabel("batch size (samples)")
        ax.set_title(f"loss {loss}")
    axes[0].set_ylabel("training throughput (samples/s)")
    fig.legend(handles=backend_handles(backends), loc="outside right center")
    n = cells.groupby(["loss", "backend", "batch_size"]).size()
    set_titles(
        fig,
        f"{dataset} · training throughput",
        subtitle,
        f"point: median over repeats ({repeats_range(n)})"
        + ("; bar: min–max" if barred else "")
        + "; steady-state epochs",
    )
    return fig


def scaling_figure(ok: pd.DataFrame, slopes: pd.DataFrame):
    """Per scaling study (a part where one axis varies; `slopes` from scaling.fit_slopes):
    s/epoch against that axis, log-log, with each backend's fitted line and slope."""
    if slopes.empty:
        return None
    studies = list(dict.fromkeys(zip(slopes["part"], slopes["axis"])))
    fig, axes = new_figure(len(studies), width=4.6)
    for ax, (part, axis) in zip(axes, studies):
        cells = ok[equals(ok["part"], part)]
        for r in slopes[(slopes["part"] == part)].itertuples():
            mine = cells[equals(cells["backend"], r.backend)]
            x = (
                mine["hidden"].map(scaling.hidden_width)
                if axis == "width"
                else mine[axis].astype(float)
            )
            color = backend_color(r.backend)
            ax.scatter(x, mine["epoch_s"].astype(float), color=color, s=18)
            grid = np.geomspace(r.x_min, r.x_max, 20)
            ax.plot(
                grid,
                np.exp(r.intercept) * grid**r.slope,
                color=color,
                label=f"{r.backend} (slope {r.slope:+.2f})",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(scaling.AXES[axis])
        ax.set_ylabel("s / epoch (steady state)")
        ax.set_title(f"part {part}")
        ax.legend(fontsize=8)
    set_titles(
        fig, "How time per epoch grows", "", "points: cells; lines: least-squares fit in log-log"
    )
    return fig
