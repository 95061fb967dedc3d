"""Running a sweep's cells on a Dask cluster: `python -m bench run ... --scheduler ADDRESS`.

The machine that starts the run keeps the one run folder; each cell is sent to a Dask worker
(`distributed`, the optional extra mlp-bench[dask]) and its result row and curves stream
back into results.csv and curves.csv as it finishes. On the Dask worker a cell runs as it does
locally: in the project's own worker process for its backend (bench.worker), threads pinned,
one framework per process. The Dask task only starts and follows that process.

- Timing: every cell asks for one unit of the worker resource `bench` and is sent, restricted
  to it, to a Dask worker that runs no other cell of the run. A machine with one such worker
  (`dask worker ADDRESS --nworkers 1 --nthreads 1 --resources bench=1`) runs one cell at a
  time. A machine with several (`--nworkers 2`, `local:N`) runs cells side by side by the
  user's choice: its rows say `shared_host` True.
- Data: each Dask worker loads or generates the dataset itself from its name, preprocessing,
  split seed and dtype (the same call as a local run; files from the sweep's data_dir or the
  host's cache), never sent through the scheduler. A host without the files fails its cells
  with the dataset's message and the host's name.
- Hosts: every Dask worker's machine (CPU, cores, BLAS, versions; with `--device cuda`, what
  torch sees there) and the matmul peak measured there go into env.json's `hosts`; each row's
  roofline uses its own host's peak. Torch cells on a GPU go only to hosts with CUDA.
- Code: each Dask worker's mlp-bench version and a hash of its bench/ and impls/ sources are
  compared with this machine's when the run connects; a mismatch is refused before anything
  runs (and a worker that joins later with other code gets no cells).
- Lost workers: a cell whose Dask worker dies is sent once more to another worker
  (MAX_RETRIES); its row names the host it was lost on (`lost_on`). Lost again, it is recorded
  `error: worker lost (HOST)`. The client places the cells itself, so a worker's death never
  touches cells that were only waiting.
- Ctrl-C stops submitting and cancels what is queued or running; finished cells stay, and
  `--resume` (with or without --scheduler) runs only the rest.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import logging
import math
import os
import re
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from . import measure
from .errors import BenchError, UsageError
from .schema import AXES

RESOURCE = "bench"
CONNECT_TIMEOUT_S = 15.0  # reaching the scheduler and finding a first worker
CANCEL_CHECK_S = 0.5  # how often a running cell asks whether the client still wants it
MAX_RETRIES = 1  # a cell whose Dask worker died runs once more, on another worker
POLL_S = 0.2  # how often the client looks at its cells in flight and at the workers
LOST_AFTER_S = 3.0  # a worker missing from the scheduler's list this long has left
NO_WORKERS_S = 120.0  # with cells to run and no worker to take them, the run stops
INSTALL_HINT = 'pip install "mlp-bench[dask]"'
WORKER_COMMAND = "dask worker {address} --nworkers 1 --nthreads 1 --resources bench=1"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent  # holds bench/ and impls/


# -- the code a process runs ------------------------------------------------------------------


def _package_version() -> str | None:
    try:
        return importlib.metadata.version("mlp-bench")
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """A short hash of this copy's bench/ and impls/ Python sources (paths and contents)."""
    digest = hashlib.sha256()
    for package in ("bench", "impls"):
        for path in sorted((_PROJECT_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(_PROJECT_ROOT)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def identity() -> dict:
    """What code this process runs, and on which machine: compared at connection."""
    from . import envinfo

    return {
        "host": socket.gethostname(),
        "version": _package_version(),
        "commit": envinfo.git_commit(_PROJECT_ROOT),
        "code": code_hash(),
        "python": sys.version.split()[0],
    }


def _describe_code(ident: dict) -> str:
    commit = ident.get("commit")
    where = (
        f", commit {commit[:12]}{' with local changes' if commit.endswith('-dirty') else ''}"
        if commit
        else ""
    )
    return f"mlp-bench {ident.get('version') or 'unknown'} (sources {ident.get('code')}{where})"


def same_code(mine: dict, theirs: dict) -> bool:
    return mine.get("version") == theirs.get("version") and mine.get("code") == theirs.get("code")


def worker_facts() -> dict:
    """Run on a Dask worker at connection: its code and its machine (no framework import)."""
    from . import envinfo

    facts = envinfo.collect()
    return {"identity": identity(), **facts}


# -- the scheduler argument -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SchedulerSpec:
    text: str
    local_workers: int | None = None  # local:N
    address: str | None = None


_ADDRESS = re.compile(r"^(?:(tcp|tls|inproc|ucx|ws|wss)://)?\[?[A-Za-z0-9_.:-]+\]?(?::\d+)?$")


def parse_scheduler(text: str) -> SchedulerSpec:
    """`local:N` (a LocalCluster of N worker processes) or a scheduler address."""
    text = (text or "").strip()
    if not text:
        raise UsageError("--scheduler: give a scheduler address (tcp://HOST:8786) or local:N")
    if text.lower().startswith("local"):
        _, _, n = text.partition(":")
        try:
            count = int(n)
        except ValueError:
            count = 0
        if not 1 <= count <= 64:
            raise UsageError(
                f"--scheduler {text}: write local:N with N the number of local Dask workers "
                "(1 to 64), e.g. local:2"
            )
        return SchedulerSpec(text, local_workers=count)
    if not _ADDRESS.match(text):
        raise UsageError(
            f"--scheduler {text!r} is not a scheduler address: write e.g. tcp://HOST:8786 "
            "(what `dask scheduler` prints), or local:N"
        )
    address = text if "://" in text else f"tcp://{text}"
    return SchedulerSpec(text, address=address)


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError(
            f"--scheduler needs Dask's distributed, which is not installed: {INSTALL_HINT}"
        ) from None
    return distributed


# -- the client side ----------------------------------------------------------------------------


@dataclasses.dataclass
class Host:
    """One machine of the cluster, as env.json's `hosts` records it."""

    name: str
    facts: dict
    workers: list = dataclasses.field(default_factory=list)  # Dask worker addresses seen

    def slots(self, live) -> int:
        """Its Dask worker processes alive now that take cells: cells it runs at once."""
        return sum(1 for address in self.workers if address in live)


@dataclasses.dataclass
class _Flight:
    """A cell sent to one Dask worker."""

    job: dict
    address: str
    shared: bool  # its host had more than one worker taking cells when it was sent


class DaskExecutor:
    """A connection to a Dask scheduler that runs a run's cells and writes them back.

    The client places each cell itself: on a Dask worker (with the `bench` resource, its
    code checked) that runs no other cell of this run, restricted to that worker, so a
    worker's death touches only the cell it was running. That cell is sent once more to
    another worker (MAX_RETRIES), then recorded as lost.
    """

    def __init__(self, spec: SchedulerSpec, note):
        self.spec = spec
        self.note = note
        self.cluster = None
        self.client = None
        self.startup_s = 0.0  # frameworks start on the workers: counted in their cells
        self.connect_s = 0.0  # starting a LocalCluster, connecting, checking the workers
        self.hosts: dict[str, Host] = {}
        self.by_address: dict[str, str] = {}  # Dask worker address -> host name (checked)
        self.refused: dict[str, str] = {}  # Dask worker address -> why it gets no cells
        self.finished: set[tuple[str, int]] = set()  # (cell_id, repeat) written by this run
        self.guard = contextlib.nullcontext  # around writing a finished cell
        self.cuda_hosts: set[str] | None = None  # hosts where torch sees CUDA (when asked)
        self._missing: dict = {}  # address -> Stopwatch since the scheduler omits it

    # -- connecting ---------------------------------------------------------------------------

    def connect(self) -> DaskExecutor:
        distributed = _import_distributed()
        watch = measure.Stopwatch()
        logging.getLogger("distributed").setLevel(logging.ERROR)
        try:
            if self.spec.local_workers is not None:
                self.cluster = distributed.LocalCluster(
                    n_workers=self.spec.local_workers,
                    threads_per_worker=1,
                    processes=True,
                    resources={RESOURCE: 1},
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,
                )
                self.client = distributed.Client(
                    self.cluster, timeout=CONNECT_TIMEOUT_S, set_as_default=False
                )
            else:
                self.client = distributed.Client(
                    self.spec.address, timeout=CONNECT_TIMEOUT_S, set_as_default=False
                )
        except BaseException as exc:
            self.close()
            if not isinstance(exc, (OSError, TimeoutError)):
                raise
            raise UsageError(
                f"cannot reach the Dask scheduler at {self.spec.text} ({_reason(exc)}); start "
                "one with `dask scheduler` and give the address it prints"
            ) from None
        try:
            self._check_first_workers()
        except BaseException:
            self.close()
            raise
        self.connect_s = watch.elapsed()
        return self

    def _check_first_workers(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise UsageError(
                f"the Dask scheduler at {self.spec.text} has no workers (waited "
                f"{CONNECT_TIMEOUT_S:g} s); start one per machine with: "
                + WORKER_COMMAND.format(address=self.spec.address or "ADDRESS")
            ) from None
        facts = self.client.run(worker_facts, on_error="return")
        mine = identity()
        wrong = {
            a: f
            for a, f in facts.items()
            if not isinstance(f, dict) or not same_code(mine, f["identity"])
        }
        if wrong:
            lines = [
                f"{a} on {f['identity']['host']} runs {_describe_code(f['identity'])}"
                if isinstance(f, dict)
                else f"{a} cannot load this mlp-bench's code ({type(f).__name__}: {_reason(f)})"
                for a, f in sorted(wrong.items())
            ]
            raise UsageError(
                f"Dask worker{'s' if len(wrong) > 1 else ''} with other code than this "
                f"machine's {_describe_code(mine)}: " + "; ".join(lines) + ". Install the "
                "same mlp-bench on every worker (e.g. the same commit of the repository) and "
                "restart them"
            )
        live = self._live(facts)
        if not live:
            raise UsageError(
                f"no Dask worker of {self.spec.text} offers the `{RESOURCE}` resource that each "
                "cell asks for; start the workers with: "
                + WORKER_COMMAND.format(address=self.spec.address or "ADDRESS")
            )
        for host in self.hosts.values():
            slots = host.slots(live)
            if slots == 0:
                self.note(
                    f"note: the Dask workers on {host.name} offer no `{RESOURCE}` resource: "
                    "they get no cells"
                )
            elif slots > 1:
                self.note(
                    f"note: {host.name} runs up to {slots} cells at once ({slots} Dask workers "
                    f"with `{RESOURCE}`): they share its cores, and their rows say shared_host"
                )
        self.note(
            f"dask: {self.spec.text}: {len(live)} worker{'s' if len(live) != 1 else ''} on "
            + ", ".join(f"{h.name} ({h.slots(live)})" for h in self.hosts.values())
        )

    def _live(self, facts: dict | None = None) -> dict[str, str]:
        """The Dask workers that take cells now, {address: host}: alive, offering the `bench`
        resource, their code checked (workers seen for the first time are checked here)."""
        try:
            info = self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:  # distributed before 2025: every worker without asking
            info = self.client.scheduler_info()["workers"]
        new = [a for a in info if a not in self.by_address and a not in self.refused]
        if new and facts is None:
            try:
                facts = self.client.run(worker_facts, workers=new, on_error="return")
            except Exception:
                facts = {}
        mine = identity()
        for address in new:
            f = (facts or {}).get(address)
            if isinstance(f, Exception) and not isinstance(f, (OSError, TimeoutError)):
                self.refused[address] = (
                    f"Dask worker {address} cannot load this mlp-bench's code "
                    f"({type(f).__name__}: {_reason(f)})"
                )
                self.note(f"warning: {self.refused[address]}: it gets no cells")
                continue
            if not isinstance(f, dict):
                continue  # gone again, or not answering yet: asked again next time
            if not same_code(mine, f["identity"]):
                self.refused[address] = (
                    f"Dask worker {address} on {f['identity']['host']} runs "
                    f"{_describe_code(f['identity'])}, not {_describe_code(mine)}"
                )
                self.note(f"warning: {self.refused[address]}: it gets no cells")
                continue
            name = f["identity"]["host"]
            host = self.hosts.setdefault(
                name, Host(name, {k: v for k, v in f.items() if k != "identity"})
            )
            host.workers.append(address)
            self.by_address[address] = name
        return {
            a: self.by_address[a]
            for a, w in info.items()
            if a in self.by_address
            and a not in self.refused
            and (w.get("resources") or {}).get(RESOURCE, 0) >= 1
        }

    def describe(self) -> dict:
        """env.json's `schedulers` entry for this session."""
        import distributed

        return {
            "address": self.spec.text,
            "dask": distributed.__version__,
            "hosts": {h.name: list(h.workers) for h in self.hosts.values()},
            "refused": dict(self.refused),
        }

    # -- running ------------------------------------------------------------------------------

    def run(self, run, progress: bool, guard=None) -> None:
        """bench.runner's steps for a run on Dask: the cells not yet finished go to the
        cluster (data and matmul probe happen on each worker's host). `run` is the runner's
        _Run; this executor becomes its `runner` (closed with it; `finished` holds the cells
        it wrote). `guard` is held around writing each finished cell (an interrupt waits)."""
        from .progress import Progress, cell_labels

        self.guard = guard or contextlib.nullcontext
        run.runner = self
        run.phases["dask_connect_s"] = self.connect_s
        run.todo = [c for c in run.cells if (c.cell_id, c.repeat) not in run.finished]
        if not run.fresh:
            run.note(
                f"resuming {run.store.path}: {len(run.cells) - len(run.todo)} of "
                f"{len(run.cells)} cells already finished, {len(run.todo)} to run"
            )
        if not run.todo:
            return
        bar = Progress(len(run.todo), progress)
        try:
            self.run_cells(
                run.todo,
                store=run.store,
                sweep=run.sweep,
                run_id=run.env.get("run_id", run.store.path.name),
                session=run.session.index,
                rows=run.rows,
                progress=bar,
                labels=cell_labels(run.todo),
            )
        finally:
            bar.close()

    def run_cells(
        self, todo, *, store, sweep, run_id, session, rows: list, progress, labels=None
    ) -> None:
        """Send every cell of `todo` to the cluster, one per free Dask worker; write each to
        `store` as it finishes and append its row to `rows`. An interrupt (Ctrl-C) stops
        sending, cancels the cells in flight and propagates."""
        mine = identity()
        token = uuid.uuid4().hex[:8]  # keys never meet an earlier session's on the scheduler
        queue = collections.deque(
            {
                "key": f"mlp-bench-{token}-{cell.cell_id}-r{cell.repeat}",
                "cell": cell,
                "data_dir": None if sweep.data_dir is None else str(sweep.data_dir),
                "timeout": sweep.timeout,
                "target_acc": sweep.target_acc,
                "code": mine,
                "probe_tag": f"{run_id}/{session}",
                "lost": [],  # hosts whose worker died running it
            }
            for cell in todo
        )
        self._record_hosts(store, session)
        flight: dict = {}  # future -> _Flight
        alone = measure.Stopwatch()  # since a worker last lived or a cell was in flight
        try:
            while queue or flight:
                live = self._live()
                known = len(self.hosts)
                for future, sent in list(flight.items()):
                    if self._gone(sent.address, live) and not future.done():
                        del flight[future]
                        future.cancel()
                        self._lost(sent, queue, store, run_id, session, rows, progress, labels)
                busy = {sent.address for sent in flight.values()}
                for address, host in live.items():
                    job = None if address in busy else self._next_for(queue, host)
                    if job is not None:
                        shared = self.hosts[host].slots(live) > 1
                        flight[self._submit(job, address)] = _Flight(job, address, shared)
                if len(self.hosts) != known:
                    self._record_hosts(store, session)
                if flight or not queue:
                    alone.restart()
                elif alone.elapsed() > NO_WORKERS_S:
                    raise BenchError(
                        f"no Dask worker of {self.spec.text} has taken cells for "
                        f"{NO_WORKERS_S:g} s (none alive, or none with a device the cells "
                        f"need): {len(queue)} cells did not run; start workers "
                        f"and finish with: python -m bench run --resume {store.path} "
                        f"--scheduler {self.spec.text}"
                    )
                done = [f for f in flight if f.done()]
                if not done:
                    time.sleep(POLL_S)
                    continue
                for future in done:
                    sent = flight.pop(future)
                    result = self._result(future, sent)
                    if result is None:  # its worker died: sent again, or recorded as lost
                        self._lost(sent, queue, store, run_id, session, rows, progress, labels)
                        continue
                    if result.get("refused"):  # a worker whose code changed since the check
                        self.refused[sent.address] = result["refused"]
                        self.note(f"warning: {result['refused']}: it gets no more cells")
                        queue.appendleft(sent.job)
                        continue
                    self._write(result, sent, store, run_id, session, rows, progress, labels)
        finally:
            if flight:
                with contextlib.suppress(Exception):
                    self.client.cancel(list(flight), force=True)

    def _gone(self, address: str, live: dict) -> bool:
        """Whether the Dask worker at `address` has left: missing from the scheduler's list
        for LOST_AFTER_S in a row (a single list can come back empty on a busy machine)."""
        if address in live:
            self._missing.pop(address, None)
            return False
        watch = self._missing.setdefault(address, measure.Stopwatch())
        return watch.elapsed() >= LOST_AFTER_S

    def _next_for(self, queue, host: str):
        """The first queued job `host` can run (torch cells on a GPU need a host where torch
        sees one), taken off the queue; None if none."""
        for job in queue:
            if self._fits(job["cell"], host):
                queue.remove(job)
                return job
        return None

    def _fits(self, cell, host: str) -> bool:
        if self.cuda_hosts is None or cell.backend != "torch" or cell.device == "cpu":
            return True
        return host in self.cuda_hosts

    def check_devices(self, cells) -> None:
        """With torch cells on a GPU (`--device cuda`): ask torch on each host what it sees
        (recorded in env.json's hosts as `devices`); those cells go only to hosts with CUDA,
        and a cluster without any is a usage error before anything runs."""
        wanted = sorted({c.device for c in cells if c.backend == "torch" and c.device != "cpu"})
        if not wanted:
            return
        found = {}
        for host in self.hosts.values():
            try:
                answer = self.client.run(worker_devices, workers=host.workers[:1])
                found[host.name] = next(iter(answer.values()), None)
            except Exception:
                found[host.name] = None
            host.facts["devices"] = found[host.name]
        self.cuda_hosts = {h for h, f in found.items() if f and f.get("cuda")}
        if not self.cuda_hosts and any(f is not None for f in found.values()):
            raise UsageError(
                f"--device {wanted[0]}: torch finds no CUDA device on any host of the Dask "
                f"cluster ({', '.join(found)}: torch.cuda.is_available() is False); use "
                "--device cpu"
            )

    def _submit(self, job: dict, address: str):
        attempt = len(job["lost"])
        return self.client.submit(
            run_cell_task,
            job,
            key=job["key"] + (f"-retry{attempt}" if attempt else ""),
            resources={RESOURCE: 1},
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )

    def _result(self, future, sent: _Flight) -> dict | None:
        """The task's result; None when its worker died under it."""
        from distributed import CancelledError
        from distributed.scheduler import KilledWorker

        try:
            return future.result()
        except (KilledWorker, CancelledError):
            return None
        except Exception as exc:  # the task itself failed outside the cell (e.g. unpickling)
            host = self.by_address.get(sent.address, sent.address)
            row = self._error_row(
                sent.job, f"{host}: the Dask task failed: {type(exc).__name__}: {_reason(exc)}"
            )
            return {"row": {**row, "host": host}, "curves": []}

    def _lost(self, sent: _Flight, queue, store, run_id, session, rows, progress, labels):
        """A cell whose worker died: once more on another worker, else an error row."""
        job = sent.job
        job["lost"].append(self.by_address.get(sent.address) or _address_host(sent.address))
        if len(job["lost"]) <= MAX_RETRIES:
            host = job["lost"][-1]
            progress.note(
                f"{_label(job['cell'], labels)}: its Dask worker on {host} was lost; "
                "running it again on another worker"
            )
            queue.appendleft(job)
            return
        hosts = ", ".join(dict.fromkeys(job["lost"]))
        row = {**self._error_row(job, f"worker lost ({hosts})"), "host": job["lost"][-1]}
        self._write(
            {"row": row, "curves": []}, sent, store, run_id, session, rows, progress, labels
        )

    def _error_row(self, job: dict, text: str) -> dict:
        return {**job["cell"].row(), "status": "error", "error": text, "started_at": None}

    def _write(self, result, sent: _Flight, store, run_id, session, rows, progress, labels):
        with self.guard():  # the row on disk and the counts here agree, even on Ctrl-C
            row = self._finish(result, sent, store, run_id, session)
            rows.append(row)
            self.finished.add((row["cell_id"], row["repeat"]))
        label = _label(sent.job["cell"], labels) + (f" @ {row['host']}" if row.get("host") else "")
        progress.start_cell(label, 0)
        progress.end_cell(row)
        if row["status"] != "ok":
            progress.note(f"{label}: {row['status']}: {row['error']}")

    def _finish(self, result: dict, sent: _Flight, store, run_id: str, session: int) -> dict:
        job = sent.job
        cell = job["cell"]
        row = dict(result["row"])
        row.update(run_id=run_id, session=session, target_acc=job["target_acc"])
        row["shared_host"] = sent.shared
        if job["lost"]:
            row["lost_on"] = ", ".join(dict.fromkeys(job["lost"]))
        if result.get("trace"):
            log = store.write_log(f"{cell.cell_id}-r{cell.repeat}", result["trace"])
            row["error"] = f"{row['error']} (traceback: logs/{log.name})"
        if row.get("status") == "diverged":
            row["error"] = f"loss became NaN or inf in epoch {row['diverged_epoch']}"
        probe = result.get("probe")
        if probe is not None:
            self._record_probe(store, row.get("host"), session, cell, probe)
        peak = _median(probe)
        if peak and isinstance(row.get("gflops"), float) and math.isfinite(row["gflops"]):
            row["roofline"] = row["gflops"] / peak
        row.setdefault("status", "ok")
        row["finished_at"] = measure.now_iso()
        keys = {k: row.get(k) for k in ("run_id", "cell_id", "part", *AXES, "repeat")}
        store.append_cell(row, [{**keys, **c} for c in result.get("curves", [])])
        return row

    # -- env.json -----------------------------------------------------------------------------

    def _record_hosts(self, store, session: int) -> None:
        env = store.read_env()
        hosts = env.get("hosts") or {}
        for host in self.hosts.values():
            entry = hosts.setdefault(host.name, {})
            entry.update(host.facts)
            entry.setdefault("matmul", {})
        schedulers = [s for s in env.get("schedulers") or [] if s.get("session") != session]
        schedulers.append({"session": session, **self.describe()})
        store.update_env(hosts=hosts, schedulers=schedulers)

    def _record_probe(self, store, host: str | None, session: int, cell, probe) -> None:
        if host is None:
            return
        env = store.read_env()
        hosts = env.get("hosts") or {}
        entry = hosts.setdefault(host, {"matmul": {}})
        by_session = entry.setdefault("matmul", {}).setdefault(str(session), {})
        rates = by_session.setdefault(str(cell.threads), {})
        if cell.dtype in rates:
            return
        rates[cell.dtype] = probe
        store.update_env(hosts=hosts)

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=10)
            self.client = None
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)
            self.cluster = None


def worker_devices() -> dict | None:
    """Run on a Dask worker: what torch sees there (in a short process of its own), or None
    without torch."""
    from .session import _torch_devices

    return _torch_devices()


def connect(text: str, note, cells=()) -> DaskExecutor:
    """Parse `--scheduler`, connect, check every worker's code and resources; UsageError (exit
    2) before anything runs when the scheduler cannot be reached or refuses."""
    executor = DaskExecutor(parse_scheduler(text), note).connect()
    try:
        executor.check_devices(cells)
    except BaseException:
        executor.close()
        raise
    return executor


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


def _address_host(address: str | None) -> str | None:
    if not address:
        return None
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


def _label(cell, labels) -> str:
    return (labels or {}).get(cell) or cell.label()


def _median(probe):
    if isinstance(probe, dict):
        probe = probe.get("median")
    return probe if isinstance(probe, float) and math.isfinite(probe) and probe > 0 else None


# -- the Dask worker side -------------------------------------------------------------------------

_STATE_LOCK = threading.Lock()
_DATA: dict[tuple, object] = {}  # data key -> DataRef, or the dataset's error message
_WORKERS: dict[tuple, object] = {}  # (backend, threads) -> bench.worker.Worker
_UNAVAILABLE: dict[str, str] = {}  # backend -> why it cannot run on this host
_PROBES: dict[tuple, object] = {}  # (probe tag, threads, dtype) -> matmul probe


def _scratch() -> Path:
    """A folder on this Dask worker for prepared data and the bench workers' logs (inside
    the Dask worker's own local directory, which Dask removes when the worker closes)."""
    try:
        from distributed import get_worker

        base = Path(get_worker().local_directory)
    except (ImportError, ValueError):
        import tempfile

        base = Path(tempfile.gettempdir())
    folder = base / f"mlp-bench-{os.getpid()}"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    return folder


def _data(cell, data_dir):
    """The cell's dataset, loaded on this host once per Dask worker process: a DataRef, or
    the dataset's error message."""
    from .datasets import DatasetError, load_dataset
    from .worker import DataRef, save_arrays

    key = (cell.dataset, cell.preprocess, cell.split_seed, cell.test_size, cell.dtype, data_dir)
    if key in _DATA:
        return _DATA[key]
    try:
        ds = load_dataset(
            cell.dataset,
            preprocess=cell.preprocess,
            seed=cell.split_seed,
            data_dir=data_dir,
            test_size=cell.test_size,
            dtype=cell.dtype,
        )
    except (DatasetError, ValueError) as exc:
        _DATA[key] = str(exc).strip().splitlines()[0]
        return _DATA[key]
    folder = _scratch() / f"data-{len(_DATA)}"
    save_arrays(folder, ds.X_train, ds.Y_train, ds.X_test, ds.Y_test)
    _DATA[key] = DataRef(str(folder), ds.n_train, ds.n_test, ds.n_features, ds.n_classes)
    return _DATA[key]


def _alive(worker) -> bool:
    alive = getattr(worker, "alive", None)
    return alive() if alive is not None else worker.process.is_alive()


def _bench_worker(backend: str | None, threads: int):
    """This host's worker process for `backend` (None: the matmul probe), started once."""
    from .worker import Worker, WorkerDied, WorkerTimeout

    key = (backend, threads)
    worker = _WORKERS.get(key)
    if worker is not None and _alive(worker):
        return worker
    log = _scratch() / "logs" / f"worker-{backend or 'probe'}-t{threads}.log"
    worker = Worker(backend, threads, str(log))
    try:
        info = worker.wait_ready(measure.Deadline(600.0))
    except (WorkerDied, WorkerTimeout) as exc:
        worker.kill()
        raise WorkerDied(f"{backend} worker did not start: {exc or 'timed out'}") from None
    if info.get("unavailable"):
        worker.stop()
        _UNAVAILABLE[backend] = info["unavailable"]
        raise WorkerDied(info["unavailable"])
    _WORKERS[key] = worker
    return worker


def _drop(backend, threads) -> None:
    worker = _WORKERS.pop((backend, threads), None)
    if worker is not None:
        worker.kill()


def _stop_all() -> None:
    for key in list(_WORKERS):
        worker = _WORKERS.pop(key)
        with contextlib.suppress(Exception):
            worker.stop(timeout=2.0)


def _probe(tag: str, threads: int, dtype: str):
    """The matmul peak on this host for `threads` and `dtype`, once per run session."""
    from .worker import WorkerDied, WorkerTimeout

    key = (tag, threads, dtype)
    if key not in _PROBES:
        try:
            worker = _bench_worker(None, threads)
            worker.send("matmul", dtype)
            message = worker.receive(measure.Deadline(120.0))
            _PROBES[key] = message[1] if message[0] == "value" else None
        except (WorkerDied, WorkerTimeout):
            _drop(None, threads)
            _PROBES[key] = None
    return _PROBES[key]


def _cancelled(key) -> bool:
    """Whether the client no longer wants task `key` (cancelled, or the client is gone)."""
    try:
        from distributed import get_worker

        ts = get_worker().state.tasks.get(key)
    except Exception:
        return False
    return ts is None or ts.state in ("cancelled", "released", "forgotten")


def _current() -> tuple[str | None, object]:
    """(this Dask worker's address, the running task's key); (None, None) outside Dask."""
    try:
        from distributed import get_worker

        worker = get_worker()
        return worker.address, worker.get_current_task()
    except Exception:
        return None, None


def run_cell_task(job: dict) -> dict:
    """The Dask task of one cell: {"row", "curves", "trace", "probe", "host"}, or
    {"refused": why} when this worker's code differs from the client's."""
    host = socket.gethostname()
    address, key = _current()
    mine = identity()
    if not same_code(job["code"], mine):
        return {
            "refused": f"Dask worker {address} on {host} runs {_describe_code(mine)}, not "
            f"{_describe_code(job['code'])}"
        }
    with _STATE_LOCK:  # one cell at a time per Dask worker process, whatever its threads
        return _run_cell_here(job, host, key)


def _run_cell_here(job: dict, host: str, key=None) -> dict:
    from .sweep import FULL_BATCH
    from .worker import WorkerDied, WorkerTimeout

    cell = job["cell"]
    row = {**cell.row(), "host": host, "started_at": measure.now_iso()}
    out = {"row": row, "curves": [], "trace": None, "probe": None, "host": host}
    ref = _data(cell, job["data_dir"])
    if isinstance(ref, str):
        row.update(status="error", error=f"{host}: {ref}")
        return out
    if cell.batch_size == FULL_BATCH:
        cell = dataclasses.replace(cell, batch_size=ref.n_train)
        row["batch_size"] = ref.n_train
    row.update(
        n_train=ref.n_train,
        n_test=ref.n_test,
        n_features=ref.n_features,
        n_classes=ref.n_classes,
        device=cell.spec(ref.n_features, ref.n_classes).device,
    )
    if cell.backend in _UNAVAILABLE:
        row.update(status="skipped", error=f"{host}: {_UNAVAILABLE[cell.backend]}")
        return out
    out["probe"] = _probe(job["probe_tag"], cell.threads, cell.dtype)
    try:
        worker = _bench_worker(cell.backend, cell.threads)
    except WorkerDied as exc:
        status = "skipped" if cell.backend in _UNAVAILABLE else "error"
        row.update(status=status, error=f"{host}: {exc}")
        return out
    row["threads_effective"] = worker.info["threads_effective"]
    payload = {"cell": cell, "data": ref, "target_acc": job["target_acc"]}
    deadline = measure.Deadline(job["timeout"])
    check = measure.Deadline(CANCEL_CHECK_S)
    try:
        worker.send("cell", payload)
        while True:
            if check.expired():  # the client cancelled it (Ctrl-C) or is gone: stop the cell
                check = measure.Deadline(CANCEL_CHECK_S)
                if key is not None and _cancelled(key):
                    _drop(cell.backend, cell.threads)
                    row.update(status="error", error="cancelled")
                    return out
            try:
                message = worker.receive(measure.Deadline(_poll_s(deadline)))
            except WorkerTimeout:
                if deadline.expired():
                    raise
                continue
            if message[0] == "epoch":
                out["curves"].append(message[1])
            elif message[0] == "done":
                row.update(message[1]["row"])
                row["host"] = host
                out["curves"] = message[1]["curves"]
                return out
            elif message[0] == "failed":
                _, text, trace = message
                row.update(status="error", error=f"{host}: {text}")
                out["trace"] = trace
                return out
    except WorkerTimeout:
        _drop(cell.backend, cell.threads)
        row.update(status="timeout", error=f"stopped after {job['timeout']:g} s (--timeout)")
    except WorkerDied as exc:
        _drop(cell.backend, cell.threads)
        row.update(status="error", error=f"{host}: {exc}")
    return out


def _poll_s(deadline) -> float:
    remaining = deadline.remaining()
    return CANCEL_CHECK_S if remaining is None else max(0.0, min(CANCEL_CHECK_S, remaining))


import atexit  # noqa: E402  (the bench workers of a Dask worker stop with it)

atexit.register(_stop_all)
