"""The yardstick of the batch-1 digits group: the textbook MLP (`impls/reference.py`) one sample
at a time.

Its per-sample form is the way a first hand-written MLP often computes backprop (and the way
seed 000 does): each sample a vector, the chain rule with every Jacobian written out as a
matrix (diag(f'(z)) for the hidden activation, diag(p) - p p^T for a softmax under mse), the
gradients as outer products, and each update a new array. It computes the same maths as
numpy-loop, which is the same per-sample loop written for speed (`impls/core.py` says what each
of its choices buys), so the group compares formulations, nothing else.
"""

from impls.reference import ReferenceMLP


class Yardstick(ReferenceMLP):
    """`ReferenceMLP(spec, params, per_sample=True)`, named as the benchmark tables show it."""

    backend = "jacobian-yardstick"

    def __init__(self, spec, params):
        super().__init__(spec, params, per_sample=True)
