"""The fast core of the hand-written backends: forward pass, losses, backpropagation, weight
decay and optimisers.

Read top to bottom, this module is the whole maths of the hand-written backends; `numpy-vec`,
`numpy-loop` and `cupy` only decide how many samples go through it at a time, and on which
array library. Its textbook twin is `impls/reference.py`, written apart from it in the most
direct form; `bench verify` and tests/test_reference.py hold this core to it.

It keeps a few choices made for speed, not for the maths (relu' as sign(a), hyperparameters as
0-d arrays, NumPy's ufunc reductions and np.dot, in-place optimiser steps, CuPy's column sums
as a product). Each says what it buys and gives a command that measures it per call. What one
buys on whole epochs is measured by timing the batch-1 benchmark group (where per-call costs
weigh most) with the choice and without it, on a quiet machine:
    pytest tests/benchmarks --benchmark-only -k "train_epoch and digits and -1- and numpy"
and the large-product one with -k "train_epoch and mnist and numpy-vec".

Notation, for a batch of m samples through L dense layers of widths n_0, ..., n_L:

    X      (m, n_0)            inputs, one sample per row
    W_l    (n_{l-1}, n_l)      weights of layer l = 1..L;  b_l (n_l,) its biases
    z_l    (m, n_l)            pre-activations  z_l = a_{l-1} W_l + b_l,  with a_0 = X
    a_l    (m, n_l)            hidden activations  a_l = f(z_l),  l < L
    yhat   (m, n_L)            output activation  yhat = g(z_L)  (softmax, sigmoid or linear)
    Y      (m, n_L)            targets (one-hot or soft for cce, 0/1 for bce, any for mse)

The training objective is the mean over the batch of a per-sample loss, plus ½λ‖W‖² over the
weights (not the biases) when weight decay λ is on. `params` is always a list [(W_1, b_1), ...,
(W_L, b_L)].

Every function takes its array module `xp` from its arguments (`namespace`): NumPy arrays run
on NumPy, CuPy arrays on CuPy, and any other array-API namespace (the tests use
`array_api_strict`) on itself. So the same source trains on a GPU, and nothing NumPy-only may
be used here: no `out=` arguments, no NumPy-only functions; in-place Python operators are part
of the standard and are used where they save a temporary.
"""

from __future__ import annotations

import types

import numpy as np

# --------------------------------------------------------------------------- activations
# f(z) element-wise, and its derivative written from the output a = f(z), which the forward
# pass keeps: backward(a, g) returns g * f'(z).


def relu(z):
    return namespace(z).maximum(z, 0.0)


def relu_backward(a, g):
    # a = relu(z) >= 0, so sign(a) is relu'(z): 1 where z > 0, else 0. Speed: two array
    # operations and no Python scalar, where where(a > 0, g, 0.0) makes a mask, converts the
    # scalar and selects. Per call, at numpy-loop's sizes:
    #   python -m timeit -s "import numpy as np; a = np.random.rand(100); g = a - 0.5" \
    #       "g * np.sign(a)"      (then the same with "np.where(a > 0, g, 0.0)")
    return g * namespace(a).sign(a)


def sigmoid(z):
    """1 / (1 + exp(-z)) written as 0.5 (1 + tanh(z / 2)): no overflow for any z, in z's dtype."""
    return 0.5 * (1.0 + namespace(z).tanh(0.5 * z))


def sigmoid_backward(a, g):
    return g * a * (1.0 - a)


def tanh(z):
    return namespace(z).tanh(z)


def tanh_backward(a, g):
    return g * (1.0 - a * a)


def softmax(z):
    """exp(z) / sum(exp(z)) along each row (m, k), shifted by the row maximum for stability."""
    xp = namespace(z)
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_backward(yhat, g):
    """J^T g for the softmax's Jacobian J = diag(yhat) - yhat yhat^T, row by row:
    yhat * (g - sum(yhat * g))."""
    xp = namespace(yhat)
    return yhat * (g - xp.sum(yhat * g, axis=-1, keepdims=True))


