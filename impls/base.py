"""The model interface every backend implements, and the checks all of them share."""

from __future__ import annotations

import inspect
import numbers
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np

from . import core, parallel
from .spec import MLPSpec

PREDICT_CHUNK = 4096  # rows per forward pass in the hand-written backends' predict_proba


def check_params(spec: MLPSpec, params, copy: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return `params` as [(W, b), ...] C-ordered NumPy arrays of spec.dtype after checking
    every shape. With copy=False the arrays are the caller's own where they already fit.

    Raises ValueError naming the first layer whose shape or values do not fit `spec`.
    """
    try:
        pairs = [tuple(layer) for layer in params]
    except TypeError:
        raise ValueError("params must be a list of (W, b) pairs") from None
    if len(pairs) != spec.n_layers or any(len(p) != 2 for p in pairs):
        raise ValueError(
            f"params must hold {spec.n_layers} (W, b) pairs for layer_sizes "
            f"{spec.layer_sizes}, got {len(pairs)} entries"
        )
    out = []
    for i, ((W, b), n_in, n_out) in enumerate(
        zip(pairs, spec.layer_sizes[:-1], spec.layer_sizes[1:])
    ):
        # copy=None: a copy only where the dtype or memory order must change (NumPy >= 2
        # raises for copy=False then; any float dtype and order is accepted and converted)
        W = np.array(W, dtype=spec.dtype, copy=True if copy else None, order="C")
        b = np.array(b, dtype=spec.dtype, copy=True if copy else None, order="C")
        if W.shape != (n_in, n_out) or b.shape != (n_out,):
            raise ValueError(
                f"layer {i}: expected W {(n_in, n_out)} and b {(n_out,)}, "
                f"got W {W.shape} and b {b.shape}"
            )
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"layer {i}: parameters hold NaN or inf")
        out.append((W, b))
    return out


def check_features(spec: MLPSpec, X, name: str = "X") -> np.ndarray:
    """X as a C-contiguous array of spec.dtype shaped (n, n_inputs); copies only if needed."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != spec.n_inputs:
        raise ValueError(f"{name} must be shaped (n, {spec.n_inputs}), got {X.shape}")
    return np.ascontiguousarray(X, dtype=spec.dtype)


def check_batch_size(batch_size) -> int:
    if (
        not isinstance(batch_size, numbers.Integral)
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def check_order(order, n: int) -> np.ndarray:
    """The sample order as an int64 index array into n samples (all of them if None)."""
    if order is None:
        return np.arange(n, dtype=np.int64)
    order = np.asarray(order)
    if order.ndim != 1 or (order.size and not np.issubdtype(order.dtype, np.integer)):
        raise ValueError(f"order must be a 1-D array of sample indices, got shape {order.shape}")
    if order.size == 0:
        raise ValueError("order is empty: an epoch needs at least one sample")
    lo, hi = int(order.min()), int(order.max())
    if lo < 0 or hi >= n:
        raise ValueError(f"order holds indices outside [0, {n}): min {lo}, max {hi}")
    return order.astype(np.int64, copy=False)


def is_identity(order: np.ndarray) -> bool:
    """True if order is 0, 1, ..., n-1."""
    return bool(order[0] == 0 and (np.diff(order) == 1).all())


class Staged(NamedTuple):
    """A cell's data as one model keeps it (`MLPModel.stage`): X and Y in the backend's own
    arrays (NumPy, torch tensors, ...), n samples, and which model staged them."""

    X: Any
    Y: Any
    n: int
    owner: int


def _call_shape(*names: str) -> inspect.Signature:
    """One call shape of `train_epoch`: `names` required, then `order` (None by default)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    required = [inspect.Parameter(name, kind) for name in names]
    return inspect.Signature([*required, inspect.Parameter("order", kind, default=None)])


# `train_epoch`'s two call shapes (the contract's): data from `stage`, or the arrays themselves
STAGED_CALL = _call_shape("data", "batch_size")
ARRAYS_CALL = _call_shape("X", "Y", "batch_size")


def _bind(shape: inspect.Signature, args: tuple, kwargs: dict) -> dict:
    """`args` and `kwargs` bound to one call shape of `train_epoch`, defaults filled in."""
    try:
        bound = shape.bind(*args, **kwargs)
    except TypeError as exc:
        if shape is STAGED_CALL:
            extra = " and takes no fourth value" if len(args) > 3 else ""
            usage = f"train_epoch(data, batch_size, order) with data from stage(X, Y){extra}"
        else:
            usage = "train_epoch needs X and Y, or data from stage(X, Y): train_epoch(X, Y, "
            usage += "batch_size, order)"
        raise TypeError(f"{usage} ({exc})") from None
    bound.apply_defaults()
    return bound.arguments


class MLPModel(ABC):
    """One backend's network, built from an `MLPSpec` and initial parameters.

    Subclasses implement `_train_ordered` (one epoch over already ordered, already typed data),
    `_predict`, `get_params` and `set_params`. The public methods here check the inputs the
    same way for every backend. By default data is staged as NumPy arrays and each epoch's
    samples are gathered in `order` on the host, so every backend receives the same
    contiguous arrays; a backend that computes elsewhere overrides `_stage` (place the data
    once) and `_train_staged` (apply the order there, then train).
    """

    backend: str = ""

    def __init__(self, spec: MLPSpec, params):
        if not isinstance(spec, MLPSpec):
            raise TypeError(f"spec must be an MLPSpec, got {type(spec).__name__}")
        self.spec = spec
        self._epoch_buffers = None  # (X, Y) arrays the epoch's samples are gathered into

    def _gather(self, X: np.ndarray, Y: np.ndarray, order: np.ndarray):
        """X[order], Y[order] in the spec's dtype, written into buffers kept across epochs.

        Every epoch of a sweep has the same shape, so the same two arrays serve them all: a
        fresh copy each epoch would cost page faults and cold caches on the first batches,
        which plain framework code that trains on one fixed array never pays. In the fixed
        order 0..n-1 the arrays are used as they are, with no copy, as such code does.
        """
        n, dtype = order.shape[0], np.dtype(self.spec.dtype)
        if (
            n == X.shape[0]
            and X.dtype == Y.dtype == dtype
            and X.flags.c_contiguous
            and Y.flags.c_contiguous
            and is_identity(order)
        ):
            return X, Y  # a fixed order (as plain code without shuffling): nothing to gather
        buffers = self._epoch_buffers
        if buffers is None or buffers[0].shape != (n, X.shape[1]) or buffers[0].dtype != dtype:
            buffers = (np.empty((n, X.shape[1]), dtype), np.empty((n, Y.shape[1]), dtype))
            self._epoch_buffers = buffers
        Xo, Yo = buffers
        if X.dtype == dtype and Y.dtype == dtype:
            parallel.take_rows(X, order, Xo)  # on the cell's threads where X is large
            parallel.take_rows(Y, order, Yo)
        else:  # a cast on the way: gather, then convert into the buffers
            np.copyto(Xo, np.take(X, order, axis=0), casting="unsafe")
            np.copyto(Yo, np.take(Y, order, axis=0), casting="unsafe")
        return Xo, Yo

    def stage(self, X, Y) -> Staged:
        """X (n, n_inputs) and Y (n, n_outputs), checked once and placed where the model
        computes, for any number of `train_epoch(data, batch_size, order)` calls.

        The default keeps NumPy arrays of the spec's dtype on the host; a backend that computes
        elsewhere (a GPU, a framework's tensors) overrides `_stage` and `_train_staged`.
        """
        X, Y = self._check_data(X, Y)
        return Staged(*self._stage(X, Y), n=X.shape[0], owner=id(self))

    def train_epoch(self, *args, **kwargs) -> float:
        """One pass over the samples in `order`, in consecutive slices of `batch_size`.

        Two call shapes, told apart by the first argument (see `_epoch_arguments`):

            train_epoch(data, batch_size, order=None)    data from `stage`
            train_epoch(X, Y, batch_size, order=None)    arrays, staged for this call only

        `order` None is 0..n-1. One optimiser update per batch on the mean of the per-sample
        gradients. Returns the sample-weighted mean of the batches' data losses, each computed
        in the forward pass before its update (no weight-decay term).
        """
        data, batch_size, order = self._epoch_arguments(args, kwargs)
        return float(self._train_staged(data, batch_size, order))

    def _epoch_arguments(self, args: tuple, kwargs: dict) -> tuple[Staged, int, np.ndarray]:
        """(staged data, batch size, order) from `train_epoch`'s arguments, checked.

        Data from `stage` as the first argument means the staged call shape, anything else
        the arrays' shape (X, Y first); each shape binds its arguments as a signature would.
        """
        first = args[0] if args else kwargs.get("data")
        if isinstance(first, Staged):
            given = _bind(STAGED_CALL, args, kwargs)
            data = given["data"]
            if data.owner != id(self):
                raise ValueError("data was staged by another model: stage it with this one")
        else:
            given = _bind(ARRAYS_CALL, args, kwargs)
            data = self.stage(given["X"], given["Y"])
        return data, check_batch_size(given["batch_size"]), check_order(given["order"], data.n)

    def _check_data(self, X, Y):
        spec = self.spec
        X = np.asarray(X)
        Y = np.asarray(Y)
        if X.ndim != 2 or X.shape[1] != spec.n_inputs:
            raise ValueError(f"X must be shaped (n, {spec.n_inputs}), got {X.shape}")
        if Y.shape != (X.shape[0], spec.n_outputs):
            raise ValueError(
                f"Y must be shaped ({X.shape[0]}, {spec.n_outputs}) to match X, got {Y.shape}"
            )
        return X, Y

    def _stage(self, X: np.ndarray, Y: np.ndarray):
        """(X, Y) as the backend keeps them; here C-ordered NumPy arrays of the spec's dtype
        (the caller's own arrays where they already are)."""
        dtype = self.spec.dtype
        return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(Y, dtype=dtype)

    def _train_staged(self, data: Staged, batch_size: int, order: np.ndarray) -> float:
        """One epoch over staged data in `order`: here, gather on the host, then train."""
        Xo, Yo = self._gather(data.X, data.Y, order)
        return self._train_ordered(Xo, Yo, batch_size)

    def predict_proba(self, X) -> np.ndarray:
        """The output activation for every row of X, as a NumPy array (n, n_outputs).

        X may also be data from `stage`: the prediction then runs where the data already is
        (on the device), and only the result comes back to the host."""
        if isinstance(X, Staged):
            if X.owner != id(self):
                raise ValueError("data was staged by another model: stage it with this one")
            return self._predict_staged(X.X)
        return self._predict(check_features(self.spec, X))

    def _predict_staged(self, X) -> np.ndarray:
        """Output activations for staged features; by default they are a checked NumPy array."""
        return self._predict(X)

    @abstractmethod
    def _train_ordered(self, X: np.ndarray, Y: np.ndarray, batch_size: int) -> float:
        """Train one epoch over X, Y in row order; return the mean data loss."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray:
        """Output activations for a checked X."""

    @abstractmethod
    def get_params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """A copy of the parameters as [(W (n_in, n_out), b (n_out,)), ...]."""

    @abstractmethod
    def set_params(self, params) -> None:
        """Replace the parameters (checked against the spec); optimiser state is kept."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend!r} spec={self.spec!r}>"


class HandWrittenMLP(MLPModel):
    """What the hand-written backends share: parameters, optimiser, the epoch loop, I/O.

    A subclass gives `_gradients(X, Y)`: the per-sample losses and the batch-mean gradients
    for one batch, from `impls.core`. That is the only place the backends differ (the whole
    batch at once, or one sample at a time). Everything here and in the core is written
    against the array namespace `xp` (NumPy unless given), so the same code runs on any
    array library that follows the array API standard.

    Options: `adam_epsilon_on` ("v_hat", default, or "v"), where Adam adds its epsilon (see
    `impls.core.adam_step`), used to show in the parity tests that Keras differs from the
    others by that placement alone; `xp`, the array library to compute with (its `asarray`
    makes the parameters, whose namespace the core then uses).
    """

    devices = ("cpu",)  # the kinds of device the arrays of `xp` live on

    def __init__(self, spec, params, adam_epsilon_on: str = "v_hat", xp=np):
        super().__init__(spec, params)
        if spec.device_kind not in self.devices:
            raise ValueError(
                f"backend {self.backend!r} runs on {' or '.join(self.devices)} only, "
                f"got device {spec.device!r}"
            )
        self.params = [(xp.asarray(W), xp.asarray(b)) for W, b in check_params(spec, params)]
        self.xp = core.namespace(self.params[0][0])
        self._flat = [a for pair in self.params for a in pair]
        self._step, self._state = core.make_optimizer(spec, self._flat, adam_epsilon_on)

    @abstractmethod
    def _gradients(self, X, Y):
        """(per-sample data losses (m,), [(dW, db), ...] of the batch-mean data loss)."""

    def _decayed_gradients(self, X, Y):
        losses, grads = self._gradients(X, Y)
        core.add_weight_decay(self.params, grads, self.spec.weight_decay)
        return losses, grads

    def loss_and_gradients(self, X, Y):
        """(mean data loss, [(dW, db), ...] of the objective) on one batch, without an update."""
        xp = self.xp
        X = xp.asarray(check_features(self.spec, X))
        Y = xp.asarray(np.ascontiguousarray(Y, dtype=self.spec.dtype))
        losses, grads = self._decayed_gradients(X, Y)
        to_numpy = core.to_numpy
        return float(xp.mean(losses)), [(to_numpy(dW), to_numpy(db)) for dW, db in grads]

    def _stage(self, X, Y):
        """On NumPy, the default (host arrays, gathered into reused buffers each epoch); on
        another array library, X and Y copied once into its arrays (onto the GPU for CuPy)."""
        X, Y = super()._stage(X, Y)
        if self.xp is core.NUMPY:
            return X, Y
        return self.xp.asarray(X), self.xp.asarray(Y)

    def _train_staged(self, data, batch_size, order):
        """On another array library, the epoch's order is applied where the data is (a gather
        on the device) and only the order crosses from the host."""
        if self.xp is core.NUMPY:
            return super()._train_staged(data, batch_size, order)
        X, Y = data.X, data.Y
        if order.shape[0] != data.n or not is_identity(order):
            index = self.xp.asarray(order)
            X, Y = self.xp.take(X, index, axis=0), self.xp.take(Y, index, axis=0)
        return self._train_ordered(X, Y, batch_size)

    def _train_ordered(self, X, Y, batch_size):
        xp = self.xp
        X, Y = xp.asarray(X), xp.asarray(Y)
        n = X.shape[0]
        losses = []  # per batch, summed once at the end (no device round trip per batch)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batch_losses, grads = self._decayed_gradients(X[start:stop, :], Y[start:stop, :])
            self._step(self._flat, [g for pair in grads for g in pair], self._state)
            losses.append(batch_losses)
        # float() brings the sum to the host: on a GPU it waits for every queued kernel, so
        # the epoch ends only when the device has finished it
        return float(xp.sum(xp.concat(losses))) / n

    def _predict(self, X):
        spec, xp = self.spec, self.xp
        X = xp.asarray(X)
        n = X.shape[0]
        chunks = [
            core.predict(
                self.params,
                X[start : min(start + PREDICT_CHUNK, n), :],
                spec.activation,
                spec.output,
            )
            for start in range(0, n, PREDICT_CHUNK)
        ]
        if not chunks:
            return np.empty((0, spec.n_outputs), dtype=spec.dtype)
        return core.to_numpy(xp.concat(chunks))

    def get_params(self):
        return [(np.array(core.to_numpy(W)), np.array(core.to_numpy(b))) for W, b in self.params]

    def set_params(self, params):
        for (W, b), (W_new, b_new) in zip(self.params, check_params(self.spec, params)):
            W[...] = self.xp.asarray(W_new)
            b[...] = self.xp.asarray(b_new)
