"""Reports of a run folder: its CSVs in as DataFrames, a Markdown summary out.

Nothing here trains or times anything: every figure comes from results.csv, curves.csv and
env.json as `python -m bench run` wrote them. Plots live in bench.plots, imported only by
`write_report`, so reading a run needs pandas alone.

    results, curves = load_run("results/2025-01-05-digits")
    print(render_summary(results, curves, load_env("results/2025-01-05-digits")))
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import NotARunError
from bench.schema import AXES, CURVE_COLUMNS, KEY_COLUMNS, RESULT_COLUMNS, SETTINGS

# The backend every other one is compared with, and the order backends are listed in.
REFERENCE_BACKEND = "numpy-vec"
BACKEND_ORDER = ("numpy-loop", "numpy-vec", "keras", "torch")

# Column types of both tables; every column not named here is read as a string.
INT_COLUMNS = frozenset(
    {
        "batch_size",
        "epochs",
        "threads",
        "eval_every",
        "repeat",
        "seed",
        "diverged_epoch",
        "n_train",
        "n_test",
        "n_features",
        "n_classes",
        "n_params",
        "epochs_run",
        "epoch",
    }
)
FLOAT_COLUMNS = frozenset(
    {
        "lr",
        "momentum",
        "weight_decay",
        "build_s",
        "first_epoch_s",
        "epoch_s",
        "epoch_s_min",
        "epoch_s_max",
        "train_s",
        "samples_per_s",
        "gflops",
        "roofline",
        "predict_s",
        "train_loss",
        "test_loss",
        "train_acc",
        "test_acc",
        "best_test_acc",
        "target_acc",
        "time_to_target_s",
        "elapsed_s",
        "epoch_loss",
    }
)
# Spellings of a missing number (what Python, NumPy and pandas write for one).
_MISSING = frozenset({"", "nan", "na", "<na>", "none", "null", "n/a"})

# The keys of one summary row: every axis of a sweep and the sweep part, not the repeat.
GROUP_KEYS = ("part", *AXES)
# Axes that get their own sub-section when they vary: everything but dataset, loss (the
# section), backend (the rows) and batch size (the columns).
CONFIG_KEYS = ("part", "optimizer", "lr", "hidden", "activation", "epochs", "dtype", "threads")

SUMMARY_COLUMNS = (
    "n",
    "test_acc_mean",
    "test_acc_median",
    "test_acc_min",
    "test_acc_max",
    "epoch_s_median",
    "epoch_s_min",
    "epoch_s_max",
    "first_epoch_s_median",
    "samples_per_s_median",
    "gflops_median",
    "roofline_median",
    "time_to_target_s_median",
    "speedup_vs_numpy_vec",
)

ACCURACY_TIE = 0.001  # accuracies this close to the best are all marked best
ERROR_WIDTH = 120  # characters of an error message shown in the failed-cells table

_LABELS = {
    "part": "part",
    "optimizer": "optimizer",
    "lr": "lr",
    "hidden": "hidden",
    "activation": "activation",
    "epochs": "epochs",
    "dtype": "dtype",
    "threads": "threads",
    "output": "output",
    "momentum": "momentum",
    "weight_decay": "weight decay",
    "preprocess": "preprocessing",
    "init": "init",
    "order": "sample order",
    "eval_every": "eval every",
    "target_acc": "target accuracy",
}


# --------------------------------------------------------------------------- loading


def load_env(path: str | Path) -> dict:
    """env.json of a run folder (or the file itself) as a dict."""
    path = Path(path)
    file = path / "env.json" if path.is_dir() else path
    if not file.is_file():
        raise NotARunError(_not_a_run(path, "no env.json"))
    try:
        env = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotARunError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(env, dict):
        raise NotARunError(f"{file} holds a {type(env).__name__}, not a JSON object")
    return env


def load_run(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, curves) of a run folder, with the schema's columns and explicit dtypes.

    Axes and other names are strings (hidden "100" stays "100"), counts are nullable Int64,
    times and metrics float64; empty fields are missing values. A trailing record cut off
    mid-write is dropped with a warning. A missing curves.csv gives an empty curves frame.
    """
    path = Path(path)
    if not path.is_dir():
        what = "it does not exist" if not path.exists() else "not a folder"
        raise NotARunError(_not_a_run(path, what))
    for name in ("results.csv", "env.json"):
        if not (path / name).is_file():
            raise NotARunError(_not_a_run(path, f"no {name}"))
    results = _read_table(path / "results.csv", RESULT_COLUMNS)
    curves_file = path / "curves.csv"
    if curves_file.is_file():
        curves = _read_table(curves_file, CURVE_COLUMNS)
    else:
        curves = _typed(pd.DataFrame({c: pd.Series(dtype="str") for c in CURVE_COLUMNS}))
    return results, curves


