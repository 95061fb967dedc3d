"""Seed 003: a generic deep dense stack with samples as columns, softmax Jacobians per sample,
cross-entropy or half squared error, and weight decay (the notebook that trained
784-500-200-100-30-30-30-10 on MNIST).

    python -m bench verify --backends examples/seeds/seed003.py:Seed003MLP
    python -m bench run --preset seed003

X is (n, m) with a sample per column; a layer is (W (out, in), b (out,), act), and act returns
the activation and its derivative: elementwise for relu, a (m, k, k) stack of Jacobians for
the softmax, which `backward` contracts with np.einsum. A loss returns its value and its
derivative with respect to the output activation, both averaged over the batch (the 1/m).

Conventions: the notebook's mse is ½‖ŷ − y‖² summed over the outputs, declared below
("mse": "half-sum"), so the harness passes lr × 2/n_out and weight_decay × n_out/2 for mse and
converts the reported loss. Its weight decay adds 2·wd·W to the gradient (the gradient of
wd‖W‖²); the contract's λ adds λW, so wd = λ/2 (the λ given, already scaled for the half-sum
cost).

Where it departs from the notebook: weight decay applies to the weights only, as the
contract's (the notebook decayed the biases too). The softmax's smoothing,
(1 − ε)ŷ + ε/k, uses the dtype's ε instead of 1e-8, so it guards the logarithm and the
division −y/ŷ without moving ŷ beyond rounding.

Supports: relu hidden layers (any number), softmax output with cce or mse, SGD with or without
weight decay (no momentum), float32 and float64. Anything else raises NotImplementedError.
"""

import numpy as np


def relu(x):
    y = np.maximum(0, x)
    der = np.zeros_like(x)
    der[x > 0] = 1
    return y, der


def softmax(x):
    """Each column of x through the softmax, and each column's Jacobian (a (m, k, k) stack):
    every output depends on every input of its column."""
    epsilon = np.finfo(x.dtype).eps
    n, m = x.shape
    f, d = [], []
    for c in range(m):
        col = x[:, c]
        e = np.exp(col - col.max())
        y = e / e.sum(axis=0)
        y = (1 - epsilon) * y + epsilon / y.shape[0] * np.ones_like(y)
        f.append(y)
        diag = np.diag(y * (1 - y))
        out = 1 - np.identity(y.shape[0], dtype=x.dtype)
        d.append(diag - out * (y[:, np.newaxis] * y[np.newaxis, :]))
    return np.array(f, dtype=x.dtype).T, np.array(d, dtype=x.dtype)


def categorical_cross_entropy(y, yHat):
    m = y.shape[1]
    ce = -np.sum(y * np.log(yHat))
    der = -y / yHat
    return ce / m, der / m


def mse(y, yHat):
    m = y.shape[1]
    cost = np.sum((y - yHat) ** 2) / 2
    der = yHat - y
    return cost / m, der / m


LOSSES = {"cce": categorical_cross_entropy, "mse": mse}


def forward(dense, aPrev):
    W, b, act = dense
    p = W @ aPrev + b[:, np.newaxis]  # the preactivation
    a, da_dp = act(p)
    return a, da_dp


def backward(dense, dL_da, a_prev, da_dp):
    W, b, act = dense
    if len(da_dp.shape) == 2:  # elementwise activation
        dL_dp = dL_da * da_dp
    else:  # every output depends on every input (softmax): a Jacobian per sample
        dL_dp = np.einsum("ijk, ki -> ji", da_dp, dL_da)
    dL_dW = dL_dp @ a_prev.T
    dL_db = dL_dp.sum(axis=1)
    dL_daPrev = W.T @ dL_dp
    return dL_dW, dL_db, dL_daPrev


def calculate_gradients_and_loss(layers, loss, X, y, wd=0.0):
    layer_results = [(X, None)]
    for layer in layers:
        layer_results.append(forward(layer, layer_results[-1][0]))
    L, dL_da = loss(y, layer_results[-1][0])
    gradients_W, gradients_b = [], []
    for i in reversed(range(len(layers))):
        a, da_dp = layer_results[i + 1]
        a_prev, _ = layer_results[i]
        dL_dW, dL_db, dL_da = backward(layers[i], dL_da, a_prev, da_dp)
        gradients_W.append(dL_dW + 2 * wd * layers[i][0])
        gradients_b.append(dL_db)
    return reversed(gradients_W), reversed(gradients_b), L


def get_result(layers, X):
    result = X
    for layer in layers:
        result, _ = forward(layer, result)
    return result


class Seed003MLP:
    """The notebook's gradient_descent, one batch of columns per step."""

    conventions = {"mse": "half-sum"}
    supports = {
        "activation": ["relu"],
        "output": ["softmax"],
        "loss": ["cce", "mse"],
        "optimizer": ["sgd", "decay"],
    }

    def __init__(self, spec, params):
        if spec.activation != "relu" or spec.output != "softmax" or spec.loss not in LOSSES:
            raise NotImplementedError(
                "seed003 stacks relu layers under a softmax output, trained with cce or mse; "
                f"not {spec.activation} hidden, {spec.loss} on {spec.output}"
            )
        if spec.optimizer != "sgd" or spec.momentum:
            raise NotImplementedError("seed003 steps by plain SGD (weight decay allowed)")
        self.dtype = np.dtype(spec.dtype)
        self.loss = LOSSES[spec.loss]
        self.alpha = spec.lr
        self.wd = spec.weight_decay / 2  # the notebook's term is 2 * wd * W
        self.layers = []
        for i, (W, b) in enumerate(params):
            act = softmax if i == len(params) - 1 else relu
            # (n_in, n_out) -> (out, in)
            self.layers.append(
                (np.array(W, dtype=self.dtype).T.copy(), np.array(b, self.dtype), act)
            )

    def train_epoch(self, X, Y, batch_size, order):
        X = np.asarray(X, dtype=self.dtype).T  # a sample per column
        y = np.asarray(Y, dtype=self.dtype).T
        total = 0.0
        for start in range(0, len(order), batch_size):
            columns = order[start : start + batch_size]
            X_batch, y_batch = X[:, columns], y[:, columns]
            gradients_W, gradients_b, L = calculate_gradients_and_loss(
                self.layers, self.loss, X_batch, y_batch, self.wd
            )
            for layer, gradient_W, gradient_b in zip(self.layers, gradients_W, gradients_b):
                W, b, _ = layer
                W -= self.alpha * gradient_W
                b -= self.alpha * gradient_b
            total += L * len(columns)
        return total / len(order)

    def predict_proba(self, X):
        return get_result(self.layers, np.asarray(X, dtype=self.dtype).T).T

    def get_params(self):
        return [(W.T.copy(), b.copy()) for W, b, _ in self.layers]
