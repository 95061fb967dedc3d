"""The machine's own rates: the matmul probes behind the roofline column.

A probe multiplies two n x n matrices again and again and reports the rate in GFLOP/s: with
NumPy's BLAS on the CPU (`matmul_probe`), with cuBLAS or CuPy on a GPU
(`device_matmul_probe`). A probe runs in a pinned probe worker (bench.run.session), so with the
thread limits of the cells it stands beside.

One hiccup of the machine among a handful of repetitions used to make a whole run "noisy" by
its probe. So a probe takes repetitions until its figure is settled (`repeat_until_settled`):
at least `repeats`, then more while the spread of the readings is above PROBE_NOISY_SPREAD or
the median's 95% interval is wider than bench.precision.PRECISION, up to PROBE_MAX_REPEATS or
PROBE_BUDGET_S seconds. A machine that stays noisy is still flagged: the spread is computed on
every reading taken.
"""

from __future__ import annotations

import os
import statistics

import numpy as np

from bench.precision import is_precise
from bench.store.records import PROBE_NOISY_SPREAD
from bench.worker.measure import Clock, Stopwatch, is_noisy, spread, timed
from impls.spec import device_index

PROBE_MAX_REPEATS = 61  # a median of 61 readings has a 95% interval of about its middle fifth
PROBE_BUDGET_S = 5.0  # no further repetitions once a probe has taken this long


def settled(rates) -> bool:
    """Whether repeated rate readings pin their median down: a spread within
    PROBE_NOISY_SPREAD and a median's interval within bench.precision.PRECISION."""
    s = spread(rates)
    return not is_noisy(s, PROBE_NOISY_SPREAD) and is_precise(rates)


def repeat_until_settled(
    once,
    repeats: int,
    clock: Clock | None = None,
    max_repeats: int = PROBE_MAX_REPEATS,
    budget_s: float = PROBE_BUDGET_S,
) -> list[float]:
    """Readings of `once()` (each a rate): `repeats` of them, then more until they are
    `settled`, `max_repeats` are taken or `budget_s` seconds have passed."""
    watch = Stopwatch(clock)
    rates = [once() for _ in range(repeats)]
    while len(rates) < max_repeats and watch.elapsed() < budget_s and not settled(rates):
        rates.append(once())
    return rates


def matmul_probe(
    dtype: str,
    n: int = 1024,
    repeats: int = 7,
    clock: Clock | None = None,
    max_repeats: int = PROBE_MAX_REPEATS,
):
    """The machine's matrix-multiply rate with NumPy's BLAS: n x n products, `repeats` of them
    or more until settled (`repeat_until_settled`).

    Taken in the calling process, so with whatever thread limits are in effect there.
    Returns the rates in GFLOP/s and their summary (`probe_summary`).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)  # warm-up

    def once() -> float:
        return 2.0 * n**3 / timed(np.matmul, a, b, out=out, clock=clock)[1] / 1e9

    return probe_summary(repeat_until_settled(once, repeats, clock, max_repeats))


def probe_summary(rates) -> dict:
    """Median, min, max and relative spread of repeated rate readings; `noisy` when the
    spread is above PROBE_NOISY_SPREAD."""
    rates = [float(r) for r in rates]
    s = spread(rates)
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "spread": s,
        "reps": rates,
        "noisy": is_noisy(s, PROBE_NOISY_SPREAD),
    }


def matmul_gflops(dtype: str, n: int = 1024, repeats: int = 7, clock: Clock | None = None):
    """The median of `matmul_probe`'s readings, GFLOP/s."""
    return matmul_probe(dtype, n, repeats, clock)["median"]


def device_matmul_probe(
    dtype: str, device: str, tf32: bool = False, n: int = 4096, repeats: int = 7, inner: int = 10
):
    """A GPU's matrix-multiply rate for `dtype` (TF32 tensor cores if `tf32`): readings of
    `inner` n x n products each, timed between device synchronisations, `repeats` of them or
    more until settled (`repeat_until_settled`).

    Through torch where it has CUDA (cuBLAS, as the torch and cupy cells use it), else CuPy
    (with torch's CPU build beside CuPy, say); run in a probe worker that loaded neither yet,
    started with CUPY_TF32 set as `tf32` asks (CuPy reads it once). Returns
    `probe_summary`'s dict with the library that measured it.
    """
    index = device_index(device)
    if _torch_has_cuda():
        import torch

        torch.set_float32_matmul_precision("high" if tf32 else "highest")
        where = torch.device("cuda", index)
        a, b = (torch.randn(n, n, dtype=getattr(torch, dtype), device=where) for _ in "ab")
        out = torch.empty_like(a)

        def product():
            torch.matmul(a, b, out=out)

        def synchronize():
            torch.cuda.synchronize(where)

        library = f"torch {torch.__version__}"
    else:
        if (os.environ.get("CUPY_TF32", "0") == "1") != bool(tf32):
            raise ValueError(f"a CuPy probe of tf32={tf32} needs a worker with CUPY_TF32 so set")
        import cupy

        gpu = cupy.cuda.Device(index)
        gpu.use()
        rng = cupy.random.default_rng(0)
        a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in "ab")
        out = cupy.empty_like(a)

        def product():
            cupy.matmul(a, b, out=out)

        synchronize = gpu.synchronize
        library = f"cupy {cupy.__version__}"

    def batch():
        for _ in range(inner):
            product()
        synchronize()

    batch()  # warm-up: cuBLAS picks its kernel, the clocks ramp up

    def once() -> float:
        return 2.0 * n**3 / (timed(batch)[1] / inner) / 1e9

    summary = probe_summary(repeat_until_settled(once, repeats))
    return {**summary, "library": library, "tf32": bool(tf32), "n": n}


def _torch_has_cuda() -> bool:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()
