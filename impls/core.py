"""The pure NumPy maths shared by the `numpy-loop` and `numpy-vec` backends.

Every function works along the last axis, so one formula serves a single sample (1-D) and a
batch (2-D). Functions take an optional `out` array so callers can work in place and reuse
buffers; none allocates when `out` is given unless its docstring says so. Each formula exists
here once: the backends only decide in which order and in which shapes to call them.

Conventions (the contract every backend agrees on):
- hidden activations: relu, sigmoid, tanh; output activations: softmax, sigmoid, linear;
- per-sample losses, averaged over the batch by the caller:
  cce = -sum(y * log softmax(z)), from the logits z;
  bce = mean over outputs of -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))], from z;
  mse = mean over outputs of (yhat - y)**2, yhat the output activation;
- weight decay lambda adds lambda * W to the gradient of every weight matrix (not the biases);
- optimisers: sgd with classical momentum (v = mu v + g; p -= lr v) and bias-corrected adam.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- activations


def relu(z, out=None):
    return np.maximum(z, 0, out=out)


def sigmoid(z, out=None):
    """Logistic function as 0.5 * (1 + tanh(z / 2)): no overflow for any z, in z's dtype."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def tanh(z, out=None):
    return np.tanh(z, out=out)


def identity(z, out=None):
    if out is None or out is z:
        return z
    np.copyto(out, z)
    return out


def softmax(z, out=None):
    """Softmax along the last axis, shifted by the maximum for stability."""
    out = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}
OUTPUTS = {"softmax": softmax, "sigmoid": sigmoid, "linear": identity}


# Derivatives are written in terms of the activation's output `a` (which the forward pass keeps)
# and multiply `delta` in place by f'(z).


def relu_backward(a, delta):
    np.multiply(delta, a > 0, out=delta)
    return delta


def sigmoid_backward(a, delta):
    delta *= a
    delta -= delta * a  # delta * a * (1 - a)
    return delta


def tanh_backward(a, delta):
    delta -= delta * (a * a)  # delta * (1 - a**2)
    return delta


DERIVATIVES = {"relu": relu_backward, "sigmoid": sigmoid_backward, "tanh": tanh_backward}


# --------------------------------------------------------------------------- losses
# Each loss function takes the logits z, the output activation yhat = output(z) and the targets
# y, and returns the per-sample loss (shape z.shape[:-1]). Each delta function returns
# dLoss_sample / dz, written into `out`. Training calls them through LOSS_AND_DELTA (below),
# which gives both in one call per (loss, output) pair; cce with softmax is written fused there
# and cce_loss is defined from it, so each formula still exists once.

# y . t per sample along the last axis, one call for a sample (scalar) or a batch (m,).
_rowdot = getattr(np, "vecdot", None) or (lambda a, b: np.einsum("...i,...i->...", a, b))



def softmax_cce(z, y, delta, yhat=None, y_sum=None):
    """cce's per-sample loss and dLoss/dz for a softmax output, from one exp of the logits.

    With t = z - max(z) (the shift keeps exp from overflowing), s = sum(exp(t)), n = sum(y):
        loss  = log(s) * n - y . t        (= -sum(y * log softmax(z)); soft targets included)
        dL/dz = exp(t) / s * n - y        (= softmax(z) * sum(y) - y)
    so the exp that the softmax needs serves the loss too, and the softmax is never stored.
    Writes dL/dz into `delta` (its scratch on the way) and returns the loss: a scalar for one
    sample (1-D z), shape (m,) for a batch. `y_sum` is y.sum(axis=-1) if the caller has it
    (precomputed for the epoch in one call); `yhat` is unused (see LOSS_AND_DELTA).
    """
    if y_sum is None:
        y_sum = y.sum(axis=-1)
    t = np.subtract(z, z.max(axis=-1, keepdims=True), out=delta)
    y_dot_t = _rowdot(y, t)
    e = np.exp(t, out=delta)
    s = e.sum(axis=-1)
    loss = np.log(s) * y_sum - y_dot_t
    coef = y_sum / s
    if e.ndim > 1:
        coef = coef[:, None]  # one factor per sample, broadcast over its outputs
    e *= coef
    e -= y
    return loss


