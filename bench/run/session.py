"""One session of a run (its first start, or a `--resume`): the checks made before anything
runs, the record kept in env.json's `sessions`, and the matmul probe of that session.

env.json's `sessions` holds one entry per start and resume: the command, when it ran, its
process id and final status, the machine's load at its start and end with the CPU time other
processes took meanwhile, the matmul probe it measured (rows carry the `session` whose probe
their roofline used), warnings (e.g. more threads than cores) and how many cells it ran.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from bench.errors import UsageError
from bench.report import noise
from bench.worker import devices, envinfo, measure
from bench.worker.process import Worker, WorkerDied, WorkerTimeout
from impls.spec import device_index

PROBE_TIMEOUT_S = 120.0


# -- checks before anything runs ----------------------------------------------------------


def check_devices(cells, probe=None) -> dict | None:
    """What the GPU libraries see here (bench.worker.devices), when a cell wants a GPU; UsageError
    when a cell's device does not exist, naming what was found. None for CPU-only sweeps."""
    wanted = sorted({c.device for c in cells if c.device != "cpu"})
    if not wanted:
        return None
    found = (probe or devices.cuda_devices)()
    count = devices.device_count(found)
    missing = [d for d in wanted if device_index(d) >= count]
    if missing:
        have = "no CUDA device" if not count else f"{count} CUDA device{'s' * (count > 1)}"
        raise UsageError(
            f"--devices {missing[0]}: this machine has {have} ({devices.describe(found)}); "
            + ("use --devices cpu" if not count else f"use cuda:0 to cuda:{count - 1}")
        )
    return found


def thread_warnings(cells) -> list[str]:
    """Warnings for thread counts above the machine's cores (they oversubscribe them)."""
    cores = envinfo.cores()
    over = sorted({c.threads for c in cells if c.threads > cores})
    if not over:
        return []
    return [
        f"--threads {', '.join(map(str, over))} is more than the {cores} cores this process "
        "may use: the threads will take turns on them and the cells will run slower than "
        f"with --threads {cores}"
    ]


@contextlib.contextmanager
def tool_homes(run_dir: Path):
    """Point Keras's and matplotlib's own folders (KERAS_HOME, MPLCONFIGDIR) at folders this
    tool owns, for the workers and the report: the project's cache folder, or the run folder
    when the cache cannot be written. Variables the user set are left alone."""
    wanted = {"KERAS_HOME": "keras", "MPLCONFIGDIR": "matplotlib"}
    saved = {k: os.environ.get(k) for k in wanted}
    base = _writable_cache() or (run_dir / ".cache")
    try:
        for key, name in wanted.items():
            if not os.environ.get(key):
                folder = base / name
                folder.mkdir(parents=True, exist_ok=True)
                os.environ[key] = str(folder)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _writable_cache() -> Path | None:
    from bench.datasets import cache_dir

    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return folder
    except (OSError, RuntimeError):
        return None


# -- the session record -------------------------------------------------------------------


class Session:
    """This process's entry in env.json's `sessions`, from start to finish. The entry lives
    here and is written to the run folder by `start` and `save`."""

    def __init__(self, command: str, warnings: list[str], git_commit: str | None = None):
        self.index: int | None = None  # its place in env.json's sessions, once started
        self._start = envinfo.load_snapshot()
        self._watch = measure.Stopwatch()
        self.entry = {
            "command": command,
            "started_at": measure.now_iso(),
            "finished_at": None,
            "status": "running",
            "pid": os.getpid(),
            "host": envinfo.host(),
            "git_commit": git_commit,  # the code this session ran
            "load": {
                "start": envinfo.public(self._start),
                "end": None,
                "other_cpu_s": None,
                "busy": None,
            },
            "matmul": {},
            "warnings": list(warnings),
        }
        self.matmul: dict[int, dict] = {}  # threads -> {dtype: probe}
        self.device_matmul: dict[str, dict] = {}  # device -> {device_probe_key: probe}

    def start(self, store, **fields) -> None:
        """Append this session to the run folder's env.json, with the run's `fields`, in one
        write (bench.store.folder.RunStore.start_session)."""
        self.index = store.start_session(self.entry, **fields)
        self.entry["index"] = self.index

    def save(self, store, **fields) -> None:
        """Write this session's entry to env.json, with the run's `fields`, in one write."""
        store.update_session(self.index, self.entry, **fields)

    def record_matmul(self, store, matmul: dict, device_matmul: dict | None = None) -> None:
        """Keep this session's probes and write them to env.json; the first session's medians
        stay env.json's `matmul_gflops` (what older readers use).

        `device_matmul`: {device: {probe key (`device_probe_key`): probe}}, each GPU's own
        rate, kept in the session's entry as `device_matmul`."""
        self.matmul = matmul
        self.device_matmul = device_matmul or {}
        self.entry["matmul"] = {str(t): probes for t, probes in matmul.items()}
        if self.device_matmul:
            self.entry["device_matmul"] = self.device_matmul
        fields = {}
        if matmul and not store.read_env().get("matmul_gflops"):
            medians = {
                str(t): {d: p["median"] for d, p in probes.items()} for t, probes in matmul.items()
            }
            fields["matmul_gflops"] = medians[str(min(matmul))]
            fields["matmul_gflops_by_threads"] = medians
        self.save(store, **fields)

    def peak(self, threads: int, dtype: str) -> float | None:
        probe = self.matmul.get(threads, {}).get(dtype)
        return probe["median"] if probe else None

    def peak_for(self, cell) -> float | None:
        """The roofline's denominator for `cell`: its own device's measured matmul rate for its
        dtype (and TF32 setting); on the CPU, NumPy's rate with the cell's threads."""
        if cell.device == "cpu":
            return self.peak(cell.threads, cell.dtype)
        key = device_probe_key(cell.dtype, cell.tf32)
        probe = self.device_matmul.get(cell.device, {}).get(key)
        return probe["median"] if probe else None

    def finish(self, status: str, ran: int, not_run: int) -> None:
        end = envinfo.load_snapshot()
        wall = self._watch.elapsed()
        other = envinfo.other_cpu_s(self._start, end)
        load = self.entry["load"]
        load.update(
            end=envinfo.public(end),
            other_cpu_s=other,
            wall_s=round(wall, 2),
            other_cores=None if other is None or wall <= 0 else round(other / wall, 2),
        )
        load["busy"] = noise.load_busy(load, wall)
        self.entry.update(
            finished_at=measure.now_iso(), status=status, cells_run=ran, cells_not_run=not_run
        )