def linear(z):
    return z


def linear_backward(a, g):
    return g


ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}
DERIVATIVES = {"relu": relu_backward, "sigmoid": sigmoid_backward, "tanh": tanh_backward}
OUTPUTS = {"softmax": softmax, "sigmoid": sigmoid, "linear": linear}
OUTPUT_DERIVATIVES = {
    "softmax": softmax_backward,
    "sigmoid": sigmoid_backward,
    "linear": linear_backward,
}


# --------------------------------------------------------------------------- forward


def forward(params, X, activation):
    """The forward pass, keeping what backward needs.

    Returns the cache [a_0 = X, a_1, ..., a_{L-1}, z_L]: the input of every layer, then the
    logits z_L (m, n_L). The output activation g(z_L) is left to the loss (see LOSSES).
    """
    f, xp = ACTIVATIONS[activation], namespace(X)
    cache = [X]
    for W, b in params[:-1]:
        z = xp.matmul(cache[-1], W)
        z += b
        cache.append(f(z))
    W, b = params[-1]
    z = xp.matmul(cache[-1], W)
    z += b
    cache.append(z)
    return cache


def predict(params, X, activation, output):
    """yhat = g(z_L) (m, n_L) for the batch X."""
    return OUTPUTS[output](forward(params, X, activation)[-1])


# --------------------------------------------------------------------------- losses
# LOSSES[(loss, output)](z, Y) -> (losses (m,), delta (m, n_L)): each sample's loss and its
# derivative dloss/dz with respect to the logits, the `delta` that backward starts from.
# Per sample, with k = n_L outputs:
#   cce = -sum_j y_j log softmax(z)_j           (from the logits)
#   bce = mean_j -[y_j log s(z_j) + (1 - y_j) log(1 - s(z_j))],  s the sigmoid (from the logits)
#   mse = mean_j (yhat_j - y_j)^2,  yhat = g(z) for the output activation g


def softmax_cce(z, Y):
    """cce with a softmax output, its loss and delta from one exp of the logits.

    With t = z - max(z) per row (so exp cannot overflow), s = sum(exp(t)) and n = sum(y)
    (1 for one-hot targets), log softmax(z) = t - log(s), so
        loss  = -sum(y log softmax(z)) = sum(y (log(s) - t))
        delta = exp(t) / s * n - y     (= softmax(z) sum(y) - y; soft targets included)
    Fused for stability, not speed: the loss never takes the log of a rounded probability
    (softmax, then -sum(y log yhat), gives inf or NaN once a probability rounds to 0); the
    operation count is the same as softmax then the loss.
    """
    xp = namespace(z)
    t = z - xp.max(z, axis=-1, keepdims=True)
    e = xp.exp(t)
    s = xp.sum(e, axis=-1, keepdims=True)
    loss = xp.sum(Y * (xp.log(s) - t), axis=-1)
    return loss, e * (xp.sum(Y, axis=-1, keepdims=True) / s) - Y


def sigmoid_bce(z, Y):
    """bce with a sigmoid output, from the logits:
    loss  = mean_j max(z, 0) - y z + log(1 + exp(-|z|))   (no overflow for any z)
    delta = (sigmoid(z) - y) / k"""
    xp = namespace(z)
    per_output = xp.maximum(z, 0.0) - Y * z + xp.log1p(xp.exp(-xp.abs(z)))
    return xp.mean(per_output, axis=-1), (sigmoid(z) - Y) / z.shape[-1]


def _mse(output):
    """mse on the output activation g: loss = mean_j (yhat - y)^2, and by the chain rule
    delta = g'(z)^T dloss/dyhat with dloss/dyhat = 2 (yhat - y) / k."""
    g, g_backward = OUTPUTS[output], OUTPUT_DERIVATIVES[output]

    def mse(z, Y):
        yhat = g(z)
        diff = yhat - Y
        loss = namespace(z).mean(diff * diff, axis=-1)
        return loss, g_backward(yhat, (2.0 / z.shape[-1]) * diff)

    mse.__name__ = f"{output}_mse"
    return mse


