"""`keras`: the network as Keras 3 users write it: a compiled Sequential of Dense layers, `fit`.

The Keras backend comes from $KERAS_BACKEND (TensorFlow by default), read once when Keras is
first imported: the registry's `keras-jax` and `keras-torch` set it (and JAX's 64-bit mode) in
their own worker process before that import. The model uses only `keras.ops`, so it runs on
any Keras backend that can train.

Data is staged once (`stage`) as the backend's own tensors, where Keras computes
(`keras.ops.convert_to_tensor`); each epoch applies its order there with one gather
(`keras.ops.take`, none for the order 0..n-1) and hands `fit` the batches as slices of those
tensors: on TensorFlow a `tf.data.Dataset` (see `epoch_dataset`), on PyTorch an iterator
of batches, which its trainer takes as it is. On JAX the data stays NumPy arrays and `fit`
gets the epoch's arrays (see `KerasMLP.__init__`).
"""

from __future__ import annotations

import contextlib
import numbers

import keras
import numpy as np

from .base import MLPModel, check_params, is_identity

PREDICT_CHUNK = 8192
DATA_LOSS = "data_loss"  # name of the metric that tracks the loss without the decay term


def _losses(spec):
    """(training loss, the same data loss as a metric) for spec.loss, in spec.dtype."""
    dtype = spec.dtype
    table = {
        # from the logits: the last Dense layer is linear
        "cce": lambda cls: cls(from_logits=True, dtype=dtype),
        "bce": lambda cls: cls(from_logits=True, dtype=dtype),
        # on the output activation, which the last Dense layer applies
        "mse": lambda cls: cls(dtype=dtype),
    }
    classes = {
        "cce": (keras.losses.CategoricalCrossentropy, keras.metrics.CategoricalCrossentropy),
        "bce": (keras.losses.BinaryCrossentropy, keras.metrics.BinaryCrossentropy),
        "mse": (keras.losses.MeanSquaredError, keras.metrics.MeanSquaredError),
    }
    make = table[spec.loss]
    loss_cls, metric_cls = classes[spec.loss]
    metric = make(metric_cls)
    metric.name = DATA_LOSS
    return make(loss_cls), metric


OPTIMIZERS = {
    "sgd": lambda spec: keras.optimizers.SGD(learning_rate=spec.lr, momentum=spec.momentum),
    "adam": lambda spec: keras.optimizers.Adam(
        learning_rate=spec.lr, beta_1=spec.betas[0], beta_2=spec.betas[1], epsilon=spec.eps
    ),
}
# applied to the logits for predictions when the loss takes logits
PROBABILITIES = {"softmax": keras.ops.softmax, "sigmoid": keras.ops.sigmoid}


def _batch_cuts(n: int, batch_size: int) -> tuple[int, int]:
    """(number of full batches, rows they cover): the batches `fit(X, Y,
    batch_size=batch_size, shuffle=False)` makes are consecutive `batch_size` rows, the last
    one smaller when n is not a multiple."""
    full = n // batch_size
    return full, full * batch_size


