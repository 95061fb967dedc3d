"""The straightforward per-sample formulation with Jacobian matrices, as a first hand-written
MLP often computes backprop: dL/dyhat times the full output Jacobian (diag(p) - p p^T for
softmax), then, layer by layer, the previous delta times W^T times diag(f'(z)) built as an
identity matrix scaled by the derivative. The same maths as numpy-loop (relu hidden layers,
softmax output, cce, plain SGD, one update per sample), written the slow, literal way: the
yardstick numpy-loop's vector formulation is measured against.
"""

import numpy as np


class JacobianMLP:
    backend = "jacobian-yardstick"

    def __init__(self, params, lr):
        self.params = [(W.copy(), b.copy()) for W, b in params]
        self.lr = lr

    def _forward(self, x):
        zs, acts = [], [x]
        for i, (W, b) in enumerate(self.params):
            z = acts[-1] @ W + b
            zs.append(z)
            if i < len(self.params) - 1:
                acts.append(np.maximum(z, 0))
            else:
                e = np.exp(z - z.max())
                acts.append(e / e.sum())
        return zs, acts

    def train_epoch(self, X, Y, batch_size, order):
        """Online SGD (batch_size must be 1): one update per sample, in `order`."""
        if batch_size != 1:
            raise ValueError("the yardstick is per-sample online SGD: batch_size 1 only")
        total = 0.0
        for i in order:
            x, y = X[i], Y[i]
            zs, acts = self._forward(x)
            p = acts[-1]
            total += -float(np.log(p[y.argmax()]))
            dL_dp = -(y / p)[None, :]  # row vector
            jacobian = np.diagflat(p) - np.outer(p, p)  # softmax: d p / d z
            delta = dL_dp @ jacobian
            grads = []
            for layer in range(len(self.params) - 1, -1, -1):
                W, _ = self.params[layer]
                grads.append((np.outer(acts[layer], delta), delta.ravel()))
                if layer > 0:
                    relu_jacobian = np.eye(W.shape[0]) * (zs[layer - 1] > 0)
                    delta = delta @ W.T @ relu_jacobian
            for (W, b), (gW, gb) in zip(self.params, reversed(grads)):
                W -= self.lr * gW
                b -= self.lr * gb
        return total / len(order)

    def predict_proba(self, X):
        return np.stack([self._forward(x)[1][-1] for x in X])

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in self.params]