LOSSES = {
    ("cce", "softmax"): softmax_cce,
    ("bce", "sigmoid"): sigmoid_bce,
    **{("mse", output): _mse(output) for output in ("linear", "sigmoid", "softmax")},
}


# --------------------------------------------------------------------------- backward


def backward(params, cache, delta, activation):
    """Backpropagation: the gradients [(dW_1, db_1), ..., (dW_L, db_L)] of a batch objective.

    `delta` (m, n_L) is d(objective)/dz_L, one row per sample; scaled by 1/m it makes the
    objective the batch mean. Layer by layer from the top, with a_{k-1} = cache[k-1]:
        dW_k = a_{k-1}^T delta_k        (n_{k-1}, n_k): the sum of per-sample outer products
        db_k = sum of delta_k's rows    (n_k,)
        delta_{k-1} = (delta_k W_k^T) * f'(z_{k-1})     (m, n_{k-1}), f' from a_{k-1}
    """
    f_backward = DERIVATIVES[activation]
    xp = namespace(delta)
    grads = []
    for k in range(len(params) - 1, -1, -1):
        W, _ = params[k]
        a_prev = cache[k]
        grads.append((xp.matmul(a_prev.T, delta), xp.sum(delta, axis=0)))
        if k > 0:
            delta = f_backward(a_prev, xp.matmul(delta, W.T))
    return grads[::-1]


def gradients(params, X, Y, spec, scale):
    """(per-sample losses (m,), the gradients of `scale` x the summed loss) for one batch.

    The data loss only; weight decay is added by `add_weight_decay`. scale = 1/m gives the
    gradient of the batch mean.
    """
    cache = forward(params, X, spec.activation)
    losses, delta = LOSSES[(spec.loss, spec.output)](cache[-1], Y)
    delta *= scale
    return losses, backward(params, cache, delta, spec.activation)


def add_weight_decay(params, grads, decay):
    """The penalty ½λ‖W‖² adds λW to each weight gradient (biases are not decayed), in place."""
    if decay:
        for (W, _), (dW, _) in zip(params, grads):
            dW += decay * W


def objective(params, X, Y, spec):
    """Mean data loss over the batch plus ½λ‖W‖²: the function whose gradient training follows."""
    xp = namespace(X)
    losses, _ = LOSSES[(spec.loss, spec.output)](forward(params, X, spec.activation)[-1], Y)
    penalty = sum(float(xp.sum(W * W)) for W, _ in params)
    return float(xp.mean(losses)) + 0.5 * spec.weight_decay * penalty


# --------------------------------------------------------------------------- optimisers
# An optimiser is a pair of functions: init(params, ...) -> state, and step(params, grads,
# state), which updates the parameter arrays and the state in place (and may overwrite the
# gradients, its scratch space). params and grads are flat lists of arrays in the same order;
# the state holds the hyperparameters and the slots.


def _constant(value, like):
    r"""`value` as a 0-d array of `like`'s dtype. Speed: NumPy multiplies a small array by a 0-d
    array of its own dtype without first converting a Python float, which counts at batch 1,
    where each step multiplies small arrays. Per call:
        python -m timeit -s "import numpy as np; g = np.random.rand(100); lr = np.asarray(0.1)" \
            "g * lr"      (then "g * 0.1")"""
    return namespace(like).asarray(value, dtype=like.dtype)


def sgd_init(params, lr, momentum=0.0):
    """SGD, with classical momentum as torch.optim.SGD writes it when momentum > 0."""
    xp = namespace(params[0])
    velocity = [xp.zeros_like(p) for p in params] if momentum else None
    return {
        "lr": _constant(lr, params[0]),
        "momentum": _constant(momentum, params[0]),
        "velocity": velocity,
    }


def sgd_step(params, grads, state):
    """p -= lr g;  with momentum mu: v = mu v + g, p -= lr v. The gradients are used as scratch."""
    lr, velocity = state["lr"], state["velocity"]
    if velocity is None:
        for p, g in zip(params, grads):
            g *= lr  # in place: no temporary the size of W for lr g (see adam_step)
            p -= g
        return
    for p, g, v in zip(params, grads, velocity):
        v *= state["momentum"]
        v += g
        p -= lr * v