def cce_loss(z, yhat, y):
    return softmax_cce(z, y, np.empty_like(z))


def bce_loss(z, yhat, y):
    # -[y log s(z) + (1-y) log(1-s(z))] = max(z, 0) - y z + log1p(exp(-|z|))
    per_output = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
    return per_output.mean(axis=-1)


def bce_delta(z, yhat, y, out=None):
    out = np.subtract(yhat, y, out=out)
    out *= 1.0 / z.shape[-1]
    return out


def mse_loss(z, yhat, y):
    diff = yhat - y
    return (diff * diff).mean(axis=-1)


def _mse_dyhat(yhat, y, out):
    out = np.subtract(yhat, y, out=out)
    out *= 2.0 / yhat.shape[-1]
    return out


def mse_delta_linear(z, yhat, y, out=None):
    return _mse_dyhat(yhat, y, out)


def mse_delta_sigmoid(z, yhat, y, out=None):
    out = _mse_dyhat(yhat, y, out)
    return sigmoid_backward(yhat, out)


def mse_delta_softmax(z, yhat, y, out=None):
    # Jacobian-vector product of softmax: J^T g = yhat * (g - sum(yhat * g))
    out = _mse_dyhat(yhat, y, out)
    out -= (out * yhat).sum(axis=-1, keepdims=True)
    out *= yhat
    return out


LOSSES = {"cce": cce_loss, "bce": bce_loss, "mse": mse_loss}

# (loss, output activation) -> dLoss/dz from yhat, for the pairs not written fused.
DELTAS = {
    ("bce", "sigmoid"): bce_delta,
    ("mse", "linear"): mse_delta_linear,
    ("mse", "sigmoid"): mse_delta_sigmoid,
    ("mse", "softmax"): mse_delta_softmax,
}


def _output_then_loss_and_delta(output, loss, delta_fn):
    """LOSS_AND_DELTA's entry for a pair whose loss and delta are written apart: form the
    output activation in `yhat`, then the two from it."""
    output_fn, loss_fn = OUTPUTS[output], LOSSES[loss]

    def loss_and_delta(z, y, delta, yhat, y_sum=None):
        yhat = output_fn(z, out=yhat)
        delta_fn(z, yhat, y, out=delta)
        return loss_fn(z, yhat, y)

    return loss_and_delta


# (loss, output activation) -> fn(z, y, delta, yhat, y_sum=None): per-sample losses (scalar for
# one sample, (m,) for a batch) with dLoss/dz written into `delta`, for the logits z. `yhat` is
# scratch of z's shape for the output activation (left unspecified after the call); `y_sum` is
# y.sum(axis=-1) if the caller has it, else None. MLPSpec guarantees only these pairs occur.
LOSS_AND_DELTA = {
    ("cce", "softmax"): softmax_cce,
    **{
        (loss, out): _output_then_loss_and_delta(out, loss, fn)
        for (loss, out), fn in DELTAS.items()
    },
}


# --------------------------------------------------------------------------- whole network


def forward(params, x, activation, output):
    """Return (hidden activations, logits, output activation) for one sample or a batch.

    `params` is [(W, b), ...] with W shaped (n_in, n_out); `x` is (n_in,) or (n, n_in).
    """
    act = ACTIVATIONS[activation]
    hidden = []
    a = x
    for W, b in params[:-1]:
        z = a @ W
        z += b
        a = act(z, out=z)
        hidden.append(a)
    W, b = params[-1]
    z = a @ W
    z += b
    return hidden, z, OUTPUTS[output](z, out=np.empty_like(z))


