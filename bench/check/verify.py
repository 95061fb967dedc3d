"""`python -m bench verify`: proof, on this machine, that the backends compute the same thing.

Every installed backend trains the same small network from the same weights on the same
sample orders, in its own worker process, and its parameters, predictions and epoch losses are
compared with a plain reference MLP written below. The cases cover every optimiser path a
backend has: plain SGD (no momentum, no decay: the one every headline speed figure uses), SGD
with weight decay, SGD with momentum with and without decay, and Adam with and without decay;
for every loss (with each hidden activation and output activation used at least once), at
batch 1 (online updates) and at a batch size that leaves a short last batch; in float32 and
float64.

The reference is written here, apart from `impls`, in the most direct form (whole-batch
matrices, new arrays everywhere, no fused or in-place steps), so that a mistake in the shared
core or in a backend's fast path cannot hide by being compared with itself.

Hyperparameters are exactly representable in float32 (learning rates 2^-k, momentum 0.875,
betas 0.875 and 0.9990234375, epsilon and weight decay powers of two), because Keras rounds
Python-float hyperparameters to float32 even in float64 work; Keras's Adam is compared with the
reference using Keras's placement of epsilon (see impls.core.adam_step).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from bench.worker import measure
from impls.registry import backend_devices, file_safe
from impls.spec import device_index, device_kind

TOLERANCE = {"float32": 1e-4, "float64": 1e-9}  # a backend may declare wider (impls.registry)
UNSUPPORTED = "NotImplementedError"  # a backend that cannot express a case raises it
DTYPES = ("float32", "float64")
LAYERS = (64, 32, 10)
N, EPOCHS = 60, 3
SHORT_BATCH = 7  # 60 = 8 x 7 + 4: every epoch ends with a short batch
BATCH_SIZES = (1, SHORT_BATCH)
BETAS = (0.875, 0.9990234375)
EPS = 2.0**-23
DECAY = 2.0**-7

# name -> MLPSpec settings; every optimiser path of every backend
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "lr": 2.0**-4},
    "sgd+decay": {"optimizer": "sgd", "lr": 2.0**-4, "weight_decay": DECAY},
    "momentum": {"optimizer": "sgd", "lr": 2.0**-5, "momentum": 0.875},
    "momentum+decay": {"optimizer": "sgd", "lr": 2.0**-5, "momentum": 0.875, "weight_decay": DECAY},
    "adam": {"optimizer": "adam", "lr": 2.0**-7, "betas": BETAS, "eps": EPS},
    "adam+decay": {
        "optimizer": "adam",
        "lr": 2.0**-7,
        "betas": BETAS,
        "eps": EPS,
        "weight_decay": DECAY,
    },
}
# (loss, hidden activation, output activation): every loss, every activation and output
NETWORKS = (
    ("cce", "relu", "softmax"),
    ("bce", "tanh", "sigmoid"),
    ("mse", "sigmoid", "softmax"),
    ("mse", "relu", "linear"),
)


@dataclass(frozen=True)
class Case:
    loss: str
    activation: str
    output: str
    optimizer: str  # a key of OPTIMIZERS
    batch_size: int
    dtype: str

    @property
    def network(self) -> str:
        return f"{self.loss} {self.activation}/{self.output}"

    @property
    def name(self) -> str:
        return f"{self.network} {self.optimizer} b{self.batch_size} {self.dtype}"

    def spec_kwargs(self) -> dict:
        return dict(
            layer_sizes=LAYERS,
            activation=self.activation,
            output=self.output,
            loss=self.loss,
            dtype=self.dtype,
            **OPTIMIZERS[self.optimizer],
        )


def all_cases() -> list[Case]:
    return [
        Case(loss, act, out, opt, batch, dtype)
        for loss, act, out in NETWORKS
        for opt in OPTIMIZERS
        for batch in BATCH_SIZES
        for dtype in DTYPES
    ]


def verify_data():
    """The first N of scikit-learn's digits scaled to [0, 1], one-hot targets, and one sample
    order per epoch."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data[:N] / 16.0
    Y = np.eye(10)[digits.target[:N]]
    rng = np.random.default_rng(0)
    return X, Y, [rng.permutation(N) for _ in range(EPOCHS)]


