"""Running a sweep's cells on a Dask cluster: `python -m bench run ... --scheduler ADDRESS`.

The machine that starts the run keeps the one run folder; each cell is sent to a Dask worker
(`distributed`, the optional extra mlp-bench[dask]) and its CellResult comes back to the run's
Recorder (bench.run.record), which writes it into results.csv and curves.csv as it finishes.
On the Dask worker a cell runs with the function a run on one machine uses
(bench.worker.cell.run_cell): in the project's own worker process for its backend, threads
pinned, one framework per process (bench.cluster.tasks).

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
  `--resume` (with or without --scheduler) runs only the rest. A scheduler that goes away
  mid-run (or a cluster whose workers all left) stops the run the same way (SchedulerLost):
  the cells in flight are not recorded, the run ends with its summary and the resume command.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import re
import time
import uuid

from bench.cluster import hosts as cluster_hosts
from bench.cluster import security
from bench.cluster.hosts import RESOURCE, Hosts, short_reason
from bench.cluster.identity import describe_code, identity, same_code, worker_facts
from bench.cluster.tasks import Refused, run_cell_task
from bench.errors import UsageError
from bench.worker import measure
from bench.worker.cell import ERROR, CellResult

CONNECT_TIMEOUT_S = 15.0  # reaching the scheduler and finding a first worker
MAX_RETRIES = 1  # a cell whose Dask worker died runs once more, on another worker
POLL_S = 0.2  # how often the client looks at its cells in flight and at the workers
NO_WORKERS_S = 120.0  # with cells to run and no worker to take them, the run stops
INSTALL_HINT = 'pip install "mlp-bench[dask]"'
WORKER_COMMAND = "dask worker {address} --nworkers 1 --nthreads 1 --resources bench=1"
# -- the scheduler argument -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SchedulerSpec:
    text: str
    local_workers: int | None = None  # local:N
    address: str | None = None
    tls: security.TlsFiles | None = None  # from the --tls-* options (bench.cluster.security)


_ADDRESS = re.compile(r"^(?:(tcp|tls|inproc|ucx|ws|wss)://)?\[?[A-Za-z0-9_.:-]+\]?(?::\d+)?$")


def parse_scheduler(text: str, tls=None) -> SchedulerSpec:
    """`local:N` (a LocalCluster of N worker processes) or a scheduler address; `tls`: the
    --tls-* options ({"ca_file", "cert", "key"}), checked by bench.cluster.security."""
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
        return SchedulerSpec(text, local_workers=count, tls=security.tls_files(tls))
    if not _ADDRESS.match(text):
        raise UsageError(
            f"--scheduler {text!r} is not a scheduler address: write e.g. tcp://HOST:8786 "
            "(what `dask scheduler` prints), or local:N"
        )
    files = security.tls_files(tls)
    return SchedulerSpec(text, address=security.scheme(text, files), tls=files)


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
class _Flight:
    """A cell sent to one Dask worker."""

    job: dict
    address: str
    shared: bool  # its host had more than one worker taking cells when it was sent
    watch: measure.Stopwatch = dataclasses.field(default_factory=measure.Stopwatch)


class DaskExecutor:
    """A connection to a Dask scheduler that runs a run's cells (bench.run.executors'
    Executor): each cell is one call of bench.worker.cell.run_cell on a Dask worker, and its
    CellResult goes to the run's Recorder.

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
        self.connect_s = 0.0  # starting a LocalCluster, connecting, checking the workers
        self.busy_s = 0.0  # cell-seconds in flight (cells side by side: more than passed)
        self.machines = Hosts(note)  # the cluster's hosts and their workers, as checked
        self._unreachable = None  # Stopwatch since the scheduler last answered

    remote = True  # data and matmul probes happen on each worker's host

    @property
    def phases(self) -> dict:
        """Its part of the run's harness time (bench.run.accounting)."""
        return {"dask_connect_s": self.connect_s}

    # -- connecting ---------------------------------------------------------------------------

    def connect(self) -> DaskExecutor:
        distributed = _import_distributed()
        watch = measure.Stopwatch()
        logging.getLogger("distributed").setLevel(logging.ERROR)
        # a scheduler lost mid-run is said by the run (SchedulerLost), not by Dask's log
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        tls = security.client_security(self.spec.address, self.spec.tls)  # None: Dask's default
        try:
            if self.spec.local_workers is not None:
                self.cluster = distributed.LocalCluster(
                    n_workers=self.spec.local_workers,
                    threads_per_worker=1,
                    processes=True,
                    resources={RESOURCE: 1},
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,
                    security=tls,
                )
                self.client = distributed.Client(
                    self.cluster, timeout=CONNECT_TIMEOUT_S, set_as_default=False, security=tls
                )
            else:
                self.client = distributed.Client(
                    self.spec.address,
                    timeout=CONNECT_TIMEOUT_S,
                    set_as_default=False,
                    security=tls,
                )
        except BaseException as exc:
            self.close()
            if not isinstance(exc, (OSError, TimeoutError)):
                raise
            raise UsageError(
                f"cannot reach the Dask scheduler at {self.spec.text} ({short_reason(exc)}); "
                + security.refused_hint(self.spec.address)
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
                f"{CONNECT_TIMEOUT_S:g} s); start one per machine with: " + self.worker_command()
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
                f"{a} on {f['identity']['host']} runs {describe_code(f['identity'])}"
                if isinstance(f, dict)
                else f"{a} cannot load this mlp-bench's code "
                f"({type(f).__name__}: {short_reason(f)})"
                for a, f in sorted(wrong.items())
            ]
            raise UsageError(
                f"Dask worker{'s' if len(wrong) > 1 else ''} with other code than this "
                f"machine's {describe_code(mine)}: " + "; ".join(lines) + ". Install the "
                "same mlp-bench on every worker (e.g. the same commit of the repository) and "
                "restart them"
            )
        live = self._live(facts)
        if not live:
            raise UsageError(
                f"no Dask worker of {self.spec.text} offers the `{RESOURCE}` resource that each "
                "cell asks for; start the workers with: " + self.worker_command()
            )
        hosts = self.machines.hosts.values()
        for host in hosts:
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
            + ", ".join(f"{h.name} ({h.slots(live)})" for h in hosts)
        )

    def _live(self, facts: dict | None = None) -> dict[str, str]:
        """The Dask workers that take cells now, {address: host}: alive, offering the `bench`
        resource, their code checked (workers seen for the first time are checked here)."""
        info = self._workers()
        new = self.machines.new(info)
        if new and facts is None:
            try:
                facts = self.client.run(worker_facts, workers=new, on_error="return")
            except Exception:
                facts = {}
        return self.machines.admit(info, facts or {})

    def _workers(self) -> dict:
        """The scheduler's list of workers, {address: info}. Raises SchedulerLost when the
        scheduler has stopped answering for LOST_AFTER_S (or the client has closed)."""
        info = None
        if self.client.status == "running":
            try:
                try:
                    answer = self.client.scheduler_info(n_workers=-1)
                except TypeError:  # distributed before 2025: every worker without asking
                    answer = self.client.scheduler_info()
                info = answer.get("workers")
            except Exception:  # the connection is closing under us
                info = None
        if info is not None:
            self._unreachable = None
            return info
        if self.client.status in ("closing", "closed", "failed"):
            raise SchedulerLost(f"the Dask scheduler at {self.spec.text} went away")
        self._unreachable = self._unreachable or measure.Stopwatch()
        if self._unreachable.elapsed() >= cluster_hosts.LOST_AFTER_S:
            raise SchedulerLost(f"the Dask scheduler at {self.spec.text} stopped answering")
        return {}

    def _confirm_scheduler(self) -> None:
        """Wait while the client is not connected (up to LOST_AFTER_S): SchedulerLost when the
        scheduler, not a worker, is what went away."""
        while self.client.status != "running":
            self._workers()
            time.sleep(POLL_S)

    def worker_command(self) -> str:
        """The command that starts a Dask worker for this scheduler (with the TLS flags when
        the scheduler speaks TLS: a worker without them cannot connect)."""
        command = WORKER_COMMAND.format(address=self.spec.address or "ADDRESS")
        if (self.spec.address or "").startswith("tls://"):
            command += " --tls-ca-file CA.pem --tls-cert CERT.pem --tls-key KEY.pem"
        return command

    def describe(self) -> dict:
        """env.json's `schedulers` entry for this session."""
        import distributed

        return {
            "address": self.spec.text,
            "tls": (self.spec.address or "").startswith("tls://") or self.spec.tls is not None,
            "dask": distributed.__version__,
            **self.machines.describe(),
        }

    # -- running ------------------------------------------------------------------------------

    def run(self, cells, job, sink) -> None:
        """Send every cell of `cells` to the cluster, one per free Dask worker, and hand each
        CellResult to `sink` (bench.run.record.Recorder) as it finishes. An interrupt (Ctrl-C)
        or the scheduler's loss (SchedulerLost) stops sending, cancels the cells in flight and
        propagates; those cells are not recorded."""
        self._sink = sink
        mine = identity()
        token = uuid.uuid4().hex[:8]  # keys never meet an earlier session's on the scheduler
        sweep = job.sweep
        queue = collections.deque(
            {
                "key": f"mlp-bench-{token}-{cell.cell_id}-r{cell.repeat}",
                "cell": cell,
                "data_dir": None if sweep.data_dir is None else str(sweep.data_dir),
                "timeout": sweep.timeout,
                "target_acc": sweep.target_acc,
                "timing_budget": sweep.timing_budget,
                "code": mine,
                "probe_tag": job.probe_tag,
                "lost": [],  # hosts whose worker died running it
            }
            for cell in cells
        )
        self._record_hosts()
        flight: dict = {}  # future -> _Flight
        alone = measure.Stopwatch()  # since a worker last lived or a cell was in flight
        try:
            while queue or flight:
                live = self._live()
                known = len(self.machines.hosts)
                for future, sent in list(flight.items()):
                    if self._unreachable is not None:
                        break  # no word from the scheduler: its workers are not lost for that
                    if self.machines.gone(sent.address, live) and not future.done():
                        del flight[future]
                        future.cancel()
                        self._lost(sent, queue)
                busy = {sent.address for sent in flight.values()}
                for address, host in live.items():
                    task = None if address in busy else self.machines.next_for(queue, host)
                    if task is not None:
                        shared = self.machines.hosts[host].slots(live) > 1
                        flight[self._submit(task, address)] = _Flight(task, address, shared)
                if len(self.machines.hosts) != known:
                    self._record_hosts()
                if flight or not queue:
                    alone.restart()
                elif alone.elapsed() > NO_WORKERS_S:
                    raise SchedulerLost(
                        f"no Dask worker of {self.spec.text} has taken cells for "
                        f"{NO_WORKERS_S:g} s: none alive, or none with a device the cells "
                        f"need; start workers, then resume with --scheduler {self.spec.text}"
                    )
                done = [f for f in flight if f.done()]
                if not done:
                    time.sleep(POLL_S)
                    continue
                for future in done:
                    sent = flight.pop(future)
                    self.busy_s += sent.watch.elapsed()
                    result = self._result(future, sent)
                    if result is None:  # its worker died: sent again, or recorded as lost
                        self._lost(sent, queue)
                    elif isinstance(result, Refused):  # its code changed since the check
                        self.machines.refuse_later(sent.address, result.reason)
                        queue.appendleft(sent.job)
                    else:
                        result.shared_host = sent.shared
                        result.lost_on = ", ".join(dict.fromkeys(sent.job["lost"])) or None
                        sink.finished(result)
        finally:
            for sent in flight.values():
                self.busy_s += sent.watch.elapsed()
            if flight:
                with contextlib.suppress(Exception):
                    self.client.cancel(list(flight), force=True)

    def check_devices(self, cells) -> None:
        """Where the cells on a GPU may go (Hosts.check_devices)."""
        self.machines.check_devices(self.client, cells)

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

    def _result(self, future, sent: _Flight):
        """The task's CellResult (or Refused); None when its worker died under it. Raises
        SchedulerLost when the scheduler, not the worker, went away."""
        from distributed import CancelledError
        from distributed.scheduler import KilledWorker

        try:
            return future.result()
        except (KilledWorker, CancelledError):
            self._confirm_scheduler()  # the scheduler's loss cancels every task: said as such
            return None
        except Exception as exc:  # the task itself failed outside the cell (e.g. unpickling)
            self._confirm_scheduler()
            host = self.machines.host_of(sent.address)
            text = f"{host}: the Dask task failed: {type(exc).__name__}: {short_reason(exc)}"
            return CellResult(sent.job["cell"], ERROR, text, host=host)

    def _lost(self, sent: _Flight, queue) -> None:
        """A cell whose worker died: once more on another worker, else an error row."""
        job = sent.job
        job["lost"].append(self.machines.host_of(sent.address))
        label = self._sink.label(job["cell"])
        if len(job["lost"]) <= MAX_RETRIES:
            host = job["lost"][-1]
            self._sink.note(
                f"{label}: its Dask worker on {host} was lost; running it again on another worker"
            )
            queue.appendleft(job)
            return
        hosts = ", ".join(dict.fromkeys(job["lost"]))
        result = CellResult(job["cell"], ERROR, f"worker lost ({hosts})", host=job["lost"][-1])
        result.shared_host, result.lost_on = sent.shared, hosts
        self._sink.finished(result)

    def _record_hosts(self) -> None:
        """The cluster's machines and this session's scheduler, to the run's env.json."""
        hosts = self.machines.hosts.values()
        self._sink.hosts({h.name: h.facts for h in hosts}, self.describe())

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=10)
            self.client = None
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)
            self.cluster = None


class SchedulerLost(KeyboardInterrupt):
    """The cluster can no longer run the cells (its scheduler went away, or no worker takes
    them): the run stops as on Ctrl-C, its finished cells kept, the rest for --resume."""


def connect(text: str, note, cells=(), tls=None) -> DaskExecutor:
    """Parse `--scheduler`, connect, check every worker's code and resources; UsageError (exit
    2) before anything runs when the scheduler cannot be reached or refuses."""
    executor = DaskExecutor(parse_scheduler(text, tls), note).connect()
    try:
        executor.check_devices(cells)
    except BaseException:
        executor.close()
        raise
    return executor