def objective(params, X, Y, spec):
    """Mean data loss over the batch plus ½λ‖W‖²: the function whose gradient training follows."""
    _, z, yhat = forward(params, X, spec.activation, spec.output)
    data = float(LOSSES[spec.loss](z, yhat, Y).mean())
    penalty = 0.5 * spec.weight_decay * sum(float((W * W).sum()) for W, _ in params)
    return data + penalty


# --------------------------------------------------------------------------- optimisers
# An optimiser updates a flat list of parameter arrays in place from a matching list of
# gradient arrays. It may overwrite the gradients (they are used as scratch space).
# `direct_scale` is a float s when step(params, grads) is exactly p += s * g for every pair
# (no state, nothing else), else None; see SGD.


class SGD:
    """Plain SGD, or classical momentum as torch.optim.SGD writes it: v = mu v + g; p -= lr v."""

    def __init__(self, params, lr, momentum=0.0):
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.velocity = [np.zeros_like(p) for p in params] if self.momentum else None
        # Without momentum the step is p += -lr * g and keeps no state, so a caller may scale
        # its deltas by direct_scale and add the gradient products straight into the
        # parameters: the same update without filling, scaling and rereading gradient buffers.
        self.direct_scale = None if self.momentum else -self.lr

    def step(self, params, grads):
        if self.velocity is None:
            for p, g in zip(params, grads):
                g *= self.lr
                p -= g
            return
        for p, g, v in zip(params, grads, self.velocity):
            v *= self.momentum
            v += g
            np.multiply(v, self.lr, out=g)
            p -= g


ADAM_EPSILON_PLACEMENTS = ("v_hat", "v")


class Adam:
    """Adam with bias correction. Stateful, so no `direct_scale` (see SGD): always `step`.

    epsilon_on="v_hat" (default; the Adam paper and torch.optim.Adam):
        p -= lr * m_hat / (sqrt(v_hat) + eps)
    epsilon_on="v" (Keras and TensorFlow), the bias correction folded into the step size:
        p -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)
    which equals the first with eps replaced by eps / sqrt(1 - b2**t): larger in early steps.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-7, epsilon_on="v_hat"):
        if epsilon_on not in ADAM_EPSILON_PLACEMENTS:
            raise ValueError(
                f"unknown epsilon_on {epsilon_on!r}; valid: {', '.join(ADAM_EPSILON_PLACEMENTS)}"
            )
        self.lr = float(lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.epsilon_on = epsilon_on
        self.direct_scale = None
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.scratch = [np.empty_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        bc1 = 1.0 - b1**self.t
        bc2 = 1.0 - b2**self.t
        if self.epsilon_on == "v_hat":
            step_size = self.lr / bc1
            denom_scale = 1.0 / bc2**0.5
        else:
            step_size = self.lr * bc2**0.5 / bc1
            denom_scale = 1.0
        for p, g, m, v, tmp in zip(params, grads, self.m, self.v, self.scratch):
            np.subtract(g, m, out=tmp)  # m += (1 - b1) (g - m)
            tmp *= 1.0 - b1
            m += tmp
            g *= g  # v += (1 - b2) (g^2 - v)
            g -= v
            g *= 1.0 - b2
            v += g
            np.sqrt(v, out=tmp)
            if denom_scale != 1.0:
                tmp *= denom_scale
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp


def _sgd_from_spec(params, spec, epsilon_on):
    return SGD(params, spec.lr, spec.momentum)


def _adam_from_spec(params, spec, epsilon_on):
    return Adam(params, spec.lr, spec.betas, spec.eps, epsilon_on=epsilon_on)


OPTIMIZERS = {"sgd": _sgd_from_spec, "adam": _adam_from_spec}


def make_optimizer(spec, params, epsilon_on="v_hat"):
    """The optimiser `spec` names, over the flat list `params`. `epsilon_on` applies to adam."""
    return OPTIMIZERS[spec.optimizer](params, spec, epsilon_on)
