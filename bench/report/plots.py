"""PNG figures of a run folder, drawn from the same tables as bench.report.write.

Per dataset (and per combination of the other axes that vary in the run, named in the file
name and title — different configurations are never averaged together):

    curves-<dataset>-<loss>.png         test loss (solid) and train loss (dashed) per epoch
    throughput-<dataset>.png            training samples/s vs batch size, log-log
    accuracy-vs-time-<dataset>.png      test accuracy vs cumulative training time

and scaling.png for the run's scaling studies. This module decides what is drawn and where
(PlotSet); curve_plots.py and speed_plots.py draw the figures, in the style of drawing.py.
matplotlib is imported only while drawing, so `import bench` stays light.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.report import scaling
from bench.report.curve_plots import accuracy_time_figure, curves_figure
from bench.report.drawing import STYLE, save_figure
from bench.report.markdown import format_value, plural
from bench.report.speed_plots import scaling_figure, throughput_figure
from bench.report.tables import (
    CONFIG_KEYS,
    GROUP_KEYS,
    by_config,
    conform,
    distinct,
    equals,
    latest,
    varying_within,
)
from bench.store.schema import CURVE_COLUMNS


def safe_name(text: str) -> str:
    """A file-name stem of letters, digits, '.', '_' and '-' only.

    `synthetic:n=1000,d=20,k=3` becomes `synthetic-n-1000-d-20-k-3`.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text))
    stem = re.sub(r"-{2,}", "-", stem).strip("-.")
    return stem or "unnamed"


MAX_GROUPS = 24  # figure groups (dataset x configuration) drawn one by one; past it, pooled


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
        self.curves = finished_curves(self.ok, conform(curves, CURVE_COLUMNS))
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
            self.written.append(save_figure(fig, self._target(*words)))

    def write(self) -> list[Path]:
        if self.ok.empty:
            return []
        from matplotlib import rc_context

        self.out_dir.mkdir(parents=True, exist_ok=True)
        pooled = ", ".join(self.pooled)
        with rc_context(STYLE):
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
                            curves_figure(
                                runs[equals(runs["loss"], loss)], f"{ds} · loss {loss}", subtitle
                            ),
                            "curves",
                            ds,
                            loss,
                            tag,
                        )
                    self._save(
                        throughput_figure(cells, losses, ds, subtitle), "throughput", ds, tag
                    )
                    self._save(
                        accuracy_time_figure(runs, losses, ds, subtitle),
                        "accuracy-vs-time",
                        ds,
                        tag,
                    )
            self._save(scaling_figure(self.ok, self.slopes), "scaling")
        return list(self.written)


# --------------------------------------------------------------------------- data


def finished_curves(ok: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
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


# --------------------------------------------------------------------------- figures
