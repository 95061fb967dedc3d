"""`numpy-loop`: forward and backward one sample at a time, in a Python loop.

The per-sample style of a first hand-written MLP, done as fast as that style allows: 1-D
vector operations, gradients of a weight matrix accumulated as rank-1 (outer product) updates,
no Jacobian-sized matrices. Within a batch the per-sample gradients are averaged and one
optimiser update is made per batch, so batch_size=1 is online SGD.

At this size a sample costs a few dozen NumPy calls of a few hundred nanoseconds each, so the
call count is the cost: every vector lives in a buffer allocated once, the output layer's loss
and delta come from one fused call (core.LOSS_AND_DELTA), and online plain SGD adds each rank-1
term straight into its weight matrix (see `_train_online`).
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
        self._loss_and_delta = core.LOSS_AND_DELTA[(spec.loss, spec.output)]
        # One buffer per layer for z (a hidden layer's activation overwrites its z in place)
        # and one for its delta, plus 2-D views of them: a rank-1 term is written by np.dot of
        # an (n_in, 1) column and a (1, n_out) row, a BLAS call about twice as fast as np.outer.
        sizes, dtype = spec.layer_sizes, spec.dtype
        self._z = [np.empty(n, dtype) for n in sizes[1:]]
        self._z_col = [z[:, None] for z in self._z]
        self._deltas = [np.empty(n, dtype) for n in sizes[1:]]
        self._delta_row = [d[None, :] for d in self._deltas]
        self._yhat = np.empty(sizes[-1], dtype)  # output activation, for the losses that need it

    def _forward(self, x):
        """Fill the layers' buffers for the single sample x (1-D); return the logits buffer."""
        a = x
        for (W, b), z in zip(self._params[:-1], self._z):
            np.dot(a, W, out=z)
            z += b
            a = self._act(z, out=z)
        W, b = self._params[-1]
        z = self._z[-1]
        np.dot(a, W, out=z)
        z += b
        return z

    def _accumulate(self, x, x_col, y, y_sum, scale, first):
        """Add `scale` × this sample's gradient to self._grads (or set it, if `first`).

        x_col is x as an (n_in, 1) column. Returns the sample's data loss, a float.
        """
        z = self._forward(x)
        loss = float(self._loss_and_delta(z, y, self._deltas[-1], self._yhat, y_sum))
        delta = self._deltas[-1]
        delta *= scale
        grads = self._grads
        for i in range(len(self._params) - 1, -1, -1):
            a_col = x_col if i == 0 else self._z_col[i - 1]
            gW, gb = grads[2 * i], grads[2 * i + 1]
            if first:
                np.dot(a_col, self._delta_row[i], out=gW)
                np.copyto(gb, delta)
            else:
                gW += np.dot(a_col, self._delta_row[i], out=self._outer[i])
                gb += delta
            if i > 0:
                prev = np.dot(self._params[i][0], delta, out=self._deltas[i - 1])  # W delta
                delta = self._act_backward(self._z[i - 1], prev)
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
        samples = zip(X, X[:, :, None], Y, Y.sum(axis=1).tolist())
        total = sum(self._accumulate(*s, 1.0 / m, j == 0) for j, s in enumerate(samples))
        self._add_decay()
        g = [a.copy() for a in self._grads]
        return total / m, list(zip(g[0::2], g[1::2]))

    def _train_ordered(self, X, Y, batch_size):
        step_scale = self._optimizer.direct_scale  # set for plain SGD (see core.SGD)
        if batch_size == 1 and step_scale is not None and not self.spec.weight_decay:
            return self._train_online(X, Y, step_scale)
        n = X.shape[0]
        X_col = X[:, :, None]  # each row as an (n_in, 1) column, a view
        Y_sum = Y.sum(axis=1).tolist()  # the targets' mass per sample, for the loss, in one call
        total = 0.0
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            scale = 1.0 / (stop - start)
            for j in range(start, stop):
                total += self._accumulate(X[j], X_col[j], Y[j], Y_sum[j], scale, j == start)
            self._add_decay()
            self._optimizer.step(self._flat, self._grads)
        return total / n

    def _train_online(self, X, Y, step_scale):
        """batch_size 1 with a stateless step p += step_scale * g (plain SGD, no decay).

        The same update as `_accumulate` then `optimizer.step`, in fewer calls: the output
        delta is scaled by step_scale (-lr) once, so every layer's delta below it comes out
        scaled too (backprop is linear in delta), and each layer's rank-1 term is added
        straight into W and b. A layer's W is updated only after the delta of the layer below
        has been formed from it, as when the whole gradient is formed first.
        """
        act, act_backward = self._act, self._act_backward
        loss_and_delta, yhat = self._loss_and_delta, self._yhat
        (W0, b0), *upper = self._params
        hidden = list(zip(self._params[:-1], self._z))  # (W, b), z: the layers before the last
        W_out, b_out = self._params[-1]
        z_out, delta_out = self._z[-1], self._deltas[-1]
        # Backward from the top down to layer 1, each with the buffers it reads and writes:
        # (W, b, delta, delta as a row, input activation as a column, rank-1 scratch,
        # the delta below, the activation below).
        backward = [
            (W, b, self._deltas[i], self._delta_row[i], self._z_col[i - 1], self._outer[i],
             self._deltas[i - 1], self._z[i - 1])
            for i, (W, b) in enumerate(upper, start=1)
        ][::-1]
        delta0, delta0_row, outer0 = self._deltas[0], self._delta_row[0], self._outer[0]
        total = 0.0
        for x, x_col, y, y_sum in zip(X, X[:, :, None], Y, Y.sum(axis=1).tolist()):
            a = x
            for (W, b), z in hidden:
                np.dot(a, W, out=z)
                z += b
                a = act(z, out=z)
            np.dot(a, W_out, out=z_out)
            z_out += b_out
            total += float(loss_and_delta(z_out, y, delta_out, yhat, y_sum))
            delta_out *= step_scale
            for W, b, delta, delta_row, a_col, outer, below, a_below in backward:
                np.dot(W, delta, out=below)  # W delta, with W as it was in the forward pass
                act_backward(a_below, below)
                W += np.dot(a_col, delta_row, out=outer)
                b += delta
            W0 += np.dot(x_col, delta0_row, out=outer0)
            b0 += delta0
        return total / X.shape[0]

    def _predict(self, X):
        out = np.empty((X.shape[0], self.spec.n_outputs), dtype=self.spec.dtype)
        for j in range(X.shape[0]):
            self._output(self._forward(X[j]), out=out[j])
        return out

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in self._params]

    def set_params(self, params):
        for (W, b), (W_new, b_new) in zip(self._params, check_params(self.spec, params)):
            np.copyto(W, W_new)
            np.copyto(b, b_new)
