"""keras-jax and keras-torch: the keras backend's code on Keras 3's JAX and PyTorch backends.

Keras reads its backend once per process, and this test process may hold Keras on TensorFlow
already, so each framework's cases run in a fresh interpreter (tests/peer_parity.py).

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
from peer_parity import case_id, compare_in_subprocess, make_case

from impls import available_backends
from impls.registry import parity_tolerance

CASES = [
    make_case("cce", "adam", True, "float32"),
    make_case("cce", "sgd+momentum", True, "float64"),
    make_case("mse", "adam", False, "float64", output="softmax"),
]


@pytest.mark.parametrize("backend", ["keras-jax", "keras-torch"])
def test_keras_peer_matches_numpy_vec(backend):
    reason = available_backends()[backend]  # not require_backend: it skips these in-process
    if reason is not None:
        pytest.skip(f"backend {backend}: {reason}")
    results = compare_in_subprocess(backend, CASES)
    for case in CASES:
        worst, loss_diff = results[case_id(case)]
        tol = parity_tolerance(backend, case["dtype"])
        assert worst <= tol, f"{backend} {case_id(case)}: {worst:.2e} > {tol:.0e}"
        assert loss_diff <= max(tol, 1e-5 if case["dtype"] == "float32" else 0)