ADAM_EPSILON_PLACEMENTS = ("v_hat", "v")


def adam_init(params, lr, betas=(0.9, 0.999), eps=1e-7, epsilon_on="v_hat"):
    """Adam with bias correction; `epsilon_on` says where epsilon is added (see adam_step)."""
    if epsilon_on not in ADAM_EPSILON_PLACEMENTS:
        raise ValueError(
            f"unknown epsilon_on {epsilon_on!r}; valid: {', '.join(ADAM_EPSILON_PLACEMENTS)}"
        )
    xp = namespace(params[0])
    return {
        "lr": float(lr),
        "betas": (float(betas[0]), float(betas[1])),
        "eps": float(eps),
        "epsilon_on": epsilon_on,
        "t": 0,
        "m": [xp.zeros_like(p) for p in params],
        "v": [xp.zeros_like(p) for p in params],
    }


def adam_step(params, grads, state):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t += 1;  then

    epsilon_on="v_hat" (the Adam paper, torch.optim.Adam):
        p -= lr m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
    epsilon_on="v" (Keras, TensorFlow), the bias correction folded into the step size:
        p -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)
    which is the first with eps replaced by eps / sqrt(1 - b2^t): larger in early steps.
    """
    xp = namespace(params[0])
    b1, b2 = state["betas"]
    state["t"] += 1
    bc1, bc2 = 1.0 - b1 ** state["t"], 1.0 - b2 ** state["t"]
    if state["epsilon_on"] == "v_hat":
        step_size, sqrt_v_scale = state["lr"] / bc1, 1.0 / bc2**0.5
    else:
        step_size, sqrt_v_scale = state["lr"] * bc2**0.5 / bc1, 1.0
    # In place, with the gradients as scratch. Speed: three temporaries per array instead of
    # eight, each the size of W (fresh memory at large sizes). Per step, against the same
    # formula with new arrays (impls.reference.adam):
    #   python -m timeit -s "import numpy as np; from impls import core; \
    #       p = [np.ones((1024, 1024), 'f4')]; s = core.adam_init(p, 1e-3)" \
    #       "core.adam_step(p, [np.full_like(p[0], 1e-3)], s)"
    #   python -m timeit -s "import numpy as np; from impls import reference; \
    #       p = [np.ones((1024, 1024), 'f4')]; m = v = [np.zeros_like(p[0])]" \
    #       "reference.adam(p, [np.full_like(p[0], 1e-3)], m, v, 1, 1e-3, (0.9, 0.999), 1e-7)"
    for p, g, m, v in zip(params, grads, state["m"], state["v"]):
        g_squared = g * g
        g_squared *= 1.0 - b2
        v *= b2
        v += g_squared  # v = b2 v + (1 - b2) g^2
        g *= 1.0 - b1
        m *= b1
        m += g  # m = b1 m + (1 - b1) g
        denominator = xp.sqrt(v)
        denominator *= sqrt_v_scale
        denominator += state["eps"]
        update = m / denominator
        update *= step_size
        p -= update


def make_optimizer(spec, params, epsilon_on="v_hat"):
    """(step, state) of the optimiser `spec` names, over the flat list of arrays `params`.
    `epsilon_on` applies to adam only."""
    if spec.optimizer == "adam":
        return adam_step, adam_init(params, spec.lr, spec.betas, spec.eps, epsilon_on)
    return sgd_step, sgd_init(params, spec.lr, spec.momentum)


# --------------------------------------------------------------------------- array namespaces


def _reduction(ufunc):
    def reduce(x, /, *, axis=None, keepdims=False):
        return ufunc.reduce(x, axis=axis, keepdims=keepdims)

    return reduce


# NumPy as the core calls it: NumPy's own functions, with three exceptions for speed.
NUMPY = types.SimpleNamespace(**{k: v for k, v in vars(np).items() if not k.startswith("_")})
# sum, max: np.sum and np.max are Python wrappers around the ufuncs' reduce, and on small arrays
# the wrapper costs more than the reduction; a sample at batch 1 makes six. Per call:
#   python -m timeit -s "import numpy as np; x = np.random.rand(1, 10)" \
#       "np.add.reduce(x, axis=-1, keepdims=True)"      (then "np.sum(x, axis=-1, keepdims=True)")
NUMPY.sum, NUMPY.max = _reduction(np.add), _reduction(np.maximum)
# matmul: np.dot. np.matmul forms the outer product (n, 1) @ (1, k) of a one-row batch (the
# weight gradient a^T delta at batch 1) outside BLAS; np.dot hands it to BLAS. 2-D arrays only.
# Per call, at the first layer of 784-256-128-10:
#   python -m timeit -s "import numpy as np; a = np.random.rand(784, 1); \
#       d = np.random.rand(1, 256)" "np.dot(a, d)"      (then "np.matmul(a, d)")
NUMPY.matmul = np.dot
NUMPY.concat = np.concatenate  # NumPy < 2 has no concat
# On n > 1 threads, impls.parallel.set_threads(n) swaps in its versions of the element-wise
# functions and reductions here, which split large arrays over a pool (bit-identical results).


_CUPY = None  # CuPy as the core calls it, made on first use (see namespace)


def _cupy_namespace(cupy):
    """CuPy's own module (its functions take the array API's names and keywords), with
    `concat` where CuPy is older than its array-API main namespace (CuPy 14), and one
    exception for speed (below)."""
    global _CUPY
    if _CUPY is None:
        names = {k: v for k, v in vars(cupy).items() if not k.startswith("_")}
        names.setdefault("concat", cupy.concatenate)
        names["sum"] = _column_sums_by_product(cupy)
        _CUPY = types.SimpleNamespace(**names)
    return _CUPY


def _column_sums_by_product(cupy):
    r"""sum, except that the column sums of a row-major matrix (backward's bias gradients
    sum(delta, axis=0)) are taken as the product 1^T delta in cuBLAS. Speed: CuPy's reduction
    reads down the columns with a stride, which counts at large batches on a GPU. Per call, at
    batch 8192 of a 1024-wide layer (GPU time in each line's output):
        python -c "import cupy; from cupyx.profiler import benchmark; \
            x = cupy.random.random((8192, 1024), dtype='f4'); ones = cupy.ones(8192, 'f4'); \
            print(benchmark(cupy.sum, (x,), {'axis': 0}, n_repeat=200)); \
            print(benchmark(cupy.matmul, (ones, x), n_repeat=200))"
    """

    ones = {}  # (rows, dtype, device) -> the ones vector, made once (a kernel launch saved)

    def sum_(x, /, *, axis=None, dtype=None, keepdims=False):
        if axis == 0 and x.ndim == 2 and x.flags.c_contiguous and dtype is None and not keepdims:
            key = (x.shape[0], x.dtype.str, x.device.id)
            if key not in ones:
                if len(ones) > 16:  # a few batch sizes per cell: keep the latest only
                    ones.clear()
                ones[key] = cupy.ones(x.shape[0], dtype=x.dtype)
            return cupy.matmul(ones[key], x)
        return cupy.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)

    return sum_


def namespace(x):
    """The array namespace of `x`: `NUMPY` for NumPy arrays, CuPy (as above) for CuPy arrays,
    else `x.__array_namespace__()`."""
    if isinstance(x, np.ndarray):
        return NUMPY
    if type(x).__module__.startswith("cupy"):
        import cupy  # already imported: x is one of its arrays

        return _cupy_namespace(cupy)
    return x.__array_namespace__()


def to_numpy(a) -> np.ndarray:
    """`a` as a NumPy array on the host: a copy from the device for CuPy arrays (which refuse
    an implicit conversion), np.asarray for the rest."""
    if isinstance(a, np.ndarray):
        return a
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)