def initial_params(case: Case):
    from impls import MLPSpec, init_params

    return init_params(MLPSpec(**case.spec_kwargs()), seed=1)


# --------------------------------------------------------------------------- the reference


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_HIDDEN = {"relu": lambda z: np.maximum(z, 0), "sigmoid": _sigmoid, "tanh": np.tanh}
# f'(z) from a = f(z)
_HIDDEN_GRAD = {
    "relu": lambda a: (a > 0).astype(a.dtype),
    "sigmoid": lambda a: a * (1 - a),
    "tanh": lambda a: 1 - a * a,
}
_OUTPUT = {"softmax": _softmax, "sigmoid": _sigmoid, "linear": lambda z: z}


def _loss_and_delta(loss, output, z, y):
    """Per-sample losses (m,) and dLoss/dz (m, k) for logits z."""
    k = z.shape[1]
    if loss == "cce":
        t = z - z.max(axis=1, keepdims=True)
        log_p = t - np.log(np.exp(t).sum(axis=1, keepdims=True))
        return -(y * log_p).sum(axis=1), np.exp(log_p) * y.sum(axis=1, keepdims=True) - y
    if loss == "bce":
        per_output = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
        return per_output.mean(axis=1), (_sigmoid(z) - y) / k
    yhat = _OUTPUT[output](z)
    g = 2 * (yhat - y) / k  # dLoss/dyhat
    if output == "sigmoid":
        g = g * yhat * (1 - yhat)
    elif output == "softmax":
        g = yhat * (g - (g * yhat).sum(axis=1, keepdims=True))
    return ((yhat - y) ** 2).mean(axis=1), g


def _forward(params, x, activation):
    acts = [x]
    for W, b in params[:-1]:
        acts.append(_HIDDEN[activation](acts[-1] @ W + b))
    W, b = params[-1]
    return acts, acts[-1] @ W + b


def reference_train(case: Case, params, X, Y, orders, epsilon_on="v_hat"):
    """Train from `params` on `orders`: (final params, predictions on X, epoch losses)."""
    settings = OPTIMIZERS[case.optimizer]
    lr = settings["lr"]
    momentum = settings.get("momentum", 0.0)
    decay = settings.get("weight_decay", 0.0)
    beta1, beta2 = settings.get("betas", (0.0, 0.0))
    flat = [np.array(p, dtype=case.dtype) for pair in params for p in pair]
    X, Y = X.astype(case.dtype), Y.astype(case.dtype)
    first = [np.zeros_like(p) for p in flat]  # momentum's velocity, or Adam's m
    second = [np.zeros_like(p) for p in flat]  # Adam's v
    t = 0
    losses = []
    for order in orders:
        total = 0.0
        for start in range(0, len(order), case.batch_size):
            rows = order[start : start + case.batch_size]
            pairs = list(zip(flat[0::2], flat[1::2]))
            acts, z = _forward(pairs, X[rows], case.activation)
            loss, delta = _loss_and_delta(case.loss, case.output, z, Y[rows])
            total += float(loss.sum())
            delta = delta / len(rows)
            grads = []
            for layer in range(len(pairs) - 1, -1, -1):
                W, _ = pairs[layer]
                grads[:0] = [acts[layer].T @ delta + decay * W, delta.sum(axis=0)]
                if layer > 0:
                    delta = (delta @ W.T) * _HIDDEN_GRAD[case.activation](acts[layer])
            t += 1
            for i, g in enumerate(grads):
                if settings["optimizer"] == "sgd":
                    first[i] = momentum * first[i] + g
                    flat[i] = flat[i] - lr * first[i]
                    continue
                first[i] = beta1 * first[i] + (1 - beta1) * g
                second[i] = beta2 * second[i] + (1 - beta2) * g * g
                bc1, bc2 = 1 - beta1**t, 1 - beta2**t
                if epsilon_on == "v_hat":
                    step = lr * (first[i] / bc1) / (np.sqrt(second[i] / bc2) + EPS)
                else:  # Keras: epsilon on sqrt(v), the bias correction in the step size
                    step = lr * np.sqrt(bc2) / bc1 * first[i] / (np.sqrt(second[i]) + EPS)
                flat[i] = flat[i] - step
        losses.append(total / len(order))
    pairs = list(zip(flat[0::2], flat[1::2]))
    _, z = _forward(pairs, X, case.activation)
    return pairs, _OUTPUT[case.output](z), np.array(losses)


