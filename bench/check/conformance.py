"""`python -m bench verify --backends NAME`: where a backend first departs from numpy-vec.

Meant for a user's own MLP (`module:Class`, `path/to/file.py:Class`), it works for any
backend. numpy-vec is the yardstick here because `bench verify` holds it to the textbook MLP,
`impls/reference.py` (the maths written out plainly: read it beside your own). The report
teaches by going step by step, from the same parameters and the same samples:

1. the forward pass on one batch (the outputs of `predict_proba`),
2. the loss `train_epoch` reports for that one batch,
3. the parameters after that one update: each layer's weights and bias, the worst difference
   and where, and what the update looks like next to the reference's; a step that is the
   contract's times a constant is named with the convention it matches (bench.check.diagnose),
4. several epochs for every case (bench.check.plugin_cases): hidden activation x (output,
   loss) x optimiser path x dtype, each with its dtype's tolerance; when a case leaves the
   tolerance it is replayed one batch at a time to name the first epoch and step, and the
   parameter, that went astray.

The class gets arrays of its own, read-only where the contract says they are inputs
(bench.check.isolation); NaN or inf anywhere fails. A class with `stage()` is checked through
it, as `bench run` uses it. A case the class refuses at construction (NotImplementedError) is
not supported, learnt from that case alone; any other exception fails verify with the error.

This module is the child's side: `bench.check.child` runs it in a process of its own
(`python -m bench.check.conformance NAME --options JSON --fd N`), which writes the report line
by line to file descriptor N, with control lines ("@@case LABEL", "@@end STATUS") that
let the parent put a time limit on each case and tell a complete report from a cut-off one.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

from bench.check import diagnose
from bench.check.isolation import ContractBreach, Inputs
from bench.check.plugin_cases import Case, declared_support, select

N, BATCH, EPOCHS = 60, 8, 3  # 60 = 7 x 8 + 4: every epoch ends on a short batch
SUM_BATCH = 6  # for a class that sums over the batch: 60 = 10 x 6, the conversion is exact
EXIT = {"conforms": 0, "departs": 1, "nothing checked": 3}


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
    return tuple(int(i) for i in np.unravel_index(int(np.nanargmax(diff)), diff.shape))


def _gap(yours, ref) -> float:
    """The worst |difference| of two arrays; inf for differing shapes or where either holds
    NaN or inf (which max() and `<=` would let pass)."""
    yours, ref = np.asarray(yours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if yours.shape != ref.shape or not (np.isfinite(yours).all() and np.isfinite(ref).all()):
        return np.inf
    return float(np.abs(yours - ref).max()) if yours.size else 0.0


def _worst_params(yours, ref) -> tuple[float, str]:
    yours, ref = _flat(yours), _flat(ref)
    if len(yours) != len(ref):
        return np.inf, f"get_params: {len(yours) // 2} layers, numpy-vec's {len(ref) // 2}"
    worst, name = 0.0, ""
    for i, (y, r) in enumerate(zip(yours, ref)):
        d = _gap(y, r)
        if not d <= worst:
            worst, name = d, _param_name(i)
    return worst, name


def _loss_gap(yours, ref) -> float:
    """Relative difference of two epoch losses; 0 when the class reports none (None)."""
    if yours is None:
        return 0.0
    return _gap(yours, ref) / max(1.0, abs(ref))


class Report:
    """The report's lines, and its control lines for the parent (bench.check.child)."""

    def __init__(self, out):
        self.out = out

    def __call__(self, text=""):
        print(text, file=self.out, flush=True)

    def control(self, kind: str, text: str = "") -> None:
        print(f"@@{kind} {text}".rstrip(), file=self.out, flush=True)


