"""Benchmark fixtures, and one process per framework.

Frameworks never share a process (two OpenMP runtimes and two thread pools in one process
make thread settings unreliable). So the benchmarks are split into groups — `numpy` (the NumPy
backends and the yardstick), `torch`, `keras` — and the pytest process that collects them runs
each group in a `python -m pytest` process of its own, then reports each benchmark's outcome
as if it had run here. This holds for `pytest tests/benchmarks --benchmark-only` (the
measuring run; each group process prints its own pytest-benchmark table, and with
`--benchmark-json FILE` their JSON is merged into FILE) and for the default `pytest` run,
where the benchmarks are disabled and each executes once, as a test (tests/conftest.py).

Measuring uses the benchmark sizes below; run as tests they use a few hundred samples and one
thread, so the suite stays quick: they check that every benchmark works, not how fast.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bench.check.cases import TOLERANCE
from bench.store.records import NOISY_SPREAD
from bench.worker import envinfo, measure, probes
from bench.worker.threads import pin_threads

from .quick import mark_quick, select_quick

GROUP_ENV = "MLP_BENCH_BENCHMARK_GROUP"  # set in a group's process: the group it runs
REPORTS_ENV = "MLP_BENCH_BENCHMARK_REPORTS"  # there: file for its test reports (JSON lines)
FRAMEWORKS = ("torch", "tensorflow", "jax", "keras")
# group -> frameworks its process must never have loaded (Keras on TensorFlow loads jax, and
# Keras on torch loads jax, by themselves)
FOREIGN = {
    "numpy": ("torch", "tensorflow", "jax", "keras"),
    "torch": ("tensorflow", "jax", "keras"),
    "keras": ("torch",),
    "jax": ("torch", "tensorflow", "keras"),
    "keras-jax": ("torch", "tensorflow"),
    "keras-torch": ("tensorflow",),
}
BATCH_SIZES = (1, 32, 256, 1024)
BUDGET_S = float(os.environ.get("MLP_BENCH_BUDGET_S", "2.0"))  # timed seconds per benchmark
# samples when measuring, and when the benchmarks only run as tests
SIZES = {"mnist-784-256-128-10": (2048, 128), "mnist60000-784-256-128-10": (60000, 256)}
DIGITS_AS_TEST = 128


def group_of(backend: str | None) -> str:
    """The process a backend's benchmarks run in: one per framework setup; the NumPy
    backends, the yardstick and scikit-learn (NumPy underneath) share one."""
    if (
        backend is None
        or backend.startswith("numpy")
        or backend in ("jacobian-yardstick", "sklearn")
    ):
        return "numpy"
    return backend


def require(backend: str) -> None:
    """Skip when `backend` cannot run in this process, saying why."""
    from impls import BACKENDS, available_backends

    reason = available_backends()[backend]
    if reason is not None:
        pytest.skip(f"backend {backend}: {reason}")
    if BACKENDS[backend].process_env and os.environ.get(GROUP_ENV) != backend:
        pytest.skip(f"backend {backend}: runs in its group's own process only")


def _item_group(item) -> str | None:
    """The group of a benchmark item under tests/benchmarks, else None."""
    if "benchmark" not in getattr(item, "fixturenames", ()):
        return None
    if Path(__file__).parent not in Path(str(item.path)).parents:
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    return group_of(params.get("backend") or params.get("framework"))


def measuring(config) -> bool:
    """True when pytest-benchmark times (--benchmark-only / --benchmark-enable)."""
    session = getattr(config, "_benchmarksession", None)
    return session is not None and not session.disabled


def threads_for(config) -> int:
    given = int(os.environ.get("MLP_BENCH_THREADS", "0"))
    if given:
        return given
    return len(os.sched_getaffinity(0)) if measuring(config) else 1


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def own_process():
    """In a group's process, each benchmark ends with no other group's framework loaded."""
    yield
    group = os.environ.get(GROUP_ENV)
    loaded = [name for name in FOREIGN.get(group, ()) if name in sys.modules]
    assert not loaded, f"the {group} benchmarks' process has loaded {', '.join(loaded)}"


@pytest.fixture(scope="session")
def threads(request):
    return threads_for(request.config)


@pytest.fixture(scope="session", autouse=True)
def pinned_threads(threads):
    """Pin this process's framework (its group's only) and NumPy's BLAS to `threads`."""
    from impls import BACKENDS, available_backends

    group = os.environ.get(GROUP_ENV)
    effective = {}
    if group in BACKENDS and group != "sklearn" and available_backends()[group] is None:
        effective.update(pin_threads(threads, group))
    effective.update(pin_threads(threads))
    return effective


