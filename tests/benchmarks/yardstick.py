"""The straightforward per-sample formulation with Jacobian matrices, the way a first
hand-written MLP often computes backprop (and the way seed 000 does): each sample a column
vector, weights stored (n_out, n_in), the loss's derivative with respect to the output
activation (dL/dyhat, from the clipped probabilities) times the full output Jacobian
(diag(p) - p p^T for softmax), then, layer by layer, delta times W times the activation's
Jacobian built as an identity matrix scaled by the derivative, gradients as matrix products,
and each update a new array (W = W - lr * dW).

The same maths as numpy-loop for relu hidden layers, softmax output, cce and plain SGD with
one update per sample: the yardstick that numpy-loop's vector formulation is measured
against in the batch-1 digits group.
"""

import numpy as np

EPSILON = 1e-10  # probabilities are clipped before log and division, as such code does


def relu(z):
    return np.maximum(0, z)


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def categorical_crossentropy(y_true, y_pred):
    y_pred = np.clip(y_pred, EPSILON, 1 - EPSILON)
    return -np.sum(y_true * np.log(y_pred))


class JacobianMLP:
    backend = "jacobian-yardstick"

    def __init__(self, params, lr):
        # column-vector convention: z = W x + b with W (n_out, n_in), b (n_out, 1)
        self.weights = [W.T.copy() for W, _ in params]
        self.biases = [b.reshape(-1, 1).copy() for _, b in params]
        self.lr = lr

    def forward(self, x):
        zs, acts = [], [x]
        last = len(self.weights) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = W @ acts[-1] + b
            zs.append(z)
            acts.append(softmax(z) if i == last else relu(z))
        return zs, acts

    def backward(self, y, zs, acts):
        y_pred = np.clip(acts[-1], EPSILON, 1 - EPSILON)
        dloss_dyhat = (-y / y_pred).T  # (1, k)
        dyhat_dz = np.diagflat(acts[-1]) - acts[-1] @ acts[-1].T  # softmax Jacobian (k, k)
        dloss_dz = dloss_dyhat @ dyhat_dz  # (1, k)
        grads_W, grads_b = [], []
        for layer in range(len(self.weights) - 1, -1, -1):
            grads_W.append(dloss_dz.T @ acts[layer].T)
            grads_b.append(dloss_dz.T)
            if layer > 0:
                z = zs[layer - 1]
                da_dz = np.eye(len(z), dtype=z.dtype) * (z > 0)  # relu Jacobian (n, n)
                dloss_dz = dloss_dz @ self.weights[layer] @ da_dz
        return grads_W[::-1], grads_b[::-1]

    def train_epoch(self, X, Y, batch_size, order):
        """Online SGD (batch_size must be 1): one update per sample, in `order`."""
        if batch_size != 1:
            raise ValueError("the yardstick is per-sample online SGD: batch_size 1 only")
        epoch_loss = 0.0
        for i in order:
            x = np.reshape(X[i], (len(X[i]), 1))
            y = np.reshape(Y[i], (len(Y[i]), 1))
            zs, acts = self.forward(x)
            epoch_loss = epoch_loss + categorical_crossentropy(y, acts[-1])
            grads_W, grads_b = self.backward(y, zs, acts)
            self.weights = [W - self.lr * g for W, g in zip(self.weights, grads_W)]
            self.biases = [b - self.lr * g for b, g in zip(self.biases, grads_b)]
        return epoch_loss / len(order)

    def predict_proba(self, X):
        return np.stack([self.forward(x.reshape(-1, 1))[1][-1].ravel() for x in X])

    def get_params(self):
        return [(W.T.copy(), b.ravel().copy()) for W, b in zip(self.weights, self.biases)]