def epoch_dataset(X, Y, index, batch_size):
    """The epoch's batches as a `tf.data.Dataset` for `fit` on TensorFlow, from the staged
    tensors X and Y: rows `index` (int64 NumPy, or None for all rows in order).

    The batches are those `fit(X, Y, batch_size=batch_size, shuffle=False)` makes. Given
    arrays, Keras builds a pipeline made for shuffling (index permutation, flat_map, parallel
    gather): it traces that pipeline's functions on every `fit` call (20-50 ms) and creates its
    iterator twice per epoch (10-17 ms each), more than a small model's whole epoch. Here the
    full batches are one tensor shaped (batches, batch_size, features), made by one gather
    with the index reshaped so (in the order 0..n-1 by a reshape: a view when n is a multiple
    of the batch size, else one copy of the full batches' rows), so each batch is one slice
    of it, and a smaller last batch is one more element.

    tf.data's default graph optimisations are turned off, as Keras's own adapter does: with
    them, each new iterator serialises the pipeline's graph, copying every tensor it holds
    (about 30 ms for 60000 x 784 float32, each epoch).
    """
    import tensorflow as tf  # only reached on the TensorFlow backend, where Keras loaded it

    n = X.shape[0] if index is None else index.shape[0]
    full, cut = _batch_cuts(n, batch_size)
    parts = []
    if full:
        if index is None:
            head = (X if cut == n else X[:cut], Y if cut == n else Y[:cut])
            head = [tf.reshape(a, (full, batch_size, a.shape[1])) for a in head]
        else:
            rows = index[:cut].reshape(full, batch_size)
            head = [tf.gather(a, rows) for a in (X, Y)]
        parts.append(tf.data.Dataset.from_tensor_slices(tuple(head)))
    if cut < n:
        rest = (X[cut:], Y[cut:]) if index is None else [tf.gather(a, index[cut:]) for a in (X, Y)]
        parts.append(tf.data.Dataset.from_tensors(tuple(rest)))
    dataset = parts[0] if len(parts) == 1 else parts[0].concatenate(parts[1])
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def epoch_batches(X, Y, index, batch_size):
    """The epoch's batches for `fit` on JAX or PyTorch, as a generator of (x, y) slices of
    the staged tensors, after one gather of rows `index` (None: all rows in order, no gather).
    The same batches as `fit(X, Y, batch_size=batch_size, shuffle=False)`."""
    if index is not None:
        X, Y = keras.ops.take(X, index, axis=0), keras.ops.take(Y, index, axis=0)
    # a generator (Keras's adapter for iterators of batches takes generators only), each
    # batch sliced when `fit` asks for it
    return (
        (X[i : i + batch_size], Y[i : i + batch_size]) for i in range(0, X.shape[0], batch_size)
    )


@contextlib.contextmanager
def floatx(dtype: str):
    """Keras's default float type set to `dtype` while the model and its optimiser are built.

    The optimiser's learning rate, its slots and the loss tracker take the default float type;
    building them under it keeps float64 work in float64 throughout.
    """
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


