"""PNG figures of a run folder, drawn from the same tables as bench.report.write.

matplotlib is imported inside the functions, so `import bench` stays light. Figures are built
with matplotlib's object API (`matplotlib.figure.Figure` on the Agg canvas): no pyplot state,
no display needed, and each figure is freed as soon as it is saved.

Per dataset (and per combination of the other axes that vary in the run, named in the file
name and title — different configurations are never averaged together):

    curves-<dataset>-<loss>.png         test loss (solid) and train loss (dashed) per epoch
    throughput-<dataset>.png            training samples/s vs batch size, log-log
    accuracy-vs-time-<dataset>.png      test accuracy vs cumulative training time
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import scaling
from bench.report.markdown import format_value, plural
from bench.report.tables import (
    CONFIG_KEYS,
    GROUP_KEYS,
    by_config,
    conform,
    distinct,
    equals,
    latest,
    ordered_backends,
    varying_within,
)
from bench.store.schema import CURVE_COLUMNS

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
_OTHER_COLORS = ("#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#ff9896")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", ":", "-.")
_STYLE = {
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
_DECADES = 2  # a log axis when the data spans more than this many powers of ten


def backend_color(backend: str) -> str:
    """The backend's colour: fixed for the registered ones, stable by name for any other."""
    if backend in BACKEND_COLORS:
        return BACKEND_COLORS[backend]
    return _OTHER_COLORS[zlib.crc32(str(backend).encode()) % len(_OTHER_COLORS)]


def safe_name(text: str) -> str:
    """A file-name stem of letters, digits, '.', '_' and '-' only.

    `synthetic:n=1000,d=20,k=3` becomes `synthetic-n-1000-d-20-k-3`.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text))
    stem = re.sub(r"-{2,}", "-", stem).strip("-.")
    return stem or "unnamed"


MAX_GROUPS = 24  # figure groups (dataset x configuration) drawn one by one; past it, pooled
COINCIDE = 1e-3  # curves closer than this (relative, at every epoch) are named as coinciding


def write_plots(results: pd.DataFrame, curves: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Draw every figure of the run into `out_dir`; return the PNG files written.

    Only cells that finished ok are drawn. Nothing is written when there are none.
    """
    return PlotSet(results, curves, out_dir).write()


def _pooling(cells: pd.DataFrame, keys: list[str], limit: int) -> tuple[list, list]:
    """(keys to split figures by, keys pooled): the keys with the most values are pooled
    until at most `limit` groups of dataset x kept keys remain."""
    keys = list(keys)
    pooled: list[str] = []
    while keys and len(cells[["dataset", *keys]].drop_duplicates()) > limit:
        widest = max(keys, key=lambda k: cells[k].nunique(dropna=False))
        keys.remove(widest)
        pooled.append(widest)
    return keys, pooled


