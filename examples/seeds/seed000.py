"""Seed 000: a one-hidden-layer network trained one sample at a time, with column vectors and
the Jacobian of every step written out (the notebook that ran it next to Keras on digits).

    python -m bench verify --backends examples/seeds/seed000.py:Seed000MLP
    python -m bench run --preset seed000

Each sample is a column vector x (n_in, 1); weights are (n_out, n_in), so z = W @ x + b.
The backward pass multiplies the Jacobians out: dL/dŷ (a row), dŷ/dz2 (a diagonal for the
sigmoid, diag(ŷ) − ŷŷᵀ for the softmax), dz2/da1 = W2, da1/dz1 = diag(z1 > 0).

The notebook's binary cross-entropy gradient, (ŷ − y) / (ŷ(1 − ŷ)) through the sigmoid's
Jacobian, is that of the loss SUMMED over the n_out outputs, n_out times the contract's bce
(a mean over the outputs); the harness has no declared convention for that, so the class
converts at its edge: its step size alpha is the contract's lr / n_out (the notebook's alpha
0.001 is the contract's lr 0.01 on 10 outputs). Its reported loss is the notebook's, the mean
over the outputs, which is the contract's.

Where it goes beyond the notebook: the notebook's network has no biases; here b1, b2 are
column vectors trained like the weights (the preset starts them at zero). A batch larger than
one sample averages the per-sample gradients before the step (the notebook trained online,
batch 1). ŷ is clipped to [eps, 1 − eps] of the dtype, not 1e-10, so that float32 never
divides by zero.

Supports: relu hidden layer (one), sigmoid output with bce or softmax output with cce, plain
SGD, float32 and float64. Anything else raises NotImplementedError.
"""

import numpy as np


def relu(x):
    return np.maximum(0, x)


def sigmoid(x):
    x = np.clip(x, -500, 500)
    with np.errstate(over="ignore"):  # exp(500) overflows float32 to inf: 1/(1+inf) is 0
        return 1 / (1 + np.exp(-x))


def softmax(x):
    """The softmax of a column vector x."""
    exp_x = np.exp(x - np.max(x))  # subtract max(x) for numerical stability
    return exp_x / np.sum(exp_x)


def binary_crossentropy(y_true, y_pred, epsilon):
    y_pred = np.clip(y_pred.flatten(), epsilon, 1 - epsilon)
    y_true = y_true.flatten()
    return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))


def categorical_crossentropy(y_true, y_pred, epsilon):
    return -np.sum(y_true.flatten() * np.log(np.clip(y_pred.flatten(), epsilon, 1)))


class Seed000MLP:
    """The notebook's model_forward / model_backward, one sample at a time."""

    supports = {
        "activation": ["relu"],
        "output": ["sigmoid", "softmax"],
        "loss": ["bce", "cce"],
        "optimizer": ["sgd"],
    }

    def __init__(self, spec, params):
        if len(params) != 2:
            raise NotImplementedError("seed000's network has exactly one hidden layer")
        if spec.activation != "relu":
            raise NotImplementedError("seed000's hidden layer is relu only")
        if (spec.loss, spec.output) not in (("bce", "sigmoid"), ("cce", "softmax")):
            raise NotImplementedError(
                "seed000 trains bce on a sigmoid output (or cce on a softmax), "
                f"not {spec.loss} on {spec.output}"
            )
        if spec.optimizer != "sgd" or spec.momentum or spec.weight_decay:
            raise NotImplementedError("seed000 steps by plain SGD (no momentum, no decay)")
        self.dtype = np.dtype(spec.dtype)
        self.epsilon = np.finfo(self.dtype).eps
        self.output_activation = spec.output
        self.loss_name = spec.loss
        (W1, b1), (W2, b2) = params
        # the contract's W is (n_in, n_out), b (n_out,); here W is (n_out, n_in), b a column
        self.W1 = np.array(W1, dtype=self.dtype).T.copy()
        self.b1 = np.array(b1, dtype=self.dtype).reshape(-1, 1)
        self.W2 = np.array(W2, dtype=self.dtype).T.copy()
        self.b2 = np.array(b2, dtype=self.dtype).reshape(-1, 1)
        self.hidden_dim, self.output_dim = self.W1.shape[0], self.W2.shape[0]
        # the bce gradient below is summed over the outputs: n_out times the contract's
        summed_over_outputs = self.output_dim if spec.loss == "bce" else 1
        self.alpha = spec.lr / summed_over_outputs

    def model_forward(self, x):
        x = np.reshape(x, (len(x), 1))
        z1 = self.W1 @ x + self.b1
        a1 = relu(z1)
        z2 = self.W2 @ a1 + self.b2
        a2 = sigmoid(z2) if self.output_activation == "sigmoid" else softmax(z2)
        return z1, a1, z2, a2

    def model_backward(self, x, y_true, z1, a1, z2, a2):
        x = np.reshape(x, (len(x), 1))
        y_true = np.reshape(y_true, (len(y_true), 1))
        y_pred = np.clip(a2, self.epsilon, 1 - self.epsilon)
        if self.output_activation == "sigmoid":
            dloss_dy_hat = ((y_pred - y_true) / (y_pred * (1 - y_pred))).T
            dy_hat_dz2 = np.eye(self.output_dim) * (y_pred * (1 - y_pred))
        else:  # softmax with the categorical cross-entropy
            dloss_dy_hat = (-y_true / y_pred).T
            dy_hat_dz2 = np.diagflat(y_pred) - y_pred @ y_pred.T
        dz2_da1 = self.W2
        dloss_dz2 = dloss_dy_hat @ dy_hat_dz2
        da1_dz1 = np.eye(self.hidden_dim) * (z1 > 0)
        dloss_dz1 = dloss_dz2 @ dz2_da1 @ da1_dz1
        dloss_dw1 = dloss_dz1.T @ x.T
        dloss_dw2 = dloss_dz2.T @ a1.T
        return dloss_dw1, dloss_dz1.T, dloss_dw2, dloss_dz2.T

    def loss(self, y_true, a2):
        if self.loss_name == "bce":
            return binary_crossentropy(y_true, a2, self.epsilon)
        return categorical_crossentropy(y_true, a2, self.epsilon)

    def train_epoch(self, X, Y, batch_size, order):
        X = np.asarray(X, dtype=self.dtype)
        Y = np.asarray(Y, dtype=self.dtype)
        epoch_loss = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            grads = [np.zeros_like(p) for p in (self.W1, self.b1, self.W2, self.b2)]
            for i in batch:
                z1, a1, z2, a2 = self.model_forward(X[i])
                epoch_loss += self.loss(Y[i], a2)
                for total, g in zip(grads, self.model_backward(X[i], Y[i], z1, a1, z2, a2)):
                    total += g
            gradW1, gradb1, gradW2, gradb2 = (g / len(batch) for g in grads)
            self.W1 = self.W1 - self.alpha * gradW1
            self.b1 = self.b1 - self.alpha * gradb1
            self.W2 = self.W2 - self.alpha * gradW2
            self.b2 = self.b2 - self.alpha * gradb2
        return epoch_loss / len(order)

    def predict_proba(self, X):
        X = np.asarray(X, dtype=self.dtype)
        return np.array([self.model_forward(x)[3].ravel() for x in X])

    def get_params(self):
        return [
            (self.W1.T.copy(), self.b1.ravel().copy()),
            (self.W2.T.copy(), self.b2.ravel().copy()),
        ]
