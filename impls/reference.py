"""The textbook MLP, in plain NumPy: the network `bench verify` holds every backend to.

This is the multilayer perceptron as a student writes it from the equations, readable top to
bottom: activations and their derivatives, the forward pass, the losses and their gradients,
backpropagation, weight decay, SGD with momentum and Adam. It is written apart from
`impls/core.py` (the fast core that numpy-vec, numpy-loop and cupy share) and imports nothing
of it, so that when `bench verify` and the tests compare the core with it, a mistake in the core
cannot hide by being compared with itself. Speed is not its point, and it is not a registered
backend; but it follows the backend contract, so anything that takes a backend takes it:

    from impls.reference import ReferenceMLP

    model = ReferenceMLP(spec, params)                   # a batch at a time, as matrices
    model = ReferenceMLP(spec, params, per_sample=True)  # one sample at a time, as vectors
    mean_loss = model.train_epoch(X, Y, batch_size, order)
    P = model.predict_proba(X)
    params_now = model.get_params()

Notation, for L dense layers of widths n_0, ..., n_L and one sample x (a row vector):

    z_l = a_{l-1} W_l + b_l     pre-activation of layer l, with a_0 = x, W_l (n_{l-1}, n_l)
    a_l = f(z_l)                hidden activation (relu, sigmoid or tanh), l < L
    yhat = g(z_L)               output activation (softmax, sigmoid or linear) of the logits z_L

The loss of one sample, with k = n_L outputs and target y:

    cce = -sum_j y_j log softmax(z_L)_j                                      (from the logits)
    bce = mean_j -[y_j log sigmoid(z_j) + (1 - y_j) log(1 - sigmoid(z_j))]   (from the logits)
    mse = mean_j (yhat_j - y_j)^2                                (on the output activation)

Training follows the mean loss over a batch plus (1/2) lambda ||W||^2 over the weights (not the
biases) when weight decay lambda is on; the loss an epoch reports is the data loss alone.

Backpropagation is written in two forms, one switch (`per_sample`):

- batched (the default): the batch is a matrix, one row per sample; each layer's gradient is
  one matrix product, the sum of the samples' outer products, divided by the batch size.
- per sample: each sample alone, as vectors, by the chain rule with its Jacobian matrices
  written out (diag(f'(z)) for an element-wise activation, diag(p) - p p^T for a softmax
  output under mse); the batch's gradient is the mean of the samples' gradients. This is the
  form of the seeds' first MLP, and tests/benchmarks measures numpy-loop's speed against it.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- activations
# Each hidden activation f, and its derivative f'(z), element by element.


def relu(z):
    return np.maximum(z, 0.0)


def relu_derivative(z):
    return (z > 0).astype(z.dtype)  # 1 where z > 0, else 0 (0 at z = 0 itself)


def sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) = inf for very negative z: 1 / inf = 0, the limit
        return 1.0 / (1.0 + np.exp(-z))


def sigmoid_derivative(z):
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    return np.tanh(z)


def tanh_derivative(z):
    return 1.0 - np.tanh(z) ** 2


ACTIVATIONS = {  # name -> (f, f')
    "relu": (relu, relu_derivative),
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
}


# --------------------------------------------------------------------------- output activations
# g(z) of the last layer's logits. Each works on one sample's outputs (k,) or on a batch of rows
# (m, k): the last axis is always a sample's outputs.


def softmax(z):
    """exp(z) / sum(exp(z)) over a sample's outputs; z - max(z) first, so exp cannot overflow
    (the same fraction: exp(-max(z)) cancels)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def linear(z):
    return z


OUTPUTS = {"softmax": softmax, "sigmoid": sigmoid, "linear": linear}


def output_jacobian(output, z):
    """The Jacobian d yhat / d z (k, k) of the output activation, for one sample's logits z (k,):
    entry (i, j) is d yhat_i / d z_j."""
    if output == "softmax":
        p = softmax(z)
        return np.diag(p) - np.outer(p, p)  # d p_i / d z_j = p_i (1 if i == j else 0) - p_i p_j
    if output == "sigmoid":
        return np.diag(sigmoid_derivative(z))  # element-wise: a diagonal Jacobian
    return np.eye(z.shape[-1], dtype=z.dtype)  # linear: yhat = z