def difference(result: dict, reference) -> float:
    """Worst absolute difference over parameters, predictions and epoch losses."""
    params, proba, losses = reference
    diffs = [
        np.abs(np.asarray(a, dtype=np.float64) - b).max()
        for pa, pb in zip(result["params"], params)
        for a, b in zip(pa, pb)
    ]
    diffs.append(np.abs(np.asarray(result["proba"], dtype=np.float64) - proba).max())
    diffs.append(np.abs(np.asarray(result["losses"], dtype=np.float64) - losses).max())
    return float(max(diffs))


def epsilon_placement(backend: str) -> str:
    from impls import BACKENDS

    known = BACKENDS.get(backend)
    return known.adam_epsilon_on if known else "v_hat"


def tolerance(backend: str, dtype: str) -> float:
    from impls.registry import parity_tolerance

    return parity_tolerance(backend, dtype)


# --------------------------------------------------------------------------- running it


def verify_model(make, cases=None, epsilon_on="v_hat") -> dict[Case, float]:
    """In this process: `make(spec, params)` builds a model; its difference per case."""
    from bench.worker.process import train_for_verify
    from impls import MLPSpec

    X, Y, orders = verify_data()
    out = {}
    for case in cases or all_cases():
        params = initial_params(case)
        model = make(MLPSpec(**case.spec_kwargs()), params)
        Xc, Yc = X.astype(case.dtype), Y.astype(case.dtype)
        result = train_for_verify(model, Xc, Yc, case.batch_size, orders)
        out[case] = difference(result, reference_train(case, params, X, Y, orders, epsilon_on))
    return out


def _log_tail(path: str, lines: int = 20) -> str:
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])
    return ""


def target_label(backend: str, device: str) -> str:
    """A backend's column in the report: its name on its first device ("torch", "cupy"),
    name@device elsewhere ("torch@cuda:0")."""
    return backend if device_kind(device) == backend_devices(backend)[0] else f"{backend}@{device}"


def label_backend(label: str) -> str:
    return label.rpartition("@")[0] or label


def targets(backends, devices=("cpu",)) -> list[tuple[str, str]]:
    """(backend, device) pairs to check: each backend on each of `devices` it runs on, and a
    backend that runs on none of them (cupy beside "cpu") on its own kind's device 0."""
    pairs = []
    for backend in backends:
        kinds = backend_devices(backend)
        mine = [d for d in devices if device_kind(d) in kinds]
        pairs += [(backend, d) for d in mine] or [
            (backend, "cpu" if kinds[0] == "cpu" else "cuda:0")
        ]
    return pairs