class KerasMLP(MLPModel):
    """A compiled keras.Sequential of Dense layers; `train_epoch` is one `fit` over the epoch.

    Losses take logits (the last Dense layer is linear) for cce and bce; for mse the last layer
    applies the output activation. Weight decay is an L2 kernel regulariser of λ/2, so the
    objective gains ½λ‖W‖² and the gradient λW, biases excluded. When it is on, the data loss
    is also tracked as a metric, since Keras's reported loss includes the penalty.

    Adam: Keras adds epsilon to sqrt(v) with the bias correction folded into the step size;
    see `impls.core.adam_step` (epsilon_on="v") for the exact difference from the other backends.

    `steps_per_execution` is Keras's `compile` option of that name: with k > 1, `fit` runs k
    training steps per call into the compiled function (a loop inside the graph) instead of
    one. Each step is the same update on the same batch, and the epoch loss is the same
    sample-weighted mean; what goes is Python overhead per step, so at small batch sizes
    Keras trains several times faster than a `fit` with the default of 1. It stays 1 unless
    asked for, so the default is the plain `fit` every Keras user gets.
    """

    # "keras" on TensorFlow, else "keras-<its Keras backend>", as the registry names them
    backend = {"tensorflow": "keras"}.get(
        keras.backend.backend(), f"keras-{keras.backend.backend()}"
    )

    def __init__(self, spec, params, steps_per_execution: int = 1):
        super().__init__(spec, params)
        if spec.device != "cpu":
            raise ValueError(
                f"backend {self.backend!r} is run on the CPU here, got device {spec.device!r}"
            )
        if (
            not isinstance(steps_per_execution, numbers.Integral)
            or isinstance(steps_per_execution, bool)
            or steps_per_execution < 1
        ):
            raise ValueError(
                f"steps_per_execution must be a positive integer, got {steps_per_execution!r}"
            )
        dtype = spec.dtype
        decay = spec.weight_decay
        regularizer = keras.regularizers.L2(decay / 2) if decay else None
        sizes = spec.layer_sizes
        with floatx(dtype):
            layers = [keras.Input(shape=(sizes[0],), dtype=dtype)]
            for width in sizes[1:-1]:
                layers.append(
                    keras.layers.Dense(
                        width,
                        activation=spec.activation,
                        kernel_regularizer=regularizer,
                        dtype=dtype,
                    )
                )
            last_activation = spec.output if spec.loss == "mse" else None
            layers.append(
                keras.layers.Dense(
                    sizes[-1],
                    activation=last_activation,
                    kernel_regularizer=regularizer,
                    dtype=dtype,
                )
            )
            self.model = keras.Sequential(layers)
            loss, data_loss = _losses(spec)
            self.optimizer = OPTIMIZERS[spec.optimizer](spec)
            self.model.compile(
                optimizer=self.optimizer,
                loss=loss,
                metrics=[data_loss] if decay else None,
                steps_per_execution=int(steps_per_execution),
            )
            self.optimizer.build(self.model.trainable_variables)
        self._loss_key = DATA_LOSS if decay else "loss"
        self._probabilities = PROBABILITIES.get(spec.output) if spec.loss != "mse" else None
        self._dense = list(self.model.layers)
        self._feed_dataset = keras.backend.backend() == "tensorflow"
        # On JAX, the data stays NumPy arrays on the host and `fit` gets the epoch's arrays, as
        # plain Keras code does: Keras's array adapter is its fast path on the CPU (where this
        # backend runs), and a generator of device-array slices made a 3-epoch `fit` 1.14-1.58x
        # as long as plain `fit` (digits at batch 32, 784-256-128-10 at 256: the framework-
        # overhead benchmark), where torch's trainer takes the generator at no cost (0.94-1.01x).
        self._arrays = keras.backend.backend() == "jax"
        self.set_params(params)

    def _stage(self, X, Y):
        """X and Y as the backend's tensors of the spec's dtype, where Keras computes (on
        JAX: NumPy arrays, see __init__)."""
        X, Y = super()._stage(X, Y)
        if self._arrays:
            return X, Y
        dtype = self.spec.dtype
        return (
            keras.ops.convert_to_tensor(X, dtype=dtype),
            keras.ops.convert_to_tensor(Y, dtype=dtype),
        )

    def _train_staged(self, data, batch_size, order):
        """The epoch's order applied to the staged tensors (one gather where they are; none
        for the order 0..n-1), then one `fit` over the batches."""
        if self._arrays:  # gathered on the host into reused buffers, then fit on arrays
            return self._fit_arrays(*self._gather(data.X, data.Y, order), batch_size)
        index = None if order.shape[0] == data.n and is_identity(order) else order
        return self._fit(data.X, data.Y, index, batch_size)

    def _train_ordered(self, X, Y, batch_size):
        X, Y = self._stage(X, Y)
        if self._arrays:
            return self._fit_arrays(X, Y, batch_size)
        return self._fit(X, Y, None, batch_size)

    def _fit_arrays(self, X, Y, batch_size):
        """One `fit` over NumPy arrays already in order, as plain Keras code calls it."""
        return self._fit_epoch(x=X, y=Y, batch_size=batch_size)

    def _fit(self, X, Y, index, batch_size):
        """One `fit` over rows `index` of the staged X, Y."""
        batches = epoch_dataset if self._feed_dataset else epoch_batches
        n = X.shape[0] if index is None else index.shape[0]
        # the number of batches, which Keras cannot read from a generator: without it,
        # steps_per_execution > 1 ends each epoch with "ran out of data"
        return self._fit_epoch(
            x=batches(X, Y, index, batch_size), steps_per_epoch=-(-n // batch_size)
        )

    def _fit_epoch(self, **inputs):
        """One epoch of `fit` on `inputs`; its mean data loss. It returns once the epoch's
        losses are on the host (Keras reads its metrics' values at the end of `fit`), so the
        computation has finished before the caller's clock stops."""
        with floatx(self.spec.dtype):  # the loss tracker and metrics are made in floatx
            history = self.model.fit(epochs=1, shuffle=False, verbose=0, **inputs)
        return float(history.history[self._loss_key][-1])

    def _predict(self, X):
        out = np.empty((X.shape[0], self.spec.n_outputs), dtype=self.spec.dtype)
        for start in range(0, X.shape[0], PREDICT_CHUNK):
            y = self.model(X[start : start + PREDICT_CHUNK], training=False)
            if self._probabilities is not None:
                y = self._probabilities(y)
            out[start : start + PREDICT_CHUNK] = keras.ops.convert_to_numpy(y)
        return out

    def get_params(self):
        return [
            (
                np.array(keras.ops.convert_to_numpy(layer.kernel), copy=True),
                np.array(keras.ops.convert_to_numpy(layer.bias), copy=True),
            )
            for layer in self._dense
        ]

    def set_params(self, params):
        for layer, (W, b) in zip(self._dense, check_params(self.spec, params, copy=False)):
            layer.kernel.assign(W)
            layer.bias.assign(b)
