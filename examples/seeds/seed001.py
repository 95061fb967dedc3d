"""Seed 001: neuron and layer classes, trained by mini-batch SGD with a summed squared error
(the notebook that built a feed-forward network layer by layer on MNIST).

    python -m bench verify --backends examples/seeds/seed001.py:Seed001MLP
    python -m bench run --preset seed001

A FullyConnectedLayer keeps W (num_input, layer_size) and b (layer_size,), remembers its input
in `forward`, computes dL/dW and dL/db in `backward`, and steps in `optimize`;
SimpleNeuralNetwork chains the layers. Rows are samples, as the contract's.

Conventions: the gradient is SUMMED over the batch (dL/dW = Xᵀ dL/dz, no division by the
batch size), declared below, so the harness passes lr / batch_size. The notebook never met a
short batch (it dropped the samples past the last full one); here a short last batch of m
samples counts as a full one, its summed gradient stepping with learning_rate × batch_size / m,
which under lr / batch_size is the contract's mean over the batch. The losses are summed over
the n_out outputs too (the L2 loss has no ½ and no mean; the cross-entropy derivative
(ŷ − y) / (ŷ(1 − ŷ)) is that of a sum): the harness has no declared convention for a plain sum
over the outputs, so the class converts that at its edge, learning_rate = lr / n_out. The
notebook's lr 0.001 is therefore the contract's 0.001 × 32 × 10 = 0.32 at batch 32.
`train_epoch` reports the loss summed over the epoch's samples, as "sum" declares, of the
per-sample loss averaged over the outputs.

Where it goes beyond the notebook: the output layer may have its own activation (the notebook
uses the hidden one, sigmoid, everywhere); ŷ in the cross-entropy derivative is clipped to
[eps, 1 − eps] of the dtype.

Supports: sigmoid or relu hidden layers (any number), sigmoid or linear output, mse (and bce
on a sigmoid output), plain SGD, float32 and float64. Anything else raises
NotImplementedError.
"""

import numpy as np


def sigmoid(x):
    with np.errstate(over="ignore"):  # raw pixels: exp(-z) overflows to inf, 1/(1+inf) is 0
        return 1 / (1 + np.exp(-x))


def derivated_sigmoid(y):
    return y * (1 - y)


def relu(x):
    return np.maximum(x, 0)


def derivated_relu(y):
    return (y > 0).astype(y.dtype)


def linear(x):
    return x


def derivated_linear(y):
    return np.ones_like(y)


ACTIVATIONS = {
    "sigmoid": (sigmoid, derivated_sigmoid),
    "relu": (relu, derivated_relu),
    "linear": (linear, derivated_linear),
}


def loss_L2(pred, target):
    return np.sum(np.square(pred - target))  # summed over the batch and the outputs


def derivated_loss_L2(pred, target):
    return 2 * (pred - target)


def cross_entropy(pred, target):
    return -np.sum(np.log(pred) * target + np.log(1 - pred) * (1 - target))


def derivated_cross_entropy(pred, target):
    eps = np.finfo(pred.dtype).eps
    pred = np.clip(pred, eps, 1 - eps)
    return (pred - target) / (pred * (1 - pred))


LOSSES = {"mse": (loss_L2, derivated_loss_L2), "bce": (cross_entropy, derivated_cross_entropy)}


class FullyConnectedLayer:
    """W (num_input, layer_size), b (layer_size,), and the activation with its derivative
    written in terms of the layer's output."""

    def __init__(self, W, b, activation_fn, d_activation_fn):
        self.W, self.b = W, b
        self.activation_fn = activation_fn
        self.d_activation_fn = d_activation_fn

    def forward(self, X):
        self.z = np.dot(X, self.W) + self.b
        self.y_hat = self.activation_fn(self.z)
        self.X = X  # kept for backpropagation
        return self.y_hat

    def backward(self, dL_dy):
        dy_dz = self.d_activation_fn(self.y_hat)
        dL_dz = dL_dy * dy_dz  # chain rule
        self.dL_dw = np.dot(self.X.T, dL_dz)  # summed over the batch
        self.dL_db = np.dot(np.ones(dL_dy.shape[0], dtype=dL_dz.dtype), dL_dz)
        return np.dot(dL_dz, self.W.T)  # dL/dX, the previous layer's dL/dy

    def optimize(self, learning_rate):
        self.W -= learning_rate * self.dL_dw
        self.b -= learning_rate * self.dL_db


class SimpleNeuralNetwork:
    def __init__(self, layers, loss_fn, d_loss_fn):
        self.layers = layers
        self.loss_fn, self.d_loss_fn = loss_fn, d_loss_fn

    def forward(self, X):
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def backward(self, dL_dy):
        for layer in reversed(self.layers):
            dL_dy = layer.backward(dL_dy)
        return dL_dy

    def optimize(self, learning_rate):
        for layer in self.layers:
            layer.optimize(learning_rate)


class Seed001MLP:
    """The notebook's SimpleNeuralNetwork behind the contract."""

    conventions = {"loss_over_batch": "sum"}
    supports = {
        "activation": ["sigmoid", "relu"],
        "output": ["sigmoid", "linear"],
        "loss": ["mse", "bce"],
        "optimizer": ["sgd"],
    }

    def __init__(self, spec, params):
        if spec.activation not in ("sigmoid", "relu"):
            raise NotImplementedError("seed001's hidden layers are sigmoid (or relu)")
        if spec.output not in ("sigmoid", "linear") or spec.loss not in LOSSES:
            raise NotImplementedError(
                f"seed001 trains mse (or bce) on a sigmoid or linear output, not {spec.loss} on "
                f"{spec.output}"
            )
        if spec.optimizer != "sgd" or spec.momentum or spec.weight_decay:
            raise NotImplementedError("seed001 steps by plain SGD (no momentum, no decay)")
        self.dtype = np.dtype(spec.dtype)
        self.n_outputs = spec.n_outputs
        layers = []
        for i, (W, b) in enumerate(params):
            last = i == len(params) - 1
            fn, d_fn = ACTIVATIONS[spec.output if last else spec.activation]
            W, b = np.array(W, dtype=self.dtype), np.array(b, dtype=self.dtype)
            layers.append(FullyConnectedLayer(W, b, fn, d_fn))
        self.network = SimpleNeuralNetwork(layers, *LOSSES[spec.loss])
        # both losses are summed over the outputs: n_out times the contract's gradient
        self.learning_rate = spec.lr / self.n_outputs

    def train_epoch(self, X, Y, batch_size, order):
        X = np.asarray(X, dtype=self.dtype)
        Y = np.asarray(Y, dtype=self.dtype)
        net, epoch_loss = self.network, 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            x, y_true = X[rows], Y[rows]
            y = net.forward(x)
            epoch_loss += net.loss_fn(y, y_true) / self.n_outputs
            net.backward(net.d_loss_fn(y, y_true))
            net.optimize(self.learning_rate * batch_size / len(rows))  # a short batch as a full one
        return epoch_loss  # summed over the samples, as conventions declares

    def predict_proba(self, X):
        return self.network.forward(np.asarray(X, dtype=self.dtype))

    def get_params(self):
        return [(layer.W.copy(), layer.b.copy()) for layer in self.network.layers]
