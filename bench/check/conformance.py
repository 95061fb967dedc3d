"""`python -m bench verify --backends NAME`: where a backend first departs from numpy-vec.

Meant for a user's own MLP (`module:Class`, `path/to/file.py:Class`), it works for any
backend. numpy-vec is the yardstick here because `bench verify` holds it to the textbook MLP,
`impls/reference.py` (the maths written out plainly: read it beside your own). The report
teaches by going step by step, from the same parameters and the same samples:

1. the forward pass on one batch (the outputs of `predict_proba`: the protocol has no
   per-layer hook),
2. the loss `train_epoch` reports for that one batch,
3. the parameters after that one update: each layer's weights and bias, the worst difference
   and where, and what the update looks like next to the reference's (not made; the batch
   size times larger; ...),
4. several epochs for each loss x optimiser (with weight decay) and for each hidden
   activation: when a case leaves the tolerance, it is replayed one batch at a time to name
   the first epoch and step, and the parameter, that went astray.

A case the backend refuses at construction (NotImplementedError or ValueError) is reported as
not supported, not as a failure. The exit status is 0 when every supported case passes.

Work is in float64 (tolerance 1e-9) so that a real mistake cannot hide in rounding; a backend
that refuses float64 is checked in float32 (tolerance 1e-4). Each backend is checked in a
process of its own (`python -m bench.check.conformance NAME`), like every backend in a run.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np

N, BATCH, EPOCHS = 60, 8, 3  # 60 = 7 x 8 + 4: every epoch ends on a short batch
HIDDEN = 16
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}
DECAY = 2.0**-7


@dataclass(frozen=True)
class Case:
    loss: str
    output: str
    optimizer: str
    momentum: float = 0.0
    weight_decay: float = 0.0
    activation: str = "relu"

    @property
    def label(self) -> str:
        opt = self.optimizer + ("+momentum" if self.momentum else "")
        decay = " +decay" if self.weight_decay else ""
        act = "" if self.activation == "relu" else f" ({self.activation} hidden)"
        return f"{self.loss}/{self.output} {opt}{decay}{act}"

    def spec(self, n_in: int, n_out: int, dtype: str):
        from impls import MLPSpec

        adam = self.optimizer == "adam"
        return MLPSpec(
            (n_in, HIDDEN, n_out),
            activation=self.activation,
            loss=self.loss,
            output=self.output,
            optimizer=self.optimizer,
            lr=0.01 if adam else 0.1,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            dtype=dtype,
        )


CASES = [
    Case(loss, output, opt, momentum, decay)
    for loss, output in (("cce", "softmax"), ("bce", "sigmoid"), ("mse", "linear"))
    for opt, momentum, decay in (("sgd", 0.0, 0.0), ("sgd", 0.9, DECAY), ("adam", 0.0, DECAY))
] + [
    Case("mse", "softmax", "sgd"),
    Case("mse", "sigmoid", "sgd"),
    Case("cce", "softmax", "sgd", activation="sigmoid"),
    Case("cce", "softmax", "sgd", activation="tanh"),
]


def digits_data(dtype):
    """The first N digits training samples in `dtype`, one-hot targets, one order per epoch."""
    from bench.datasets import load_dataset

    ds = load_dataset("digits", seed=42, dtype="float64")
    X, Y = ds.X_train[:N].astype(dtype), ds.Y_train[:N].astype(dtype)
    rng = np.random.default_rng(0)
    return X, Y, [rng.permutation(N) for _ in range(EPOCHS)]


def _param_name(i: int) -> str:
    return f"layer {i // 2} {'weights' if i % 2 == 0 else 'bias'}"


def _flat(params):
    return [np.asarray(a, dtype=np.float64) for pair in params for a in pair]


def _where(diff: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))


def _update_hint(before, yours, ref) -> str:
    """What the user's update looks like next to the reference's."""
    u_yours, u_ref = (yours - before).ravel(), (ref - before).ravel()
    size_ref = np.abs(u_ref).max()
    if size_ref == 0:
        return "numpy-vec did not change it"
    if np.abs(u_yours).max() <= 1e-3 * size_ref:
        return "yours did not change: is its gradient missing?"
    scale = float(u_yours @ u_ref / (u_ref @ u_ref))
    residual = np.abs(u_yours - scale * u_ref).max() / size_ref
    if residual < 1e-3:
        if abs(scale - round(scale)) < 1e-3 and round(scale) > 1:
            return (
                f"yours moved exactly {round(scale)}x as far: a gradient summed over the "
                "batch instead of averaged?"
            )
        return f"yours moved {scale:.4g}x as far, in the same direction"
    return "yours moved in another direction"


def _compare_params(before, yours, ref, tol) -> list[str]:
    """One line per parameter that differs by more than tol (empty: all agree)."""
    lines = []
    for i, (b, y, r) in enumerate(zip(_flat(before), _flat(yours), _flat(ref))):
        if y.shape != r.shape:
            lines.append(f"{_param_name(i)}: shape {y.shape}, numpy-vec's {r.shape}")
            continue
        diff = np.abs(y - r)
        worst = float(diff.max()) if diff.size else 0.0
        if not worst <= tol:
            at = _where(diff)
            lines.append(
                f"{_param_name(i)} differs: worst {worst:.2e} at {list(at)} "
                f"(yours {y[at]:.6g}, numpy-vec {r[at]:.6g}); {_update_hint(b, y, r)}"
            )
    return lines


def _gap(yours, ref) -> float:
    """The worst |difference| of two arrays; inf for differing shapes or where either holds
    NaN or inf (which max() and `<=` would let pass)."""
    yours, ref = np.asarray(yours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if yours.shape != ref.shape or not (np.isfinite(yours).all() and np.isfinite(ref).all()):
        return np.inf
    return float(np.abs(yours - ref).max()) if yours.size else 0.0


def _worst_params(yours, ref) -> tuple[float, str]:
    worst, name = 0.0, ""
    for i, (y, r) in enumerate(zip(_flat(yours), _flat(ref))):
        d = _gap(y, r)
        if d > worst:
            worst, name = d, _param_name(i)
    return worst, name


class Report:
    def __init__(self, out):
        self.out = out

    def __call__(self, text=""):
        print(text, file=self.out, flush=True)


def _make(name, spec, params, reference=False, epsilon_on="v_hat"):
    """The backend under test, or (reference=True) numpy-vec, on parameters of its own."""
    from impls import make_model

    params = [(np.array(W), np.array(b)) for W, b in params]
    if reference:
        return make_model("numpy-vec", spec, params, adam_epsilon_on=epsilon_on)
    return make_model(name, spec, params)


def _refusal(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def first_step(name, case, X, Y, order, dtype, say) -> bool:
    """Forward, loss and one update on one batch; True if all three agree."""
    from impls import init_params

    tol = TOLERANCE[dtype]
    spec = case.spec(X.shape[1], Y.shape[1], dtype)
    params = init_params(spec, seed=1)
    yours, ref = _make(name, spec, params), _make(name, spec, params, reference=True)
    rows = order[:BATCH]
    say(f"one batch of {BATCH} samples, {case.label}, lr {spec.lr}:")
    ok = True
    p_yours = np.asarray(yours.predict_proba(X[rows]), dtype=np.float64)
    p_ref = np.asarray(ref.predict_proba(X[rows]), dtype=np.float64)
    if p_yours.shape != p_ref.shape:
        say(f"  forward: FAIL: predict_proba gave shape {p_yours.shape}, expected {p_ref.shape}")
        return False
    diff = np.abs(p_yours - p_ref)
    if diff.max() <= tol:
        say(f"  forward (predict_proba): ok, worst difference {diff.max():.1e}")
    else:
        at = _where(diff)
        ok = False
        say(
            f"  forward (predict_proba): FAIL: worst difference {diff.max():.2e} at sample "
            f"{at[0]}, output {at[1]} (yours {p_yours[at]:.6g}, numpy-vec {p_ref[at]:.6g})"
        )
    before = ref.get_params()
    loss_yours = _epoch(yours, X, Y, rows)
    loss_ref = _epoch(ref, X, Y, rows)
    if abs(loss_yours - loss_ref) <= tol * max(1.0, abs(loss_ref)):
        say(f"  loss: ok, {loss_yours:.6g}")
    else:
        ok = False
        hint = ""
        ratio = loss_yours / loss_ref if loss_ref else np.inf
        if abs(ratio - BATCH) < 1e-6 * BATCH:
            hint = f": {BATCH}x, summed over the batch instead of averaged?"
        elif np.isfinite(ratio):
            hint = f": {ratio:.4g}x numpy-vec's"
        say(f"  loss: FAIL: yours {loss_yours:.6g}, numpy-vec {loss_ref:.6g}{hint}")
    lines = _compare_params(before, yours.get_params(), ref.get_params(), tol)
    if not lines:
        say("  parameters after one update: ok, every layer's weights and bias")
    else:
        ok = False
        say("  parameters after one update: FAIL")
        for line in lines:
            say(f"    {line}")
    return ok


def _epoch(model, X, Y, order) -> float:
    """model.train_epoch(X, Y, BATCH, order) on copies: a backend that edits its inputs in
    place (shuffles the order, scales X) cannot change what the reference then trains on."""
    return float(model.train_epoch(np.array(X), np.array(Y), BATCH, np.array(order)))


def _train(model, X, Y, orders, stepwise: bool):
    """Yield (epoch, step, loss) after each train_epoch call: per epoch, or per batch."""
    for epoch, order in enumerate(orders, 1):
        if not stepwise:
            yield epoch, None, _epoch(model, X, Y, order)
            continue
        for step, start in enumerate(range(0, len(order), BATCH), 1):
            yield epoch, step, _epoch(model, X, Y, order[start : start + BATCH])


def _departure(name, spec, params, X, Y, orders, tol, epsilon_on):
    """(epoch, step, text) of the first batch after which the backend leaves tolerance."""
    yours, ref = _make(name, spec, params), _make(name, spec, params, True, epsilon_on)
    for (epoch, step, l_yours), (_, _, l_ref) in zip(
        _train(yours, X, Y, orders, True), _train(ref, X, Y, orders, True)
    ):
        worst, where = _worst_params(yours.get_params(), ref.get_params())
        if not worst <= tol:
            return epoch, step, f"{where}, worst {worst:.2e}"
        if not abs(l_yours - l_ref) <= tol * max(1.0, abs(l_ref)):
            return epoch, step, f"the loss, yours {l_yours:.6g}, numpy-vec {l_ref:.6g}"
    return None


def run_case(name, case, X, Y, orders, dtype):
    """(status, text): status is "ok", "FAIL" or "not supported"."""
    from impls import init_params

    tol = TOLERANCE[dtype]
    spec = case.spec(X.shape[1], Y.shape[1], dtype)
    params = init_params(spec, seed=1)
    try:
        yours = _make(name, spec, params)
    except (NotImplementedError, ValueError) as exc:
        return "not supported", _refusal(exc)
    placements = ("v_hat", "v") if case.optimizer == "adam" else ("v_hat",)
    results = {}
    for placement in placements:
        if placement != "v_hat":
            yours = _make(name, spec, params)
        ref = _make(name, spec, params, True, placement)
        worst = loss_gap = 0.0
        for (_, _, l_yours), (_, _, l_ref) in zip(
            _train(yours, X, Y, orders, False), _train(ref, X, Y, orders, False)
        ):
            loss_gap = max(loss_gap, _gap(l_yours, l_ref) / max(1.0, abs(l_ref)))
        worst = max(
            _worst_params(yours.get_params(), ref.get_params())[0],
            _gap(yours.predict_proba(X.copy()), ref.predict_proba(X.copy())),
        )
        results[placement] = (worst, loss_gap)
        if worst <= tol and loss_gap <= tol:
            note = "" if placement == "v_hat" else " (Adam's eps added to sqrt(v), as Keras does)"
            return "ok", f"worst difference {worst:.1e}{note}"
    worst = results["v_hat"][0]
    found = _departure(name, spec, params, X, Y, orders, tol, "v_hat")
    if found is None:
        where = f"after {EPOCHS} epochs (worst {worst:.2e}): in the epoch's loss or predictions"
    else:
        epoch, step, text = found
        where = f"leaves the tolerance at epoch {epoch}, step {step}: {text}"
    return "FAIL", where


def run_conformance(name: str, out=sys.stdout) -> int:
    """Check backend `name` against numpy-vec; print the report; 0 if every supported case
    passes (and at least one is supported), else 1."""
    from impls import init_params

    say = Report(out)
    dtype = "float64"
    X, Y, orders = digits_data(dtype)
    probe = CASES[0].spec(X.shape[1], Y.shape[1], dtype)
    try:
        _make(name, probe, init_params(probe, seed=1))
    except (NotImplementedError, ValueError) as exc:
        say(f"{name} refuses float64 ({_refusal(exc)}): checking in float32")
        dtype = "float32"
        X, Y, orders = digits_data(dtype)
    tol = TOLERANCE[dtype]
    say(
        f"conformance of {name} against numpy-vec: {X.shape[1]}-{HIDDEN}-{Y.shape[1]} network, "
        f"{N} digits samples, batch {BATCH} (the last one {N % BATCH}), {dtype}, tolerance {tol:g}"
    )
    say()
    supported = [c for c in CASES if run_case_supported(name, c, X, Y, dtype)]
    step_ok = True
    if supported:
        step_ok = first_step(name, supported[0], X, Y, orders[0], dtype, say)
    say()
    say(f"{EPOCHS} epochs per case:")
    width = max(len(c.label) for c in CASES)
    counts = {"ok": 0, "FAIL": 0, "not supported": 0}
    for case in CASES:
        status, text = run_case(name, case, X, Y, orders, dtype)
        counts[status] += 1
        say(f"  {case.label:<{width}}  {status:<13}  {text}")
    say()
    n_supported = counts["ok"] + counts["FAIL"]
    passed = step_ok and counts["FAIL"] == 0 and n_supported > 0
    say(
        f"{counts['ok']} of {n_supported} supported cases pass"
        + (f", {counts['not supported']} not supported" if counts["not supported"] else "")
        + (": conforms" if passed else ": DEPARTS from numpy-vec (see above)")
    )
    return 0 if passed else 1


def run_case_supported(name, case, X, Y, dtype) -> bool:
    from impls import init_params

    spec = case.spec(X.shape[1], Y.shape[1], dtype)
    try:
        _make(name, spec, init_params(spec, seed=1))
    except (NotImplementedError, ValueError):
        return False
    return True


def run_in_subprocess(names, out=sys.stdout) -> int:
    """run_conformance for each backend, each in a fresh interpreter; the worst exit status."""
    status = 0
    for i, name in enumerate(names):
        if i:
            print(file=out, flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "bench.check.conformance", name], capture_output=True, text=True
        )
        out.write(done.stdout)
        if done.returncode not in (0, 1):
            tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
            print(f"{name}: the check could not run: {tail[0]}", file=out)
        status = max(status, 1 if done.returncode else 0)
    return status


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bench.check.conformance BACKEND", file=sys.stderr)
        return 2
    from impls.registry import BackendUnavailable

    try:
        return run_conformance(argv[0])
    except BackendUnavailable as exc:
        print(f"{argv[0]}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