# --------------------------------------------------------------------------- losses
# A sample's loss from its logits z and target y (for mse, through yhat = g(z)). Like the
# outputs, each takes one sample (k,) and returns a number, or a batch (m, k) and returns (m,).


def cce(z, y, output):
    """-sum(y log softmax(z)), with log softmax(z) = z - log(sum(exp(z))) taken from the logits:
    never the log of a probability that rounded to 0."""
    shifted = z - z.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -(y * log_p).sum(axis=-1)


def bce(z, y, output):
    """The mean over outputs of -[y log s + (1 - y) log(1 - s)], s = sigmoid(z), from the logits:
    log s = -log(1 + exp(-z)) and log(1 - s) = -z - log(1 + exp(-z)) make each term
    z - y z + log(1 + exp(-z)), written max(z, 0) - y z + log(1 + exp(-|z|)) so that exp
    cannot overflow."""
    return (np.maximum(z, 0.0) - y * z + np.log1p(np.exp(-np.abs(z)))).mean(axis=-1)


def mse(z, y, output):
    """The mean over outputs of (yhat - y)^2, on the output activation yhat = g(z)."""
    yhat = OUTPUTS[output](z)
    return ((yhat - y) ** 2).mean(axis=-1)


LOSSES = {"cce": cce, "bce": bce, "mse": mse}


def mse_output_gradient(yhat, y):
    """d mse / d yhat = 2 (yhat - y) / k."""
    return 2.0 * (yhat - y) / yhat.shape[-1]


def logit_gradient(loss, output, z, y):
    """d loss / d z_L for each sample: one sample (k,) or a batch of rows (m, k).

    cce with softmax: softmax(z) sum(y) - y (p - y for a one-hot y); bce with sigmoid:
    (sigmoid(z) - y) / k; mse: the chain rule through yhat = g(z), J^T (d mse / d yhat) with J
    the output's Jacobian, here applied without writing J out: for an element-wise g it is
    diagonal (a product element by element), and for the softmax J^T v = p (v - sum(p v)).
    (`sample_gradients` writes J out.)
    """
    k = z.shape[-1]
    if loss == "cce":
        return softmax(z) * y.sum(axis=-1, keepdims=True) - y
    if loss == "bce":
        return (sigmoid(z) - y) / k
    yhat = OUTPUTS[output](z)
    v = mse_output_gradient(yhat, y)
    if output == "softmax":
        return yhat * (v - (yhat * v).sum(axis=-1, keepdims=True))
    if output == "sigmoid":
        return v * yhat * (1.0 - yhat)
    return v


# --------------------------------------------------------------------------- forward


def forward(params, x, activation):
    """The forward pass for one sample x (n_0,) or a batch of rows (m, n_0).

    Returns (a, z): the input of every layer [a_0 = x, a_1, ..., a_{L-1}] and every
    pre-activation [z_1, ..., z_L]; z_L are the logits, g(z_L) the prediction.
    """
    f, _ = ACTIVATIONS[activation]
    a, z = [x], []
    for layer, (W, b) in enumerate(params):
        z.append(a[-1] @ W + b)
        if layer < len(params) - 1:
            a.append(f(z[-1]))
    return a, z


def predict(params, X, activation, output):
    """yhat = g(z_L) for every row of X."""
    _, z = forward(params, X, activation)
    return OUTPUTS[output](z[-1])


# --------------------------------------------------------------------------- backward


def batch_gradients(params, X, Y, spec):
    """(the samples' losses (m,), [(dW_l, db_l), ...] of their mean) for a batch X (m, n_0).

    delta_l (m, n_l) holds d(mean loss) / d z_l, one row per sample. From the top:
        delta_L = (d loss / d z_L) / m
        dW_l = a_{l-1}^T delta_l,   db_l = the sum of delta_l's rows
        delta_{l-1} = (delta_l W_l^T) * f'(z_{l-1})      (element by element)
    """
    _, f_derivative = ACTIVATIONS[spec.activation]
    a, z = forward(params, X, spec.activation)
    losses = LOSSES[spec.loss](z[-1], Y, spec.output)
    delta = logit_gradient(spec.loss, spec.output, z[-1], Y) / X.shape[0]
    grads = []
    for layer in reversed(range(len(params))):
        W, _ = params[layer]
        grads.insert(0, (a[layer].T @ delta, delta.sum(axis=0)))
        if layer > 0:
            delta = (delta @ W.T) * f_derivative(z[layer - 1])
    return losses, grads


