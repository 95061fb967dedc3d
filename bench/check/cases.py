"""What `bench verify` checks, and the textbook result each check is held to.

Every case trains the same small network from the same weights on the same sample orders, and
a backend's parameters, predictions and epoch losses are compared with those of the textbook
MLP, `impls/reference.py`: written apart from `impls/core.py`, in the most direct form, so that
a mistake in the shared core or in a backend's fast path cannot hide by being compared with
itself. The cases cover every optimiser path a backend has: plain SGD (no momentum, no decay:
the one every headline speed figure uses), SGD with weight decay, SGD with momentum with and
without decay, and Adam with and without decay; for every loss (with each hidden activation and
output activation used at least once), at batch 1 (online updates) and at a batch size that
leaves a short last batch; in float32 and float64.

Hyperparameters are exactly representable in float32 (learning rates 2^-k, momentum 0.875,
betas 0.875 and 0.9990234375, epsilon and weight decay powers of two), because Keras rounds
Python-float hyperparameters to float32 even in float64 work; Keras's Adam is compared with the
textbook using Keras's placement of epsilon (see impls.reference.adam).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOLERANCE = {"float32": 1e-4, "float64": 1e-9}  # a backend may declare wider (impls.registry)
UNSUPPORTED = "NotImplementedError"  # a backend that cannot express a case raises it
DTYPES = ("float32", "float64")
LAYERS = (64, 32, 10)
N, EPOCHS = 60, 3
SHORT_BATCH = 7  # 60 = 8 x 7 + 4: every epoch ends with a short batch
BATCH_SIZES = (1, SHORT_BATCH)
BETAS = (0.875, 0.9990234375)
EPS = 2.0**-23
DECAY = 2.0**-7

# name -> MLPSpec settings; every optimiser path of every backend
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "lr": 2.0**-4},
    "sgd+decay": {"optimizer": "sgd", "lr": 2.0**-4, "weight_decay": DECAY},
    "momentum": {"optimizer": "sgd", "lr": 2.0**-5, "momentum": 0.875},
    "momentum+decay": {"optimizer": "sgd", "lr": 2.0**-5, "momentum": 0.875, "weight_decay": DECAY},
    "adam": {"optimizer": "adam", "lr": 2.0**-7, "betas": BETAS, "eps": EPS},
    "adam+decay": {
        "optimizer": "adam",
        "lr": 2.0**-7,
        "betas": BETAS,
        "eps": EPS,
        "weight_decay": DECAY,
    },
}
# (loss, hidden activation, output activation): every loss, every activation and output
NETWORKS = (
    ("cce", "relu", "softmax"),
    ("bce", "tanh", "sigmoid"),
    ("mse", "sigmoid", "softmax"),
    ("mse", "relu", "linear"),
)


@dataclass(frozen=True)
class Case:
    loss: str
    activation: str
    output: str
    optimizer: str  # a key of OPTIMIZERS
    batch_size: int
    dtype: str

    @property
    def network(self) -> str:
        return f"{self.loss} {self.activation}/{self.output}"

    @property
    def name(self) -> str:
        return f"{self.network} {self.optimizer} b{self.batch_size} {self.dtype}"

    def spec_kwargs(self) -> dict:
        return dict(
            layer_sizes=LAYERS,
            activation=self.activation,
            output=self.output,
            loss=self.loss,
            dtype=self.dtype,
            **OPTIMIZERS[self.optimizer],
        )


def all_cases() -> list[Case]:
    return [
        Case(loss, act, out, opt, batch, dtype)
        for loss, act, out in NETWORKS
        for opt in OPTIMIZERS
        for batch in BATCH_SIZES
        for dtype in DTYPES
    ]


def verify_data():
    """The first N of scikit-learn's digits scaled to [0, 1], one-hot targets, and one sample
    order per epoch."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data[:N] / 16.0
    Y = np.eye(10)[digits.target[:N]]
    rng = np.random.default_rng(0)
    return X, Y, [rng.permutation(N) for _ in range(EPOCHS)]


def initial_params(case: Case):
    from impls import MLPSpec, init_params

    return init_params(MLPSpec(**case.spec_kwargs()), seed=1)


# --------------------------------------------------------------------------- the textbook


def reference_train(case: Case, params, X, Y, orders, epsilon_on="v_hat"):
    """The textbook MLP (impls/reference.py) trained from `params` on `orders`, in the case's
    dtype: (final params, predictions on X, epoch losses)."""
    from impls import MLPSpec
    from impls.reference import ReferenceMLP

    model = ReferenceMLP(MLPSpec(**case.spec_kwargs()), params, adam_epsilon_on=epsilon_on)
    X, Y = X.astype(case.dtype), Y.astype(case.dtype)
    losses = [model.train_epoch(X, Y, case.batch_size, order) for order in orders]
    return model.get_params(), model.predict_proba(X), np.array(losses)


def difference(result: dict, reference) -> float:
    """Worst absolute difference over parameters, predictions and epoch losses; inf where
    either side holds NaN or inf (which max() and `>` would let pass)."""
    params, proba, losses = reference
    diffs = [
        np.abs(np.asarray(a, dtype=np.float64) - b).max()
        for pa, pb in zip(result["params"], params)
        for a, b in zip(pa, pb)
    ]
    diffs.append(np.abs(np.asarray(result["proba"], dtype=np.float64) - proba).max())
    diffs.append(np.abs(np.asarray(result["losses"], dtype=np.float64) - losses).max())
    if not np.isfinite(diffs).all():
        return float("inf")
    return float(max(diffs))


def epsilon_placement(backend: str) -> str:
    from impls import BACKENDS

    known = BACKENDS.get(backend)
    return known.adam_epsilon_on if known else "v_hat"


def tolerance(backend: str, dtype: str) -> float:
    from impls.registry import parity_tolerance

    return parity_tolerance(backend, dtype)
