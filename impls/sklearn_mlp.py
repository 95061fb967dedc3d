"""`sklearn`: scikit-learn's `MLPClassifier` / `MLPRegressor`, trained through `partial_fit`.

One `partial_fit` call is one pass over the data it is given, in consecutive `batch_size`
slices when `shuffle=False`: given the epoch's samples already in order, it makes exactly the
contract's batches, the last one smaller when n is not a multiple. Early stopping, `tol` and
`n_iter_no_change` play no part (`partial_fit` never stops early; they are disabled anyway).

scikit-learn's conventions differ from the contract's in three places, each translated exactly
rather than approximated:

- Its losses are k times the contract's in the gradient: k = 1 for cce (`log_loss` on a
  softmax output), k = n_outputs for bce (`binary_log_loss` sums over the outputs where the
  contract averages) and k = n_outputs / 2 for mse (`squared_error` is halved and its output
  delta ŷ - y is not divided by the number of outputs). So SGD gets `learning_rate_init`
  lr / k, and Adam (whose step does not change with the scale of the gradient but for ε) gets
  ε·k. The loss it reports is divided back: by 1, n_outputs and 1/2.
- Weight decay: `alpha` is divided by the batch's size (the gradient gains alpha·W / m), so
  alpha = λ·k·m gives the contract's λW. With one `partial_fit` per epoch a short last batch of
  m < batch_size samples would get a decay batch_size / m times too strong, and the loss
  scikit-learn reports includes the penalty ½·alpha·‖W‖² / m, which the contract leaves out.
  With weight decay on, the epoch therefore goes to `partial_fit` one batch per call, alpha
  set for that batch's size and the penalty (from the weights before the update) subtracted
  from the reported loss. That costs one call's validation per batch (see the overhead
  benchmark), so without weight decay the epoch is one call.
- Adam adds ε to sqrt(v) with the bias correction folded into the step size, as Keras does
  (see `impls.core.adam_step`, epsilon_on="v"): the parity suite compares it with that placement.

Combinations scikit-learn cannot express raise NotImplementedError at construction, with the
reason (`unsupported_reason`): cce with two outputs (MLPClassifier models two classes with a
single logistic unit), mse on a softmax or sigmoid output (MLPRegressor's output is linear,
MLPClassifier trains log loss only), any device but the CPU. Targets must be one-hot for cce
(MLPClassifier takes class labels) and 0/1 for bce.

One private attribute is touched: scikit-learn sets its parameters up in its first
`partial_fit` call, so the model is built by one such call on a few zero rows, after which
`coefs_` / `intercepts_` are overwritten with the given parameters and the optimiser that
call created (`_optimizer`) is dropped, so training starts from fresh optimiser state.
"""

from __future__ import annotations

import numpy as np
from sklearn.neural_network import MLPClassifier, MLPRegressor

from .base import MLPModel, check_params

ACTIVATIONS = {"relu": "relu", "sigmoid": "logistic", "tanh": "tanh"}
BIG = 2**31 - 1  # n_iter_no_change: never reached


def unsupported_reason(spec) -> str | None:
    """Why scikit-learn's MLPs cannot train `spec` exactly, or None if they can."""
    if spec.device != "cpu":
        return f"scikit-learn runs on the CPU only, got device {spec.device!r}"
    if spec.loss == "cce" and spec.n_outputs < 3:
        return (
            "MLPClassifier models two classes with one logistic unit, not a two-unit softmax: "
            "use bce with one output"
        )
    if spec.loss == "mse" and spec.output != "linear":
        return (
            f"mse on a {spec.output} output: MLPRegressor's output is linear and "
            "MLPClassifier trains log loss only"
        )
    return None


def gradient_scale(spec) -> float:
    """k: scikit-learn's data gradient is k times the contract's for spec.loss."""
    return {"cce": 1.0, "bce": float(spec.n_outputs), "mse": spec.n_outputs / 2}[spec.loss]


LOSS_SCALE = {"cce": 1.0, "bce": None, "mse": 0.5}  # reported loss / contract's (None: n_out)


