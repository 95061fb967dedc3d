"""`jax`: the network as JAX users write it: a pytree of parameters, a pure loss function,
`jax.value_and_grad`, a jitted train step and an optax optimiser.

Importing this module turns JAX's 64-bit mode on (`jax_enable_x64`) before JAX makes any
array: without it JAX silently computes float64 work in float32. Every array here is given its
dtype explicitly, so float32 networks stay float32.

An epoch is one jitted call: `jax.lax.scan` runs the train step over the full batches (the
epoch's samples reshaped to (batches, batch_size, features) on the host, a view, and sent to
the device in one transfer), and a smaller last batch gets one more call of the jitted step.
Both are compiled once per shape, in the first epoch (which the harness reports apart). The
epoch returns only after the device has finished: the per-batch losses are brought to the
host and the parameters waited for with `block_until_ready`.

optax: sgd (its `trace` is classical momentum, v = μv + g, p -= lr·v) or adam (ε added to
sqrt(v̂), as torch and the contract's default), after `add_decayed_weights(λ)` masked to the
weights: the coupled L2 term λW, biases excluded.
"""

from __future__ import annotations

import functools

import jax

jax.config.update("jax_enable_x64", True)  # before any array exists; dtypes are explicit below

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from .base import MLPModel, check_params  # noqa: E402

ACTIVATIONS = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}
OUTPUTS = {"softmax": jax.nn.softmax, "sigmoid": jax.nn.sigmoid, "linear": lambda z: z}


def forward(params, x, activation):
    """The logits of x (batch, n_in) through params [{"W": (n_in, n_out), "b": (n_out,)}]."""
    for layer in params[:-1]:
        x = activation(x @ layer["W"] + layer["b"])
    return x @ params[-1]["W"] + params[-1]["b"]


def _cce(logits, y, output):
    return optax.softmax_cross_entropy(logits, y).mean()


def _bce(logits, y, output):
    return optax.sigmoid_binary_cross_entropy(logits, y).mean()  # over samples and outputs


def _mse(logits, y, output):
    return jnp.mean((output(logits) - y) ** 2)


LOSSES = {"cce": _cce, "bce": _bce, "mse": _mse}


def make_optimizer(spec):
    """optax's optimiser for spec, with coupled weight decay on the weights only."""
    if spec.optimizer == "sgd":
        opt = optax.sgd(spec.lr, momentum=spec.momentum or None)
    else:
        opt = optax.adam(spec.lr, b1=spec.betas[0], b2=spec.betas[1], eps=spec.eps)
    if not spec.weight_decay:
        return opt
    mask = [{"W": True, "b": False} for _ in range(spec.n_layers)]
    return optax.chain(optax.add_decayed_weights(spec.weight_decay, mask=mask), opt)


@functools.lru_cache(maxsize=32)
def compiled(spec):
    """(optax optimiser, jitted step, jitted epoch, jitted predict) for spec.

    Pure functions of (params, optimiser state, data), so models of one spec share them and
    JAX's compilation cache: a second model of the same spec (a repeat) compiles nothing.
    """
    activation = ACTIVATIONS[spec.activation]
    output = OUTPUTS[spec.output]
    loss_of = LOSSES[spec.loss]
    tx = make_optimizer(spec)

    def data_loss(params, x, y):
        return loss_of(forward(params, x, activation), y, output)

    def step(state, batch):
        params, opt_state = state
        loss, grads = jax.value_and_grad(data_loss)(params, *batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def epoch(params, opt_state, xs, ys):
        return jax.lax.scan(step, (params, opt_state), (xs, ys))

    def predict(params, x):
        return output(forward(params, x, activation))

    return tx, jax.jit(step), jax.jit(epoch), jax.jit(predict)


class JaxMLP(MLPModel):
    """Parameters as a list of {"W", "b"} dicts; see the module for the training loop."""

    backend = "jax"

    def __init__(self, spec, params):
        super().__init__(spec, params)
        if spec.device != "cpu" and not any(d.platform == "gpu" for d in jax.devices()):
            raise ValueError(f"device {spec.device!r} was asked for but JAX sees no GPU")
        self.device = jax.devices("cpu" if spec.device == "cpu" else "gpu")[0]
        self.dtype = jnp.dtype(spec.dtype)
        self.params = self._to_device(check_params(spec, params))
        self.tx, self._step, self._epoch, self._predict_fn = compiled(spec)
        self.opt_state = self.tx.init(self.params)

    def _to_device(self, pairs):
        return [
            {
                "W": jax.device_put(jnp.asarray(W, self.dtype), self.device),
                "b": jax.device_put(jnp.asarray(b, self.dtype), self.device),
            }
            for W, b in pairs
        ]

    def _train_ordered(self, X, Y, batch_size):
        n = X.shape[0]
        bs = min(batch_size, n)
        full = n // bs
        cut = full * bs
        # cut on the host (NumPy views, free) and sent to the device in one transfer: sliced
        # on the device instead, each cut is one more dispatched operation per epoch
        xs = X[:cut].reshape(full, bs, X.shape[1])
        ys = Y[:cut].reshape(full, bs, Y.shape[1])
        xs, ys, x_rest, y_rest = jax.device_put((xs, ys, X[cut:], Y[cut:]), self.device)
        params, opt_state = self.params, self.opt_state
        total = 0.0
        if full:
            (params, opt_state), losses = self._epoch(params, opt_state, xs, ys)
            total += float(np.sum(np.asarray(losses), dtype=np.float64)) * bs
        if cut < n:
            (params, opt_state), loss = self._step((params, opt_state), (x_rest, y_rest))
            total += float(loss) * (n - cut)
        self.params, self.opt_state = jax.block_until_ready((params, opt_state))
        return total / n

    def _predict(self, X):
        out = self._predict_fn(self.params, jax.device_put(X, self.device))
        return np.asarray(out, dtype=self.spec.dtype)

    def get_params(self):
        return [(np.array(layer["W"]), np.array(layer["b"])) for layer in self.params]

    def set_params(self, params):
        self.params = self._to_device(check_params(self.spec, params, copy=False))