def _not_a_run(path: Path, what: str) -> str:
    return f"{path} is not a run folder: {what} (a run folder is what `python -m bench run` writes)"


def _read_table(file: Path, columns: Sequence[str]) -> pd.DataFrame:
    """One CSV of a run folder, dropping records cut off mid-write, typed column by column."""
    with open(file, encoding="utf-8", errors="replace", newline="") as fh:
        text = fh.read()
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text), strict=True)
    cut_inside_quotes = False
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error:
            cut_inside_quotes = True  # a quoted field left open: the write stopped inside it
            break
        if record:
            records.append(record)
    if text and not text.endswith(("\n", "\r")) and not cut_inside_quotes and records:
        records.pop()
        warnings.warn(
            f"{file}: dropped the last line, cut off mid-write (no line end)", stacklevel=3
        )
    elif cut_inside_quotes:
        warnings.warn(
            f"{file}: dropped the last record, cut off inside a quoted field", stacklevel=3
        )
    if not records:
        header = list(columns)
        body: list[list[str]] = []
    else:
        header, body = records[0], records[1:]
    kept = [r for r in body if len(r) == len(header)]
    if len(kept) < len(body):
        bad = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
        warnings.warn(
            f"{file}: dropped {len(bad)} record(s) with the wrong number of fields "
            f"(line(s) {', '.join(map(str, bad[:5]))}{'…' if len(bad) > 5 else ''}; "
            f"{len(header)} expected)",
            stacklevel=3,
        )
    frame = pd.DataFrame(kept, columns=header, dtype="str")
    missing = [c for c in columns if c not in frame.columns]
    if missing and kept:
        warnings.warn(f"{file}: no column(s) {', '.join(missing)}; read as empty", stacklevel=3)
    for c in missing:
        frame[c] = pd.Series([None] * len(frame), index=frame.index, dtype="str")
    extra = [c for c in frame.columns if c not in columns]
    frame = frame[list(columns) + extra]
    return _typed(frame, source=file)


def _typed(frame: pd.DataFrame, source: Path | None = None) -> pd.DataFrame:
    """Strings to the schema's types: empty fields missing, numbers float64 or Int64."""
    out = {}
    for col in frame.columns:
        s = frame[col].astype("str")
        s = s.where(~s.isna() & (s != ""))
        if col in INT_COLUMNS or col in FLOAT_COLUMNS:
            s = s.where(~s.str.strip().str.lower().isin(_MISSING))
            try:
                num = pd.to_numeric(s.str.strip())
            except (ValueError, TypeError):
                warnings.warn(
                    f"{source or 'table'}: column {col} holds non-numbers; kept as text",
                    stacklevel=3,
                )
                out[col] = s
                continue
            if col in INT_COLUMNS:
                try:
                    num = num.astype("Int64")
                except (ValueError, TypeError):
                    num = num.astype("float64")  # fractional values: keep them as they are
            else:
                num = num.astype("float64")
            out[col] = num
        else:
            out[col] = s
    return pd.DataFrame(out, index=frame.index)


# --------------------------------------------------------------------------- tables


