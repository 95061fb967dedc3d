"""Seed 004: biases as a weight row, the input given a column of ones (the notebook that
trained 64-32-32-10 on standardised digits by full-batch gradient descent).

    python -m bench verify --backends examples/seeds/seed004.py:Seed004MLP
    python -m bench run --preset seed004

X_bias prepends a column of ones, so a layer is one matrix w (1 + n_in, n_out) whose row 0 is
the bias: Z = X_bias(A) @ w. The errors are propagated through w[1:] (the bias row has no
input behind it), and grad(err, X) = Xᵀ err / m averages over the batch. The contract's
(W, b) pairs become np.vstack([b, W]) in __init__ and are split again in get_params.

Conventions: the cross-entropy error A − y is the contract's. The notebook's err_mse,
2(A − y) on a linear output, is the gradient of the squared error SUMMED over the n_out
outputs: n_out times the contract's mse (a mean over the outputs); the harness has no declared
convention for a plain sum over the outputs, so the class converts at its edge: lr / n_out for
mse. It reports the contract's losses (the mean over the outputs for mse).

Where it departs from the notebook: the notebook updates W3 before computing E2 from it (and
W2 before E1), so it backpropagates through weights already stepped; here every error is taken
from the weights of the forward pass, then all the layers step, which is the gradient. Its cost
adds 1e-8 inside the logarithm; here the dtype's smallest normal number, so the reported loss
is the cross-entropy itself. Layers are a list, of any depth, not three named matrices.

Supports: relu or sigmoid hidden layers, softmax output with cce or linear output with mse,
plain SGD, float32 and float64. Anything else raises NotImplementedError.
"""

import numpy as np


def get_z(X, w):
    return X @ w


def relu(Z):
    return np.maximum(0, Z)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def softmax(Z):
    e = np.exp(Z - np.max(Z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def linear(Z):
    return Z


def X_bias(X):
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    return np.hstack((ones, X))


def err_softmax(A, y):
    return A - y


def err_mse(A, y):
    return 2 * (A - y)


def err_relu(A, err_next, w_next):
    return err_next @ w_next[1:].T * (A > 0)


def err_sigmoid(A, err_next, w_next):
    return (err_next @ w_next[1:].T) * (A * (1 - A))


def cost_softmax(y, A):
    tiny = np.finfo(A.dtype).tiny
    return -np.mean(np.sum(y * np.log(A + tiny), axis=1))


def cost_mse(y, A):
    return np.mean((A - y) ** 2)  # the contract's: a mean over the outputs and the samples


def grad(err, X):
    return X.T @ err / X.shape[0]


def update_weight(w, lr, grad):
    return w - lr * grad


HIDDEN = {"relu": (relu, err_relu), "sigmoid": (sigmoid, err_sigmoid)}
OUTPUT = {"cce": (softmax, err_softmax, cost_softmax), "mse": (linear, err_mse, cost_mse)}


class Seed004MLP:
    """The notebook's training loop, one batch of rows per iteration."""

    supports = {
        "activation": ["relu", "sigmoid"],
        "output": ["softmax", "linear"],
        "loss": ["cce", "mse"],
        "optimizer": ["sgd"],
    }

    def __init__(self, spec, params):
        if spec.activation not in HIDDEN:
            raise NotImplementedError("seed004's hidden layers are relu or sigmoid")
        if (spec.loss, spec.output) not in (("cce", "softmax"), ("mse", "linear")):
            raise NotImplementedError(
                f"seed004 trains cce on a softmax or mse on a linear output, not {spec.loss} "
                f"on {spec.output}"
            )
        if spec.optimizer != "sgd" or spec.momentum or spec.weight_decay:
            raise NotImplementedError("seed004 steps by plain gradient descent")
        self.dtype = np.dtype(spec.dtype)
        self.act, self.err_hidden = HIDDEN[spec.activation]
        self.out, self.err_out, self.cost = OUTPUT[spec.loss]
        # err_mse is summed over the outputs: n_out times the contract's mse gradient
        self.lr = spec.lr / spec.n_outputs if spec.loss == "mse" else spec.lr
        # each (W (n_in, n_out), b (n_out,)) -> w (1 + n_in, n_out), the bias as row 0
        self.weights = [np.vstack([b, W]).astype(self.dtype) for W, b in params]

    def forward(self, X):
        """The activations of every layer, the input first."""
        A = [X]
        for i, w in enumerate(self.weights):
            Z = get_z(X_bias(A[-1]), w)
            A.append(self.out(Z) if i == len(self.weights) - 1 else self.act(Z))
        return A

    def train_epoch(self, X, Y, batch_size, order):
        X = np.asarray(X, dtype=self.dtype)
        Y = np.asarray(Y, dtype=self.dtype)
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            A = self.forward(X[rows])
            total += self.cost(Y[rows], A[-1]) * len(rows)
            E = self.err_out(A[-1], Y[rows])
            grads = []
            for i in reversed(range(len(self.weights))):
                grads.insert(0, grad(E, X_bias(A[i])))
                if i > 0:
                    E = self.err_hidden(A[i], E, self.weights[i])
            self.weights = [update_weight(w, self.lr, g) for w, g in zip(self.weights, grads)]
        return total / len(order)

    def predict_proba(self, X):
        return self.forward(np.asarray(X, dtype=self.dtype))[-1]

    def get_params(self):
        return [(w[1:].copy(), w[0].copy()) for w in self.weights]
