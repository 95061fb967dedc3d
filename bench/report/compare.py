"""`bench compare BASE NEW`: two run folders' cells matched by configuration, each with its
time ratio (NEW over BASE) and 95% interval, a Mann-Whitney U test where the samples can
reach its level, and the change in test accuracy; and what differs between the two runs'
machines and software.

    comparison = compare_runs("results/before", "results/after")
    print(comparison.markdown())

A change is "slower" (or "faster") only when the ratio's interval excludes 1, the ratio is
beyond the practical threshold, and, where the samples can reach U_LEVEL, the U test agrees;
otherwise it is "~". Accuracy is "lower" when its drop is beyond its noise: beyond the 95%
interval of the difference of the repeats' means where both sides have 2 repeats or more,
beyond ACCURACY_TOLERANCE otherwise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bench.report.compare_env import env_differences, machine_differs
from bench.report.intervals import Interval, clean, mann_whitney, ratio_interval
from bench.report.loading import load_env, load_run
from bench.report.markdown import format_seconds, format_value, label, md_table
from bench.report.samples import CellTimes
from bench.report.tables import GROUP_KEYS, cell_key, ok_rows, ordered_backends, varying

U_LEVEL = 0.002  # asv's level for its Mann-Whitney U test
THRESHOLD = 0.05  # a change smaller than 5% is not called one
ACCURACY_TOLERANCE = 0.01  # an accuracy drop beyond this counts when repeats give no noise

COLUMNS = (
    *GROUP_KEYS,
    "base_s",
    "new_s",
    "ratio",
    "lo",
    "hi",
    "n_base",
    "n_new",
    "p_value",
    "change",
    "base_acc",
    "new_acc",
    "acc_change",
    "acc_lo",
    "acc_hi",
    "accuracy",
)


@dataclass
class Comparison:
    base: Path
    new: Path
    table: pd.DataFrame  # one row per matched cell: COLUMNS
    differences: list[str] = field(default_factory=list)  # of machine and software
    machine_differs: bool = False
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    threshold: float = THRESHOLD

    def failures(self, fail_above: float | None) -> pd.DataFrame:
        """The cells that fail `--fail-above PCT` (`fail_above`, a fraction): a significant
        slowdown beyond it, or an accuracy drop beyond its noise."""
        t = self.table
        if fail_above is None or t.empty:
            return t.iloc[:0]
        slow = (t["change"] == "slower") & (t["ratio"] > 1 + fail_above)
        return t[slow | (t["accuracy"] == "lower")]

    def markdown(self) -> str:
        return comparison_markdown(self)


def compare_runs(base, new, threshold: float = THRESHOLD) -> Comparison:
    """Compare run folder `new` with run folder `base` (both as `bench run` or `bench report
    --pytest-benchmark` wrote them)."""
    base, new = Path(base), Path(new)
    (b_results, b_curves), (n_results, n_curves) = load_run(base), load_run(new)
    b_env, n_env = load_env(base), load_env(new)
    b_times, n_times = CellTimes(b_results, b_curves), CellTimes(n_results, n_curves)
    b_ok, n_ok = ok_rows(b_results), ok_rows(n_results)
    b_cells = {cell_key(r): r for r in b_ok[list(GROUP_KEYS)].to_dict("records")}
    n_cells = {cell_key(r): r for r in n_ok[list(GROUP_KEYS)].to_dict("records")}
    rows = []
    for key, record in n_cells.items():
        if key not in b_cells:
            continue
        rows.append(
            _compare_cell(
                record,
                b_times.samples(key),
                n_times.samples(key),
                _accuracies(b_ok, key),
                _accuracies(n_ok, key),
                threshold,
            )
        )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return Comparison(
        base=base,
        new=new,
        table=table,
        differences=env_differences(b_env, n_env),
        machine_differs=machine_differs(b_env, n_env),
        only_base=[_name(b_cells[k]) for k in b_cells if k not in n_cells],
        only_new=[_name(n_cells[k]) for k in n_cells if k not in b_cells],
        threshold=threshold,
    )


def _accuracies(ok: pd.DataFrame, key: tuple) -> np.ndarray:
    mask = np.ones(len(ok), dtype=bool)
    for k, v in zip(GROUP_KEYS, key):
        col = ok[k]
        mask &= (col.isna() if v is None else (col == v).fillna(False)).to_numpy(dtype=bool)
    acc = pd.to_numeric(ok.loc[mask, "test_acc"], errors="coerce").to_numpy(dtype=float)
    return acc[np.isfinite(acc)]


def _compare_cell(record, base, new, base_acc, new_acc, threshold) -> dict:
    interval = ratio_interval(new, base)
    p = mann_whitney(base, new, U_LEVEL)
    change = "~"
    if not interval.known:
        change = "too few samples"
    elif interval.beyond(threshold) and (p is None or p < U_LEVEL):
        change = "slower" if interval.ratio > 1 else "faster"
    acc = _accuracy_change(base_acc, new_acc)
    return {
        **{k: record[k] for k in GROUP_KEYS},
        "base_s": float(np.median(base)) if len(clean(base)) else math.nan,
        "new_s": float(np.median(new)) if len(clean(new)) else math.nan,
        "ratio": interval.ratio,
        "lo": interval.lo,
        "hi": interval.hi,
        "n_base": len(clean(base)),
        "n_new": len(clean(new)),
        "p_value": math.nan if p is None else p,
        "change": change,
        **acc,
    }


def _accuracy_change(base: np.ndarray, new: np.ndarray) -> dict:
    """The change in mean test accuracy, its 95% interval (Welch's t over the repeats, where
    both sides have 2 or more with some spread) and whether it is "lower", "higher" or "~"."""
    out = {"base_acc": math.nan, "new_acc": math.nan, "acc_change": math.nan}
    out.update(acc_lo=math.nan, acc_hi=math.nan, accuracy="")
    if not len(base) or not len(new):
        return out
    diff = float(new.mean() - base.mean())
    out.update(base_acc=float(base.mean()), new_acc=float(new.mean()), acc_change=diff)
    spread = len(base) >= 2 and len(new) >= 2 and max(np.ptp(base), np.ptp(new)) > 1e-9
    if spread:
        with warnings.catch_warnings():  # repeats that nearly agree: scipy's precision note
            warnings.simplefilter("ignore", RuntimeWarning)
            ci = stats.ttest_ind(new, base, equal_var=False).confidence_interval(0.95)
        out.update(acc_lo=float(ci.low), acc_hi=float(ci.high))
        beyond = ci.high < 0 or ci.low > 0
    else:  # one repeat a side, or repeats that agree exactly: the difference is the figure
        beyond = abs(diff) > ACCURACY_TOLERANCE
    out["accuracy"] = ("lower" if diff < 0 else "higher") if beyond else "~"
    return out


def _name(record: dict, keys=None) -> str:
    keys = keys or [k for k in GROUP_KEYS if k != "part"]
    return " · ".join(f"{label(k)} {format_value(k, record[k])}" for k in keys)


# --------------------------------------------------------------------------- output


def _ratio_text(r) -> str:
    if not math.isfinite(r["ratio"]):
        return "–"
    return Interval(r["ratio"], r["lo"], r["hi"]).text()


def _accuracy_text(r) -> str:
    if not math.isfinite(r["acc_change"]):
        return "–"
    text = f"{r['base_acc']:.3f} → {r['new_acc']:.3f}"
    if math.isfinite(r["acc_lo"]):
        text += f" ({r['acc_change']:+.3f} [{r['acc_lo']:+.3f}, {r['acc_hi']:+.3f}])"
    return text + (f" {r['accuracy']}" if r["accuracy"] not in ("", "~") else "")


def comparison_markdown(c: Comparison) -> str:
    lines = [f"# mlp-bench compare: `{c.base}` → `{c.new}`", ""]
    if c.differences:
        lines.append("**The two runs differ in:**")
        lines.append("")
        lines += [f"- {d}" for d in c.differences]
        lines.append("")
        if c.machine_differs:
            lines.append(
                "**Warning:** they ran on different machines, so their time ratios compare the "
                "machines as well as the code."
            )
            lines.append("")
    t = c.table
    if t.empty:
        lines.append("No cell of one run matches a cell of the other (same configuration).")
    else:
        keys = [k for k in GROUP_KEYS if k in varying(t, GROUP_KEYS) or k == "backend"]
        order = ordered_backends(t["backend"])
        t = t.assign(_b=t["backend"].map(order.index)).sort_values(["_b", *keys], kind="stable")
        body = [
            [format_value(k, r[k]) for k in keys]
            + [
                format_seconds(r["base_s"]),
                format_seconds(r["new_s"]),
                _ratio_text(r),
                "–" if not math.isfinite(r["p_value"]) else f"{r['p_value']:.2g}",
                r["change"],
                _accuracy_text(r),
            ]
            for r in t.to_dict("records")
        ]
        header = [label(k) for k in keys] + [
            "base",
            "new",
            "new / base time, 95% interval",
            "U test p",
            "change",
            "test accuracy",
        ]
        lines.append(md_table(header, body, n_left=len(keys)))
        lines.append("")
        counts = t["change"].value_counts()
        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        lines.append(
            f"{len(t)} matched cells: {summary}. A change is called faster or slower when "
            f"its 95% interval excludes 1, the ratio is beyond {100 * c.threshold:g}% and, "
            f"where the samples can reach it, the Mann-Whitney U test has p < {U_LEVEL:g} "
            "(– where they cannot)."
        )
    for what, names in (("only in the base run", c.only_base), ("only in the new run", c.only_new)):
        if names:
            shown = "; ".join(names[:5]) + (
                f"; and {len(names) - 5} more" if len(names) > 5 else ""
            )
            lines += ["", f"{len(names)} cell(s) {what}: {shown}."]
    return "\n".join(lines).rstrip() + "\n"


def github_benchmarks(c: Comparison) -> list[dict]:
    """The new run's times in github-action-benchmark's `customSmallerIsBetter` format."""
    out = []
    keys = [k for k in GROUP_KEYS if k not in ("part",)]
    shown = [k for k in keys if k in varying(c.table, keys) or k in ("backend", "batch_size")]
    for r in c.table.to_dict("records"):
        if not math.isfinite(r["new_s"]):
            continue
        out.append(
            {
                "name": " ".join(f"{k}={format_value(k, r[k])}" for k in shown),
                "unit": "s/epoch",
                "value": r["new_s"],
                "extra": f"new / base {_ratio_text(r)}: {r['change']}",
            }
        )
    return out