class Subject:
    """The class under test on one case: its inputs read-only copies of its own
    (bench.check.isolation), its data staged once when it has `stage()`."""

    def __init__(self, name, spec, params, X, Y):
        from impls import make_model

        self.inputs = Inputs()
        mine = self.inputs.params(params)
        self.X, self.Y = self.inputs.add("X", X), self.inputs.add("Y", Y)
        self.model = self.call("__init__", lambda: make_model(name, spec, mine))
        self.staged = None
        if callable(getattr(self.model, "stage", None)):
            self.staged = self.call("stage", lambda: self.model.stage(self.X, self.Y))

    def call(self, where: str, fn):
        try:
            result = fn()
        except (ContractBreach, NotImplementedError):
            raise
        except Exception as exc:
            breach = self.inputs.breach(exc, where)
            if breach is not None:
                raise breach from None
            raise
        self.inputs.check(where)
        return result

    def epoch(self, order, batch: int):
        order = self.inputs.add("order", order)
        if self.staged is not None:
            loss = self.call(
                "train_epoch", lambda: self.model.train_epoch(self.staged, batch, order)
            )
        else:
            loss = self.call(
                "train_epoch", lambda: self.model.train_epoch(self.X, self.Y, batch, order)
            )
        return None if loss is None else float(loss)

    def predict(self, rows=None):
        X = self.X if rows is None else self.X[rows]
        return np.asarray(self.call("predict_proba", lambda: self.model.predict_proba(X)))

    def params(self):
        return self.call("get_params", self.model.get_params)


class Yardstick:
    """numpy-vec on arrays of its own."""

    def __init__(self, spec, params, X, Y, epsilon_on="v_hat"):
        from impls import make_model

        params = [(np.array(W), np.array(b)) for W, b in params]
        self.model = make_model("numpy-vec", spec, params, adam_epsilon_on=epsilon_on)
        self.X, self.Y = np.array(X), np.array(Y)

    def epoch(self, order, batch: int) -> float:
        return float(self.model.train_epoch(self.X, self.Y, batch, np.array(order)))

    def predict(self, rows=None):
        return self.model.predict_proba(self.X if rows is None else self.X[rows])

    def params(self):
        return self.model.get_params()


def _raised(exc: BaseException, where: str) -> str:
    """One line for an exception the class raised: its type, message and the line it came
    from."""
    if isinstance(exc, ContractBreach):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"your class raised in {where}: {type(exc).__name__}: {exc}{at}"


def first_step(name, case: Case, X, Y, order, batch, say) -> bool:
    """Forward, loss and one update on one batch; True if all three agree."""
    from impls import init_params

    tol = case.tolerance
    spec = case.spec(X.shape[1], Y.shape[1])
    params = init_params(spec, seed=1)
    rows = order[:batch]
    say(f"one batch of {batch} samples, {case.label}, lr {spec.lr}:")
    where = "__init__"
    try:
        yours = Subject(name, spec, params, X, Y)
        where = "predict_proba"
        p_yours = np.asarray(yours.predict(rows), dtype=np.float64)
    except Exception as exc:
        say(f"  FAIL: {_raised(exc, where)}")
        return False
    ref = Yardstick(spec, params, X, Y)
    p_ref = np.asarray(ref.predict(rows), dtype=np.float64)
    ok = True
    if p_yours.shape != p_ref.shape:
        say(f"  forward: FAIL: predict_proba gave shape {p_yours.shape}, expected {p_ref.shape}")
        return False
    diff = np.abs(p_yours - p_ref)
    if np.isfinite(diff).all() and diff.max() <= tol:
        say(f"  forward (predict_proba): ok, worst difference {diff.max():.1e}")
    else:
        ok = False
        diff = np.where(np.isfinite(diff), diff, np.inf)
        at = _where(diff)
        say(
            f"  forward (predict_proba): FAIL: worst difference {diff.max():.2e} at sample "
            f"{at[0]}, output {at[1]} (yours {p_yours[at]:.6g}, numpy-vec {p_ref[at]:.6g})"
        )
    before = ref.params()
    try:
        loss_yours = yours.epoch(rows, batch)
        after = yours.params()
    except Exception as exc:
        say(f"  FAIL: {_raised(exc, 'train_epoch')}")
        return False
    loss_ref = ref.epoch(rows, batch)
    if loss_yours is None:
        say("  loss: not reported (train_epoch returned None)")
    elif abs(loss_yours - loss_ref) <= tol * max(1.0, abs(loss_ref)):
        say(f"  loss: ok, {loss_yours:.6g}")
    else:
        ok = False
        hint = ""
        if np.isfinite(loss_yours) and loss_ref:
            ratio = loss_yours / loss_ref
            named = diagnose.name_factor(ratio, case.loss, Y.shape[1], batch)
            hint = f": {ratio:.4g}x numpy-vec's" + (
                f" ({named.replace('your step is', 'yours is')})" if named else ""
            )
        say(f"  loss: FAIL: yours {loss_yours:.6g}, numpy-vec {loss_ref:.6g}{hint}")
    lines = _compare_params(before, after, ref.params(), tol, case.loss, Y.shape[1], batch)
    if not lines:
        say("  parameters after one update: ok, every layer's weights and bias")
        return ok
    say("  parameters after one update: FAIL")
    for line in lines:
        say(f"    {line}")
    factor = diagnose.step_factor(_flat(before), _flat(after), _flat(ref.params()))
    named = factor and diagnose.name_factor(factor, case.loss, Y.shape[1], batch)
    if named:
        say(f"  diagnosis: {named}")
    return False