def conform(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`frame` with every column of `columns` present (missing ones all-NaN)."""
    frame = frame.copy()
    for c in columns:
        if c not in frame.columns:
            frame[c] = np.nan
    return frame


def latest(results: pd.DataFrame) -> pd.DataFrame:
    """One row per cell x repeat: the last one written (a resumed run may retry a failure)."""
    results = conform(results, RESULT_COLUMNS)
    keyed = results[list(KEY_COLUMNS)].notna().all(axis=1)
    if not keyed.any():
        return results
    superseded = np.zeros(len(results), dtype=bool)
    superseded[keyed.to_numpy()] = (
        results[keyed].duplicated(list(KEY_COLUMNS), keep="last").to_numpy()
    )
    return results[~superseded]


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The latest rows of cells that finished ok."""
    rows = latest(results)
    return rows[rows["status"] == "ok"]


def varying(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns of `columns` that take more than one value (missing counts as one)."""
    return [c for c in columns if c in frame.columns and frame[c].nunique(dropna=False) > 1]


def varying_within(frame: pd.DataFrame, columns: Iterable[str],
                   by: Sequence[str] = ("dataset", "loss")) -> list[str]:
    """The columns that vary inside some group of `by`: a column that only changes with the
    dataset or the loss (as a per-loss learning rate does) splits nothing further."""
    columns = varying(frame, columns)
    if frame.empty or not columns:
        return columns
    groups = frame.groupby(list(by), dropna=False, sort=False)
    return [c for c in columns if (groups[c].nunique(dropna=False) > 1).any()]


def ordered_backends(names: Iterable) -> list[str]:
    """Backends in the project's order (numpy-loop, numpy-vec, keras, torch), then others."""
    names = {str(n) for n in names if not _missing(n)}
    known = [b for b in BACKEND_ORDER if b in names]
    return known + sorted(names - set(known))


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Repeats of each ok cell folded into one row: medians, spreads, speed vs numpy-vec.

    Rows are keyed by part and every axis (GROUP_KEYS); `speedup_vs_numpy_vec` is numpy-vec's
    median epoch_s divided by this backend's, in the group with the same other keys (NaN where
    numpy-vec has no ok row there).
    """
    ok = conform(ok_rows(results), RESULT_COLUMNS)
    keys = list(GROUP_KEYS)
    if ok.empty:
        empty = {k: ok[k].iloc[:0] for k in keys}
        empty.update({c: pd.Series(dtype="float64") for c in SUMMARY_COLUMNS})
        empty["n"] = pd.Series(dtype="int64")
        return pd.DataFrame(empty)
    for col in (
        "test_acc",
        "epoch_s",
        "first_epoch_s",
        "samples_per_s",
        "gflops",
        "roofline",
        "time_to_target_s",
    ):
        ok[col] = pd.to_numeric(ok[col], errors="coerce").astype("float64")
    grouped = ok.groupby(keys, dropna=False, sort=False)
    out = grouped.agg(
        n=("status", "size"),
        test_acc_mean=("test_acc", "mean"),
        test_acc_median=("test_acc", "median"),
        test_acc_min=("test_acc", "min"),
        test_acc_max=("test_acc", "max"),
        epoch_s_median=("epoch_s", "median"),
        epoch_s_min=("epoch_s", "min"),
        epoch_s_max=("epoch_s", "max"),
        first_epoch_s_median=("first_epoch_s", "median"),
        samples_per_s_median=("samples_per_s", "median"),
        gflops_median=("gflops", "median"),
        roofline_median=("roofline", "median"),
        time_to_target_s_median=("time_to_target_s", "median"),
    ).reset_index()
    others = [k for k in keys if k != "backend"]
    ref = out.loc[out["backend"] == REFERENCE_BACKEND, others + ["epoch_s_median"]]
    ref = ref.rename(columns={"epoch_s_median": "_ref_epoch_s"})
    out = out.merge(ref, on=others, how="left")
    out["speedup_vs_numpy_vec"] = out["_ref_epoch_s"] / out["epoch_s_median"]
    return out.drop(columns="_ref_epoch_s")[keys + list(SUMMARY_COLUMNS)]


# --------------------------------------------------------------------------- formatting


def _missing(value) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_seconds(seconds) -> str:
    """A duration with three significant digits in the unit that suits it: µs, ms, s, min, h."""
    if _missing(seconds):
        return "—"
    s = float(seconds)
    if not math.isfinite(s):
        return str(s)
    if s <= 0:
        return "0 s"
    if s < 60:
        for unit, scale in (("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)):
            if s < scale * 1000 or unit == "s":
                text = f"{s / scale:.3g}"
                if float(text) < 1000 or unit == "s":
                    return f"{text} {unit}"
    if s < 3600:
        minutes, rest = divmod(round(s), 60)
        return f"{minutes} min {rest:02d} s" if minutes < 60 else "1 h 00 min"
    hours, rest = divmod(round(s / 60), 60)
    return f"{hours} h {rest:02d} min"


def format_speedup(ratio) -> str:
    """Speed relative to the reference: 31×, 3.1×, 0.31×."""
    if _missing(ratio) or not math.isfinite(float(ratio)):
        return "—"
    r = float(ratio)
    if r >= 9.95:
        return f"{r:.0f}×"
    if r >= 0.995:
        return f"{r:.1f}×"
    return f"{r:.2g}×"


def format_value(column: str, value) -> str:
    """An axis or setting value as it reads in a heading: 0.01, 256x128, threads default."""
    if _missing(value):
        return "default" if column == "threads" else "—"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _config_label(row, keys: Sequence[str]) -> str:
    return " · ".join(f"{_LABELS.get(k, k)} {format_value(k, row[k])}" for k in keys)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], n_left: int = 1) -> str:
    """A padded Markdown pipe table; the first `n_left` columns left-aligned, others right."""
    header = [_md_cell(h) for h in header]
    rows = [[_md_cell(c) for c in row] for row in rows]
    widths = [max([len(header[i])] + [len(r[i]) for r in rows] + [3]) for i in range(len(header))]

    def line(cells):
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i < n_left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths))
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join(
            (":" + "-" * (w + 1)) if i < n_left else ("-" * (w + 1) + ":")
            for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _one_line(text, width: int = ERROR_WIDTH) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _when(stamp) -> datetime | None:
    if _missing(stamp) or not str(stamp).strip():
        return None
    try:
        return datetime.fromisoformat(str(stamp).strip())
    except ValueError:
        return None


def _format_when(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.utcoffset()
    if offset is None:
        return text
    return text + (" UTC" if offset.total_seconds() == 0 else moment.strftime(" %z"))


# --------------------------------------------------------------------------- the summary


def render_summary(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    env: dict,
    *,
    plots: Sequence[str | Path] = (),
) -> str:
    """The run as Markdown for a person comparing backends.

    A pure function of the tables and env.json: the header (machine, threads, versions,
    status, command), how to read the cells, one table per dataset x loss (and per
    combination of the other axes that vary), warm-up, compute and time-to-target tables
    where the run has the data, and every failed cell. `plots` are image paths relative to
    the summary's folder, listed at the end.
    """
    rows = latest(results)
    ok = rows[rows["status"] == "ok"]
    summary = summarize(rows)
    config_keys = varying_within(rows, CONFIG_KEYS)
    label_keys = varying(rows, ("dataset", "loss")) + config_keys

    out: list[str] = []
    name = env.get("name") or "unnamed run"
    run_id = env.get("run_id") or _first(rows["run_id"])
    title = f"# mlp-bench: {name}"
    if run_id and str(run_id) != str(name):
        title += f" (`{run_id}`)"
    out += [title, "", _env_paragraph(env, rows)]
    notice = _status_notice(env)
    if notice:
        out += ["", notice]
    constants = _constants_line(rows, config_keys)
    if constants:
        out += ["", constants]
    out += ["", _how_to_read(rows, env)]

    if rows.empty:
        out += ["", "No cell has finished yet: the results table is empty."]
    # settings that differ between sections only (e.g. a learning rate per loss)
    by_section = [c for c in varying(rows, (*CONFIG_KEYS, *SETTINGS[1:]))
                  if c not in config_keys and c != "part"]
    for dataset in distinct(rows["dataset"]):
        in_dataset = rows[equals(rows["dataset"], dataset)]
        for loss in distinct(in_dataset["loss"]):
            section = in_dataset[equals(in_dataset["loss"], loss)]
            heading = f"{format_value('dataset', dataset)} · loss {format_value('loss', loss)}"
            extras = [f"{_LABELS.get(c, c)} {format_value(c, _first(section[c]))}"
                      for c in by_section if section[c].nunique(dropna=False) == 1]
            if extras:
                heading += f" ({', '.join(extras)})"
            out += ["", f"## {heading}"]
            for config, part in by_config(section, config_keys):
                if config_keys:
                    out += ["", f"### {_config_label(config, config_keys)}"]
                out += ["", _results_table(part, summary)]

    if not ok.empty:
        out += ["", _warmup_section(ok, summary, label_keys)]
        compute = _compute_section(ok, summary, label_keys, env)
        if compute:
            out += ["", compute]
        target = _target_section(ok, summary, label_keys)
        if target:
            out += ["", target]
        scaling = _scaling_section(ok)
        if scaling:
            out += ["", scaling]
    out += ["", _failed_section(rows, label_keys)]
    if plots:
        out += ["", "## Plots", ""]
        out += [f"- [{Path(p).name}]({Path(p).as_posix()})" for p in plots]
    return "\n".join(out).rstrip() + "\n"


def _first(series: pd.Series):
    values = series.dropna()
    return values.iloc[0] if len(values) else None


def distinct(series: pd.Series) -> list:
    """Distinct values in order of first appearance (numbers ascending), missing last."""
    values = list(pd.unique(series.dropna()))
    if values and all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
        values.sort()
    if series.isna().any():
        values.append(None)
    return values


def equals(series: pd.Series, value) -> pd.Series:
    if _missing(value):
        return series.isna()
    return (series == value).fillna(False).astype(bool)


def by_config(frame: pd.DataFrame, keys: Sequence[str]):
    """(first row, rows) for each combination of `keys` in `frame`.

    Combinations are ordered key by key: the first key's values in order of appearance
    (numbers ascending), then the second key's within them, and so on.
    """
    if not keys:
        yield None, frame
        return
    combos = sort_by_keys(frame[list(keys)].drop_duplicates(), keys, frame)
    for _, combo in combos.iterrows():
        mask = pd.Series(True, index=frame.index)
        for k in keys:
            mask &= equals(frame[k], combo[k])
        yield combo, frame[mask]


def sort_by_keys(frame: pd.DataFrame, keys: Sequence[str], ref: pd.DataFrame) -> pd.DataFrame:
    """`frame` sorted by `keys`, each in the order `distinct` gives it in `ref` (stable)."""
    if frame.empty or not keys:
        return frame
    ranks = []
    for k in keys:
        order = distinct(ref[k])
        if k == "backend":
            order = ordered_backends(order) + [None]
        rank = {_rank_key(v): i for i, v in enumerate(order)}
        ranks.append([rank.get(_rank_key(v), len(rank)) for v in frame[k]])
    position = sorted(range(len(frame)), key=lambda i: tuple(r[i] for r in ranks))
    return frame.iloc[position]


def _rank_key(value):
    return None if _missing(value) else value


def _env_paragraph(env: dict, rows: pd.DataFrame) -> str:
    machine = env.get("machine") or {}
    parts = []
    cpu = machine.get("cpu") or "an unrecorded CPU"
    where = [f"{machine['cores']} cores"] if machine.get("cores") else []
    if machine.get("platform"):
        where.append(str(machine["platform"]))
    parts.append(f"Run on {cpu}" + (f" ({', '.join(where)})" if where else "") + ".")

    started, finished = _when(env.get("started_at")), _when(env.get("finished_at"))
    if started:
        when = f"Started {_format_when(started)}"
        if finished:
            try:
                when += f", took {format_seconds((finished - started).total_seconds())}"
            except TypeError:  # one stamp with a time zone, one without
                when += f", finished {_format_when(finished)}"
        parts.append(when + ".")
    parts.append(f"Status: **{env.get('status', 'unknown')}**.")

    threads = env.get("threads")
    if isinstance(threads, (list, tuple)):
        threads = ", ".join("default" if t is None else str(t) for t in threads)
    effective = _threads_effective(rows)
    text = f"Threads: {threads if threads is not None else 'library defaults'} requested"
    text += f"; in effect {effective}." if effective else "."
    parts.append(text)

    versions = [f"Python {env['python']}"] if env.get("python") else []
    names = {"numpy": "NumPy", "torch": "torch", "tensorflow": "TensorFlow", "keras": "Keras"}
    recorded = env.get("versions") or {}
    for key in [*names, *sorted(set(recorded) - set(names))]:
        if recorded.get(key):
            versions.append(f"{names.get(key, key)} {recorded[key]}")
    if versions:
        parts.append("Versions: " + ", ".join(versions) + ".")
    if env.get("blas"):
        parts.append(f"BLAS: {env['blas']}.")
    peak = env.get("matmul_gflops") or {}
    peaks = [f"{v:.0f} GFLOP/s {k}" for k, v in peak.items() if isinstance(v, (int, float))]
    if peaks:
        parts.append("Measured matmul peak: " + ", ".join(peaks) + ".")
    if env.get("git_commit"):
        parts.append(f"Commit `{str(env['git_commit'])[:12]}`.")
    paragraph = " ".join(parts)
    command = env.get("command")
    if command:
        if not isinstance(command, str):
            command = " ".join(map(str, command))
        paragraph += f"\n\nCommand: `{command}`"
    return paragraph


def _threads_effective(rows: pd.DataFrame) -> str:
    """What each backend's worker reported, e.g. `numpy-vec: blas 4; torch: torch 4`."""
    if "threads_effective" not in rows.columns:
        return ""
    out = []
    for backend in ordered_backends(rows["backend"]):
        seen = []
        for raw in rows.loc[equals(rows["backend"], backend), "threads_effective"].dropna():
            text = _describe_threads(raw)
            if text and text not in seen:
                seen.append(text)
        if seen:
            out.append(f"{backend}: {' / '.join(seen)}")
    return "; ".join(out)


def _describe_threads(raw) -> str:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return str(raw)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def _status_notice(env: dict) -> str:
    status = env.get("status")
    if status == "complete":
        return ""
    if status == "interrupted":
        return (
            "> **This run was interrupted.** The tables cover the cells that finished before "
            "it stopped; resuming the run folder runs the rest."
        )
    if status == "running":
        return (
            "> **This run had not finished** when this summary was made (or it stopped without "
            "recording its end). The tables cover the cells finished so far."
        )
    status = status or "not recorded"
    return f"> **Run status: {status}.** The tables may not cover the whole sweep."


def _constants_line(rows: pd.DataFrame, config_keys: Sequence[str]) -> str:
    if rows.empty:
        return ""
    fixed = []
    for col in (*CONFIG_KEYS, *SETTINGS[1:], "target_acc"):
        if col in config_keys or col not in rows.columns:
            continue
        values = rows[col]
        if values.nunique(dropna=False) != 1:
            continue
        value = values.iloc[0]
        if _missing(value) and col not in ("threads",):
            continue
        fixed.append(f"{_LABELS.get(col, col)} {format_value(col, value)}")
    backends = ordered_backends(rows["backend"])
    line = f"Backends: {', '.join(backends)}."
    if fixed:
        line += " The same in every cell: " + " · ".join(fixed) + "."
    return line


def _how_to_read(rows: pd.DataFrame, env: dict | None = None) -> str:
    if (env or {}).get("source") == "pytest-benchmark":
        return (
            "**How to read this.** Measured by pytest-benchmark (`pytest tests/benchmarks "
            "--benchmark-only`). Each cell is `s/epoch · ×`: the median round of one training "
            "epoch over the model's samples, after a warm-up round; the first, untimed call "
            "(tracing, compilation) is reported apart in the Warm-up table. × is speed "
            f"relative to {REFERENCE_BACKEND} (>1 is faster); the fastest backend per "
            "batch-size column is **bold**. No accuracy is measured here."
        )
    n = rows.loc[rows["status"] == "ok"].groupby([k for k in GROUP_KEYS], dropna=False).size()
    repeats = (
        f"{int(n.min())}"
        if len(n) and n.min() == n.max()
        else (f"{int(n.min())}–{int(n.max())}" if len(n) else "0")
    )
    return (
        "**How to read this.** Each cell is `test accuracy · s/epoch (±spread) · ×`. "
        "Accuracy is the mean over repeats after the last epoch. "
        "s/epoch is steady-state training time per epoch: the median over epochs 2..E, "
        "evaluation excluded; the first epoch (warm-up, tracing, compilation) is reported apart "
        f"in the Warm-up table. ± is half the min–max spread over repeats ({repeats} per cell), "
        f"shown when there is more than one. × is speed relative to {REFERENCE_BACKEND} in the "
        "same cell (>1 is faster). In each batch-size column the fastest backend's time and the "
        f"most accurate backend's accuracy are **bold** (accuracies within {ACCURACY_TIE} of the "
        "best all count as best; no accuracy is marked when all tie); — means no result."
        + _chaos_note(rows)
    )


ACCURACY_SPLIT = 0.01  # backends of one cell further apart than this get an explanation


def _chaos_note(rows: pd.DataFrame) -> str:
    """A sentence for runs where backends of the same cell end at different accuracies."""
    ok = rows[rows["status"] == "ok"].dropna(subset=["test_acc"])
    keys = [k for k in GROUP_KEYS if k not in ("backend", "device")]
    if ok.empty:
        return ""
    means = ok.groupby([*keys, "backend"], dropna=False)["test_acc"].mean()
    spread = means.groupby(level=list(range(len(keys)))).agg(lambda a: a.max() - a.min())
    split = spread[spread > ACCURACY_SPLIT]
    if split.empty:
        return ""
    sizes = sorted({int(b) for b in split.index.get_level_values("batch_size")})
    where = ", ".join(f"batch {b}" for b in sizes)  # full batches are resolved to n by now
    return (
        f" Where backends of one cell end at different accuracies (here at {where}), they "
        "still applied the same updates from the same start — `python -m bench verify` checks "
        "it — but many small steps at a large learning rate amplify rounding: differences of "
        "1e-7 after the first epoch can grow into different, equally trained weights within a "
        "few epochs. Compare the curves and best_test_acc in results.csv, or use repeats, "
        "before reading a winner into it."
    )


def _lookup(summary: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The summary rows belonging to the cells in `rows`."""
    keys = list(GROUP_KEYS)
    cells = rows[keys].drop_duplicates()
    return summary.merge(cells, on=keys, how="inner")


def _results_table(part: pd.DataFrame, summary: pd.DataFrame) -> str:
    sums = _lookup(summary, part)
    backends = ordered_backends(part["backend"])
    sizes = distinct(part["batch_size"])
    fastest, best = {}, {}
    for bs in sizes:
        col = sums[equals(sums["batch_size"], bs)]
        times = col.dropna(subset=["epoch_s_median"])
        if len(times) > 1:
            fastest[bs] = set(
                times.loc[times["epoch_s_median"] == times["epoch_s_median"].min(), "backend"]
            )
        accs = col.dropna(subset=["test_acc_mean"])
        if len(accs) > 1:
            top = accs["test_acc_mean"].max()
            tied = accs["test_acc_mean"] >= top - ACCURACY_TIE - 1e-12
            if not tied.all():  # all tied: a mark on every row would say nothing
                best[bs] = set(accs.loc[tied, "backend"])
    table = []
    for backend in backends:
        cells = [backend]
        for bs in sizes:
            here = part[equals(part["backend"], backend) & equals(part["batch_size"], bs)]
            s = sums[equals(sums["backend"], backend) & equals(sums["batch_size"], bs)]
            cells.append(
                _result_cell(
                    here,
                    s.iloc[0] if len(s) else None,
                    backend in fastest.get(bs, ()),
                    backend in best.get(bs, ()),
                )
            )
        table.append(cells)
    header = ["backend"] + [f"batch {format_value('batch_size', bs)}" for bs in sizes]
    return _md_table(header, table)


def _result_cell(rows: pd.DataFrame, s, fastest: bool, best: bool) -> str:
    n_rows = len(rows)
    if s is None:
        if n_rows == 0:
            return "—"
        statuses = distinct(rows["status"])
        return "*" + "/".join(str(x) for x in statuses) + "*"
    n = int(s["n"])
    parts = []
    if not _missing(s["test_acc_mean"]):
        acc = f"{s['test_acc_mean']:.3f}"
        acc = f"**{acc}**" if best else acc
        if n > 1 and not _missing(s["test_acc_max"]):
            acc += f" ±{(s['test_acc_max'] - s['test_acc_min']) / 2:.3f}"
        parts.append(acc)
    else:
        parts.append("—")
    if not _missing(s["epoch_s_median"]):
        t = format_seconds(s["epoch_s_median"])
        t = f"**{t}**" if fastest else t
        if n > 1 and s["epoch_s_median"] > 0:
            spread = (s["epoch_s_max"] - s["epoch_s_min"]) / 2 / s["epoch_s_median"]
            t += f" (±{spread * 100:.0f}%)"
        parts.append(t)
    if not _missing(s["speedup_vs_numpy_vec"]):
        parts.append(format_speedup(s["speedup_vs_numpy_vec"]))
    text = " · ".join(parts)
    if n_rows > n:
        text += f" ({n}/{n_rows} ok)"
    return text


def _keyed_table(
    ok: pd.DataFrame,
    summary: pd.DataFrame,
    label_keys: Sequence[str],
    cell,
) -> str:
    """Rows: each configuration (the varying keys) x backend; columns: batch sizes."""
    sums = _lookup(summary, ok)
    sizes = distinct(ok["batch_size"])
    table = []
    for config, part in by_config(ok, label_keys):
        for backend in ordered_backends(part["backend"]):
            mine = sums[equals(sums["backend"], backend)]
            if config is not None:
                for k in label_keys:
                    mine = mine[equals(mine[k], config[k])]
            row = [format_value(k, config[k]) for k in label_keys] if config is not None else []
            row.append(backend)
            for bs in sizes:
                s = mine[equals(mine["batch_size"], bs)]
                here = part[equals(part["backend"], backend) & equals(part["batch_size"], bs)]
                row.append(cell(s.iloc[0], here) if len(s) else "—")
            table.append(row)
    header = [_LABELS.get(k, k) for k in label_keys] + ["backend"]
    header += [f"batch {format_value('batch_size', bs)}" for bs in sizes]
    return _md_table(header, table, n_left=len(label_keys) + 1)


def _warmup_section(ok, summary, label_keys) -> str:
    def cell(s, _rows):
        first, steady = s["first_epoch_s_median"], s["epoch_s_median"]
        if _missing(first):
            return "—"
        if _missing(steady) or steady <= 0:
            return format_seconds(first)
        return f"{format_seconds(first)} · {format_speedup(first / steady)}"

    return "\n".join(
        [
            "## Warm-up",
            "",
            "First epoch (median over repeats) and how many steady-state epochs it is worth: "
            "frameworks pay for tracing, compilation and lazy set-up in epoch 1, so the ratio "
            "shows what a short run costs beyond the s/epoch above.",
            "",
            _keyed_table(ok, summary, label_keys, cell),
        ]
    )


def _compute_section(ok, summary, label_keys, env) -> str:
    has_roofline = ok["roofline"].notna().any()
    if not (has_roofline or ok["gflops"].notna().any()):
        return ""

    def cell(s, _rows):
        if _missing(s["gflops_median"]):
            return "—"
        text = f"{s['gflops_median']:.3g} GFLOP/s"
        if not _missing(s["roofline_median"]):
            text += f" · {s['roofline_median'] * 100:.2g}%"
        return text

    peak = env.get("matmul_gflops") or {}
    peaks = ", ".join(
        f"{v:.0f} GFLOP/s {k}" for k, v in peak.items() if isinstance(v, (int, float))
    )
    text = (
        "Training work per second, counting 6 × weights × samples per epoch (the forward and "
        "backward matrix products)"
    )
    if has_roofline:
        text += ", and its share of the machine's measured matmul peak for the same dtype and "
        text += f"threads ({peaks})" if peaks else "threads"
    return "\n".join(
        ["## Compute", "", text + ".", "", _keyed_table(ok, summary, label_keys, cell)]
    )


def _target_section(ok, summary, label_keys) -> str:
    if not ok["time_to_target_s"].notna().any():
        return ""

    def cell(s, rows):
        reached = int(rows["time_to_target_s"].notna().sum())
        if reached == 0:
            return "not reached"
        text = format_seconds(s["time_to_target_s_median"])
        return text if reached == len(rows) else f"{text} ({reached}/{len(rows)} reached)"

    targets = ok["target_acc"].dropna().unique()
    which = f"test accuracy {targets[0]:g}" if len(targets) == 1 else "each cell's target accuracy"
    return "\n".join(
        [
            "## Time to target",
            "",
            f"Training time until the first epoch at {which} (median over the repeats that got "
            "there; evaluation excluded).",
            "",
            _keyed_table(ok, summary, label_keys, cell),
        ]
    )


def _failed_section(rows: pd.DataFrame, label_keys: Sequence[str]) -> str:
    failed = rows[rows["status"] != "ok"]
    if failed.empty:
        if rows.empty:
            return "## Failed cells\n\nNone (no cell has finished yet)."
        return f"## Failed cells\n\nAll {len(rows)} cells finished ok (cells × repeats)."
    keys = [k for k in label_keys if k not in ("batch_size",)]
    failed = sort_by_keys(failed, [*keys, "backend", "batch_size", "repeat"], rows)
    table = []
    for _, r in failed.iterrows():
        message = r.get("error")
        if _missing(message) or not str(message).strip():
            if r["status"] == "diverged" and not _missing(r.get("diverged_epoch")):
                message = f"diverged at epoch {int(r['diverged_epoch'])}"
            else:
                message = ""
        table.append(
            [format_value(k, r[k]) for k in keys]
            + [
                str(r["backend"]),
                format_value("batch_size", r["batch_size"]),
                format_value("repeat", r["repeat"]),
                str(r["status"]),
                _one_line(message),
            ]
        )
    header = [_LABELS.get(k, k) for k in keys] + ["backend", "batch", "repeat", "status", "error"]
    return "\n".join(
        [
            "## Failed cells",
            "",
            f"{len(failed)} of {len(rows)} cells (cells × repeats) did not finish ok; tracebacks "
            "are in logs/.",
            "",
            _md_table(header, table, n_left=len(header)),
        ]
    )


def _scaling_section(ok: pd.DataFrame) -> str:
    from .scaling import AXES as SCALING_AXES
    from .scaling import fit_slopes

    slopes = fit_slopes(ok)
    if slopes.empty:
        return ""
    studies = slopes[["part", "axis", "x_min", "x_max"]].drop_duplicates(["part", "axis"])
    header = ["backend"] + [
        f"{SCALING_AXES[r.axis]} {r.x_min:g}–{r.x_max:g} ({r.part})"
        for r in studies.itertuples()
    ]
    table = []
    for backend in ordered_backends(slopes["backend"]):
        cells = [backend]
        for study in studies.itertuples():
            hit = slopes[(slopes["backend"] == backend) & (slopes["part"] == study.part)]
            if hit.empty:
                cells.append("—")
            else:
                r = hit.iloc[0]
                cells.append(f"{r.slope:+.2f} (r² {r.r2:.2f}, {r.points} pts)")
        table.append(cells)
    return "\n".join([
        "## Scaling",
        "",
        "Slope of log(s/epoch) against log(the axis), fitted by least squares over the cells "
        "of each part. Against training samples or hidden width, +1 is proportional growth. "
        "Against batch size (the same samples per epoch cut into fewer, larger steps), −1 means "
        "each step costs the same whatever its size (per-call overhead dominates) and 0 means "
        "the epoch costs the same however it is cut (the arithmetic dominates).",
        "",
        _md_table(header, table),
    ])


# --------------------------------------------------------------------------- files


def write_report(run_dir: str | Path) -> list[Path]:
    """Write summary.md and plots/*.png into a run folder; return the files written."""
    from bench import plots as plotting

    run_dir = Path(run_dir)
    results, curves = load_run(run_dir)
    env = load_env(run_dir)
    images = plotting.write_plots(results, curves, run_dir / "plots")
    relative = [p.relative_to(run_dir) for p in images]
    summary = run_dir / "summary.md"
    summary.write_text(render_summary(results, curves, env, plots=relative), encoding="utf-8")
    return [summary, *images]
