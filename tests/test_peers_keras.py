"""keras-jax and keras-torch: the keras backend's code on Keras 3's JAX and PyTorch backends.

Keras reads its backend once per process, and this test process may hold Keras on TensorFlow
already, so each framework's cases run in a fresh interpreter (tests/peer_parity.py), one per
framework for both checks here: parity with numpy-vec, and staging (tests/test_staging_peers.py
checks it for the backends that run in this process).

Where they differ from `keras` (TensorFlow), found here and bounded:
- Adam's ε: the same optimiser code, so the same placement (on sqrt(v), see impls.core.Adam):
  the Adam cases are compared with numpy-vec using it, at the suite's tolerance.
- float64: Keras's type promotion makes 64-bit results 32-bit on its non-TensorFlow backends
  (keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE). On JAX this reaches `ops.mean`
  (computed in float32, then cast back), so bce and mse (means over the outputs) land about
  1e-8 from numpy-vec while cce stays at 1e-16; on torch more of the step is affected and
  every loss lands about 1e-7 away (bench verify's cases reach 5.3e-7 on JAX, 1.6e-6 on
  torch). Their float64 tolerance is the registry's (`parity_tolerance`): 1e-5; float32 1e-4.
- Hyperparameter rounding: the cases use hyperparameters exactly representable in float32 (as
  for `keras`, which rounds Python floats to float32 even in float64 work).
"""

import pytest
from peer_parity import case_id, check_staged, checks_in_subprocess, make_case

from impls import available_backends
from impls.registry import parity_tolerance

CASES = [
    make_case("cce", "adam", True, "float32"),
    make_case("cce", "sgd+momentum", True, "float64"),
    make_case("mse", "adam", False, "float64", output="softmax"),
]


PEERS = ["keras-jax", "keras-torch"]
STAGING_DTYPES = ["float32", "float64"]


@pytest.fixture(scope="module", params=PEERS)
def peer(request):
    """(backend, both checks of it from one process): module-scoped, so pytest runs each
    backend's two tests one after the other on that process's results. (Under pytest-xdist
    the two may land on two workers, and each then starts the process.)"""
    backend = request.param
    reason = available_backends()[backend]  # not require_backend: it skips these in-process
    if reason is not None:
        pytest.skip(f"backend {backend}: {reason}")
    return backend, checks_in_subprocess(backend, CASES, STAGING_DTYPES)


def test_keras_peer_matches_numpy_vec(peer):
    backend, results = peer[0], peer[1]["parity"]
    for case in CASES:
        worst, loss_diff = results[case_id(case)]
        tol = parity_tolerance(backend, case["dtype"])
        assert worst <= tol, f"{backend} {case_id(case)}: {worst:.2e} > {tol:.0e}"
        assert loss_diff <= max(tol, 1e-5 if case["dtype"] == "float32" else 0)


def test_keras_peers_stage_their_own_tensors(peer):
    backend, staging = peer[0], peer[1]["staging"]
    assert sorted(staging) == STAGING_DTYPES
    for dtype, result in staging.items():
        check_staged(backend, result, dtype)