def _compare_params(before, yours, ref, tol, loss, n_out, batch) -> list[str]:
    """One line per parameter that differs by more than tol (empty: all agree)."""
    lines = []
    if len(_flat(yours)) != len(_flat(ref)):
        return [f"get_params gave {len(_flat(yours)) // 2} layers, numpy-vec {len(ref)}"]
    for i, (b, y, r) in enumerate(zip(_flat(before), _flat(yours), _flat(ref))):
        if y.shape != r.shape:
            lines.append(f"{_param_name(i)}: shape {y.shape}, numpy-vec's {r.shape}")
            continue
        worst = _gap(y, r)
        if not worst <= tol:
            diff = np.where(np.isfinite(y), np.abs(y - r), np.inf)
            at = _where(diff)
            hint = diagnose.update_hint(b, y, r, loss, n_out, batch, explain=False)
            lines.append(
                f"{_param_name(i)} differs: worst {worst:.2e} at {list(at)} "
                f"(yours {y[at]:.6g}, numpy-vec {r[at]:.6g}); {hint}"
            )
    return lines


def _first_update(before, yours, ref, case, n_out: int, batch: int) -> str:
    """What the class's first update looks like: a constant factor over every parameter,
    named; else the update of the parameter that differs most."""
    before, yours, ref = _flat(before), _flat(yours), _flat(ref)
    if diagnose.step_factor(before, yours, ref) is not None:
        return diagnose.update_hint(before, yours, ref, case.loss, n_out, batch)
    worst = max(range(len(ref)), key=lambda i: _gap(yours[i], ref[i]))
    return diagnose.update_hint(before[worst], yours[worst], ref[worst], case.loss, n_out, batch)


def _departure(name, case, spec, params, X, Y, orders, batch, epsilon_on):
    """(epoch, step, text) of the first batch after which the class leaves tolerance."""
    yours, ref = Subject(name, spec, params, X, Y), Yardstick(spec, params, X, Y, epsilon_on)
    tol = case.tolerance
    for epoch, order in enumerate(orders, 1):
        for step, start in enumerate(range(0, len(order), batch), 1):
            before = ref.params()
            rows = order[start : start + batch]
            l_yours, l_ref = yours.epoch(rows, batch), ref.epoch(rows, batch)
            worst, where = _worst_params(yours.params(), ref.params())
            if not worst <= tol:
                text = f"{where}, worst {worst:.2e}"
                if epoch == step == 1:  # both began from the same parameters: compare updates
                    hint = _first_update(
                        before, yours.params(), ref.params(), case, Y.shape[1], len(rows)
                    )
                    text += f"; {hint}"
                return epoch, step, text
            if not _loss_gap(l_yours, l_ref) <= tol:
                return epoch, step, f"the loss, yours {l_yours:.6g}, numpy-vec {l_ref:.6g}"
    return None