class PlotSet:
    """The figures of one run: what will be drawn (`planned`, `note`), then `write()`.

    A run splits into figure groups, one per dataset x combination of the axes that vary
    (different configurations are never averaged together) — up to MAX_GROUPS. Past it the
    axes with the most values are pooled instead: their cells are drawn together as the
    median (or mean) and min–max over them, and `note` says so. `written` grows as figures
    are saved, so an interrupted `write()` leaves it listing what exists.
    """

    def __init__(self, results, curves, out_dir, *, max_groups: int | None = None):
        max_groups = MAX_GROUPS if max_groups is None else max_groups
        rows = latest(results)
        self.ok = rows[rows["status"] == "ok"]
        self.out_dir = Path(out_dir)
        self.written: list[Path] = []
        self._used: set[str] = set()
        self.slopes = scaling.fit_slopes(self.ok)
        # The cells of a scaling study are drawn together in scaling.png, not per cell.
        self.per_config = self.ok[~self.ok["part"].isin(set(self.slopes["part"]))]
        keys = varying_within(rows, CONFIG_KEYS)
        self.keys, self.pooled = _pooling(self.per_config, keys, max_groups)
        self.curves = _curves_of(self.ok, conform(curves, CURVE_COLUMNS))
        n_groups = len(self.per_config[["dataset", *self.keys]].drop_duplicates())
        n_losses = self.per_config["loss"].nunique()
        self.planned = n_groups * (n_losses + 2) + (0 if self.slopes.empty else 1)
        self.note = ""
        if self.pooled:
            counts = ", ".join(
                f"{k} ({plural(self.per_config[k].nunique(dropna=False), 'value')})"
                for k in self.pooled
            )
            self.note = (
                f"The run has more than {max_groups} configurations to draw, so the figures "
                f"pool {counts}: each line or point is the mean or median over those settings "
                "and the band or bar their min–max. The tables above keep every configuration."
            )

    def _target(self, *words) -> Path:
        stem = safe_name("-".join(str(w) for w in words if w != ""))
        name, i = stem, 2
        while name in self._used:
            name, i = f"{stem}-{i}", i + 1
        self._used.add(name)
        return self.out_dir / f"{name}.png"

    def _save(self, fig, *words) -> None:
        if fig is not None:
            self.written.append(_save(fig, self._target(*words)))

    def write(self) -> list[Path]:
        if self.ok.empty:
            return []
        from matplotlib import rc_context

        self.out_dir.mkdir(parents=True, exist_ok=True)
        pooled = ", ".join(self.pooled)
        with rc_context(_STYLE):
            for dataset in distinct(self.per_config["dataset"]):
                in_dataset = self.per_config[equals(self.per_config["dataset"], dataset)]
                ds = format_value("dataset", dataset)
                for config, cells in by_config(in_dataset, self.keys):
                    tag = _config_tag(config, self.keys)
                    subtitle = _config_title(config, self.keys)
                    if pooled:
                        subtitle = (subtitle + " · " if subtitle else "") + f"pooled over {pooled}"
                    runs = _matching(self.curves, config, self.keys, dataset)
                    losses = distinct(cells["loss"])
                    for loss in losses:
                        self._save(
                            _curves_figure(
                                runs[equals(runs["loss"], loss)], f"{ds} · loss {loss}", subtitle
                            ),
                            "curves",
                            ds,
                            loss,
                            tag,
                        )
                    self._save(
                        _throughput_figure(cells, losses, ds, subtitle), "throughput", ds, tag
                    )
                    self._save(
                        _accuracy_time_figure(runs, losses, ds, subtitle),
                        "accuracy-vs-time",
                        ds,
                        tag,
                    )
            self._save(_scaling_figure(self.ok, self.slopes), "scaling")
        return list(self.written)


# --------------------------------------------------------------------------- data


