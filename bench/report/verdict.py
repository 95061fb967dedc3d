"""The verdict at the top of summary.md, generated from the tables: per dataset, which backend
is fastest at which batch sizes and by how much, where accuracies agree and where they part
(and why, when the run knows), where one backend needs more than twice the memory of another,
what the first epoch costs, and whether the figures can be trusted at all.

A backend is called fastest only when its lead over the next one is clear: the 95% interval of
the ratio of their times (bench.report.intervals, from paired rounds, repeats or steady epochs)
excludes 1 and the ratio is beyond SPEED_THRESHOLD. Otherwise the verdict says there is no clear
difference, or, without samples enough for an interval, that none can be named.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from bench.report.intervals import Interval
from bench.report.markdown import (
    format_mb,
    format_seconds,
    format_speedup,
    format_value,
    label,
    plural,
)
from bench.report.noise import Assessment, assess, noise_warning
from bench.report.plugins import parity, plugin_names
from bench.report.ratios import open_comparisons, ratio_table, settled_cells, speed_ratios
from bench.report.replayed import parting_cause
from bench.report.samples import CellTimes
from bench.report.tables import (
    GROUP_KEYS,
    MEMORY_COLUMNS,
    cell_key,
    distinct,
    equals,
    is_missing,
    ordered_backends,
)

# A lead smaller than this is no practical difference, even when its interval excludes 1.
SPEED_THRESHOLD = 0.05
ACCURACY_SPLIT = 0.01  # backends of one cell further apart than this in accuracy "part"
MEMORY_SPLIT = 2.0  # backends of one cell further apart than this factor in peak memory are named
MEMORY_NAMED = 4  # backends named per memory figure; the rest are counted with their range
COLUMN_KEYS = [k for k in GROUP_KEYS if k != "backend"]  # one comparison per these


def verdict_section(
    rows: pd.DataFrame, summary: pd.DataFrame, env: dict, curves: pd.DataFrame | None = None
) -> str:
    """`## Verdict` and a few short lines, then each backend's speed against the reference
    with its interval; "" when no cell finished ok. `curves` (curves.csv) gives the steady
    epochs and paired rounds the intervals come from."""
    if summary.empty:
        return ""
    lines = []
    times, ratios, settled = _timing(rows, summary, curves)
    warning = noise_warning(env, rows, settled, open_comparisons(ratios, SPEED_THRESHOLD))
    if warning:
        lines.append(warning)
    for dataset in distinct(summary["dataset"]):
        sums = summary[equals(summary["dataset"], dataset)]
        here = rows[equals(rows["dataset"], dataset)]
        name = f"**{format_value('dataset', dataset)}**"
        devices = _devices(sums)
        for device in devices:  # cells on different devices are not compared
            here_sums = sums if device is None else sums[equals(sums["device"], device)]
            speed = _speed_line(here_sums, times)
            if speed:
                on = f" on {format_value('device', device)}" if len(devices) > 1 else ""
                lines.append(f"{name}, speed{on}: {speed}")
        accuracy = _accuracy_line(sums, here, env)
        if accuracy:
            lines.append(f"{name}, accuracy: {accuracy}")
        memory = _memory_line(sums)
        if memory:
            lines.append(f"{name}, memory: {memory}")
    warmup = _warmup_line(summary)
    if warmup:
        lines.append(warmup)
    if not lines:
        return ""
    text = "\n".join(["## Verdict", "", *(f"- {line}" for line in lines)])
    table = ratio_table(ratios, SPEED_THRESHOLD)
    return text + ("\n\n" + table if table else "")


def timing_assessment(
    env: dict, rows: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame | None = None
) -> Assessment:
    """The run's own noise verdict, the one summary.md opens with (bench.report.noise's
    `assess`, a noisy cell counting only where a comparison it is in stays open): for tools
    that quote a run only when it was quiet (scripts/front-page)."""
    return assess(env, rows, precise=_timing(rows, summary, curves)[2])


def _timing(rows: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame | None):
    """(the cells' timing samples, each backend's speed against the reference with its
    interval, the cell_ids whose timing leaves no comparison open)."""
    times = CellTimes(rows, curves)
    ratios = speed_ratios(summary, times, SPEED_THRESHOLD)
    return times, ratios, settled_cells(rows, ratios, times, SPEED_THRESHOLD)


def _devices(sums: pd.DataFrame) -> list:
    """The devices of `sums` ([None] where the summary has no device key)."""
    return distinct(sums["device"]) if "device" in sums.columns else [None]


# --------------------------------------------------------------------------- speed


def _comparisons(sums: pd.DataFrame, times: CellTimes) -> pd.DataFrame:
    """Per cell column (every key but the backend): the fastest backend, the next one, the
    ratio of their times with its 95% interval (bench.report.intervals), and whether the lead
    is clear (the interval excludes 1 and the ratio is beyond SPEED_THRESHOLD)."""
    columns = ["batch_size", "fastest", "next", "ratio", "lo", "hi", "beyond", "known", "n"]
    timed = sums.dropna(subset=["epoch_s_median"]).sort_values("epoch_s_median", kind="stable")
    if timed.empty:
        return pd.DataFrame(columns=columns)
    out = []
    groups: dict[tuple, list[dict]] = {}  # grouped once, in order of appearance
    for record in timed[list(GROUP_KEYS)].to_dict("records"):
        groups.setdefault(cell_key(record, COLUMN_KEYS), []).append(record)
    for group in groups.values():
        if len(group) < 2:
            continue
        fast, nxt = group[0], group[1]
        interval = times.speedup(cell_key(nxt), cell_key(fast))
        out.append(
            {
                "batch_size": fast["batch_size"],
                "fastest": fast["backend"],
                "next": nxt["backend"],
                "ratio": interval.ratio,
                "lo": interval.lo,
                "hi": interval.hi,
                "beyond": interval.beyond(SPEED_THRESHOLD),
                "known": interval.known,
                "n": interval.n,
            }
        )
    return pd.DataFrame(out, columns=columns)


def _by_batch(comparisons: pd.DataFrame) -> list[tuple]:
    """Per batch size: (batch size, winner or None or "mixed", its comparisons)."""
    out = []
    for bs in distinct(comparisons["batch_size"]):
        here = comparisons[equals(comparisons["batch_size"], bs)]
        winners = set(here.loc[here["beyond"].astype(bool), "fastest"])
        if not winners:
            out.append((bs, None, here))
        elif len(winners) == 1 and here["beyond"].all():
            out.append((bs, winners.pop(), here))
        else:
            out.append((bs, "mixed", here))
    return out


def _batches(sizes: list) -> str:
    names = [format_value("batch_size", b) for b in sizes]
    if len(names) == 1:
        return f"batch {names[0]}"
    if len(names) <= 3:
        return "batches " + ", ".join(names[:-1]) + " and " + names[-1]
    return f"batches {names[0]}–{names[-1]}"


def _interval(r) -> str:
    return Interval(r["ratio"], r["lo"], r["hi"], int(r["n"])).text()


def _lead(here: pd.DataFrame) -> str:
    """`1.8× [1.5, 2.2] numpy-vec` for one comparison, `1.8–3.1× numpy-vec` for several."""
    nexts = ordered_backends(here["next"])
    against = nexts[0] if len(nexts) == 1 else "the next fastest"
    if len(here) == 1:
        return f"{_interval(here.iloc[0])} {against}, 95% interval"
    lo, hi = format_speedup(here["ratio"].min()), format_speedup(here["ratio"].max())
    return f"{lo[:-1]}–{hi} {against}, every interval above 1" if lo != hi else f"{hi} {against}"


def _unclear(sizes: list, here: pd.DataFrame) -> str:
    """No winner named: too few samples for an interval, or no clear difference."""
    ratios = pd.to_numeric(here["ratio"], errors="coerce")
    if ratios.isna().all():  # no steady epoch at all (a 1-epoch run): no ratio to show
        return (
            f"at {_batches(sizes)} too few steady epochs or repeats for an interval, so no "
            "winner is named (run 5 epochs or more)"
        )
    best = here.loc[ratios.idxmax()]
    pair = f"{best['fastest']} {_interval(best)} {best['next']}"
    if not here["known"].astype(bool).all():
        return (
            f"at {_batches(sizes)} too few steady epochs or repeats for an interval, so no "
            f"winner is named ({pair}; run 5 epochs or more)"
        )
    return f"at {_batches(sizes)} no clear difference ({pair})"


def _speed_line(sums: pd.DataFrame, times: CellTimes) -> str:
    comparisons = _comparisons(sums, times)
    if comparisons.empty:
        only = ordered_backends(sums["backend"])
        return f"only {only[0]} has times here; nothing to compare." if len(only) == 1 else ""
    groups: list[tuple] = []  # consecutive batch sizes with the same outcome
    for bs, winner, here in _by_batch(comparisons):
        if groups and groups[-1][0] == winner and winner not in (None, "mixed"):
            groups[-1][1].append(bs)
            groups[-1][2].append(here)
        else:
            groups.append((winner, [bs], [here]))
    phrases = []
    for winner, sizes, frames in groups:
        here = pd.concat(frames)
        if winner is None:
            phrases.append(_unclear(sizes, here))
        elif winner == "mixed":
            counts = here.loc[here["beyond"].astype(bool), "fastest"].value_counts()
            who = ", ".join(f"{b} in {n}" for b, n in counts.items())
            phrases.append(
                f"at {_batches(sizes)} it depends on the settings ({who} of {len(here)}, "
                "no clear difference in the rest)"
                if not here["beyond"].all()
                else f"at {_batches(sizes)} it depends on the settings ({who} of {len(here)})"
            )
        else:
            phrases.append(f"{winner} fastest at {_batches(sizes)} ({_lead(here)})")
    return "; ".join(phrases) + "."


# --------------------------------------------------------------------------- accuracy


def accuracy_splits(rows: pd.DataFrame) -> pd.DataFrame:
    """Cell columns whose backends end more than ACCURACY_SPLIT apart in mean test accuracy:
    the column's keys, `low`/`high` (backend, accuracy) and `gap`."""
    ok = rows[rows["status"] == "ok"].dropna(subset=["test_acc"])
    columns = [*COLUMN_KEYS, "low", "high", "gap"]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    means = ok.groupby([*COLUMN_KEYS, "backend"], dropna=False)["test_acc"].mean()
    means = means.reset_index().sort_values("test_acc", kind="stable")
    grouped = means.groupby(COLUMN_KEYS, dropna=False, sort=False)
    both = grouped.head(1).merge(grouped.tail(1), on=COLUMN_KEYS, suffixes=("", "_high"))
    both = both[(both["test_acc_high"] - both["test_acc"] > ACCURACY_SPLIT)]
    out = both[COLUMN_KEYS].copy()
    out["low"] = list(zip(both["backend"], both["test_acc"]))
    out["high"] = list(zip(both["backend_high"], both["test_acc_high"]))
    out["gap"] = both["test_acc_high"] - both["test_acc"]
    return out.reset_index(drop=True)[columns]