@pytest.fixture(scope="session")
def matmul_peak(request, pinned_threads):
    """float32 GFLOP/s of NumPy's matmul with the same threads (not probed when the
    benchmarks run as tests)."""
    return probes.matmul_gflops("float32") if measuring(request.config) else float("nan")


@pytest.fixture(scope="session")
def models(request):
    """name -> (layer sizes, X, Y), made on first use."""
    full = measuring(request.config)
    made = {}

    def get(name):
        if name not in made:
            if name.startswith("digits"):
                from sklearn.datasets import load_digits

                digits = load_digits()
                X = (digits.data / 16.0).astype(np.float32)
                Y = np.eye(10, dtype=np.float32)[digits.target]
                n = 1437 if full else DIGITS_AS_TEST  # 1437: the digits training split's size
                made[name] = ((64, 100, 10), X[:n], Y[:n])
            else:
                n = SIZES[name][0 if full else 1]
                rng = np.random.default_rng(0)
                X = rng.standard_normal((n, 784), dtype=np.float32)
                Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
                made[name] = ((784, 256, 128, 10), X, Y)
        return made[name]

    return get


# How far apart two trainings' updates (weights minus the start) may be, in norm, relative to
# the update: float32 rounding moves an update by about 1e-6 of itself, while different
# batches, a different learning rate or a missing term move it by a large fraction.
UPDATE_RTOL = 1e-3


def assert_same_training(ours, plain, start=None, rtol=1e-4, atol=TOLERANCE["float32"]):
    """The two sides of an overhead benchmark trained the same network: `ours` and `plain`
    (their weights [(W, b), ...] after one round each, or the losses of their epochs) agree
    to float32 rounding. Where both see the same batches (the fixed order, or one batch per
    epoch), a difference means they do not do the same work, and the ratio of their times
    would compare different things.

    Each value is within `bench verify`'s float32 tolerance of the other (1e-4 absolute, with
    `rtol`): not tighter, because Adam divides a gradient by its own root mean square, so a
    weight whose gradient sits near zero turns the rounding of two BLAS kernels into a visible
    difference (numpy-vec and torch on an AVX-512 Xeon: 1.1e-5 on 1 weight of 200704 after
    two Adam steps at batch 1024). Given `start`, the weights both began from, the two updates
    must also agree in norm to UPDATE_RTOL per array, which no other work passes."""
    a, b = _arrays(ours), _arrays(plain)
    assert [x.shape for x in a] == [y.shape for y in b]
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"array {i} of {len(a)}")
    if start is None:
        return
    origin = _arrays(start)
    assert [x.shape for x in origin] == [x.shape for x in a]
    for i, (x, y, o) in enumerate(zip(a, b, origin)):
        moved = np.linalg.norm(y - o)
        apart = np.linalg.norm(x - y)
        assert apart <= UPDATE_RTOL * moved, (
            f"array {i} of {len(a)}: the updates differ by {apart:.3g}, "
            f"{apart / moved if moved else float('inf'):.2g} of the update's norm {moved:.3g}"
        )


def _arrays(values) -> list[np.ndarray]:
    flat = []
    for value in values:
        flat.extend(value if isinstance(value, (tuple, list)) else [value])
    return [np.asarray(v, dtype=np.float64) for v in flat]


def run_benchmark(benchmark, fn, n_samples, flops_per_sample, peak, info, threads):
    """Time `fn` with pytest-benchmark: one warm-up round, then as many rounds as fit the
    budget (3..50); attach throughput, GFLOP/s (`flops_per_sample`: the products a sample
    needs, MLPSpec.flops_per_sample for training) and its share of the matmul peak."""
    if benchmark.disabled:
        benchmark(fn)  # runs `fn` once, untimed
        return
    _, first = measure.timed(fn)
    _, second = measure.timed(fn)
    rounds = int(min(50, max(3, BUDGET_S / max(second, 1e-6))))
    benchmark.extra_info.update(info, first_call_s=first, threads=threads)
    start = envinfo.load_snapshot()
    with measure.Stopwatch() as watch:
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
    benchmark.extra_info.update(noise_record(benchmark.stats.stats, start, watch.seconds))
    median = benchmark.stats.stats.median
    gflops = flops_per_sample * n_samples / median / 1e9
    benchmark.extra_info.update(
        samples_per_s=n_samples / median,
        gflops=gflops,
        matmul_peak_gflops=peak,
        roofline=gflops / peak,
    )


