"""`numpy-loop`: backpropagation one sample at a time, in a Python loop.

The per-sample style of a first hand-written MLP, written out here rather than borrowed from
the batched core: each sample is a vector x (n_0,) and goes forward as vectors,

    z_l = a_{l-1} W_l + b_l        (a vector-matrix product; a_0 = x)
    a_l = f(z_l)                   (l < L; the output activation is left to the loss)

then back, from the loss's delta = dloss/dz_L (n_L,), as vectors and outer products:

    dW_l = outer(a_{l-1}, delta_l)               (n_{l-1}, n_l), the weight gradient
    db_l = delta_l
    delta_{l-1} = (W_l delta_l) * f'(z_{l-1})    (a matrix-vector product; l > 1)

A batch of m samples sums the per-sample gradients of loss / m (their mean), and one
optimiser update is made per batch (`impls.core`'s optimisers, as numpy-vec), so
batch_size=1 is online SGD. The activations, their derivatives and the per-sample losses are
`impls.core`'s functions, which act on vectors as on the rows of a matrix.

Written for speed as a per-sample loop is written well. Each choice says what it buys; the
commands measure it per call at the digits network's shapes (64-100-10; add .astype("f4") to
the arrays for float32):

- The functions a sample calls are looked up once per model: a sample pays no dictionary
  look-up for them.
- Every product is `xp.matmul` on vectors, which on NumPy is np.dot (see `impls.core`'s
  `matmul` note): BLAS's matrix-vector routine for z = a W and W delta.
- The outer products dW = outer(a, delta) are np.dot of a column and a row, one BLAS call.
  At these sizes that beats broadcasting and np.outer, and np.matmul (which forms this product
  outside BLAS) is the slowest:
      python -m timeit -s "import numpy as np; a = np.random.rand(64); d = np.random.rand(100)" \
          "np.dot(a[:, None], d[None, :])"
  then the same with "a[:, None] * d", "np.outer(a, d)" and "np.matmul(a[:, None], d[None, :])".
- The bias is added in place, z += b: no temporary the size of z per layer
      python -m timeit -s "import numpy as np; z = np.random.rand(100); b = z.copy()" "z += b"
  (then "z + b"). Online SGD (batch 1) skips the scaling of delta by 1, and a larger batch's
  gradients accumulate in place into its first sample's arrays.

What they buy on whole epochs is the batch-1 targets, numpy-loop against the Jacobian yardstick
and against numpy-vec, each side timed in alternating rounds (docs/performance.md):
    MLP_BENCH_THREADS=1 pytest -n 0 tests/benchmarks/test_bench_targets.py --benchmark-only \
        -k numpy_loop
Everything stays within the array API (no NumPy-only calls), so it also runs on
`xp=array_api_strict` and CuPy.
"""

from __future__ import annotations

import numpy as np

from . import core
from .base import HandWrittenMLP


class NumpyLoopMLP(HandWrittenMLP):
    """Per-sample forward/backward with vectors and outer products; numpy-vec's updates.

    Options: see `HandWrittenMLP`.
    """

    backend = "numpy-loop"

    def __init__(self, spec, params, adam_epsilon_on: str = "v_hat", xp=np):
        super().__init__(spec, params, adam_epsilon_on, xp=xp)
        # the per-sample functions, chosen once for this network
        self._f = core.ACTIVATIONS[spec.activation]
        self._f_backward = core.DERIVATIVES[spec.activation]
        self._loss = core.LOSSES[(spec.loss, spec.output)]
        self._weights = [W for W, _ in self.params]

    def _sample(self, x, y, scale):
        """(loss of the sample (0-d), [(dW, db), ...] of scale x its loss) for one sample."""
        matmul, f, weights = self.xp.matmul, self._f, self._weights
        # forward: the input of every layer, then the logits
        inputs = [x]
        a = x
        for W, b in self.params[:-1]:
            z = matmul(a, W)
            z += b
            a = f(z)
            inputs.append(a)
        W, b = self.params[-1]
        z = matmul(a, W)
        z += b
        loss, delta = self._loss(z, y)
        if scale != 1.0:  # online SGD (batch 1) skips a multiplication by 1
            delta *= scale
        # backward, from the top layer down
        grads = [None] * len(weights)
        for k in range(len(weights) - 1, -1, -1):
            a_prev = inputs[k]
            grads[k] = (matmul(a_prev[:, None], delta[None, :]), delta)
            if k:
                delta = self._f_backward(a_prev, matmul(weights[k], delta))
        return loss, grads

    def _gradients(self, X, Y):
        """Sum of the per-sample gradients of loss / m (their mean), sample by sample."""
        m = X.shape[0]
        scale = 1.0 / m
        loss, grads = self._sample(X[0, :], Y[0, :], scale)
        if m == 1:  # online SGD: the one loss as a vector, without stack's Python layers
            return loss[None], grads
        losses = [loss]
        # the first sample's gradient arrays are new and used nowhere else: the others
        # accumulate into them, in place
        for j in range(1, m):
            loss, sample_grads = self._sample(X[j, :], Y[j, :], scale)
            for (dW, db), (dW_j, db_j) in zip(grads, sample_grads):
                dW += dW_j
                db += db_j
            losses.append(loss)
        return self.xp.stack(losses), grads