def parity_sentence(env: dict) -> str:
    """What `bench verify` measured for this run (env.json `verify`), or where to check."""
    verify = env.get("verify")
    if not isinstance(verify, dict) or not isinstance(verify.get("worst"), dict):
        return "`python -m bench verify` checks it"
    worst = [
        v
        for by_dtype in verify["worst"].values()
        if isinstance(by_dtype, dict)
        for v in by_dtype.values()
        if isinstance(v, (int, float)) and math.isfinite(v)
    ]
    epochs = verify.get("epochs")
    after = f" after {plural(int(epochs), 'epoch')}" if isinstance(epochs, int) else ""
    if verify.get("passed") is False:
        return (
            f"but `bench verify` found them apart beyond its tolerance{after}, so part "
            "of the gap may be a real difference"
        )
    if not worst:
        return "`bench verify` passed on this machine"
    return f"`bench verify`: within {max(worst):.1g}{after} on this machine"


def _within_repeats(split, rows: pd.DataFrame) -> bool:
    """Whether the two backends' accuracies are within the noise of their repeats: each has
    2 or more ok repeats and the 95% interval of the difference of their means (Welch's t)
    holds 0, or, where the repeats of both agree exactly, their ranges overlap."""
    samples = []
    for backend, _ in (split["low"], split["high"]):
        mine = rows[(rows["status"] == "ok") & equals(rows["backend"], backend)]
        for k in COLUMN_KEYS:
            mine = mine[equals(mine[k], split[k])]
        acc = pd.to_numeric(mine["test_acc"], errors="coerce").dropna().to_numpy(dtype=float)
        if len(acc) < 2:
            return False
        samples.append(acc)
    low, high = samples
    if np.ptp(low) <= 1e-9 and np.ptp(high) <= 1e-9:  # repeats that agree: no spread to test
        return bool(high.min() <= low.max())
    with warnings.catch_warnings():  # repeats that nearly agree: scipy's precision note
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_ind(high, low, equal_var=False).confidence_interval(0.95)
    return bool(ci.low <= 0 <= ci.high)


