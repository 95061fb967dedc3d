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


def test_numpys_blas_is_recorded_beside_another_one(monkeypatch):
    """SciPy's wheels bring an OpenBLAS of their own: the record names NumPy's, whichever
    threadpoolctl lists first (a run recorded SciPy's 0.3.30 for NumPy's 0.3.31)."""
    from pathlib import Path

    import numpy

    site = Path(numpy.__file__).resolve().parent.parent

    def pool(version, path):
        return {
            "user_api": "blas",
            "internal_api": "openblas",
            "version": version,
            "architecture": "Haswell",
            "threading_layer": "pthreads",
            "filepath": str(path),
        }

    scipys = pool("0.3.30", site / "scipy.libs" / "libscipy_openblas-x.so")
    numpys = pool("0.3.31", site / "numpy.libs" / "libscipy_openblas64_-y.so")
    for pools in ([scipys, numpys], [numpys, scipys]):
        monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda pools=pools: pools)
        assert envinfo.blas() == "openblas 0.3.31 (Haswell, pthreads)"
    system = pool("0.3.21", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [system])
    assert envinfo.blas() == "openblas 0.3.21 (Haswell, pthreads)"  # NumPy built on the system's


def test_the_recorded_blas_is_the_one_numpy_loaded():
    import pytest
    from threadpoolctl import threadpool_info

    pytest.importorskip("scipy.linalg")  # its own OpenBLAS, where its wheel brings one
    mine = [
        p
        for p in threadpool_info()
        if p.get("user_api") == "blas" and "numpy" in str(p.get("filepath"))
    ]
    if not mine:
        pytest.skip("NumPy uses a BLAS outside its package here (a system BLAS)")
    assert envinfo.blas().startswith(f"{mine[0]['internal_api']} {mine[0]['version']}")


def test_the_thread_count_recorded_for_openblas_is_numpys(monkeypatch):
    """threads_effective keys libraries by name: where SciPy's OpenBLAS stands beside NumPy's,
    "openblas" is NumPy's count, whichever threadpoolctl lists last."""
    from pathlib import Path

    import numpy

    from bench.worker import threads

    site = Path(numpy.__file__).resolve().parent.parent
    numpys = {"user_api": "blas", "internal_api": "openblas", "num_threads": 2,
              "filepath": str(site / "numpy.libs" / "libscipy_openblas64_-y.so")}  # fmt: skip
    scipys = {**numpys, "num_threads": 7, "filepath": str(site / "scipy.libs" / "x.so")}
    omp = {"user_api": "openmp", "internal_api": "openmp", "num_threads": 2, "filepath": "/o"}
    for pools in ([numpys, scipys, omp], [scipys, numpys, omp]):
        monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda pools=pools: pools)
        assert threads.blas_threads() == {"openblas": 2, "openmp": 2}
