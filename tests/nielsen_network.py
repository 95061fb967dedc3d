"""A test client in the style of the network of Michael Nielsen's book "Neural Networks and
Deep Learning" (written for these tests, not copied): sigmoid layers, column vectors, weights
shaped (n_out, n_in), biases as column vectors, per-sample backpropagation, the quadratic cost
½‖a−y‖² summed over the outputs, and mini-batch SGD that averages over the batch
(w ← w − η/m Σ ∇w).

`Network` is the outside code as its author would write it; `NielsenMLP` is the adapter to
mlp-bench's protocol, with its conventions declared; `NaiveNielsenMLP` is the same adapter
without them (η passed as the contract's lr), which `bench verify` must reject, naming the
factor n_out/2 and its cause.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class Network:
    def __init__(self, weights, biases):
        self.weights = weights  # [(n_out, n_in), ...]
        self.biases = biases  # [(n_out, 1), ...]

    def feedforward(self, a):
        for w, b in zip(self.weights, self.biases):
            a = sigmoid(w @ a + b)
        return a

    def backprop(self, x, y):
        """(∇b, ∇w) of ½‖a−y‖² for one sample, x and y column vectors."""
        activation, activations = x, [x]
        for w, b in zip(self.weights, self.biases):
            activation = sigmoid(w @ activation + b)
            activations.append(activation)
        a = activations[-1]
        delta = (a - y) * a * (1 - a)
        nabla_b, nabla_w = [delta], [delta @ activations[-2].T]
        for layer in range(2, len(self.weights) + 1):
            a = activations[-layer]
            delta = (self.weights[-layer + 1].T @ delta) * a * (1 - a)
            nabla_b.insert(0, delta)
            nabla_w.insert(0, delta @ activations[-layer - 1].T)
        return nabla_b, nabla_w

    def update_mini_batch(self, batch, eta):
        nabla_b = [np.zeros_like(b) for b in self.biases]
        nabla_w = [np.zeros_like(w) for w in self.weights]
        for x, y in batch:
            db, dw = self.backprop(x, y)
            nabla_b = [nb + d for nb, d in zip(nabla_b, db)]
            nabla_w = [nw + d for nw, d in zip(nabla_w, dw)]
        m = len(batch)
        self.weights = [w - (eta / m) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / m) * nb for b, nb in zip(self.biases, nabla_b)]

    def cost(self, x, y):
        return 0.5 * float(np.sum((self.feedforward(x) - y) ** 2))


class NielsenMLP:
    """The adapter: the contract's (n_in, n_out) weights and (n_out,) biases become Nielsen's
    (n_out, n_in) weights and column-vector biases, and back in get_params."""

    conventions = {"mse": "half-sum"}
    supports = {"activation": ["sigmoid"], "output": ["sigmoid"], "loss": ["mse"]}

    def __init__(self, spec, params):
        if spec.optimizer != "sgd" or spec.momentum or spec.weight_decay:
            raise NotImplementedError("plain mini-batch SGD only")
        self.dtype, self.eta = spec.dtype, spec.lr
        weights = [np.array(W, dtype=spec.dtype).T.copy() for W, _ in params]
        biases = [np.array(b, dtype=spec.dtype).reshape(-1, 1) for _, b in params]
        self.net = Network(weights, biases)

    def _column(self, row):
        return np.asarray(row, dtype=self.dtype).reshape(-1, 1)

    def train_epoch(self, X, Y, batch_size, order):
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = [(self._column(X[i]), self._column(Y[i])) for i in rows]
            total += sum(self.net.cost(x, y) for x, y in batch)
            self.net.update_mini_batch(batch, self.eta)
        return total / len(order)

    def predict_proba(self, X):
        return np.hstack([self.net.feedforward(self._column(x)) for x in X]).T

    def get_params(self):
        return [(w.T.copy(), b.ravel().copy()) for w, b in zip(self.net.weights, self.net.biases)]


class NaiveNielsenMLP(NielsenMLP):
    """The same adapter with no conventions declared: η is the contract's lr."""

    conventions = {}