def _where(split, keys: list[str]) -> str:
    """`batch 1 with loss mse`: a cell column named by its batch size and varying keys."""
    text = f"batch {format_value('batch_size', split['batch_size'])}"
    if keys:
        text += " with " + ", ".join(f"{label(k)} {format_value(k, split[k])}" for k in keys)
    return text


_NAMING_ORDER = (
    "loss",
    "optimizer",
    "hidden",
    "activation",
    "lr",
    "epochs",
    "dtype",
    "threads",
    "device",
    "part",
)


def _naming_keys(sums: pd.DataFrame) -> list[str]:
    """The fewest keys (in a reader's order: loss first, the part last) that tell the
    configurations of `sums` apart; keys that follow from others (a part's own loss and
    learning rate) are left out."""
    others = [k for k in COLUMN_KEYS if k not in ("dataset", "batch_size")]
    order = [k for k in _NAMING_ORDER if k in others] + [
        k for k in others if k not in _NAMING_ORDER
    ]
    chosen: list[str] = []
    count = 1
    for k in order:
        n = len(sums[[*chosen, k]].drop_duplicates())
        if n > count:
            chosen.append(k)
            count = n
    return chosen


def _accuracy_line(sums: pd.DataFrame, rows: pd.DataFrame, env: dict) -> str:
    have = sums.dropna(subset=["test_acc_mean"])
    compared = have.groupby(COLUMN_KEYS, dropna=False)["backend"].nunique()
    failed = _failures(rows)
    n_compared = int((compared > 1).sum())
    if not n_compared:
        return failed + "." if failed else ""
    splits = accuracy_splits(rows)
    keys = _naming_keys(have)
    if splits.empty:
        text = f"backends agree within {ACCURACY_SPLIT:g} in every cell"
    else:
        shown = [
            f"{_where(r, keys)} ({r['low'][0]} {r['low'][1]:.3f}, "
            f"{r['high'][0]} {r['high'][1]:.3f})"
            for _, r in splits.head(3).iterrows()
        ]
        text = "backends part at " + "; ".join(shown)
        if len(splits) > 3:
            text += f" and {len(splits) - 3} more cells (up to {splits['gap'].max():.3f} apart)"
        if n_compared > len(splits):
            others = plural(n_compared - len(splits), "other cell")
            text += f", and agree within {ACCURACY_SPLIT:g} in the {others}"
        unchecked = _unverified_plugins(splits, env)
        if all(_within_repeats(r, rows) for _, r in splits.iterrows()):
            text += "; within the noise of their repeats (the 95% interval of the gap holds 0)"
        else:
            text += " — " + parting_cause(env, unchecked, parity_sentence(env))
    if failed:
        text += f"; {failed}"
    return text + "."


