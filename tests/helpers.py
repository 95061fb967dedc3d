"""Helpers the test modules share: reading a run folder, starting `python -m bench` in a
process of its own, and targets and central differences for the gradient tests. Test modules
import them as `from helpers import ...` (tests/ is on sys.path, as for peer_parity.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# -- a run folder ------------------------------------------------------------------------------


def read_rows(where: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a run's results.csv as text, in file order: `where` is a run folder, or
    the path of any CSV table the store writes (results.csv, curves.csv, a .damaged file)."""
    path = Path(where)
    if path.is_dir():
        path = path / "results.csv"
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_curves(run_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a run's curves.csv as text, in file order."""
    return read_rows(Path(run_dir) / "curves.csv")


def results_frame(run_dir: str | os.PathLike):
    """A run's results.csv as pandas reads it (numbers as numbers), in (cell_id, repeat)
    order, whatever order the cells finished in."""
    import pandas as pd

    frame = pd.read_csv(Path(run_dir) / "results.csv")
    return frame.sort_values(["cell_id", "repeat"]).reset_index(drop=True)


def read_env(run_dir: str | os.PathLike) -> dict:
    """A run's env.json."""
    return json.loads((Path(run_dir) / "env.json").read_text(encoding="utf-8"))


# -- `python -m bench` in a process of its own ---------------------------------------------------


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: this one's, plus `extra`, with this checkout first
    on PYTHONPATH (so the child imports this bench and impls from any folder)."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def bench_command(*args: str, env: dict[str, str] | None = None, cwd=ROOT):
    """`python -m bench ARGS`: the command, and the keyword arguments (cwd, env) to hand to
    subprocess.run or Popen with it."""
    return [sys.executable, "-m", "bench", *args], {"cwd": cwd, "env": bench_env(env)}


def run_bench(
    *args: str, env: dict[str, str] | None = None, cwd=ROOT, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `python -m bench ARGS` to its end (at most `timeout` seconds): its exit status
    and its output as text."""
    cmd, kw = bench_command(*args, env=env, cwd=cwd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


# -- gradients ---------------------------------------------------------------------------------


def targets(loss: str, rng, n: int, k: int):
    """n targets of k outputs for `loss`: one-hot (cce), 0/1 (bce), any real number (mse)."""
    import numpy as np

    if loss == "cce":
        return np.eye(k)[rng.integers(0, k, n)]
    if loss == "bce":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.normal(size=(n, k))


def central_differences(objective, params, h: float = 1e-6) -> list:
    """The gradient of objective(params) by central differences, one array per parameter array
    in the order [W_1, b_1, W_2, b_2, ...]; each entry is shifted in place and put back."""
    import numpy as np

    grads = []
    for layer in params:
        for a in layer:
            g = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                old = a[idx]
                a[idx] = old + h
                f_plus = objective(params)
                a[idx] = old - h
                f_minus = objective(params)
                a[idx] = old
                g[idx] = (f_plus - f_minus) / (2 * h)
            grads.append(g)
    return grads
