"""An MLP from scratch in plain NumPy, as a student writes one. Check it step by step with
python -m bench verify --backends examples/student_mlp.py:StudentMLP

The project's textbook MLP is impls/reference.py: the same maths written out at length, each
loss, derivative and optimiser step beside its formula, batched or one sample at a time. Read
it beside this one where the report names a difference.
"""

import numpy as np

ACT = {  # hidden activation: (f(z), f'(z) written with a = f(z))
    "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a**2),
}
OUTPUT = {"cce": "softmax", "bce": "sigmoid", "mse": "linear"}  # the pairs this MLP knows


class StudentMLP:
    def __init__(self, spec, params):
        if spec.output != OUTPUT[spec.loss]:
            raise NotImplementedError(f"{spec.loss} needs a {OUTPUT[spec.loss]} output here")
        self.s, self.f, self.df = spec, *ACT[spec.activation]
        self.params = [np.array(p, dtype=spec.dtype) for layer in params for p in layer]
        self.m = [np.zeros_like(p) for p in self.params]  # momentum, or Adam's 1st moment
        self.v = [np.zeros_like(p) for p in self.params]  # Adam's 2nd moment
        self.t = 0

    def forward(self, X):
        acts = [np.asarray(X, self.s.dtype)]  # the input, then each layer's output
        for i in range(0, len(self.params), 2):
            z = acts[-1] @ self.params[i] + self.params[i + 1]
            acts.append(self.f(z) if i < len(self.params) - 2 else self.output(z))
        return acts

    def output(self, z):
        if self.s.loss == "cce":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return 1 / (1 + np.exp(-z)) if self.s.loss == "bce" else z

    def predict_proba(self, X):
        return self.forward(X)[-1]

    def train_epoch(self, X, Y, batch_size, order):
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            acts, y, n = self.forward(X[rows]), Y[rows], len(rows)
            p = acts[-1]
            if self.s.loss == "cce":
                loss, delta = -np.sum(y * np.log(p)) / n, (p - y) / n
            elif self.s.loss == "bce":
                loss, delta = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), (p - y) / y.size
            else:
                loss, delta = np.mean((p - y) ** 2), 2 * (p - y) / y.size
            grads = []
            for i in range(len(self.params) - 2, -1, -2):  # backpropagation, last layer first
                W, a = self.params[i], acts[i // 2]
                grads[:0] = [a.T @ delta + self.s.weight_decay * W, delta.sum(axis=0)]
                delta = (delta @ W.T) * self.df(a)
            self.step(grads)
            total += loss * n
        return total / len(order)

    def step(self, grads):
        s, self.t = self.s, self.t + 1
        (b1, b2), t = s.betas, self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            if s.optimizer == "sgd":
                m[...] = s.momentum * m + g
                p -= s.lr * m
            else:  # Adam, with bias correction
                m[...] = b1 * m + (1 - b1) * g
                v[...] = b2 * v + (1 - b2) * g**2
                p -= s.lr * m / (1 - b1**t) / (np.sqrt(v / (1 - b2**t)) + s.eps)

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in zip(self.params[::2], self.params[1::2])]
