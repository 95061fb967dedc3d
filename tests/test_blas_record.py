"""Which BLAS a run used, as env.json records it (bench.worker.envinfo.blas): the library, its
version, the kernel it chose for the CPU and its threading layer, from threadpoolctl."""

import threadpoolctl

from bench.worker import envinfo


def test_the_library_version_kernel_and_threading_layer_are_named(monkeypatch):
    pools = [
        {"user_api": "openmp", "internal_api": "openmp", "version": None},
        {
            "user_api": "blas",
            "internal_api": "openblas",
            "version": "0.3.31",
            "architecture": "SkylakeX",
            "threading_layer": "pthreads",
        },
    ]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: pools)
    assert envinfo.blas() == "openblas 0.3.31 (SkylakeX, pthreads)"
    pools[1].update(architecture=None, threading_layer="unknown")
    assert envinfo.blas() == "openblas 0.3.31"
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: pools[:1])
    assert envinfo.blas() == "unknown"


def test_the_blas_at_hand_is_named():
    text = envinfo.blas()
    assert text != "unknown" and text.split()[0] in ("openblas", "mkl", "blis", "flexiblas")