def check_backends(
    backends, threads: int, log_dir=None, errors=sys.stderr, devices=("cpu",)
) -> dict:
    """Run every case on every backend in `backends` (each in a worker process of its own),
    on each of `devices` it runs on (`targets`); an item of `backends` may also be a
    (backend, device) pair, checked on that device only.

    Returns {label: {Case: difference, None (the case failed) or "n/a" (the backend cannot
    express it: NotImplementedError)}} and, under the key None, {label: message} for
    backends whose worker failed; labels as `target_label`. Worker logs go to `log_dir`;
    without one they go to a temporary folder that is removed before returning (the end of a
    failed worker's log is printed to `errors` first).
    """
    from types import SimpleNamespace

    from bench.worker.process import Worker, WorkerDied, WorkerTimeout, process_env

    X, Y, orders = verify_data()
    cases = all_cases()
    refs = {}
    results: dict = {None: {}}
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlp-bench-verify-"))
        pairs = [b for b in backends if isinstance(b, tuple)]  # (backend, device) as given
        pairs += targets([b for b in backends if not isinstance(b, tuple)], devices)
        for backend, device in pairs:
            label = target_label(backend, device)
            log = os.path.join(log_dir, f"verify-worker-{file_safe(label)}.log")
            env = process_env(SimpleNamespace(backend=backend, tf32=False))
            worker = Worker(backend, threads, log, env)
            diffs = results[label] = {}
            try:
                info = worker.wait_ready(measure.Deadline(600))
                if info.get("unavailable"):
                    raise WorkerDied(info["unavailable"])
                for case in cases:
                    params = initial_params(case)
                    payload = {
                        "spec": {**case.spec_kwargs(), "device": device},
                        "params": params,
                        "X": X.astype(case.dtype),
                        "Y": Y.astype(case.dtype),
                        "orders": orders,
                        "batch_size": case.batch_size,
                    }
                    worker.send("verify", payload)
                    message = worker.receive(measure.Deadline(600))
                    if message[0] != "value":
                        unsupported = str(message[1]).startswith(UNSUPPORTED)
                        diffs[case] = "n/a" if unsupported else None
                        if not unsupported:
                            print(f"{label} {case.name}: {message[1]}", file=errors)
                        continue
                    key = (case, epsilon_placement(backend))  # the backend's own placement
                    if key not in refs:
                        refs[key] = reference_train(case, params, X, Y, orders, key[1])
                    diffs[case] = difference(message[1], refs[key])
            except (WorkerDied, WorkerTimeout) as exc:
                results[None][label] = f"worker failed: {exc or 'timed out'}"
                tail = _log_tail(log)
                if tail:
                    print(f"{label}: end of the worker's log:\n{tail}", file=errors)
            finally:
                worker.stop()
    return results


def summarise(results: dict, threads: int, unavailable: dict | None = None) -> dict:
    """The record stored as env.json's `verify`."""
    worst, worst_case, failed, unsupported, tolerances = {}, {}, [], {}, {}
    for backend, diffs in results.items():
        if backend is None:
            continue
        for dtype in DTYPES:
            measured = {c: d for c, d in diffs.items() if c.dtype == dtype and d != "n/a"}
            skipped = sum(1 for c, d in diffs.items() if c.dtype == dtype and d == "n/a")
            if skipped:
                unsupported.setdefault(backend, {})[dtype] = skipped
            limit = tolerance(label_backend(backend), dtype)
            if limit != TOLERANCE[dtype]:
                tolerances.setdefault(backend, {})[dtype] = limit
            if not measured:
                continue
            if any(d is None for d in measured.values()):
                worst.setdefault(backend, {})[dtype] = None
                failed += [f"{backend} {c.name}: error" for c, d in measured.items() if d is None]
                continue
            case, diff = max(measured.items(), key=lambda item: item[1])
            worst.setdefault(backend, {})[dtype] = diff
            worst_case.setdefault(backend, {})[dtype] = case.name
            failed += [f"{backend} {c.name}: {d:.1e}" for c, d in measured.items() if d > limit]
    failed += [f"{backend}: {message}" for backend, message in results[None].items()]
    return {
        "ran_at": measure.now_iso(),
        "epochs": EPOCHS,
        "cases": len(all_cases()),
        "samples": N,
        "batch_sizes": list(BATCH_SIZES),
        "optimizers": list(OPTIMIZERS),
        "networks": [f"{loss} {act}/{out}" for loss, act, out in NETWORKS],
        "layers": list(LAYERS),
        "threads": threads,
        "tolerance": dict(TOLERANCE),
        "tolerance_by_backend": tolerances,  # where a backend declares a wider one
        "worst": worst,
        "worst_case": worst_case,
        "unsupported": unsupported,  # cases a backend cannot express, per dtype
        "failed": failed,
        "unavailable": dict(unavailable or {}),
        # nothing checked is no pass: e.g. a GPU backend asked for where it cannot run
        "passed": not failed and any(worst.values()),
    }


def describe() -> str:
    return (
        f"parity with a plain reference MLP (bench/verify.py) after {EPOCHS} epochs from the "
        f"same weights on the same orders: {N} digits samples, {'-'.join(map(str, LAYERS))}, "
        f"batch 1 and batch {SHORT_BATCH} (the last batch of {N % SHORT_BATCH}); worst "
        "|difference| over parameters, predictions and epoch losses"
    )