def noise_record(stats, start: dict, wall_s: float) -> dict:
    """What `bench run` records of a cell's noise, for one benchmark: its rounds' times
    (`rounds_s`, the samples of its intervals), their spread ((p75 - p25) / median, `noisy`
    above NOISY_SPREAD as in results.csv) and the machine's load while it ran (the CPU other
    processes took, as env.json's sessions[].load). bench.report.pbench reads them."""
    end = envinfo.load_snapshot()
    other = envinfo.other_cpu_s(start, end)
    spread = stats.iqr / stats.median if stats.median > 0 else None
    return {
        "rounds_s": [float(t) for t in stats.data],
        "spread": spread,
        "noisy": spread is not None and spread > NOISY_SPREAD,
        "load": {
            "start": envinfo.public(start),
            "end": envinfo.public(end),
            "other_cpu_s": other,
            "wall_s": round(wall_s, 3),
            "other_cores": None if other is None or wall_s <= 0 else round(other / wall_s, 2),
        },
    }


def pytest_benchmark_update_machine_info(config, machine_info):
    """The machine's load when the benchmarks start (each benchmark's own is in extra_info)."""
    machine_info["load_start"] = envinfo.public(envinfo.load_snapshot())


# --------------------------------------------------------------------------- one process per group


def pytest_configure(config):
    config._group_runs = {}


# Run as tests (the default run), the benchmarks check that each one works, at both ends of the
# batch sizes and for the backends a run uses by default; the rest of the matrix (and the
# peers' benchmarks, whose backends have their own tests) is marked slow: --run-slow runs it.
AS_TEST = {
    "batch_size": {1, 1024},
    "overhead": {
        ("digits-64-100-10", 32),
        ("mnist60000-784-256-128-10", 1024),
        ("784-256-128-10", 1024),  # test_plain_torch_overhead.py (on a GPU, where there is one)
    },
}


def _representative(item) -> bool:
    from impls.registry import DEFAULT_BACKENDS

    params = getattr(getattr(item, "callspec", None), "params", {})
    backend = params.get("backend") or params.get("framework")
    if backend is not None and backend not in (*DEFAULT_BACKENDS, "sklearn"):
        return False
    if "variant" in params:
        return (params["model_name"], params["batch_size"]) in AS_TEST["overhead"]
    return params.get("batch_size", 1) in AS_TEST["batch_size"]


def pytest_itemcollected(item):
    if _item_group(item) is not None and not _representative(item):
        item.add_marker(pytest.mark.slow)
    mark_quick(item)  # the quick selection (quick.py)


@pytest.hookimpl(trylast=True)  # after -k/-m deselection and pytest-benchmark's own marks
def pytest_collection_modifyitems(session, config, items):
    group = os.environ.get(GROUP_ENV)
    if group is not None:  # a group's process: only its group's benchmarks
        kept = [i for i in items if _item_group(i) == group]
        dropped = [i for i in items if _item_group(i) != group]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        return
    select_quick(config, items)  # MLP_BENCH_QUICK=1 (quick.py)
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None and bs.skip:
        return  # --benchmark-skip: nothing to run
    delegated = {}
    for item in items:
        name = _item_group(item)
        if name is not None:
            delegated.setdefault(name, []).append(item)
    config._delegated = {item.nodeid: name for name, its in delegated.items() for item in its}
    config._group_items = delegated
    if delegated and bs is not None:
        config._merged_json = bs.json  # the group processes' JSON is merged into it
        bs.json = None


def _child_args(config, group, nodeids, tmp):
    # the nodeids are already selected here (slow ones included only if asked for)
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--run-slow", *nodeids]
    option = config.option
    if option.benchmark_only:
        args.append("--benchmark-only")
    if option.benchmark_enable:
        args.append("--benchmark-enable")
    for name in ("sort", "group_by", "columns", "name"):
        value = getattr(option, f"benchmark_{name}", None)
        if value:
            value = ",".join(value) if isinstance(value, (list, tuple)) else value
            args += [f"--benchmark-{name.replace('_', '-')}", str(value)]
    if getattr(config, "_merged_json", None):
        args += ["--benchmark-json", str(Path(tmp) / f"{group}.json")]
    if option.maxfail:
        args.append(f"--maxfail={option.maxfail}")
    args.append("-v" if option.verbose > 0 else "-q")
    return args