def _train(model, X_rows, orders, batch):
    losses = [model.epoch(order, batch) for order in orders]
    return losses, model.params(), model.predict()


def _not_finite(losses, params, proba) -> str:
    """What holds NaN or inf (empty: nothing)."""
    if not np.isfinite(np.asarray(proba, dtype=np.float64)).all():
        return "predict_proba returned"
    for i, array in enumerate(_flat(params)):
        if not np.isfinite(array).all():
            return f"get_params' {_param_name(i)} holds"
    if not np.isfinite([np.inf if v is None else v for v in losses if v is not None]).all():
        return "train_epoch's loss is"
    return ""


def run_case(name, case: Case, X, Y, orders, batch: int = BATCH):
    """(status, text): status "ok", "FAIL" or "not supported"."""
    from impls import init_params

    tol = case.tolerance
    spec = case.spec(X.shape[1], Y.shape[1])
    params = init_params(spec, seed=1)
    placements = ("v_hat", "v") if case.optimizer == "adam" else ("v_hat",)
    results = {}
    for placement in placements:
        try:
            yours = Subject(name, spec, params, X, Y)
        except NotImplementedError as exc:
            return "not supported", f"NotImplementedError: {exc}"
        except Exception as exc:
            return "FAIL", _raised(exc, "__init__")
        ref = Yardstick(spec, params, X, Y, placement)
        try:
            l_yours, p_yours, y_yours = _train(yours, X, orders, batch)
        except Exception as exc:
            return "FAIL", _raised(exc, "training")
        l_ref, p_ref, y_ref = _train(ref, X, orders, batch)
        broken = _not_finite(l_yours, p_yours, y_yours)
        if broken:
            return "FAIL", f"after {EPOCHS} epochs, {broken} NaN or inf"
        loss_gap = max(_loss_gap(a, b) for a, b in zip(l_yours, l_ref))
        worst = max(_worst_params(p_yours, p_ref)[0], _gap(y_yours, y_ref))
        results[placement] = (worst, loss_gap)
        if worst <= tol and loss_gap <= tol:
            note = "" if placement == "v_hat" else " (Adam's eps added to sqrt(v), as Keras does)"
            return "ok", f"worst difference {worst:.1e}{note}"
    worst, loss_gap = results["v_hat"]
    try:
        found = _departure(name, case, spec, params, X, Y, orders, batch, "v_hat")
    except Exception as exc:
        return "FAIL", _raised(exc, "training")
    if found is None:
        what = "predictions or parameters (NaN or inf?)" if worst > tol else "epoch losses"
        return "FAIL", f"after {EPOCHS} epochs (worst {max(worst, loss_gap):.2e}): in the {what}"
    epoch, step, text = found
    return "FAIL", f"leaves the tolerance at epoch {epoch}, step {step}: {text}"


def _builds(name, case: Case, X, Y) -> bool:
    """False if the class refuses `case` at construction (NotImplementedError)."""
    from impls import init_params, make_model

    spec = case.spec(X.shape[1], Y.shape[1])
    try:
        make_model(name, spec, init_params(spec, seed=1))
    except NotImplementedError:
        return False
    except Exception:  # first_step reports it
        return True
    return True


def _nothing_checked(counts, by_options, by_declaration) -> str:
    if counts["not supported"]:
        return (
            "the class refused every case it was given (NotImplementedError in __init__): "
            "give options that match what it supports (e.g. --activation sigmoid --output "
            "sigmoid --loss mse --optimizer sgd), declare `supports`, or see its refusals above"
        )
    if by_declaration:
        return "the options and the class's `supports` declaration leave no case in common"
    return f"the options leave no case ({by_options} left out): widen them"