class SklearnMLP(MLPModel):
    """An MLPClassifier (cce, bce) or MLPRegressor (mse with a linear output); see the module."""

    backend = "sklearn"

    def __init__(self, spec, params):
        super().__init__(spec, params)
        reason = unsupported_reason(spec)
        if reason is not None:
            raise NotImplementedError(f"backend 'sklearn' cannot train this network: {reason}")
        self._k = gradient_scale(spec)
        scale = LOSS_SCALE[spec.loss]
        self._loss_scale = float(spec.n_outputs) if scale is None else scale
        common = dict(
            hidden_layer_sizes=spec.layer_sizes[1:-1],
            activation=ACTIVATIONS[spec.activation],
            solver=spec.optimizer,
            alpha=0.0,
            shuffle=False,
            early_stopping=False,
            tol=0.0,
            n_iter_no_change=BIG,
            max_iter=1,
            random_state=0,  # only the throw-away first call's weights use it
        )
        if spec.optimizer == "sgd":
            common.update(
                learning_rate="constant",
                learning_rate_init=spec.lr / self._k,
                momentum=spec.momentum,
                nesterovs_momentum=False,
            )
        else:
            common.update(
                learning_rate_init=spec.lr,
                beta_1=spec.betas[0],
                beta_2=spec.betas[1],
                epsilon=spec.eps * self._k,
            )
        n_in, n_out = spec.n_inputs, spec.n_outputs
        X0 = np.zeros((max(n_out, 2), n_in), dtype=spec.dtype)
        if spec.loss == "mse":
            self.estimator = MLPRegressor(**common)
            self.estimator.partial_fit(X0, self._targets(np.zeros((X0.shape[0], n_out))))
        else:
            self.estimator = MLPClassifier(**common)
            if spec.loss == "cce" or n_out == 1:
                classes = np.arange(max(n_out, 2))
                self.estimator.partial_fit(X0, classes, classes=classes)
            else:  # bce on several outputs: multi-label indicator targets
                Y0 = np.eye(X0.shape[0], n_out, dtype=np.int8)
                self.estimator.partial_fit(X0, Y0, classes=np.arange(n_out))
        del self.estimator._optimizer  # recreated from the given parameters on the next call
        self.set_params(params)

    def _targets(self, Y):
        """Y as scikit-learn takes it: class labels (cce, bce on one output), else 2-D."""
        loss = self.spec.loss
        if loss == "cce":
            labels = Y.argmax(axis=1)
            if np.count_nonzero(Y) != Y.shape[0] or not (Y[np.arange(len(Y)), labels] == 1).all():
                raise ValueError(
                    "backend 'sklearn' needs one-hot targets for cce (MLPClassifier takes "
                    "class labels)"
                )
            return labels
        if loss == "bce" and not np.isin(Y, (0, 1)).all():
            raise ValueError("backend 'sklearn' needs 0/1 targets for bce")
        return Y[:, 0] if Y.shape[1] == 1 else Y

    def _train_ordered(self, X, Y, batch_size):
        est, n = self.estimator, X.shape[0]
        y = self._targets(Y)
        decay = self.spec.weight_decay
        if not decay:
            est.batch_size = min(batch_size, n)
            est.partial_fit(X, y)
            return est.loss_ / self._loss_scale
        total = 0.0
        per_sample = decay * self._k  # alpha = per_sample * m for a batch of m samples
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            m = stop - start
            sq = sum(float(np.dot(W.ravel(), W.ravel())) for W in est.coefs_)  # before update
            est.batch_size = m
            est.alpha = per_sample * m
            est.partial_fit(X[start:stop], y[start:stop])
            total += (est.loss_ - 0.5 * per_sample * sq) * m  # penalty: ½·alpha·‖W‖² / m
        return total / n / self._loss_scale

    def _predict(self, X):
        est = self.estimator
        if self.spec.loss == "mse":
            out = est.predict(X)
        else:
            out = est.predict_proba(X)
            if self.spec.n_outputs == 1:  # [1 - p, p] for one logistic unit
                out = out[:, 1:]
        return np.asarray(out, dtype=self.spec.dtype).reshape(X.shape[0], self.spec.n_outputs)

    def get_params(self):
        est = self.estimator
        return [(W.copy(), b.copy()) for W, b in zip(est.coefs_, est.intercepts_)]

    def set_params(self, params):
        est = self.estimator
        for W, b, (W_new, b_new) in zip(
            est.coefs_, est.intercepts_, check_params(self.spec, params, copy=False)
        ):
            np.copyto(W, W_new)
            np.copyto(b, b_new)
