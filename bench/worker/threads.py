"""Thread pinning, the same way for every library, and a record of what was in effect.

A worker process is started with the thread environment variables already set (`thread_env`),
so every runtime reads them when it loads; `pin_threads` then applies the same count through
each library's own call (threadpoolctl for NumPy's BLAS and OpenMP, impls.parallel for the
hand-written backends' element-wise work, torch.set_num_threads, tf.config.threading) before
the library does any work, and reads back the counts in effect.
"""

from __future__ import annotations

import os

# Environment variables read by BLAS/OpenMP runtimes and TensorFlow when they load.
_COUNT_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)
# Independent ops of one graph run one after another: with n intra-op threads each, more
# inter-op threads would oversubscribe the n cores the cell was given.
INTEROP_THREADS = 1

_limits = None  # keeps threadpoolctl's limits alive for the life of the process


def thread_env(n: int) -> dict[str, str]:
    """Environment variables that give every runtime `n` threads (set before it loads)."""
    env = {name: str(n) for name in _COUNT_VARIABLES}
    env["TF_NUM_INTEROP_THREADS"] = str(INTEROP_THREADS)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def blas_threads() -> dict[str, int]:
    """Each threadpool library's thread count, keyed by its name ("openblas", "openmp"). Where
    two share a name (SciPy's own OpenBLAS beside NumPy's), the entry is NumPy's, the library
    the hand-written backends compute with (bench.worker.envinfo.numpy_blas_pool)."""
    from threadpoolctl import threadpool_info

    from bench.worker.envinfo import numpy_blas_pool

    pools = threadpool_info()
    counts = {f"{p['internal_api']}": p["num_threads"] for p in pools}
    mine = numpy_blas_pool([p for p in pools if p.get("user_api") == "blas"])
    if mine is not None:
        counts[f"{mine['internal_api']}"] = mine["num_threads"]
    return counts


def _pin_torch(n: int) -> dict[str, int]:
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(INTEROP_THREADS)
    except RuntimeError:  # already set once in this process (it can be set only once)
        pass
    return {"torch_intra": torch.get_num_threads(), "torch_inter": torch.get_num_interop_threads()}


def _pin_tensorflow(n: int) -> dict[str, int]:
    import tensorflow as tf

    threading = tf.config.threading
    try:
        threading.set_intra_op_parallelism_threads(n)
        threading.set_inter_op_parallelism_threads(INTEROP_THREADS)
    except RuntimeError:  # TensorFlow's runtime already started; the env variables stand
        pass
    return {
        "tf_intra": threading.get_intra_op_parallelism_threads(),
        "tf_inter": threading.get_inter_op_parallelism_threads(),
    }


def _pin_keras(n: int) -> dict[str, int]:
    from impls.registry import keras_backend_name

    pins = {"tensorflow": _pin_tensorflow, "torch": _pin_torch}.get(keras_backend_name())
    return pins(n) if pins is not None else {}


# backend -> how to pin its framework (NumPy's BLAS is pinned for every backend)
def _pin_xla(n: int) -> dict[str, int]:
    """XLA's CPU backend (jax, keras-jax) has no thread-count setting; one thread can be asked
    for with its flags, read when JAX loads: Eigen's thread pool off, one intra-op thread.
    With n > 1 XLA keeps its own pool (one thread per core), which nothing here can limit."""
    if n != 1:
        return {}
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    return {"xla_intra_op": 1}


FRAMEWORK_PINS = {
    "torch": _pin_torch,
    "keras": _pin_keras,
    "keras-torch": _pin_torch,
    "jax": _pin_xla,
    "keras-jax": _pin_xla,
}


def pin_threads(n: int, backend: str | None = None) -> dict[str, int]:
    """Limit this process to `n` threads in NumPy's BLAS/OpenMP and in `backend`'s framework.

    Call before the framework runs anything. Returns the thread counts now in effect, by
    library (as the libraries themselves report them).
    """
    global _limits
    from threadpoolctl import threadpool_limits

    os.environ.update(thread_env(n))
    effective = {}
    pin = FRAMEWORK_PINS.get(backend)
    if pin is not None:
        effective.update(pin(n))  # the framework loads its own OpenMP: limit after it
    _limits = threadpool_limits(limits=n)
    effective.update(blas_threads())
    # the hand-written backends' element-wise work on the same n threads (1: NumPy's own)
    from impls import parallel

    parallel.set_threads(n)
    effective["numpy_elementwise"] = parallel.threads()
    return effective