def render_table(results: dict) -> str:
    """Cases as rows, backend x dtype as columns."""
    backends = [b for b in results if b is not None]
    rows = []
    head = f"{'loss hidden/output':<22}{'optimiser':<16}{'batch':>5}"
    head += "".join(f"{b[:17]:>18}" for b in backends)
    sub = f"{'':<43}" + "".join(f"{'f32':>9}{'f64':>9}" for _ in backends)
    rows += [head, sub]
    for loss, act, out in NETWORKS:
        for opt in OPTIMIZERS:
            for batch in BATCH_SIZES:
                line = f"{loss + ' ' + act + '/' + out:<22}{opt:<16}{batch:>5}"
                for backend in backends:
                    for dtype in DTYPES:
                        diff = results[backend].get(Case(loss, act, out, opt, batch, dtype))
                        if diff == "n/a":
                            line += f"{'n/a':>8} "
                        elif diff is None:
                            line += f"{'-' if backend in results[None] else 'error':>8} "
                        else:
                            flag = "!" if diff > tolerance(label_backend(backend), dtype) else " "
                            line += f"{diff:>8.0e}{flag}"
                rows.append(line)
    return "\n".join(rows)


def verify_backends(
    backends=None, threads=None, log_dir=None, out=sys.stdout, devices=("cpu",)
) -> dict:
    """Check `backends` (default: every installed one) on `devices` (`targets`), print the
    table to `out` (None: print nothing) and return the record for env.json. A GPU backend on
    a machine without a CUDA device is reported unavailable, with what was found."""
    from bench.sweep.build import default_threads
    from bench.worker import devices as gpu
    from impls import available_backends

    threads = threads or default_threads()
    status = available_backends()
    wanted = list(status) if backends is None else list(dict.fromkeys(backends))
    # a backend outside the registry (module:Class, an entry point) is tried in its worker
    usable = [b for b in wanted if status.get(b) is None]
    unavailable = {b: status[b] for b in wanted if status.get(b) is not None}
    pairs = targets(usable, devices)
    if any(d != "cpu" for _, d in pairs):
        found = gpu.cuda_devices()
        count = gpu.device_count(found)
        for backend, device in [p for p in pairs if p[1] != "cpu"]:
            if device_index(device) >= count:
                unavailable[target_label(backend, device)] = (
                    f"no such CUDA device here ({gpu.describe(found)})"
                )
        pairs = [p for p in pairs if target_label(*p) not in unavailable]
    if out is not None:
        print(describe() + f"; {threads} threads", file=out)
    results = check_backends(pairs, threads, log_dir, errors=out or sys.stderr)
    record = summarise(results, threads, unavailable)
    if out is not None:
        print(render_table(results), file=out)
        for backend, reason in unavailable.items():
            print(f"{backend}: not checked: {reason}", file=out)
        for backend, message in results[None].items():
            print(f"{backend}: {message}", file=out)
        worst = ", ".join(
            f"{b} {'/'.join('error' if d is None else f'{d:.0e}' for d in w.values())}"
            for b, w in record["worst"].items()
        )
        verdict = "all backends agree" if record["passed"] else "SOME BACKENDS DISAGREE"
        if not record["worst"]:
            verdict = "NOTHING WAS CHECKED (see the lines above)"
        print(
            f"worst (float32/float64): {worst}\n"
            "tolerance: 1e-4 in float32, 1e-9 in float64 ('!' marks a case past it) — " + verdict,
            file=out,
        )
        for backend, limits in record["tolerance_by_backend"].items():
            from impls.registry import BACKENDS

            wider = ", ".join(f"{limit:g} in {dtype}" for dtype, limit in limits.items())
            reason = BACKENDS[label_backend(backend)].tolerance_reason
            print(f"{backend}: {wider}: {reason}", file=out)
        if not record["passed"]:
            for line in record["failed"]:
                print(f"  {line}", file=out)
    return record


def run_verify(threads: int | None = None, backends=None, out=sys.stdout, devices=("cpu",)) -> int:
    """`python -m bench verify`: the table; 0 if every case is within tolerance, else 1."""
    return 0 if verify_backends(backends, threads, out=out, devices=devices)["passed"] else 1
