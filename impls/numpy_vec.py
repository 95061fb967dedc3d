"""`numpy-vec`: the network on whole batches, each a matrix of m rows through `impls.core`."""

from __future__ import annotations

from . import core
from .base import HandWrittenMLP


class NumpyVecMLP(HandWrittenMLP):
    """Forward and backward over the whole batch at once, as matrix products.

    The batch-mean gradient comes from one backward pass whose output delta is scaled by 1/m,
    so its products a^T delta sum the per-sample terms. Options: see `HandWrittenMLP`.
    """

    backend = "numpy-vec"

    def _gradients(self, X, Y):
        return core.gradients(self.params, X, Y, self.spec, 1.0 / X.shape[0])