def _unverified_plugins(splits: pd.DataFrame, env: dict) -> list[str]:
    """Users' backends among the parted cells that this run's `bench verify` did not pass."""
    parted = {b for _, r in splits.iterrows() for b in (r["low"][0], r["high"][0])}
    return [b for b in plugin_names(env) if b in parted and parity(env, b) != "verified"]


def _failures(rows: pd.DataFrame) -> str:
    """`keras: 1 error at batch 32`: cells that did not finish ok, in few words."""
    bad = rows[rows["status"] != "ok"]
    if bad.empty:
        return ""
    parts = []
    for (backend, status), group in bad.groupby(["backend", "status"], sort=False):
        sizes = distinct(group["batch_size"])
        parts.append(f"{backend}: {len(group)} {status} at {_batches(sizes)}")
    return ", ".join(parts) + " (see Failed cells)"


# --------------------------------------------------------------------------- memory


def _memory_line(sums: pd.DataFrame) -> str:
    """`keras used 9.5× the host memory of numpy-vec (893 vs 94 MB peak), torch 3.8× (362 vs
    94 MB)`: per device and memory figure, each backend against the one that needs least of it
    (lowest median over the dataset's cells), compared cell by cell where both ran, and named
    where they are more than MEMORY_SPLIT apart. Pairs of heavier backends follow from those
    figures and are not named apart."""
    keys = list(dict.fromkeys(k for k in (*COLUMN_KEYS, "device") if k in sums.columns))
    devices = _devices(sums)
    clauses = []
    for device in devices:
        here = sums if device is None else sums[equals(sums["device"], device)]
        for column, figure in MEMORY_COLUMNS.items():
            clause = _memory_clause(here, f"{column}_median", figure, keys)
            if clause:
                where = f"on {format_value('device', device)}, " if len(devices) > 1 else ""
                clauses.append(where + clause)
    return "; ".join(clauses) + "." if clauses else ""