def sample_gradients(params, x, y, spec):
    """(loss, [(dW_l, db_l), ...]) for one sample x (n_0,), y (n_L,): vectors throughout, and
    the chain rule with each Jacobian written out as a matrix.

        dL/dz_L: from the logits for cce and bce (`logit_gradient`);
                 J_g^T dL/dyhat for mse, with J_g = dyhat/dz_L (`output_jacobian`)
        dW_l = outer(a_{l-1}, dL/dz_l),   db_l = dL/dz_l
        dL/da_{l-1} = W_l dL/dz_l           (z_l = a_{l-1} W_l + b_l: dz_l/da_{l-1} = W_l^T)
        dL/dz_{l-1} = J_f^T dL/da_{l-1},    J_f = da_{l-1}/dz_{l-1} = diag(f'(z_{l-1}))
    """
    _, f_derivative = ACTIVATIONS[spec.activation]
    a, z = forward(params, x, spec.activation)
    loss = LOSSES[spec.loss](z[-1], y, spec.output)
    if spec.loss == "mse":
        yhat = OUTPUTS[spec.output](z[-1])
        dL_dz = output_jacobian(spec.output, z[-1]).T @ mse_output_gradient(yhat, y)
    else:
        dL_dz = logit_gradient(spec.loss, spec.output, z[-1], y)
    grads = []
    for layer in reversed(range(len(params))):
        W, _ = params[layer]
        grads.insert(0, (np.outer(a[layer], dL_dz), dL_dz))
        if layer > 0:
            dL_da = W @ dL_dz
            dL_dz = np.diag(f_derivative(z[layer - 1])).T @ dL_da
    return loss, grads


def per_sample_gradients(params, X, Y, spec):
    """(the samples' losses (m,), the mean of their gradients), one sample at a time."""
    losses, total = [], None
    for x, y in zip(X, Y):
        loss, grads = sample_gradients(params, x, y, spec)
        losses.append(loss)
        if total is None:
            total = grads
        else:
            total = [(dW + dW_x, db + db_x) for (dW, db), (dW_x, db_x) in zip(total, grads)]
    m = X.shape[0]
    return np.array(losses), [(dW / m, db / m) for dW, db in total]


def objective(params, X, Y, spec):
    """What training minimises on a batch: the mean loss plus (1/2) lambda ||W||^2."""
    _, z = forward(params, X, spec.activation)
    mean_loss = float(LOSSES[spec.loss](z[-1], Y, spec.output).mean())
    penalty = sum(float((W * W).sum()) for W, _ in params)
    return mean_loss + 0.5 * spec.weight_decay * penalty


def add_weight_decay(params, grads, decay):
    """The gradient of (1/2) lambda ||W||^2 is lambda W: added to the weights' gradients only."""
    return [(dW + decay * W, db) for (W, _), (dW, db) in zip(params, grads)]


# --------------------------------------------------------------------------- optimisers
# Each works on flat lists of arrays [W_1, b_1, W_2, b_2, ...] and returns new ones.


def sgd(params, grads, velocity, lr, momentum):
    """Classical momentum, as torch.optim.SGD writes it: v = momentum v + g, p = p - lr v.
    With momentum 0, v = g: plain SGD."""
    velocity = [momentum * v + g for v, g in zip(velocity, grads)]
    return [p - lr * v for p, v in zip(params, velocity)], velocity


