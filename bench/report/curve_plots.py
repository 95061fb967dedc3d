"""Figures drawn from a run's learning curves (curves.csv): loss per epoch, and test
accuracy against training time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.report.drawing import (
    LINESTYLES,
    MARKERS,
    backend_color,
    backend_handles,
    new_figure,
    over_repeats,
    repeats_range,
    set_titles,
    spans_decades,
)
from bench.report.markdown import format_value
from bench.report.tables import distinct, equals, ordered_backends

COINCIDE = 1e-3  # curves closer than this (relative, at every epoch) are named as coinciding


def coinciding(lines: dict) -> list[list[str]]:
    """Groups of backends whose curves (epoch -> value) agree within COINCIDE everywhere."""
    groups: list[list[str]] = []
    for backend, line in lines.items():
        for group in groups:
            ref = lines[group[0]]
            both = line.index.intersection(ref.index)
            if len(both) and len(both) == len(line) == len(ref):
                a, b = line.loc[both].to_numpy(), ref.loc[both].to_numpy()
                scale = np.maximum(np.abs(a), np.abs(b))
                if np.all(np.abs(a - b) <= COINCIDE * np.where(scale > 0, scale, 1)):
                    group.append(backend)
                    break
        else:
            groups.append([backend])
    return [g for g in groups if len(g) > 1]


def curves_figure(runs: pd.DataFrame, main: str, subtitle: str):
    runs = runs.dropna(subset=["epoch"])
    runs = runs[runs["test_loss"].notna() | runs["train_loss"].notna()]
    if runs.empty:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    sizes = distinct(runs["batch_size"])
    fig, axes = new_figure(len(sizes), sharey=True)
    plotted = []
    backends = ordered_backends(runs["backend"])
    # Backends that compute the same maths give the same curve: each backend has its own
    # marker (placed at shifted epochs) and the earlier ones are drawn wider, so lines lying
    # on top of each other all stay visible; the figure also names them.
    widths = {b: 1.3 + 0.9 * (len(backends) - 1 - i) for i, b in enumerate(backends)}
    markers = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(backends)}
    sizes_ = {b: 3.5 + 2.0 * (len(backends) - 1 - i) for i, b in enumerate(backends)}
    banded, together = False, []
    for ax, bs in zip(axes, sizes):
        here = runs[equals(runs["batch_size"], bs)]
        test_lines = {}
        for i, backend in enumerate(backends):
            mine = here[equals(here["backend"], backend)]
            if mine.empty:
                continue
            color = backend_color(backend)
            stats = over_repeats(mine, "epoch", ["test_loss", "train_loss"])
            per_epoch = mine.groupby("epoch").size()
            for metric, style in (("test_loss", "-"), ("train_loss", "--")):
                line = stats[[f"{metric}_mean", f"{metric}_min", f"{metric}_max"]].dropna()
                if line.empty:
                    continue
                every = max(1, len(line) // 8)
                ax.plot(
                    line.index,
                    line[f"{metric}_mean"],
                    style,
                    color=color,
                    marker=markers[backend],
                    markevery=(i % every, every),
                    markersize=sizes_[backend] if metric == "test_loss" else 3,
                    linewidth=widths[backend] if metric == "test_loss" else 1.2,
                )
                if metric == "test_loss":
                    test_lines[backend] = line[f"{metric}_mean"]
                    if per_epoch.reindex(line.index).fillna(0).max() > 1:
                        banded = True
                        ax.fill_between(
                            line.index,
                            line[f"{metric}_min"],
                            line[f"{metric}_max"],
                            color=color,
                            alpha=0.12,
                            linewidth=0,
                        )
                plotted.append(line.to_numpy())
        for group in coinciding(test_lines):
            if group not in together:
                together.append(group)
        ax.set_title(f"batch size {format_value('batch_size', bs)}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("loss (mean per sample)")
    if plotted and spans_decades(np.concatenate([p.ravel() for p in plotted])):
        axes[0].set_yscale("log")
    handles = [
        Line2D(
            [], [], color=backend_color(b), linewidth=2, marker=markers[b], markersize=5, label=b
        )
        for b in backends
    ]
    handles += [
        Line2D([], [], color="0.3", linestyle="-", label="test loss"),
        Line2D([], [], color="0.3", linestyle="--", label="train loss"),
    ]
    fig.legend(handles=handles, loc="outside right center")
    n = runs.groupby(["backend", "batch_size"])["repeat"].nunique()
    note = (
        "line: one run per cell"
        if n.max() == 1
        else f"line: mean over repeats ({repeats_range(n)})"
    )
    if banded:
        note += "; band: min–max of test loss"
    if together:
        names = "; ".join(" and ".join(g) for g in together)
        note += (
            f"\ntest-loss curves that coincide (within {COINCIDE * 100:g}% at every epoch): {names}"
        )
    set_titles(fig, main, subtitle, note)
    return fig


def accuracy_time_figure(runs: pd.DataFrame, losses: Sequence, dataset: str, subtitle: str):
    runs = runs.dropna(subset=["test_acc", "elapsed_s"])
    if runs.empty:
        return None
    from matplotlib.lines import Line2D

    losses = [loss for loss in losses if equals(runs["loss"], loss).any()]
    fig, axes = new_figure(len(losses), width=4.8, height=3.6, sharey=True)
    backends = ordered_backends(runs["backend"])
    sizes = distinct(runs["batch_size"])
    style = {
        bs: (LINESTYLES[i % len(LINESTYLES)], MARKERS[i % len(MARKERS)])
        for i, bs in enumerate(sizes)
    }
    xs = []
    for ax, loss in zip(axes, losses):
        here = runs[equals(runs["loss"], loss)]
        for backend in backends:
            for bs in sizes:
                mine = here[equals(here["backend"], backend) & equals(here["batch_size"], bs)]
                if mine.empty:
                    continue
                s = over_repeats(mine, "epoch", ["elapsed_s", "test_acc"]).dropna(
                    subset=["elapsed_s_mean", "test_acc_mean"]
                )
                linestyle, marker = style[bs]
                ax.plot(
                    s["elapsed_s_mean"],
                    s["test_acc_mean"],
                    linestyle=linestyle,
                    marker=marker,
                    markersize=3.5,
                    color=backend_color(backend),
                    linewidth=1.4,
                )
                xs.append(s["elapsed_s_mean"].to_numpy())
        ax.set_xlabel("cumulative training time (s)")
        ax.set_title(f"loss {loss}")
    if xs and spans_decades(np.concatenate(xs)):
        for ax in axes:
            ax.set_xscale("log")
    axes[0].set_ylabel("test accuracy")
    handles = backend_handles(backends)
    handles += [
        Line2D(
            [],
            [],
            color="0.3",
            linestyle=style[bs][0],
            marker=style[bs][1],
            markersize=4,
            label=f"batch {format_value('batch_size', bs)}",
        )
        for bs in sizes
    ]
    fig.legend(handles=handles, loc="outside right center")
    n = runs.groupby(["loss", "backend", "batch_size"])["repeat"].nunique()
    set_titles(
        fig,
        f"{dataset} · test accuracy vs training time",
        subtitle,
        f"mean over repeats ({repeats_range(n)}) at each evaluated epoch; evaluation time excluded",
    )
    return fig
