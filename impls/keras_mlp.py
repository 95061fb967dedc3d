"""`keras`: the network as Keras 3 users write it: a compiled Sequential of Dense layers, `fit`.

The Keras backend comes from $KERAS_BACKEND (TensorFlow by default), read once when Keras is
first imported: the registry's `keras-jax` and `keras-torch` set it (and JAX's 64-bit mode) in
their own worker process before that import. The model uses only `keras.ops`, so it runs on
any Keras backend that can train. One thing is backend-specific: on TensorFlow the epoch's
batches reach `fit` as a `tf.data.Dataset` (see `_epoch_dataset`), on any other backend as
NumPy arrays with `batch_size`.
"""

from __future__ import annotations

import contextlib
import numbers

import keras
import numpy as np

from .base import MLPModel, check_params

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


def _epoch_dataset(X, Y, batch_size):
    """The epoch's batches, in row order, as a `tf.data.Dataset` for `fit` on TensorFlow.

    The batches `fit(X, Y, batch_size=batch_size, shuffle=False)` makes: consecutive
    `batch_size` rows, the last batch smaller when n is not a multiple. Given the arrays, Keras
    builds a pipeline made for shuffling (index permutation, flat_map, parallel gather): it
    traces that pipeline's functions on every `fit` call (20-50 ms) and creates its iterator
    twice per epoch (10-17 ms each), more than a small model's whole epoch of training. Here
    the full batches are cut by a reshape (a view), so each batch is one slice of one tensor,
    and the remainder is one more element; building this takes about a millisecond. Like
    Keras's own adapter, TensorFlow copies the arrays into tensors once per `fit` call, here
    once per epoch (about 45 ms for 60000 x 784 float32).
    """
    import tensorflow as tf  # only reached on the TensorFlow backend, where Keras loaded it

    n = X.shape[0]
    full = n // batch_size
    cut = full * batch_size
    parts = []
    if full:
        parts.append(
            tf.data.Dataset.from_tensor_slices(
                (
                    X[:cut].reshape(full, batch_size, X.shape[1]),
                    Y[:cut].reshape(full, batch_size, Y.shape[1]),
                )
            )
        )
    if cut < n:
        parts.append(tf.data.Dataset.from_tensors((X[cut:], Y[cut:])))
    dataset = parts[0] if len(parts) == 1 else parts[0].concatenate(parts[1])
    return dataset.prefetch(tf.data.AUTOTUNE)


@contextlib.contextmanager
def _floatx(dtype: str):
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
        with _floatx(dtype):
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
        self.set_params(params)

    def _train_ordered(self, X, Y, batch_size):
        with _floatx(self.spec.dtype):  # Keras's data adapter casts inputs to floatx
            if self._feed_dataset:
                history = self.model.fit(
                    _epoch_dataset(X, Y, batch_size), epochs=1, shuffle=False, verbose=0
                )
            else:
                history = self.model.fit(
                    X, Y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0
                )
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
