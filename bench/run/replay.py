"""Rounding, or a real difference? The first epochs of parted cells replayed in float64.

When the backends of one configuration end more than ACCURACY_SPLIT apart in test accuracy
(bench.report.verdict.accuracy_splits), two causes look the same in a table: float32 rounding,
amplified over many steps into different but equally trained weights, and a real difference in
what the backends compute. `replay(run_dir)` tells them apart by measurement. For each parted
configuration it runs the first `epochs` epochs again, every backend that finished there, from
the same start on the same batches, once in the run's own dtype and once in float64, with the
losses evaluated after every epoch. It is an ordinary run of the same cell path, in a folder of
its own under RUN/replay/.

Backends that compute the same thing agree in float64 to many more digits than in float32
(rounding there is 1e-16 per operation, not 6e-8); backends that compute different things part
in float64 as much as in float32. So a configuration is:
- "rounding" when every backend's losses agree with the reference backend's within
  FLOAT64_AGREE (relative) in float64, and the run's own dtype parts at least 10× more;
- "real difference" when a backend's float64 losses part from the reference's by more than
  FLOAT64_AGREE while the control pair, numpy-loop against numpy-vec (the same maths in another
  order of operations), stays within it: that backend is named;
- "apart in float64" when backends part in float64 and no control pair ran, or the control
  pair parts too: some dynamics (large raw inputs, a large step) grow even float64 rounding
  from 1e-16 to 1e-2 within one epoch, and then no replay of whole epochs can tell rounding
  from a real difference; the figures are given, the claim is not made;
- "not yet apart" when both dtypes agree over the replayed epochs (the gap opens later: replay
  more epochs);
- "not replayed" when fewer than two backends finished in float64 (one that refuses float64
  is named).

The record goes to env.json's `replay` and summary.md's verdict quotes it
(bench.report.replayed).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.report.loading import load_env, load_run
from bench.report.tables import plain
from bench.report.verdict import COLUMN_KEYS, accuracy_splits
from bench.store.folder import RunStore
from bench.sweep.build import build_sweep
from bench.sweep.keys import PART_KEYS

REPLAY_EPOCHS = 2  # the parting in the runs seen so far is visible after the first epoch
FLOAT64_AGREE = 1e-6  # relative: float64 rounding alone stays orders of magnitude below
ROUNDING_FACTOR = 10.0  # the run's dtype parts at least this much more than float64
COMPARED = ("train_loss", "test_loss")  # the losses evaluated after each replayed epoch
REFERENCE = "numpy-vec"  # the backend the others are measured from, where it ran
# The control pair: numpy-loop against numpy-vec is the same maths in another order of
# operations (per sample against whole batches), so their float64 gap is rounding alone, grown
# by the configuration's own dynamics
CONTROL = "numpy-loop"


def parted_columns(rows: pd.DataFrame) -> list[dict]:
    """The configurations whose backends part: [{"where": {key: value}, "backends": [...]}],
    `where` the COLUMN_KEYS' values as results.csv holds them, `backends` those that
    finished ok there."""
    ok = rows[rows["status"] == "ok"]
    out = []
    for _, split in accuracy_splits(rows).iterrows():
        where = {k: plain(split[k]) for k in COLUMN_KEYS}  # JSON's own types, None if missing
        match = ok
        for k, v in where.items():
            match = match[match[k].isna()] if v is None else match[match[k] == v]
        out.append({"where": where, "backends": list(dict.fromkeys(match["backend"]))})
    return out


def replay_mapping(stored: dict, columns: list[dict], epochs: int) -> dict:
    """The sweep that replays `columns` of the run whose stored sweep is `stored`: one part per
    column, its own part's settings with one value on each axis, the run's dtype and float64,
    `epochs` epochs, the losses after each, no extra timing epochs."""
    parts_by_name = {p.get("name"): p for p in stored.get("parts") or []}
    parts = []
    for i, column in enumerate(columns, 1):
        where = column["where"]
        part = dict(parts_by_name.get(where.get("part"), {}))
        for key in PART_KEYS.values():
            if key.axis and where.get(key.cell) is not None:
                part[key.name] = [where[key.cell]]
        dtypes = list(dict.fromkeys([str(where.get("dtype", "float32")), "float64"]))
        part.update(
            name=f"replay-{i}",
            backends=column["backends"],
            dtypes=dtypes,
            epochs=[epochs],
            eval_every=1,
            repeats=1,
        )
        parts.append(part)
    return {
        "title": f"{stored.get('title', 'run')}-replay",
        "parts": parts,
        "timing_budget": 0,
        **({"timeout": stored["timeout"]} if stored.get("timeout") is not None else {}),
        **({"data_dir": stored["data_dir"]} if stored.get("data_dir") is not None else {}),
    }


def compare(curves: pd.DataFrame, column: dict, part: str, run_dtype: str) -> dict:
    """One replayed column's record: per backend and dtype, the worst relative difference of
    its losses from the reference backend's over the replayed epochs, and the verdict."""
    mine = curves[curves["part"] == part]
    backends = [b for b in column["backends"] if b in set(mine["backend"])]
    reference = REFERENCE if REFERENCE in backends else (backends[0] if backends else None)
    record = {"where": column["where"], "reference": reference, "backends": {}}
    for backend in backends:
        if backend == reference:
            continue
        record["backends"][backend] = {
            dtype: _worst(mine, backend, reference, dtype)
            for dtype in dict.fromkeys([run_dtype, "float64"])
        }
    record.update(_verdict(record, column["backends"], run_dtype))
    return record


