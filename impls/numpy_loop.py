"""`numpy-loop`: forward and backward one sample at a time, in a Python loop.

The per-sample style of a first hand-written MLP, done as fast as that style allows: 1-D
vector operations, gradients of a weight matrix accumulated as rank-1 (outer product) updates,
no Jacobian-sized matrices. Within a batch the per-sample gradients are averaged and one
optimiser update is made per batch, so batch_size=1 is online SGD.
"""

from __future__ import annotations

import numpy as np

from . import core
from .base import MLPModel, check_params


class NumpyLoopMLP(MLPModel):
    """Per-sample forward/backward; the same maths as numpy-vec, one 1-D vector at a time.

    Options: `adam_epsilon_on`, as for numpy-vec.
    """

    backend = "numpy-loop"

    def __init__(self, spec, params, adam_epsilon_on: str = "v_hat"):
        super().__init__(spec, params)
        if spec.device != "cpu":
            raise ValueError(f"backend {self.backend!r} runs on the CPU only, got {spec.device!r}")
        self._params = check_params(spec, params)
        self._flat = [a for pair in self._params for a in pair]
        self._grads = [np.zeros_like(a) for a in self._flat]
        self._outer = [np.empty_like(W) for W, _ in self._params]  # scratch for rank-1 terms
        self._optimizer = core.make_optimizer(spec, self._flat, epsilon_on=adam_epsilon_on)
        self._act = core.ACTIVATIONS[spec.activation]
        self._act_backward = core.DERIVATIVES[spec.activation]
        self._output = core.OUTPUTS[spec.output]
        self._loss = core.LOSSES[spec.loss]
        self._delta = core.DELTAS[(spec.loss, spec.output)]

    def _forward(self, x):
        """Hidden activations, logits and output activation of the single sample x (1-D)."""
        acts = []
        a = x
        for W, b in self._params[:-1]:
            z = a @ W
            z += b
            a = self._act(z, out=z)
            acts.append(a)
        W, b = self._params[-1]
        z = a @ W
        z += b
        return acts, z, self._output(z)

    def _accumulate(self, x, y, scale, first):
        """Add `scale` × this sample's gradient to self._grads (or set it, if `first`).

        Returns the sample's data loss.
        """
        acts, z, yhat = self._forward(x)
        loss = float(self._loss(z, yhat, y))
        delta = self._delta(z, yhat, y)
        delta *= scale
        grads = self._grads
        for i in range(len(self._params) - 1, -1, -1):
            a_prev = x if i == 0 else acts[i - 1]
            gW, gb = grads[2 * i], grads[2 * i + 1]
            if first:
                np.outer(a_prev, delta, out=gW)
                np.copyto(gb, delta)
            else:
                gW += np.outer(a_prev, delta, out=self._outer[i])
                gb += delta
            if i > 0:
                delta = self._act_backward(acts[i - 1], delta @ self._params[i][0].T)
        return loss

    def _add_decay(self):
        decay = self.spec.weight_decay
        if decay:
            for (W, _), gW, tmp in zip(self._params, self._grads[0::2], self._outer):
                np.multiply(W, decay, out=tmp)
                gW += tmp

    def loss_and_gradients(self, X, Y):
        """(mean data loss, [(dW, db), ...]) of the objective on one batch, without an update."""
        X = np.ascontiguousarray(X, dtype=self.spec.dtype)
        Y = np.ascontiguousarray(Y, dtype=self.spec.dtype)
        m = X.shape[0]
        total = sum(self._accumulate(X[j], Y[j], 1.0 / m, j == 0) for j in range(m))
        self._add_decay()
        g = [a.copy() for a in self._grads]
        return total / m, list(zip(g[0::2], g[1::2]))

    def _train_ordered(self, X, Y, batch_size):
        n = X.shape[0]
        total = 0.0
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            scale = 1.0 / (stop - start)
            for j in range(start, stop):
                total += self._accumulate(X[j], Y[j], scale, j == start)
            self._add_decay()
            self._optimizer.step(self._flat, self._grads)
        return total / n

    def _predict(self, X):
        out = np.empty((X.shape[0], self.spec.n_outputs), dtype=self.spec.dtype)
        for j in range(X.shape[0]):
            out[j] = self._forward(X[j])[2]
        return out

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in self._params]

    def set_params(self, params):
        for (W, b), (W_new, b_new) in zip(self._params, check_params(self.spec, params)):
            np.copyto(W, W_new)
            np.copyto(b, b_new)
