"""`numpy-loop`: forward and backward one sample at a time, in a Python loop.

The per-sample style of a first hand-written MLP: each sample goes through `impls.core` alone,
as a batch of one row, and the per-sample gradients are averaged. One optimiser update is made
per batch, so batch_size=1 is online SGD.
"""

from __future__ import annotations

from . import core
from .base import HandWrittenMLP


class NumpyLoopMLP(HandWrittenMLP):
    """Per-sample forward/backward; the same maths as numpy-vec, one sample at a time.

    Options: see `HandWrittenMLP`.
    """

    backend = "numpy-loop"

    def _gradients(self, X, Y):
        """Sum of the per-sample gradients of loss / m, i.e. their mean, sample by sample."""
        params, spec, m = self.params, self.spec, X.shape[0]
        if m == 1:  # online SGD (batch_size=1): the one sample is the batch, nothing to average
            return core.gradients(params, X, Y, spec, 1.0)
        losses, grads = core.gradients(params, X[0:1, :], Y[0:1, :], spec, 1.0 / m)
        all_losses = [losses]
        for j in range(1, m):
            losses, sample_grads = core.gradients(
                params, X[j : j + 1, :], Y[j : j + 1, :], spec, 1.0 / m
            )
            for (dW, db), (dW_j, db_j) in zip(grads, sample_grads):
                dW += dW_j
                db += db_j
            all_losses.append(losses)
        return self.xp.concat(all_losses), grads
