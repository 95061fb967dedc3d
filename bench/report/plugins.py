"""`## Your backends` in summary.md: each user's backend (env.json's `plugins`) placed against
every built-in backend of the run, from the records alone.

For each of them: its epoch time against each built-in backend's, over the cells both ran
(the geometric mean of the ratios, and their range), its test accuracy beside theirs, and
whether the run may claim it computes what the built-in backends do. That claim rests on
`bench verify` only: a backend checked in this run (`bench run --verify`, env.json's `verify`)
is "verified" or "apart"; any other is "not verified", with the command that checks it.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter

import numpy as np
import pandas as pd

from bench.report.markdown import plural
from bench.report.tables import GROUP_KEYS

_CELL_KEYS = [k for k in GROUP_KEYS if k != "backend"]  # one comparison per these
SAME_SPEED = 0.05  # epoch times closer than this are no practical difference (as the verdict's)


def plugin_names(env: dict) -> list[str]:
    """The run's users' backends (env.json's `plugins`), in their recorded order."""
    plugins = env.get("plugins")
    return list(plugins) if isinstance(plugins, dict) else []


def short_name(backend: str) -> str:
    """`file.py:Class` for `/a/path/file.py:Class`; other names as they are."""
    target, sep, attr = str(backend).rpartition(":")
    return f"{os.path.basename(target)}:{attr}" if sep and target.endswith(".py") else backend


def display_names(
    results: pd.DataFrame, curves: pd.DataFrame | None, env: dict
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """The run's records with each backend named by a file path (`/a/path/file.py:Class`) read
    as `file.py:Class`, where that short name is unique in the run: the report's tables,
    verdict and figures then name it as its author does. results.csv and env.json keep the
    full path (what a resume and `bench verify` need)."""
    names = set(results["backend"].dropna().astype(str)) if "backend" in results else set()
    short = {n: short_name(n) for n in names if short_name(n) != n}
    counts = Counter(short.values())
    mapping = {n: s for n, s in short.items() if counts[s] == 1 and s not in names}
    if not mapping:
        return results, curves, env
    results = results.assign(backend=results["backend"].replace(mapping))
    if curves is not None and "backend" in curves:
        curves = curves.assign(backend=curves["backend"].replace(mapping))
    text = json.dumps(env)
    for full, name in sorted(mapping.items(), key=lambda item: -len(item[0])):
        text = text.replace(json.dumps(full)[1:-1], json.dumps(name)[1:-1])
    return results, curves, json.loads(text)


def verify_command(backend: str, env: dict | None = None) -> str:
    """The command that checks `backend`, naming its file as the run recorded it (env.json's
    plugins: relative to the current folder where it lies below it), not its short name."""
    target = backend
    info = ((env or {}).get("plugins") or {}).get(backend)
    if isinstance(info, dict) and info.get("file") and info.get("class"):
        path = os.path.abspath(str(info["file"]))
        here = os.getcwd()
        if os.path.commonpath([path, here]) == here:
            path = os.path.relpath(path, here)
        target = f"{path}:{info['class']}"
    return f"`python -m bench verify --backends {target}`"


def parity(env: dict, backend: str) -> str | None:
    """What this run's `bench verify` record says of `backend`: "verified" (it ran every case
    it supports within tolerance), "apart" (a case failed or erred), or None (not checked)."""
    verify = env.get("verify")
    if not isinstance(verify, dict):
        return None
    worst = (verify.get("worst") or {}).get(backend)
    prefixes = (f"{backend} ", f"{backend}:")
    failed = [line for line in verify.get("failed") or () if str(line).startswith(prefixes)]
    if failed or (isinstance(worst, dict) and any(v is None for v in worst.values())):
        return "apart"
    if isinstance(worst, dict) and worst:
        return "verified"
    return None


def parity_clause(env: dict, backend: str) -> str:
    """One clause on whether `backend` computes what the built-in backends compute."""
    state = parity(env, backend)
    if state == "verified":
        return "verified in this run: it computes what numpy-vec does (`bench verify`)"
    if state == "apart":
        return (
            "`bench verify` in this run found it apart from numpy-vec: accuracy gaps may be "
            f"real differences; see {verify_command(backend, env)}"
        )
    return f"not verified: {verify_command(backend, env)}"


def plugins_section(rows: pd.DataFrame, env: dict) -> str:
    """`## Your backends`: one bullet per user's backend; "" when the run has none."""
    names = plugin_names(env)
    if not names or rows.empty:
        return ""
    ok = rows[rows["status"] == "ok"]
    built_in = sorted(set(ok["backend"].dropna().astype(str)) - set(names))
    lines = ["## Your backends", ""]
    for name in names:
        lines.append(f"- **{short_name(name)}** ({parity_clause(env, name)})")
        mine = ok[ok["backend"] == name]
        if mine.empty:
            failed = rows[rows["backend"] == name]
            statuses = ", ".join(f"{n} {s}" for s, n in failed["status"].value_counts().items())
            lines.append(f"  - no cell finished ok ({statuses or 'no cells'}): nothing to place")
            continue
        acc = mine["test_acc"].mean()
        lines.append(
            f"  - test accuracy {acc:.3f} (mean of {plural(len(mine), 'cell')})"
            if math.isfinite(acc)
            else "  - no test accuracy recorded"
        )
        for other in built_in:
            lines.append(f"  - against {other}: {_against(mine, ok[ok['backend'] == other])}")
    return "\n".join(lines)


def _against(mine: pd.DataFrame, theirs: pd.DataFrame) -> str:
    """Speed and accuracy of `mine` against `theirs` over the cells both ran."""
    keys = [k for k in _CELL_KEYS if k in mine.columns]
    a = mine.groupby(keys, dropna=False)[["epoch_s", "test_acc"]].mean()
    b = theirs.groupby(keys, dropna=False)[["epoch_s", "test_acc"]].mean()
    both = a.merge(b, left_index=True, right_index=True, suffixes=("_mine", "_theirs"))
    if both.empty:
        return "no cell in common"
    ratio = (both["epoch_s_mine"] / both["epoch_s_theirs"]).replace([np.inf, -np.inf], np.nan)
    ratio = ratio.dropna()
    ratio = ratio[ratio > 0]
    parts = []
    if not ratio.empty:
        mean = float(np.exp(np.log(ratio).mean()))
        if abs(math.log(mean)) < math.log1p(SAME_SPEED):
            speed = f"about as fast (within {SAME_SPEED:.0%})"
        else:
            speed = f"{mean:.2g}x slower" if mean >= 1 else f"{1 / mean:.2g}x faster"
        low, high = f"{ratio.min():.2g}", f"{ratio.max():.2g}"
        if low != high:
            speed += f" (per cell: {low}x to {high}x its epoch time)"
        parts.append(speed)
    gap = (both["test_acc_mine"] - both["test_acc_theirs"]).dropna()
    if not gap.empty:
        parts.append(
            f"test accuracy {both['test_acc_mine'].mean():.3f} against "
            f"{both['test_acc_theirs'].mean():.3f}"
            + (f" (up to {gap.abs().max():.3f} apart in one cell)" if len(gap) > 1 else "")
        )
    return f"{'; '.join(parts) or 'no times'} over {plural(len(both), 'cell')} both ran"
