"""Conventions a hand-written MLP may declare, and the conversions that make it compute the
contract's update (docs/plugins.md explains each with the maths).

A backend class may declare

    class MyMLP:
        conventions = {
            "loss_over_batch": "sum",   # default "mean"
            "mse": "half-sum",          # default "mean"
        }

- "mse": "half-sum": the quadratic cost is ½‖a−y‖² summed over the n_out outputs. Its gradient
  is c = n_out/2 times the contract's (the mean over the outputs of (a−y)²).
- "loss_over_batch": "sum": the update uses the gradient of the loss summed over the batch,
  c = the batch's size times the contract's (a mean over the batch); `train_epoch` returns the
  loss summed over the epoch's samples.

`convert_spec` gives the class a spec whose update, with its gradient c times the contract's,
is the contract's update: plain SGD and momentum get lr / c and weight_decay × c (the class's
decay term is added to its own, scaled gradient, so lr' × (c g + λ' W) = lr × (g + λ W));
Adam, whose step does not depend on the gradient's scale except through eps, keeps lr and gets
eps × c and weight_decay × c (then m̂/(√v̂ + eps) is unchanged). With "sum" over the batch, c is
the batch size: every full batch is exact, a short last batch (n not a multiple of the batch
size) takes m/batch_size of the contract's step (SGD), and under momentum or Adam that batch's
gradient enters the running averages at that scale; the conversion is exact when batch_size
divides the number of samples, or is 1. `convert_loss` turns the loss the class reports back
into the contract's (the mean over the epoch's samples of the mean over the outputs).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

ALLOWED = {
    "loss_over_batch": ("mean", "sum"),
    "mse": ("mean", "half-sum"),
}
DEFAULTS = {key: values[0] for key, values in ALLOWED.items()}


def declared(cls_or_model) -> dict[str, str]:
    """The conventions a class (or its model) declares, defaults filled in.

    Raises ValueError for anything that is not a dict of known keys and values, naming the
    allowed ones."""
    given = getattr(cls_or_model, "conventions", None)
    if given is None:
        return dict(DEFAULTS)
    if not isinstance(given, dict):
        raise ValueError(f"conventions must be a dict such as {{'mse': 'half-sum'}}, got {given!r}")
    for key, value in given.items():
        if key not in ALLOWED:
            raise ValueError(
                f"unknown convention {key!r}; allowed: "
                + "; ".join(f"{k} ({' or '.join(map(repr, v))})" for k, v in ALLOWED.items())
            )
        if value not in ALLOWED[key]:
            raise ValueError(
                f"convention {key!r} cannot be {value!r}; allowed: "
                f"{' or '.join(map(repr, ALLOWED[key]))}"
            )
    return {**DEFAULTS, **given}


def is_default(conventions: dict[str, str]) -> bool:
    return conventions == DEFAULTS


def gradient_factor(conventions: dict[str, str], spec, batch_size: int = 1) -> float:
    """How many times the contract's gradient the class's gradient is, on a full batch."""
    factor = 1.0
    if spec.loss == "mse" and conventions["mse"] == "half-sum":
        factor *= spec.n_outputs / 2
    if conventions["loss_over_batch"] == "sum":
        factor *= batch_size
    return factor


def convert_spec(conventions: dict[str, str], spec, batch_size: int = 1):
    """The spec to build a class with `conventions` from, so that it computes `spec`'s update
    (module docstring: what is exact, and when)."""
    factor = gradient_factor(conventions, spec, batch_size)
    if factor == 1.0:
        return spec
    decay = spec.weight_decay * factor
    if spec.optimizer == "adam":
        return replace(spec, eps=spec.eps * factor, weight_decay=decay)
    return replace(spec, lr=spec.lr / factor, weight_decay=decay)


def convert_loss(conventions: dict[str, str], spec, loss, n_samples: int):
    """The contract's epoch loss from the one a class with `conventions` reports over an epoch
    of `n_samples` samples. None (a class that reports no loss) stays None."""
    if loss is None:
        return None
    loss = float(loss)
    if spec.loss == "mse" and conventions["mse"] == "half-sum":
        loss *= 2 / spec.n_outputs
    if conventions["loss_over_batch"] == "sum":
        loss /= n_samples
    return loss


class _StagedData:
    """What `Converted.stage` hands out: the model's own staged data, and X and Y to stage
    again if the model is rebuilt for its batch size."""

    def __init__(self, X, Y, data):
        self.X, self.Y, self.data, self.n = X, Y, data, len(X)


class Converted:
    """The model of a plug-in class that declares conventions, seen through the contract: the
    class is built from the converted spec and its `train_epoch` returns the contract's loss.
    With "loss_over_batch": "sum" the conversion depends on the batch size: the model is built
    for batch 1, and built again from the initial parameters for the batch size of its first
    `train_epoch` (a later call with another batch size is an error). Every other attribute
    (predict_proba, get_params, set_params) is the model's own."""

    plugin: type  # the class wrapped (set by `wrap_class`)

    def __init__(self, spec, params, **options):
        self.conventions = declared(self.plugin)
        self.spec, self._options = spec, options
        self._params = [tuple(np.array(a) for a in layer) for layer in params]
        self._batch, self._trained = 1, False
        self.model = self.plugin(convert_spec(self.conventions, spec, 1), params, **options)

    def __getattr__(self, name):
        if name == "model":  # not built (its __init__ raised)
            raise AttributeError(name)
        return getattr(self.model, name)

    def _for_batch(self, batch_size: int) -> None:
        if self.conventions["loss_over_batch"] != "sum" or batch_size == self._batch:
            return
        if self._trained:
            raise ValueError(
                f"{self.plugin.__name__} sums its loss over the batch, so its lr was converted "
                f"for batch size {self._batch}: train it with that batch size only"
            )
        spec = convert_spec(self.conventions, self.spec, batch_size)
        self.model = self.plugin(spec, self._params, **self._options)
        self._batch = batch_size

    def train_epoch(self, *args, **kwargs):
        first = args[0] if args else kwargs.get("data", kwargs.get("X"))
        staged = isinstance(first, _StagedData)
        rest = list(args[1:] if staged else args[2:])
        batch_size = rest[0] if rest else kwargs["batch_size"]
        order = rest[1] if len(rest) > 1 else kwargs.get("order")
        self._for_batch(int(batch_size))
        self._trained = True
        if staged:
            if first.data[0] is not self.model:  # staged by the model built for batch 1
                first.data = (self.model, self.model.stage(first.X, first.Y))
            loss = self.model.train_epoch(first.data[1], batch_size, order)
        else:
            loss = self.model.train_epoch(*args, **kwargs)
        n = len(order) if order is not None else first.n if staged else len(first)
        return convert_loss(self.conventions, self.spec, loss, n)


class _ConvertedStaging(Converted):
    def stage(self, X, Y):
        return _StagedData(X, Y, (self.model, self.model.stage(X, Y)))

    def predict_proba(self, X):
        if isinstance(X, _StagedData):
            X = X.X
        return self.model.predict_proba(X)


def wrap_class(cls, where: str = ""):
    """`cls` itself when it declares no conventions, else a class whose models are `cls`'s
    seen through the contract (`Converted`). Raises ValueError for invalid conventions (its
    message begins with `where`)."""
    try:
        if is_default(declared(cls)):
            return cls
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}" if where else str(exc)) from None
    base = _ConvertedStaging if callable(getattr(cls, "stage", None)) else Converted
    copied = {k: getattr(cls, k) for k in ("conventions", "supports") if hasattr(cls, k)}
    return type(cls.__name__, (base,), {"plugin": cls, "__doc__": cls.__doc__, **copied})