def _worst(curves: pd.DataFrame, backend: str, reference: str, dtype: str) -> float | None:
    """The largest |a - b| / max(|a|, |b|) between `backend`'s and `reference`'s losses at the
    same epoch in `dtype`; None where either has no finite loss to compare."""
    worst = None
    by_dtype = curves[curves["dtype"] == dtype]
    mine = by_dtype[by_dtype["backend"] == backend].set_index("epoch")
    theirs = by_dtype[by_dtype["backend"] == reference].set_index("epoch")
    for epoch in mine.index.intersection(theirs.index):
        for col in COMPARED:
            a, b = float(mine.at[epoch, col]), float(theirs.at[epoch, col])
            if not (math.isfinite(a) and math.isfinite(b)):
                continue
            scale = max(abs(a), abs(b))
            diff = abs(a - b) / scale if scale > 0 else 0.0
            worst = diff if worst is None else max(worst, diff)
    return worst


def _verdict(record: dict, wanted: list[str], run_dtype: str) -> dict:
    diffs = record["backends"]
    in64 = {b: d["float64"] for b, d in diffs.items() if d.get("float64") is not None}
    missing = [b for b in wanted if b != record["reference"] and b not in in64]
    if not in64:
        return {"verdict": "not replayed", "missing": missing}
    apart = sorted(b for b, d in in64.items() if d > FLOAT64_AGREE and b != CONTROL)
    control = in64.get(CONTROL) if record["reference"] == REFERENCE else None
    if apart or (control is not None and control > FLOAT64_AGREE):
        # apart in float64 too: a real difference only where the control pair (the same maths
        # in another order) stays within FLOAT64_AGREE under the same dynamics; where it does
        # not, even float64 rounding grows this far and the replay cannot tell the two apart
        out = {"apart": apart, "missing": missing, "control": control}
        if apart and control is not None and control <= FLOAT64_AGREE:
            return {"verdict": "real difference", **out}
        return {"verdict": "apart in float64", **out}
    own = [d[run_dtype] for d in diffs.values() if d.get(run_dtype) is not None]
    if (
        run_dtype != "float64"
        and own
        and max(own) >= ROUNDING_FACTOR * max(max(in64.values()), 1e-300)
    ):
        return {"verdict": "rounding", "missing": missing}
    return {"verdict": "not yet apart", "missing": missing}


def replay(run_dir, epochs: int = REPLAY_EPOCHS, note=None, progress: bool = True) -> dict:
    """Replay the parted configurations of the run folder `run_dir` (see the module's
    docstring); records the result in its env.json and returns it. UsageError when nothing
    parts or the folder holds no sweep."""
    from bench.run.runner import execute
    from bench.sweep.build import stored_sweep

    note = note or (lambda text: print(text, file=sys.stderr))
    run_dir = Path(run_dir)
    rows, _ = load_run(run_dir)
    env = load_env(run_dir)
    stored_sweep(env.get("sweep"), f"{run_dir / 'env.json'}: ")  # a sweep that still validates
    columns = parted_columns(rows)
    if not columns:
        raise UsageError(
            f"{run_dir}: no configuration's backends part by more than the verdict's threshold: "
            "nothing to replay"
        )
    note(
        f"replaying {len(columns)} configuration{'s' if len(columns) > 1 else ''} whose "
        f"backends part, {epochs} epoch{'s' if epochs > 1 else ''} in their own dtype and in "
        "float64"
    )
    mapping = replay_mapping(env["sweep"], columns, epochs)
    sweep = build_sweep(mapping, where="replay: ")
    folder, status = execute(
        sweep,
        out=run_dir / "replay",
        progress=progress,
        command=f"python -m bench replay {run_dir} --epochs {epochs}",
        note=note,
    )
    if status != "complete":
        raise UsageError(f"the replay stopped ({status}): finish it with --resume {folder}")
    _, curves = load_run(folder)
    records = [
        compare(curves, column, f"replay-{i}", str(column["where"].get("dtype", "float32")))
        for i, column in enumerate(columns, 1)
    ]
    result = {
        "epochs": epochs,
        "folder": str(folder.relative_to(run_dir)),
        "float64_agree": FLOAT64_AGREE,
        "columns": records,
    }
    RunStore.write_env_field(run_dir, replay=result)
    return result


def describe(result: dict) -> list[str]:
    """The replay's record in lines for the console: per configuration, each backend's worst
    relative difference of its losses from the reference's, per dtype, and the verdict."""
    lines = [f"float64 replay of {result['epochs']} epoch(s), in {result['folder']}:"]
    for column in result["columns"]:
        where = ", ".join(
            f"{k} {v}" for k, v in column["where"].items() if v is not None and k != "dtype"
        )
        lines.append(f"  {where}: {column['verdict'].upper()}")
        for backend, by_dtype in column["backends"].items():
            diffs = ", ".join(
                f"{dtype} {'-' if d is None else f'{d:.2g}'}" for dtype, d in by_dtype.items()
            )
            lines.append(f"    {backend} against {column['reference']}: losses apart by {diffs}")
        for backend in column.get("missing") or []:
            lines.append(f"    {backend}: not compared (it did not finish in both dtypes)")
    return lines
