"""`python -m bench verify`: proof, on this machine, that the backends compute the same thing.

Every installed backend trains the cases of `bench.check.cases` in its own worker process, and
its parameters, predictions and epoch losses are compared with the textbook MLP's
(`impls/reference.py`); the table shows the worst difference per case, backend and dtype.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from bench.check.cases import (
    BATCH_SIZES,
    DTYPES,
    EPOCHS,
    LAYERS,
    NETWORKS,
    OPTIMIZERS,
    SHORT_BATCH,
    TOLERANCE,
    UNSUPPORTED,
    Case,
    N,
    all_cases,
    difference,
    epsilon_placement,
    initial_params,
    reference_train,
    tolerance,
    verify_data,
)
from bench.worker import measure
from impls.registry import backend_devices, file_safe
from impls.spec import device_index, device_kind

# --------------------------------------------------------------------------- running it


def verify_model(make, cases=None, epsilon_on="v_hat") -> dict[Case, float]:
    """In this process: `make(spec, params)` builds a model; its difference per case.

    The textbook trains first, and the model gets arrays of its own (parameters, data and
    orders): a model that edits them in place cannot change what it is compared with."""
    from bench.worker.process import train_for_verify
    from impls import MLPSpec

    X, Y, orders = verify_data()
    out = {}
    for case in cases or all_cases():
        expected = reference_train(case, initial_params(case), X, Y, orders, epsilon_on)
        model = make(MLPSpec(**case.spec_kwargs()), initial_params(case))
        Xc, Yc = X.astype(case.dtype), Y.astype(case.dtype)
        mine = [order.copy() for order in orders]
        out[case] = difference(train_for_verify(model, Xc, Yc, case.batch_size, mine), expected)
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
    backends, threads: int, log_dir=None, errors=sys.stderr, devices=("cpu",), progress=None
) -> dict:
    """Run every case on every backend in `backends` (each in a worker process of its own),
    on each of `devices` it runs on (`targets`); an item of `backends` may also be a
    (backend, device) pair, checked on that device only.

    Returns {label: {Case: difference, None (the case failed) or "n/a" (the backend cannot
    express it: NotImplementedError)}} and, under the key None, {label: message} for
    backends whose worker failed; labels as `target_label`. Worker logs go to `log_dir`;
    without one they go to a temporary folder that is removed before returning (the end of a
    failed worker's log is printed to `errors` first). A line per backend as it starts and
    ends goes to `progress` (default: stderr).
    """
    progress = sys.stderr if progress is None else progress
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
        for number, (backend, device) in enumerate(pairs, 1):
            label = target_label(backend, device)
            watch = measure.Stopwatch()
            print(
                f"verify {number}/{len(pairs)}: {label}, {len(cases)} cases ...",
                file=progress,
                flush=True,
            )
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
                failed = sum(1 for d in diffs.values() if d is None)
                print(
                    f"verify {number}/{len(pairs)}: {label} done in {watch.elapsed():.0f} s"
                    + (f", {failed} cases failed" if failed else ""),
                    file=progress,
                    flush=True,
                )
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
        f"parity with the textbook MLP (impls/reference.py) after {EPOCHS} epochs from the "
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