def measure_matmul(threads_list, dtypes, note, logs_dir: Path | None = None) -> dict:
    """The machine's matmul rate per thread count and dtype, in pinned probe processes:
    {threads: {dtype: probes.probe_summary(...)}}."""
    result = {}
    for threads in threads_list:
        probes = {}
        done = _probe_worker(
            [(dtype, ("matmul", dtype)) for dtype in dtypes],
            probes.__setitem__,
            note,
            what=f"the matmul peak with {threads} threads",
            threads=threads,
            log=logs_dir / f"probe-t{threads}.log" if logs_dir is not None else None,
        )
        if done:
            result[threads] = probes
            note(_describe_probe(threads, probes))
    return result


def device_probe_key(dtype: str, tf32: bool) -> str:
    """How a GPU's probe for `dtype` is filed: "float32", "float32+tf32", "float64"."""
    return f"{dtype}+tf32" if tf32 else dtype


def measure_device_matmul(wanted, note, logs_dir: Path | None = None) -> dict:
    """Each GPU's matmul rate for the (device, dtype, tf32) triples in `wanted`, in a probe
    worker of its own: {device: {device_probe_key: probe}}."""
    result = {}
    for tf32 in sorted({t for _, _, t in wanted}):  # CuPy reads CUPY_TF32 once per process

        def keep(key, probe, tf32=tf32):
            device, dtype = key
            result.setdefault(device, {})[device_probe_key(dtype, tf32)] = probe
            text = f"{dtype}{' with TF32' if tf32 else ''} {probe['median']:.0f} GFLOP/s"
            if probe.get("noisy"):
                text += f" (varied {100 * probe['spread']:.0f}% between repetitions)"
            note(f"matmul peak on {device} ({probe['library']}): {text}")

        def failed(key, text):
            note(f"warning: could not measure {key[0]}'s matmul rate: {text}")

        _probe_worker(
            [((d, t), ("device_matmul", t, d, tf32)) for d, t, on in wanted if on == tf32],
            keep,
            note,
            what="the GPU matmul peak",
            threads=1,
            log=logs_dir / f"probe-gpu-tf32{int(tf32)}.log" if logs_dir is not None else None,
            env=(("CUPY_TF32", "1" if tf32 else "0"),),
            failed=failed,
        )
    return result


def _probe_worker(requests, keep, note, *, what, threads, log, env=(), failed=None) -> bool:
    """Run the probe `requests` ([(key, (command, *args))]) one after the other in one probe
    worker with `threads` threads and `env`, its output in `log`: `keep(key, probe)` gets each
    probe measured, `failed(key, text)` (if given) each one that failed. A worker that dies
    or stops answering is noted as a warning that `what` could not be measured; returns
    whether the worker answered every request."""
    worker = Worker(None, threads, str(log) if log is not None else None, env)
    try:
        worker.wait_ready(measure.Deadline(PROBE_TIMEOUT_S))
        for key, request in requests:
            worker.send(*request)
            message = worker.receive(measure.Deadline(PROBE_TIMEOUT_S))
            if message[0] == "value":
                keep(key, message[1])
            elif failed is not None:
                failed(key, message[1])
        return True
    except (WorkerDied, WorkerTimeout) as exc:
        note(f"warning: could not measure {what}: {exc}")
        return False
    finally:
        worker.stop()


def _describe_probe(threads: int, probes: dict) -> str:
    parts = []
    for dtype, p in probes.items():
        text = f"{dtype} {p['median']:.1f} GFLOP/s"
        if p.get("noisy"):
            text += f" (varied {100 * p['spread']:.0f}% between repetitions: a busy machine?)"
        parts.append(text)
    return f"matmul peak with {threads} thread{'' if threads == 1 else 's'}: " + ", ".join(parts)
