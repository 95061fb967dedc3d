"""Seed 002: a vectorised one-hidden-layer network trained by full-batch gradient descent, with
samples as columns (the notebook that trained 784-10-10 on MNIST for 500 iterations).

    python -m bench verify --backends examples/seeds/seed002.py:Seed002MLP
    python -m bench run --preset seed002

The data is transposed so that every sample is a column: X is (n_in, m), W1 (10, 784),
b1 (10, 1), and forward_prop computes Z1 = W1.dot(X) + b1 for all m samples at once;
back_prop averages over the m columns (the 1/m). The contract's W (n_in, n_out) and b
(n_out,) are turned into that layout in __init__ and back in get_params. A batch here is a
set of columns: the preset's batch is the whole training set, one update per epoch, as in the
notebook; any batch size works.

Where it departs from the notebook: the notebook's bias gradients, (1/m) np.sum(dZ), sum
over the units as well as the samples, so every unit's bias takes the same step; here they
sum over the samples only, (1/m) np.sum(dZ, axis=1, keepdims=True), the gradient of each
bias. The softmax subtracts each column's maximum before np.exp, so large scores cannot
overflow. The notebook printed the training accuracy, not the loss; `train_epoch` returns
the mean cross-entropy of the epoch, computed from the A2 it already has.

Supports: relu hidden layer (one), softmax output with cce, plain SGD, float32 and float64.
Anything else raises NotImplementedError.
"""

import numpy as np


def ReLu(Z):
    return np.maximum(0, Z)


def deriv_ReLU(Z):
    return Z > 0


def softmax(Z):
    # each column is a sample: normalise over the classes (axis 0)
    E = np.exp(Z - np.max(Z, axis=0, keepdims=True))
    return E / np.sum(E, axis=0, keepdims=True)


def forward_prop(W1, b1, W2, b2, X):
    Z1 = W1.dot(X) + b1
    A1 = ReLu(Z1)
    Z2 = W2.dot(A1) + b2
    A2 = softmax(Z2)
    return Z1, A1, Z2, A2


def back_prop(Z1, A1, Z2, A2, W1, W2, X, one_hot_Y):
    m = X.shape[1]
    dZ2 = A2 - one_hot_Y  # the cross-entropy's gradient with respect to Z2
    dW2 = (1 / m) * dZ2.dot(A1.T)
    db2 = (1 / m) * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = W2.T.dot(dZ2)
    dZ1 = dA1 * deriv_ReLU(Z1)
    dW1 = (1 / m) * dZ1.dot(X.T)
    db1 = (1 / m) * np.sum(dZ1, axis=1, keepdims=True)
    return dW1, db1, dW2, db2


def update_parameters(W1, b1, W2, b2, dW1, db1, dW2, db2, alpha):
    W1 = W1 - alpha * dW1
    b1 = b1 - alpha * db1
    W2 = W2 - alpha * dW2
    b2 = b2 - alpha * db2
    return W1, b1, W2, b2


def cross_entropy(A2, one_hot_Y):
    """Summed over the columns (samples)."""
    tiny = np.finfo(A2.dtype).tiny
    return -np.sum(one_hot_Y * np.log(np.maximum(A2, tiny)))


class Seed002MLP:
    """The notebook's gradient descent, one update per batch of columns."""

    supports = {
        "activation": ["relu"],
        "output": ["softmax"],
        "loss": ["cce"],
        "optimizer": ["sgd"],
    }

    def __init__(self, spec, params):
        if len(params) != 2:
            raise NotImplementedError("seed002's network has exactly one hidden layer")
        if spec.activation != "relu" or (spec.loss, spec.output) != ("cce", "softmax"):
            raise NotImplementedError(
                "seed002 trains a relu hidden layer with a softmax output and cce, not "
                f"{spec.activation} hidden, {spec.loss} on {spec.output}"
            )
        if spec.optimizer != "sgd" or spec.momentum or spec.weight_decay:
            raise NotImplementedError("seed002 steps by plain gradient descent")
        self.dtype = np.dtype(spec.dtype)
        self.alpha = spec.lr
        (W1, b1), (W2, b2) = params
        # (n_in, n_out) -> (n_out, n_in); biases as column vectors
        self.W1 = np.array(W1, dtype=self.dtype).T.copy()
        self.b1 = np.array(b1, dtype=self.dtype).reshape(-1, 1)
        self.W2 = np.array(W2, dtype=self.dtype).T.copy()
        self.b2 = np.array(b2, dtype=self.dtype).reshape(-1, 1)

    def train_epoch(self, X, Y, batch_size, order):
        X_columns = np.asarray(X, dtype=self.dtype).T  # (n_in, n): a sample per column
        Y_columns = np.asarray(Y, dtype=self.dtype).T
        total = 0.0
        for start in range(0, len(order), batch_size):
            columns = order[start : start + batch_size]
            X_batch, one_hot_Y = X_columns[:, columns], Y_columns[:, columns]
            Z1, A1, Z2, A2 = forward_prop(self.W1, self.b1, self.W2, self.b2, X_batch)
            total += cross_entropy(A2, one_hot_Y)
            dW1, db1, dW2, db2 = back_prop(Z1, A1, Z2, A2, self.W1, self.W2, X_batch, one_hot_Y)
            self.W1, self.b1, self.W2, self.b2 = update_parameters(
                self.W1, self.b1, self.W2, self.b2, dW1, db1, dW2, db2, self.alpha
            )
        return total / len(order)

    def predict_proba(self, X):
        X_columns = np.asarray(X, dtype=self.dtype).T
        A2 = forward_prop(self.W1, self.b1, self.W2, self.b2, X_columns)[3]
        return A2.T

    def get_params(self):
        return [
            (self.W1.T.copy(), self.b1.ravel().copy()),
            (self.W2.T.copy(), self.b2.ravel().copy()),
        ]