def _group_run_once(config, group):
    """The group's run, made once per test run. Under pytest-xdist every worker collects every
    benchmark, and the first worker to reach one of a group runs the group's process; the
    others wait for it and read what it left in the run's shared temporary folder (the
    parent of each worker's own), instead of running the group again."""
    shared = _shared_folder(config)
    if shared is None:
        run = _run_group(config, group)
    else:
        import fcntl

        with open(shared / f"benchmarks-{group}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            saved = shared / f"benchmarks-{group}.json"
            try:
                run = json.loads(saved.read_text())
            except (OSError, ValueError):  # not run yet (or its worker died while writing)
                run = _run_group(config, group)
                partial = saved.with_suffix(".partial")
                partial.write_text(json.dumps(run))
                os.replace(partial, saved)  # whole or not at all
    config._group_runs[group] = run
    return run


def _shared_folder(config) -> Path | None:
    """The folder the pytest-xdist workers of this run share, or None outside of one (or where
    file locks are not available, and each worker runs the groups it needs itself)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None or not config.option.basetemp:
        return None
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return None
    return Path(config.option.basetemp).parent


def _run_group(config, group):
    tmp = tempfile.mkdtemp(prefix=f"mlp-bench-benchmarks-{group}-")
    try:
        return _run_group_in(config, group, tmp)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _run_group_in(config, group, tmp):
    reports = Path(tmp) / "reports.jsonl"
    nodeids = [item.nodeid for item in config._group_items[group]]
    from impls import BACKENDS

    # not a pytest-xdist worker, though started by one (pytest-benchmark reads these too)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env.update({GROUP_ENV: group, REPORTS_ENV: str(reports)})
    if group in BACKENDS:
        env.update(BACKENDS[group].process_env)  # e.g. KERAS_BACKEND for keras-jax
    args = _child_args(config, group, nodeids, tmp)
    live = measuring(config)
    terminal = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")
    if live and terminal is not None:
        terminal.write_line(f"\n-- {group} benchmarks, in a process of their own --")
    if live and capture is not None:
        with capture.global_and_fixture_disabled():
            done = subprocess.run(args, cwd=config.rootpath, env=env)
        output = ""
    else:
        done = subprocess.run(args, cwd=config.rootpath, env=env, capture_output=True, text=True)
        output = done.stdout + done.stderr
    by_node = {}
    if reports.exists():
        for line in reports.read_text().splitlines():
            record = json.loads(line)
            by_node.setdefault(record["nodeid"], []).append(record)
    run = {"reports": by_node, "returncode": done.returncode, "output": output, "tmp": tmp}
    json_path = Path(tmp) / f"{group}.json"
    run["json"] = json.loads(json_path.read_text()) if json_path.exists() else None
    return run


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    config = item.config
    group = getattr(config, "_delegated", {}).get(item.nodeid)
    if group is None:
        return None
    from _pytest.reports import TestReport

    run = config._group_runs.get(group) or _group_run_once(config, group)
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    records = run["reports"].get(item.nodeid)
    if not records:
        tail = "\n".join(run["output"].splitlines()[-40:])
        records = [
            {
                "when": "call",
                "outcome": "failed",
                "longrepr": f"the {group} benchmarks' process did not run this benchmark "
                f"(exit status {run['returncode']})\n{tail}",
                "duration": 0.0,
            }
        ]
    for record in records:
        longrepr = record["longrepr"]
        if record["outcome"] == "skipped" and isinstance(longrepr, list):
            longrepr = tuple(longrepr)
        report = TestReport(
            nodeid=item.nodeid,
            location=item.location,
            keywords={k: 1 for k in item.keywords},
            outcome=record["outcome"],
            longrepr=longrepr,
            when=record["when"],
            duration=record["duration"],
            user_properties=[("pid", record["pid"]), ("frameworks", record["frameworks"])],
        )
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_runtest_logreport(report):
    """In a group's process: record each report for the process that started this one."""
    path = os.environ.get(REPORTS_ENV)
    if not path or os.environ.get(GROUP_ENV) is None:
        return
    longrepr = report.longrepr
    if report.outcome == "skipped" and isinstance(longrepr, tuple):
        longrepr = list(longrepr)
    elif longrepr is not None:
        longrepr = report.longreprtext
    record = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "longrepr": longrepr,
        "duration": report.duration,
        "pid": os.getpid(),
        "frameworks": " ".join(name for name in FRAMEWORKS if name in sys.modules),
    }
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def pytest_sessionfinish(session):
    import shutil

    config = session.config
    runs = getattr(config, "_group_runs", {})
    target = getattr(config, "_merged_json", None)
    parts = [run["json"] for run in runs.values() if run.get("json")]
    if target and parts:
        merged = dict(parts[0])
        merged["benchmarks"] = [b for part in parts for b in part["benchmarks"]]
        merged["groups_in_own_process"] = sorted(runs)
        Path(target).write_text(json.dumps(merged, indent=2))
        terminal = config.pluginmanager.getplugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"benchmark JSON of {len(parts)} group processes: {target}")
    for run in runs.values():
        shutil.rmtree(run["tmp"], ignore_errors=True)