def _memory_clause(sums: pd.DataFrame, column: str, figure: str, keys: list[str]) -> str:
    have = sums.dropna(subset=[column])
    have = have[have[column] > 0]
    if have["backend"].nunique() < 2:
        return ""
    medians = have.groupby("backend")[column].median()
    least = ordered_backends(medians.index[medians == medians.min()])[0]
    mine = have.loc[have["backend"] == least, [*keys, column]]
    pairs = have[have["backend"] != least].merge(mine, on=keys, suffixes=("", "_least"))
    pairs["_ratio"] = pairs[column] / pairs[f"{column}_least"]
    found = []
    for backend, cells in pairs.groupby("backend", sort=False):
        apart = cells[(cells["_ratio"] > MEMORY_SPLIT) | (cells["_ratio"] < 1 / MEMORY_SPLIT)]
        if len(apart):
            found.append((apart["_ratio"].max(), backend, apart, len(cells)))
    found.sort(key=lambda f: -f[0])
    phrases = []
    for _, backend, apart, n in found[:MEMORY_NAMED]:
        ratio = _ratio_span(apart["_ratio"])
        mb = f"{_mb_span(apart[column])} vs {_mb_span(apart[f'{column}_least'])} MB"
        cells = f" in {len(apart)} of {n} cells" if len(apart) < n else ""
        if phrases:
            phrases.append(f"{backend} {ratio} ({mb}{cells})")
        else:
            phrases.append(
                f"{backend} used {ratio} the {figure} memory of {least} ({mb} peak{cells})"
            )
    if len(found) > MEMORY_NAMED:
        rest = pd.concat([f[2]["_ratio"] for f in found[MEMORY_NAMED:]])
        more = plural(len(found) - MEMORY_NAMED, "more backend")
        phrases.append(f"and {more} {_ratio_span(rest)}")
    return ", ".join(phrases)


def _ratio_span(ratios: pd.Series) -> str:
    """`3.1×` or `2.4–3.1×`: the ratios of one or several cells."""
    lo, hi = format_speedup(ratios.min()), format_speedup(ratios.max())
    return hi if lo == hi else f"{lo[:-1]}–{hi}"


def _mb_span(values: pd.Series) -> str:
    """`893` or `810–893`: the MB of one or several cells."""
    lo, hi = format_mb(values.min(), unit=False), format_mb(values.max(), unit=False)
    return hi if lo == hi else f"{lo}–{hi}"


# --------------------------------------------------------------------------- warm-up


def _warmup_line(summary: pd.DataFrame) -> str:
    ratios = summary.assign(
        _ratio=summary["first_epoch_s_median"] / summary["epoch_s_median"]
    ).dropna(subset=["_ratio"])
    if ratios.empty:
        return ""
    per = ratios.groupby("backend").agg(
        ratio=("_ratio", "median"), first=("first_epoch_s_median", "median")
    )
    order = per.sort_values("ratio", ascending=False)
    items = [
        f"{b} {format_speedup(r.ratio)} ({format_seconds(r.first)})"
        for b, r in order.iterrows()
        if not is_missing(r.ratio)
    ]
    return (
        "Warm-up: the first epoch costs "
        + ", ".join(items)
        + " a steady epoch (median over cells)."
    )
