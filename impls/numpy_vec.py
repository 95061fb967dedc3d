"""`numpy-vec`: the network on whole batches in matrix form, with buffers reused across batches."""

from __future__ import annotations

import numpy as np

from . import core
from .base import MLPModel, check_params

PREDICT_CHUNK = 4096  # rows per forward pass in predict_proba: bounds its memory


class _Workspace:
    """Activation and delta buffers for batches of up to `rows` samples; views serve smaller."""

    def __init__(self, sizes, rows, dtype):
        self.rows = rows
        self.acts = [np.empty((rows, n), dtype) for n in sizes[1:]]  # hidden a_l, then logits
        self.yhat = np.empty((rows, sizes[-1]), dtype)
        self.deltas = [np.empty((rows, n), dtype) for n in sizes[1:]]

    def views(self, m):
        return (
            [a[:m] for a in self.acts],
            self.yhat[:m],
            [d[:m] for d in self.deltas],
        )


class NumpyVecMLP(MLPModel):
    """Forward and backward over a whole batch with matrix products, no per-sample loop.

    Options: `adam_epsilon_on` ("v_hat", default, or "v"), where Adam adds its epsilon (see
    `impls.core.Adam`); used to show in the parity tests that Keras differs from the others by
    that placement alone.
    """

    backend = "numpy-vec"

    def __init__(self, spec, params, adam_epsilon_on: str = "v_hat"):
        super().__init__(spec, params)
        if spec.device != "cpu":
            raise ValueError(f"backend {self.backend!r} runs on the CPU only, got {spec.device!r}")
        self._params = check_params(spec, params)
        self._flat = [a for pair in self._params for a in pair]
        self._grads = [np.empty_like(a) for a in self._flat]
        self._optimizer = core.make_optimizer(spec, self._flat, epsilon_on=adam_epsilon_on)
        self._act = core.ACTIVATIONS[spec.activation]
        self._act_backward = core.DERIVATIVES[spec.activation]
        self._output = core.OUTPUTS[spec.output]
        self._loss_and_delta = core.LOSS_AND_DELTA[(spec.loss, spec.output)]
        self._ws = None
        self._decay_scratch = None

    # -- workspace -------------------------------------------------------------------------

    def _workspace(self, rows):
        if self._ws is None or self._ws.rows < rows:
            self._ws = _Workspace(self.spec.layer_sizes, rows, self.spec.dtype)
        return self._ws.views(rows)

    # -- maths -----------------------------------------------------------------------------

    def _forward(self, X, acts):
        """Fill acts (hidden activations, then logits) for the batch X; return the logits."""
        a = X
        last = len(self._params) - 1
        for i, (W, b) in enumerate(self._params):
            z = np.dot(a, W, out=acts[i])
            z += b
            if i < last:
                a = self._act(z, out=z)
        return z

    def _backward(self, X, Y, y_sum, acts, yhat, deltas, step_scale=None):
        """Write the batch-mean gradients into self._grads; return the summed sample losses.

        With `step_scale` (the optimiser's direct_scale, for plain SGD without decay) the
        update is made here instead: the output delta is scaled by step_scale / m, so every
        gradient comes out as the step itself and is added to its parameters as soon as the
        delta of the layer below has been formed from them.

        All products are np.dot: np.matmul forms the single-sample outer product a^T delta
        ((n, 1) @ (1, k)) in a non-BLAS loop, about 7x slower at 784x256 than np.dot.
        """
        m = X.shape[0]
        delta = deltas[-1]
        loss_sum = float(self._loss_and_delta(acts[-1], Y, delta, yhat, y_sum).sum())
        delta *= (1.0 if step_scale is None else step_scale) / m
        grads = self._grads
        for i in range(len(self._params) - 1, -1, -1):
            W, b = self._params[i]
            a_prev = X if i == 0 else acts[i - 1]
            gW, gb = grads[2 * i], grads[2 * i + 1]
            np.dot(a_prev.T, delta, out=gW)
            np.sum(delta, axis=0, out=gb)
            if i > 0:
                prev = np.dot(delta, W.T, out=deltas[i - 1])
                delta = self._act_backward(acts[i - 1], prev)
            if step_scale is not None:
                W += gW
                b += gb
        decay = self.spec.weight_decay
        if decay:
            if self._decay_scratch is None:
                self._decay_scratch = [np.empty_like(W) for W, _ in self._params]
            for (W, _), gW, tmp in zip(self._params, grads[0::2], self._decay_scratch):
                np.multiply(W, decay, out=tmp)
                gW += tmp
        return loss_sum

    def loss_and_gradients(self, X, Y):
        """(mean data loss, [(dW, db), ...]) of the objective on one batch, without an update."""
        X = np.ascontiguousarray(X, dtype=self.spec.dtype)
        Y = np.ascontiguousarray(Y, dtype=self.spec.dtype)
        acts, yhat, deltas = self._workspace(X.shape[0])
        self._forward(X, acts)
        loss_sum = self._backward(X, Y, None, acts, yhat, deltas)
        g = [a.copy() for a in self._grads]
        return loss_sum / X.shape[0], list(zip(g[0::2], g[1::2]))

    # -- the contract ----------------------------------------------------------------------

    def _train_ordered(self, X, Y, batch_size):
        n = X.shape[0]
        bs = min(batch_size, n)
        acts_full, yhat_full, deltas_full = self._workspace(bs)
        Y_sum = Y.sum(axis=1)  # the targets' mass per sample, for the loss, in one call
        # plain SGD without decay: the update is made inside _backward (see there)
        step_scale = None if self.spec.weight_decay else self._optimizer.direct_scale
        total = 0.0
        for start in range(0, n, bs):
            stop = min(start + bs, n)
            Xb, Yb = X[start:stop], Y[start:stop]
            if stop - start == bs:
                acts, yhat, deltas = acts_full, yhat_full, deltas_full
            else:
                acts, yhat, deltas = self._workspace(stop - start)
            self._forward(Xb, acts)
            total += self._backward(Xb, Yb, Y_sum[start:stop], acts, yhat, deltas, step_scale)
            if step_scale is None:
                self._optimizer.step(self._flat, self._grads)
        return total / n

    def _predict(self, X):
        n = X.shape[0]
        out = np.empty((n, self.spec.n_outputs), dtype=self.spec.dtype)
        rows = min(n, PREDICT_CHUNK)
        if rows == 0:
            return out
        acts_full, _, _ = self._workspace(rows)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            acts = [a[: stop - start] for a in acts_full]
            self._output(self._forward(X[start:stop], acts), out=out[start:stop])
        return out

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in self._params]

    def set_params(self, params):
        for (W, b), (W_new, b_new) in zip(self._params, check_params(self.spec, params)):
            np.copyto(W, W_new)
            np.copyto(b, b_new)
