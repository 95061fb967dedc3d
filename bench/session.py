"""One session of a run (its first start, or a `--resume`): the checks made before anything
runs, the record kept in env.json's `sessions`, and the matmul probe of that session.

env.json's `sessions` holds one entry per start and resume: the command, when it ran, its
process id and final status, the machine's load at its start and end with the CPU time other
processes took meanwhile, the matmul probe it measured (rows carry the `session` whose probe
their roofline used), warnings (e.g. more threads than cores) and how many cells it ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from . import envinfo, measure, noise
from .errors import UsageError
from .worker import Worker, WorkerDied, WorkerTimeout

PROBE_TIMEOUT_S = 120.0


# -- checks before anything runs ----------------------------------------------------------


def _torch_devices() -> dict | None:
    """What torch sees, asked in a short process of its own (the parent never imports a
    framework); None when torch is not installed (its cells are then skipped as usual)."""
    code = (
        "import json, torch; "
        "print(json.dumps({'cuda': torch.cuda.is_available(), "
        "'count': torch.cuda.device_count(), 'torch': torch.__version__}))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def check_devices(cells, probe=_torch_devices) -> None:
    """UsageError when a cell asks for a device this machine does not have."""
    wanted = sorted({c.device for c in cells if c.backend == "torch" and c.device != "cpu"})
    if not wanted:
        return
    found = probe()
    if found is None:
        return  # no torch: its cells are recorded as skipped, with the install hint
    if not found.get("cuda"):
        raise UsageError(
            f"--device {wanted[0]}: torch {found.get('torch', '')} finds no CUDA device on "
            "this machine (torch.cuda.is_available() is False); use --device cpu"
        )


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
    from .datasets import cache_dir

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
    """This process's entry in env.json's `sessions`, from start to finish."""

    def __init__(self, env: dict, command: str, warnings: list[str]):
        sessions = env.setdefault("sessions", [])
        if not sessions and env.get("started_at"):  # a folder from before sessions existed
            sessions.append(
                {
                    "index": 0,
                    "command": env.get("command"),
                    "started_at": env.get("started_at"),
                    "finished_at": env.get("finished_at"),
                    "status": env.get("status"),
                    "pid": None,
                    "load": None,
                    "matmul": {},
                }
            )
        for earlier in sessions:  # we hold the folder's lock: no earlier one still runs
            if earlier.get("status") == "running":
                earlier["status"] = "interrupted"
                earlier["note"] = "ended without closing env.json (killed?)"
        self.index = len(sessions)
        self._start = envinfo.load_snapshot()
        self._watch = measure.Stopwatch()
        self.entry = {
            "index": self.index,
            "command": command,
            "started_at": measure.now_iso(),
            "finished_at": None,
            "status": "running",
            "pid": os.getpid(),
            "host": envinfo.host(),
            "git_commit": env.get("git_commit"),  # the code this session ran
            "load": {
                "start": envinfo.public(self._start),
                "end": None,
                "other_cpu_s": None,
                "busy": None,
            },
            "matmul": {},
            "warnings": list(warnings),
        }
        sessions.append(self.entry)
        self.matmul: dict[int, dict] = {}  # threads -> {dtype: probe}

    def record_matmul(self, env: dict, matmul: dict) -> dict:
        """Keep this session's probe; the first session's medians stay env.json's
        `matmul_gflops` (what older readers use). Returns the fields to update."""
        self.matmul = matmul
        self.entry["matmul"] = {str(t): probes for t, probes in matmul.items()}
        fields = {"sessions": env["sessions"]}
        if matmul and not env.get("matmul_gflops"):
            medians = {
                str(t): {d: p["median"] for d, p in probes.items()} for t, probes in matmul.items()
            }
            fields["matmul_gflops"] = medians[str(min(matmul))]
            fields["matmul_gflops_by_threads"] = medians
        return fields

    def peak(self, threads: int, dtype: str) -> float | None:
        probe = self.matmul.get(threads, {}).get(dtype)
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
    {threads: {dtype: measure.probe_summary(...)}}."""
    result = {}
    for threads in threads_list:
        log = str(logs_dir / f"probe-t{threads}.log") if logs_dir is not None else None
        worker = Worker(None, threads, log)
        try:
            worker.wait_ready(measure.Deadline(PROBE_TIMEOUT_S))
            probes = {}
            for dtype in dtypes:
                worker.send("matmul", dtype)
                message = worker.receive(measure.Deadline(PROBE_TIMEOUT_S))
                if message[0] == "value":
                    probes[dtype] = message[1]
            result[threads] = probes
            note(_describe_probe(threads, probes))
        except (WorkerDied, WorkerTimeout) as exc:
            note(f"warning: could not measure the matmul peak with {threads} threads: {exc}")
        finally:
            worker.stop()
    return result


def _describe_probe(threads: int, probes: dict) -> str:
    parts = []
    for dtype, p in probes.items():
        text = f"{dtype} {p['median']:.1f} GFLOP/s"
        if p.get("noisy"):
            text += f" (varied {100 * p['spread']:.0f}% between repetitions: a busy machine?)"
        parts.append(text)
    return f"matmul peak with {threads} thread{'' if threads == 1 else 's'}: " + ", ".join(parts)