def run_conformance(name: str, options: dict | None = None, out=sys.stdout) -> int:
    """Check backend `name` against numpy-vec on the cases `options` narrow to; print the
    report; 0 if every case checked passes, 1 if one departs, 3 if nothing was checked."""
    from impls import conventions
    from impls.registry import backend_class

    say = Report(out)
    try:
        cls = backend_class(name)
        supports = declared_support(cls)
        declared = conventions.declared(cls)
    except Exception as exc:  # an import that fails, a bad declaration
        say(f"{name}: cannot be checked: {type(exc).__name__}: {exc}")
        say.control("end", "departs")
        return EXIT["departs"]
    cases, by_options, by_declaration = select(options, supports)
    batch = SUM_BATCH if declared["loss_over_batch"] == "sum" else BATCH
    say(
        f"conformance of {name} against numpy-vec: 64-16-10 networks, {N} digits samples, "
        f"batch {batch} (the last one {N % batch or batch}), {EPOCHS} epochs, tolerance 1e-9 "
        "in float64, 1e-4 in float32"
    )
    if not conventions.is_default(declared):
        say(
            f"conventions declared: {declared}; the harness converts lr (eps and weight decay "
            "under Adam and decay) and the reported loss: docs/plugins.md"
        )
        if batch != BATCH:
            say(f"(batch {batch}: the loss summed over the batch converts exactly on full batches)")
    if by_declaration:
        say(f"{by_declaration} cases outside what {cls.__name__}.supports declares: not checked")
    if by_options:
        say(f"{by_options} cases left out by the options")
    say()
    data = {}
    step_ok = True
    for case in sorted(cases, key=lambda c: (c.optimizer != "sgd", c.dtype != "float64"))[:30]:
        X, Y, orders = data.setdefault(case.dtype, digits_data(case.dtype))
        if _builds(name, case, X, Y):
            say.control("case", "the one-batch step")
            step_ok = first_step(name, case, X, Y, orders[0], batch, say)
            say()
            break
    say(f"{EPOCHS} epochs per case:")
    width = max((len(c.label) for c in cases), default=0)
    counts = {"ok": 0, "FAIL": 0, "not supported": 0}
    for case in cases:
        X, Y, orders = data.setdefault(case.dtype, digits_data(case.dtype))
        say.control("case", f"case {case.label}")
        status, text = run_case(name, case, X, Y, orders, batch)
        counts[status] += 1
        say(f"  {case.label:<{width}}  {status:<13}  {text}")
    say()
    checked = counts["ok"] + counts["FAIL"]
    refused = f", {counts['not supported']} not supported" if counts["not supported"] else ""
    if checked == 0:
        verdict = "nothing checked"
        say(f"NOTHING WAS CHECKED{refused}: {_nothing_checked(counts, by_options, by_declaration)}")
    else:
        verdict = "conforms" if step_ok and not counts["FAIL"] else "departs"
        say(
            f"{counts['ok']} of {checked} cases checked pass{refused}"
            + (": conforms" if verdict == "conforms" else ": DEPARTS from numpy-vec (see above)")
        )
    say.control("end", verdict)
    return EXIT[verdict]


def main(argv=None) -> int:
    """`python -m bench.check.conformance NAME [--options JSON] [--fd N]`: the report on
    stdout, or on file descriptor N (the class's own output then stays on stdout)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.check.conformance")
    parser.add_argument("name")
    parser.add_argument("--options", default="{}", type=json.loads)
    parser.add_argument("--fd", type=int, default=None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    out = sys.stdout
    if args.fd is not None:  # run by bench.check.child, which stops it on Ctrl-C
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        out = open(args.fd, "w", buffering=1, closefd=False)
    return run_conformance(args.name, args.options or None, out)


if __name__ == "__main__":
    sys.exit(main())