def adam(params, grads, m, v, t, lr, betas, eps, epsilon_on="v_hat"):
    """Adam with bias correction, step t (from 1):
        m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)
        p = p - lr m_hat / (sqrt(v_hat) + eps)            epsilon_on="v_hat" (the paper, torch)
        p = p - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)    epsilon_on="v" (Keras)
    Returns (params, m, v).
    """
    b1, b2 = betas
    m = [b1 * m_i + (1.0 - b1) * g for m_i, g in zip(m, grads)]
    v = [b2 * v_i + (1.0 - b2) * g * g for v_i, g in zip(v, grads)]
    if epsilon_on == "v_hat":
        steps = [
            lr * (m_i / (1.0 - b1**t)) / (np.sqrt(v_i / (1.0 - b2**t)) + eps)
            for m_i, v_i in zip(m, v)
        ]
    elif epsilon_on == "v":
        steps = [
            lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t) * m_i / (np.sqrt(v_i) + eps)
            for m_i, v_i in zip(m, v)
        ]
    else:
        raise ValueError(f"unknown epsilon_on {epsilon_on!r}; valid: v_hat, v")
    return [p - step for p, step in zip(params, steps)], m, v


# --------------------------------------------------------------------------- the network


class ReferenceMLP:
    """The textbook network behind the backend contract (`__init__(spec, params)`,
    `train_epoch`, `predict_proba`, `get_params`).

    `per_sample`: compute each batch's gradient one sample at a time (`sample_gradients`)
    instead of as matrices (`batch_gradients`); the updates are the same, one per batch.
    `adam_epsilon_on`: where Adam adds epsilon, "v_hat" (numpy-vec's default and torch's) or
    "v" (Keras's), see `adam`.
    """

    backend = "reference"

    def __init__(self, spec, params, per_sample=False, adam_epsilon_on="v_hat"):
        if adam_epsilon_on not in ("v_hat", "v"):
            raise ValueError(f"unknown adam_epsilon_on {adam_epsilon_on!r}; valid: v_hat, v")
        self.spec, self.per_sample, self.epsilon_on = spec, per_sample, adam_epsilon_on
        # copies in the spec's dtype: nothing is shared with the caller's arrays
        self.flat = [np.array(p, dtype=spec.dtype) for pair in params for p in pair]
        self.first = [np.zeros_like(p) for p in self.flat]  # momentum's velocity, or Adam's m
        self.second = [np.zeros_like(p) for p in self.flat]  # Adam's v
        self.steps = 0

    @property
    def params(self):
        """[(W_1, b_1), ..., (W_L, b_L)] (the arrays themselves, not copies)."""
        return list(zip(self.flat[0::2], self.flat[1::2]))

    def gradients(self, X, Y):
        """(the samples' losses, the gradients [(dW, db), ...] of the batch objective)."""
        compute = per_sample_gradients if self.per_sample else batch_gradients
        losses, grads = compute(self.params, X, Y, self.spec)
        return losses, add_weight_decay(self.params, grads, self.spec.weight_decay)

    def update(self, grads):
        """One optimiser step with the gradients [(dW, db), ...]."""
        spec, flat_grads = self.spec, [g for pair in grads for g in pair]
        self.steps += 1
        if spec.optimizer == "sgd":
            self.flat, self.first = sgd(self.flat, flat_grads, self.first, spec.lr, spec.momentum)
        elif spec.optimizer == "adam":
            self.flat, self.first, self.second = adam(
                self.flat,
                flat_grads,
                self.first,
                self.second,
                self.steps,
                spec.lr,
                spec.betas,
                spec.eps,
                self.epsilon_on,
            )
        else:
            raise ValueError(f"unknown optimizer {spec.optimizer!r}; valid: sgd, adam")

    def train_epoch(self, X, Y, batch_size, order):
        """One pass over the samples in `order`, one update per consecutive `batch_size` slice
        of it (the last may be shorter). Returns the mean data loss over the epoch's samples,
        each taken in the forward pass before its batch's update."""
        X = np.asarray(X, dtype=self.spec.dtype)
        Y = np.asarray(Y, dtype=self.spec.dtype)
        order = np.asarray(order)
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            losses, grads = self.gradients(X[rows], Y[rows])
            self.update(grads)
            total += float(losses.sum())
        return total / len(order)

    def predict_proba(self, X):
        X = np.asarray(X, dtype=self.spec.dtype)
        return predict(self.params, X, self.spec.activation, self.spec.output)

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in self.params]
