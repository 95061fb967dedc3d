"""Running a sweep's cells on a Dask cluster: `python -m bench run ... --scheduler ADDRESS`.

The machine that starts the run keeps the one run folder; each cell is sent to a Dask worker
(`distributed`, the optional extra mlp-bench[dask]) and its result row and curves stream
back into results.csv and curves.csv as it finishes. On the Dask worker a cell runs as it does
locally: in the project's own worker process for its backend (bench.worker.process), threads pinned,
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
import logging
import math
import re
import time
import uuid

from bench.cluster.tasks import (  # noqa: F401 (code_hash, identity: this copy's code, also for callers)
    CANCEL_CHECK_S,
    _describe_code,
    code_hash,
    identity,
    run_cell_task,
    same_code,
    worker_facts,
)
from bench.errors import BenchError, UsageError
from bench.store.schema import AXES
from bench.worker import devices, measure

RESOURCE = "bench"
CONNECT_TIMEOUT_S = 15.0  # reaching the scheduler and finding a first worker
MAX_RETRIES = 1  # a cell whose Dask worker died runs once more, on another worker
POLL_S = 0.2  # how often the client looks at its cells in flight and at the workers
LOST_AFTER_S = 3.0  # a worker missing from the scheduler's list this long has left
NO_WORKERS_S = 120.0  # with cells to run and no worker to take them, the run stops
INSTALL_HINT = 'pip install "mlp-bench[dask]"'
WORKER_COMMAND = "dask worker {address} --nworkers 1 --nthreads 1 --resources bench=1"
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
        """bench.run.runner's steps for a run on Dask: the cells not yet finished go to the
        cluster (data and matmul probe happen on each worker's host). `run` is the runner's
        _Run; this executor becomes its `runner` (closed with it; `finished` holds the cells
        it wrote). `guard` is held around writing each finished cell (an interrupt waits)."""
        from bench.run.progress import Progress, cell_labels

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
        if self.cuda_hosts is None or cell.device == "cpu":
            return True
        return host in self.cuda_hosts

    def check_devices(self, cells) -> None:
        """With cells on a GPU (`--devices cuda`): ask each host what its GPU libraries see
        (bench.worker.devices; recorded in env.json's hosts as `devices`); those cells go only to
        hosts with CUDA, and a cluster without any is a usage error before anything runs."""
        wanted = sorted({c.device for c in cells if c.device != "cpu"})
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
        self.cuda_hosts = {h for h, f in found.items() if f and devices.device_count(f)}
        if not self.cuda_hosts and any(f is not None for f in found.values()):
            raise UsageError(
                f"--devices {wanted[0]}: no host of the Dask cluster has a CUDA device ("
                + "; ".join(f"{h}: {devices.describe(f or {})}" for h, f in found.items())
                + "); use --devices cpu"
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


def worker_devices() -> dict:
    """Run on a Dask worker: what its GPU libraries see there (in a short process of its own)."""
    from bench.worker.devices import cuda_devices

    return cuda_devices()


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
