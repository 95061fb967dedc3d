"""A session's matmul probes (bench.run.session): one probe-worker loop serves the CPU probe
(one worker per thread count) and the GPU probe (one worker per TF32 setting). A scripted
worker stands in for the probe process, so each outcome is exact."""

import pytest

from bench.run import session
from bench.store.folder import RunStore
from bench.worker.process import WorkerDied


class ScriptedWorker:
    """Answers each request from `answers` ({request: message}); a request mapped to an
    exception raises it, as a worker that dies does. Every worker made is kept in `made`."""

    made: list = []
    answers: dict = {}

    def __init__(self, backend, threads, log=None, env=()):
        self.threads, self.log, self.env = threads, log, env
        self.sent, self.stopped, self.request = [], False, None
        ScriptedWorker.made.append(self)

    def wait_ready(self, deadline):
        return {"unavailable": None}

    def send(self, *request):
        self.sent.append(request)
        self.request = request

    def receive(self, deadline):
        answer = self.answers[self.request]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def stop(self):
        self.stopped = True


@pytest.fixture
def scripted(monkeypatch):
    ScriptedWorker.made = []
    monkeypatch.setattr(session, "Worker", ScriptedWorker)
    return ScriptedWorker


def _probe(median, **extra):
    return {"median": median, "spread": 0.01, "noisy": False, **extra}


def test_the_cpu_probe_runs_one_worker_per_thread_count(scripted, tmp_path):
    scripted.answers = {
        ("matmul", "float32"): ("value", _probe(40.0)),
        ("matmul", "float64"): ("value", _probe(20.0)),
    }
    notes = []
    result = session.measure_matmul([1, 2], ["float32", "float64"], notes.append, tmp_path)
    assert result == {t: {"float32": _probe(40.0), "float64": _probe(20.0)} for t in (1, 2)}
    assert [w.threads for w in scripted.made] == [1, 2]
    assert all(w.stopped for w in scripted.made)
    assert scripted.made[1].log == str(tmp_path / "probe-t2.log")
    assert notes[0] == "matmul peak with 1 thread: float32 40.0 GFLOP/s, float64 20.0 GFLOP/s"


def test_a_probe_worker_that_dies_is_a_warning_and_its_worker_is_stopped(scripted):
    scripted.answers = {("matmul", "float32"): WorkerDied("exit status -9")}
    notes = []
    assert session.measure_matmul([4], ["float32"], notes.append) == {}
    assert notes == ["warning: could not measure the matmul peak with 4 threads: exit status -9"]
    assert scripted.made[0].stopped and scripted.made[0].log is None


def test_the_gpu_probe_runs_one_worker_per_tf32_setting(scripted):
    library = {"library": "torch 2.x"}
    scripted.answers = {
        ("device_matmul", "float32", "cuda:0", False): ("value", _probe(5e4, **library)),
        ("device_matmul", "float32", "cuda:0", True): ("value", _probe(4e5, **library)),
        ("device_matmul", "float64", "cuda:1", False): ("failed", "no such device"),
    }
    wanted = [("cuda:0", "float32", False), ("cuda:0", "float32", True)]
    wanted.append(("cuda:1", "float64", False))
    notes = []
    result = session.measure_device_matmul(wanted, notes.append)
    assert result == {
        "cuda:0": {"float32": _probe(5e4, **library), "float32+tf32": _probe(4e5, **library)}
    }
    assert [w.env for w in scripted.made] == [(("CUPY_TF32", "0"),), (("CUPY_TF32", "1"),)]
    assert [len(w.sent) for w in scripted.made] == [2, 1]
    assert "warning: could not measure cuda:1's matmul rate: no such device" in notes
    assert "matmul peak on cuda:0 (torch 2.x): float32 with TF32 400000 GFLOP/s" in notes


def test_a_gpu_probe_worker_that_dies_keeps_what_it_measured(scripted):
    library = {"library": "cupy 13"}
    scripted.answers = {
        ("device_matmul", "float32", "cuda:0", False): ("value", _probe(5e4, **library)),
        ("device_matmul", "float64", "cuda:0", False): WorkerDied("segfault"),
    }
    notes = []
    wanted = [("cuda:0", "float32", False), ("cuda:0", "float64", False)]
    result = session.measure_device_matmul(wanted, notes.append)
    assert result == {"cuda:0": {"float32": _probe(5e4, **library)}}
    assert notes[-1] == "warning: could not measure the GPU matmul peak: segfault"


def test_a_session_is_written_to_env_json_by_the_store(tmp_path):
    store = RunStore.create(tmp_path, "x")
    first = session.Session("python -m bench run", ["a warning"], "abc123")
    first.start(store, status="running", run_id="x")
    assert first.index == 0
    rates = {1: {"float32": {"median": 40.0}}, 2: {"float32": {"median": 70.0}}}
    first.record_matmul(store, rates)
    env = store.read_env()
    assert env["matmul_gflops"] == {"float32": 40.0}  # the fewest threads'
    assert env["matmul_gflops_by_threads"] == {"1": {"float32": 40.0}, "2": {"float32": 70.0}}
    (entry,) = env["sessions"]
    assert entry["matmul"] == {"1": rates[1], "2": rates[2]} and entry["git_commit"] == "abc123"
    assert entry["warnings"] == ["a warning"] and entry["status"] == "running"
    first.finish("interrupted", 1, 2)
    first.save(store, status="interrupted")
    second = session.Session("python -m bench run --resume x", [])
    second.start(store, status="running")
    second.record_matmul(store, {1: {"float32": {"median": 10.0}}})
    env = store.read_env()
    assert env["matmul_gflops"] == {"float32": 40.0}  # the first session's stays
    done, now = env["sessions"]
    assert (done["status"], done["cells_run"], done["cells_not_run"]) == ("interrupted", 1, 2)
    assert done["load"]["end"] is not None and now["index"] == 1
    assert now["matmul"] == {"1": {"float32": {"median": 10.0}}}
    store.close()
