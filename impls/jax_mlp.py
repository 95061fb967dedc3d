"""`jax`: the network as JAX users write it: a pytree of parameters, a pure loss function,
`jax.value_and_grad`, a jitted train step and an optax optimiser.

Importing this module turns JAX's 64-bit mode on (`jax_enable_x64`) before JAX makes any
array: without it JAX silently computes float64 work in float32. Every array here is given its
dtype explicitly, so float32 networks stay float32.

Data is staged once (`stage`): `jax.device_put` onto the model's device. An epoch is then one
jitted call: the epoch's order applied on the device (`jnp.take`; none for the order 0..n-1),
`jax.lax.scan` of the train step over the full batches (the ordered samples reshaped to
(batches, batch_size, features)), and one more step for a smaller last batch. It is compiled
once per data shape and batch size, in the first epoch (which the harness reports apart). The
epoch returns only after the device has finished: the per-batch losses are brought to the
host (`np.asarray`, which waits for them) and the parameters waited for with
`block_until_ready`.

Devices: `spec.device` "cpu", or "cuda" / "cuda:N" for JAX's N-th GPU. float32 matrix
products use full float32 precision (`Precision.HIGHEST`): on a GPU, JAX's default may round
their inputs to TF32, which `spec.tf32` allows when it is set (Ampere and newer GPUs; no
effect on a CPU).

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

from .base import MLPModel, check_params, is_identity  # noqa: E402

ACTIVATIONS = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}
OUTPUTS = {"softmax": jax.nn.softmax, "sigmoid": jax.nn.sigmoid, "linear": lambda z: z}


def forward(params, x, activation, precision=jax.lax.Precision.HIGHEST):
    """The logits of x (batch, n_in) through params [{"W": (n_in, n_out), "b": (n_out,)}],
    each matrix product at `precision` (and its gradients: JAX keeps it for their products)."""
    for layer in params[:-1]:
        x = activation(jnp.matmul(x, layer["W"], precision=precision) + layer["b"])
    return jnp.matmul(x, params[-1]["W"], precision=precision) + params[-1]["b"]


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


def matmul_precision(spec):
    """Full float32 products unless the spec allows TF32 (`tf32`; JAX's default on a GPU)."""
    if spec.tf32:
        return jax.lax.Precision.DEFAULT
    return jax.lax.Precision.HIGHEST


@functools.lru_cache(maxsize=32)
def compiled(spec):
    """(optax optimiser, jitted epoch, jitted predict) for spec.

    Pure functions of (params, optimiser state, data), so models of one spec share them and
    JAX's compilation cache: a second model of the same spec (a repeat) compiles nothing.
    """
    activation = ACTIVATIONS[spec.activation]
    output = OUTPUTS[spec.output]
    loss_of = LOSSES[spec.loss]
    precision = matmul_precision(spec)
    tx = make_optimizer(spec)

    def data_loss(params, x, y):
        return loss_of(forward(params, x, activation, precision), y, output)

    def step(state, batch):
        params, opt_state = state
        loss, grads = jax.value_and_grad(data_loss)(params, *batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def epoch(params, opt_state, X, Y, index, batch_size):
        """One epoch over rows `index` of X, Y (all rows in order when index is None):
        (params, opt_state), the full batches' losses, the last short batch's loss (or 0)."""
        if index is not None:  # the order applied on the device
            X, Y = jnp.take(X, index, axis=0), jnp.take(Y, index, axis=0)
        n = X.shape[0]
        full = n // batch_size
        cut = full * batch_size
        state = (params, opt_state)
        losses = jnp.zeros((0,), X.dtype)
        if full:
            xs = X[:cut].reshape(full, batch_size, X.shape[1])
            ys = Y[:cut].reshape(full, batch_size, Y.shape[1])
            state, losses = jax.lax.scan(step, state, (xs, ys))
        rest = jnp.zeros((), X.dtype)
        if cut < n:
            state, rest = step(state, (X[cut:], Y[cut:]))
        return state, losses, rest

    def predict(params, x):
        return output(forward(params, x, activation, precision))

    return tx, jax.jit(epoch, static_argnames="batch_size"), jax.jit(predict)


def device_of(spec):
    """JAX's device for `spec.device`: "cpu", or "cuda" / "cuda:N" (the N-th GPU).

    Raises ValueError naming the devices JAX found when there is no such device.
    """
    name, number = spec.device, spec.device_index
    if spec.device_kind == "cpu":
        return jax.devices("cpu")[0]
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:  # no GPU platform in this JAX (e.g. jax without its CUDA plugin)
        gpus = []
    if number >= len(gpus):
        found = gpus + jax.devices("cpu")  # jax.devices() alone lists the default platform's
        found = ", ".join(f"{d.platform}:{d.id}" for d in found)
        raise ValueError(
            f"device {name!r} was asked for but JAX has {len(gpus)} GPU(s) (devices: {found})"
        )
    return gpus[number]


class JaxMLP(MLPModel):
    """Parameters as a list of {"W", "b"} dicts; see the module for the training loop."""

    backend = "jax"

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.device = device_of(spec)
        self.dtype = jnp.dtype(spec.dtype)
        self.params = self._to_device(check_params(spec, params))
        self.tx, self._epoch, self._predict_fn = compiled(spec)
        # Committed to the device like the parameters: optax makes its step count on no device
        # in particular, the epoch returns it committed, and jit compiles once per placement:
        # without this the second epoch compiled the epoch again (0.9 s of a 2 ms epoch).
        self.opt_state = jax.device_put(self.tx.init(self.params), self.device)

    def _to_device(self, pairs):
        return [
            {
                "W": jax.device_put(jnp.asarray(W, self.dtype), self.device),
                "b": jax.device_put(jnp.asarray(b, self.dtype), self.device),
            }
            for W, b in pairs
        ]

    def _stage(self, X, Y):
        """X and Y on the model's device, once per cell (`jax.device_put`)."""
        X, Y = super()._stage(X, Y)
        return tuple(jax.device_put((X, Y), self.device))

    def _train_staged(self, data, batch_size, order):
        """One jitted epoch over the staged arrays; the order is sent to the device and
        applied there (no index at all for the order 0..n-1)."""
        index = None
        if order.shape[0] != data.n or not is_identity(order):
            index = jax.device_put(order, self.device)
        return self._run_epoch(data.X, data.Y, index, batch_size)

    def _train_ordered(self, X, Y, batch_size):
        X, Y = self._stage(X, Y)
        return self._run_epoch(X, Y, None, batch_size)

    def _run_epoch(self, X, Y, index, batch_size):
        n = X.shape[0] if index is None else index.shape[0]
        bs = min(batch_size, n)
        (params, opt_state), losses, rest = self._epoch(
            self.params, self.opt_state, X, Y, index, batch_size=bs
        )
        # the epoch ends on the host: np.asarray waits for the losses (the device's last
        # results), and the new parameters are waited for with block_until_ready
        losses, rest = np.asarray(losses), float(rest)
        self.params, self.opt_state = jax.block_until_ready((params, opt_state))
        full = losses.shape[0]
        return (float(np.sum(losses, dtype=np.float64)) * bs + rest * (n - full * bs)) / n

    def _predict(self, X):
        out = self._predict_fn(self.params, jax.device_put(X, self.device))
        return np.asarray(out, dtype=self.spec.dtype)

    def get_params(self):
        return [(np.array(layer["W"]), np.array(layer["b"])) for layer in self.params]

    def set_params(self, params):
        self.params = self._to_device(check_params(self.spec, params, copy=False))