def _curves_of(ok: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The epochs of the cell x repeats that finished ok (diverged or cut-off runs left out)."""
    keys = [*GROUP_KEYS, "repeat"]
    if curves.empty:
        return curves
    # Keys compared as text: the same value reads the same whatever its dtype in each frame.
    finished = ok[keys].astype("str").drop_duplicates().assign(_finished=True)
    mine = curves[keys].astype("str").merge(finished, on=keys, how="left")["_finished"]
    out = curves[mine.notna().to_numpy()].copy()
    for col in ("epoch", "elapsed_s", "train_loss", "test_loss", "test_acc", "batch_size"):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    return out


def _matching(curves: pd.DataFrame, config, keys: Sequence[str], dataset) -> pd.DataFrame:
    mask = equals(curves["dataset"], dataset)
    if config is not None:
        for k in keys:
            mask &= equals(curves[k], config[k])
    return curves[mask]


def _config_tag(config, keys: Sequence[str]) -> str:
    if config is None:
        return ""
    return "-".join(f"{k}-{format_value(k, config[k])}" for k in keys)


def _config_title(config, keys: Sequence[str]) -> str:
    if config is None:
        return ""
    return " · ".join(f"{k} {format_value(k, config[k])}" for k in keys)


def _over_repeats(frame: pd.DataFrame, x: str, ys: Sequence[str]) -> pd.DataFrame:
    """Mean, min and max of `ys` at each `x` across repeats (missing values skipped)."""
    agg = frame.groupby(x)[list(ys)].agg(["mean", "min", "max"])
    agg.columns = [f"{col}_{stat}" for col, stat in agg.columns]
    return agg.sort_index()


def _spans_decades(values) -> bool:
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x) and x > 0], dtype=float)
    return len(v) > 1 and v.max() / v.min() > 10**_DECADES


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    fig.clear()
    return path


def _new_figure(n_panels: int, width: float = 4.2, height: float = 3.3, **kw):
    from matplotlib.figure import Figure

    nrows, ncols = _grid(n_panels)
    fig = Figure(figsize=(width * ncols + 1.8, height * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n_panels])


def _title(fig, main: str, subtitle: str, note: str) -> None:
    lines = [main] + ([subtitle] if subtitle else [])
    fig.suptitle("\n".join(lines))
    if note:
        fig.supxlabel(note, fontsize=8, color="0.35")


# --------------------------------------------------------------------------- figures


def _coinciding(lines: dict) -> list[list[str]]:
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


def _curves_figure(runs: pd.DataFrame, main: str, subtitle: str):
    runs = runs.dropna(subset=["epoch"])
    runs = runs[runs["test_loss"].notna() | runs["train_loss"].notna()]
    if runs.empty:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    sizes = distinct(runs["batch_size"])
    fig, axes = _new_figure(len(sizes), sharey=True)
    plotted = []
    backends = ordered_backends(runs["backend"])
    # Backends that compute the same maths give the same curve: each backend has its own
    # marker (placed at shifted epochs) and the earlier ones are drawn wider, so lines lying
    # on top of each other all stay visible; the figure also names them.
    widths = {b: 1.3 + 0.9 * (len(backends) - 1 - i) for i, b in enumerate(backends)}
    markers = {b: _MARKERS[i % len(_MARKERS)] for i, b in enumerate(backends)}
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
            stats = _over_repeats(mine, "epoch", ["test_loss", "train_loss"])
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
        for group in _coinciding(test_lines):
            if group not in together:
                together.append(group)
        ax.set_title(f"batch size {format_value('batch_size', bs)}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("loss (mean per sample)")
    if plotted and _spans_decades(np.concatenate([p.ravel() for p in plotted])):
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
    note = "line: one run per cell" if n.max() == 1 else f"line: mean over repeats ({_range(n)})"
    if banded:
        note += "; band: min–max of test loss"
    if together:
        names = "; ".join(" and ".join(g) for g in together)
        note += (
            f"\ntest-loss curves that coincide (within {COINCIDE * 100:g}% at every epoch): {names}"
        )
    _title(fig, main, subtitle, note)
    return fig


def _throughput_figure(cells: pd.DataFrame, losses: Sequence, dataset: str, subtitle: str):
    cells = cells.copy()
    cells["samples_per_s"] = pd.to_numeric(cells["samples_per_s"], errors="coerce")
    cells["batch_size"] = pd.to_numeric(cells["batch_size"], errors="coerce")
    cells = cells.dropna(subset=["samples_per_s", "batch_size"])
    if cells.empty:
        return None
    from matplotlib.ticker import FixedLocator, NullLocator

    losses = [loss for loss in losses if equals(cells["loss"], loss).any()]
    fig, axes = _new_figure(len(losses), width=4.6, height=3.6, sharey=True)
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
    fig.legend(handles=_backend_handles(backends), loc="outside right center")
    n = cells.groupby(["loss", "backend", "batch_size"]).size()
    _title(
        fig,
        f"{dataset} · training throughput",
        subtitle,
        f"point: median over repeats ({_range(n)})"
        + ("; bar: min–max" if barred else "")
        + "; steady-state epochs",
    )
    return fig


def _accuracy_time_figure(runs: pd.DataFrame, losses: Sequence, dataset: str, subtitle: str):
    runs = runs.dropna(subset=["test_acc", "elapsed_s"])
    if runs.empty:
        return None
    from matplotlib.lines import Line2D

    losses = [loss for loss in losses if equals(runs["loss"], loss).any()]
    fig, axes = _new_figure(len(losses), width=4.8, height=3.6, sharey=True)
    backends = ordered_backends(runs["backend"])
    sizes = distinct(runs["batch_size"])
    style = {
        bs: (_LINESTYLES[i % len(_LINESTYLES)], _MARKERS[i % len(_MARKERS)])
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
                s = _over_repeats(mine, "epoch", ["elapsed_s", "test_acc"]).dropna(
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
    if xs and _spans_decades(np.concatenate(xs)):
        for ax in axes:
            ax.set_xscale("log")
    axes[0].set_ylabel("test accuracy")
    handles = _backend_handles(backends)
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
    _title(
        fig,
        f"{dataset} · test accuracy vs training time",
        subtitle,
        f"mean over repeats ({_range(n)}) at each evaluated epoch; evaluation time excluded",
    )
    return fig


def _scaling_figure(ok: pd.DataFrame, slopes: pd.DataFrame):
    """Per scaling study (a part where one axis varies; `slopes` from scaling.fit_slopes):
    s/epoch against that axis, log-log, with each backend's fitted line and slope."""
    if slopes.empty:
        return None
    studies = list(dict.fromkeys(zip(slopes["part"], slopes["axis"])))
    fig, axes = _new_figure(len(studies), width=4.6)
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
    _title(
        fig, "How time per epoch grows", "", "points: cells; lines: least-squares fit in log-log"
    )
    return fig


def _backend_handles(backends: Sequence[str]) -> list:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color=backend_color(b), linewidth=2, marker="o", markersize=4, label=b)
        for b in backends
    ]


def _range(counts: pd.Series) -> str:
    if counts.empty:
        return "no repeats"
    lo, hi = int(counts.min()), int(counts.max())
    word = "repeat" if hi == 1 else "repeats"
    return f"{lo} {word}" if lo == hi else f"{lo}–{hi} {word}"
