"""The machines of a run's Dask cluster, as the client sees them: which Dask workers take
cells (alive, offering the `bench` resource, their code the client's), on which host each
runs, which have left, and where cells on a GPU may go."""

from __future__ import annotations

import dataclasses

from bench.cluster.identity import describe_code, identity, same_code
from bench.errors import UsageError
from bench.worker import devices, measure

RESOURCE = "bench"  # the Dask worker resource each cell asks one unit of
LOST_AFTER_S = 3.0  # a worker (or the scheduler) silent this long has left


@dataclasses.dataclass
class Host:
    """One machine of the cluster, as env.json's `hosts` records it."""

    name: str
    facts: dict
    workers: list = dataclasses.field(default_factory=list)  # Dask worker addresses seen

    def slots(self, live) -> int:
        """Its Dask worker processes alive now that take cells: cells it runs at once."""
        return sum(1 for address in self.workers if address in live)


class Hosts:
    """The cluster's machines and their Dask workers, checked as they appear."""

    def __init__(self, note):
        self.note = note
        self.hosts: dict[str, Host] = {}
        self.by_address: dict[str, str] = {}  # Dask worker address -> host name (checked)
        self.refused: dict[str, str] = {}  # Dask worker address -> why it gets no cells
        self.cuda_hosts: set[str] | None = None  # hosts where torch sees CUDA (when asked)
        self.missing: dict = {}  # address -> Stopwatch since the scheduler omits it

    def new(self, info: dict) -> list[str]:
        """The addresses in the scheduler's worker list `info` not seen before."""
        return [a for a in info if a not in self.by_address and a not in self.refused]

    def admit(self, info: dict, facts: dict) -> dict[str, str]:
        """Check the new workers of `info` by their `facts` (bench.cluster.identity's
        worker_facts, or the exception asking raised); return the workers that take cells
        now, {address: host}."""
        mine = identity()
        for address in self.new(info):
            f = facts.get(address)
            if isinstance(f, Exception) and not isinstance(f, (OSError, TimeoutError)):
                self._refuse(
                    address,
                    f"Dask worker {address} cannot load this mlp-bench's code "
                    f"({type(f).__name__}: {short_reason(f)})",
                )
                continue
            if not isinstance(f, dict):
                continue  # gone again, or not answering yet: asked again next time
            if not same_code(mine, f["identity"]):
                self._refuse(
                    address,
                    f"Dask worker {address} on {f['identity']['host']} runs "
                    f"{describe_code(f['identity'])}, not {describe_code(mine)}",
                )
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

    def _refuse(self, address: str, why: str, later: bool = False) -> None:
        self.refused[address] = why
        self.note(f"warning: {why}: it gets no {'more ' if later else ''}cells")

    def refuse_later(self, address: str, why: str) -> None:
        """A worker whose code changed since it was checked: it gets no more cells."""
        self._refuse(address, why, later=True)

    def host_of(self, address: str) -> str:
        """The host name of a Dask worker (its address's host where it was never checked)."""
        return self.by_address.get(address) or address.split("://", 1)[-1].rsplit(":", 1)[0]

    def gone(self, address: str, live: dict) -> bool:
        """Whether the Dask worker at `address` has left: missing from the scheduler's list
        for LOST_AFTER_S in a row (a single list can come back empty on a busy machine)."""
        if address in live:
            self.missing.pop(address, None)
            return False
        watch = self.missing.setdefault(address, measure.Stopwatch())
        return watch.elapsed() >= LOST_AFTER_S

    def next_for(self, queue, host: str):
        """The first queued job `host` can run (torch cells on a GPU need a host where torch
        sees one), taken off the queue; None if none."""
        for job in queue:
            if self.fits(job["cell"], host):
                queue.remove(job)
                return job
        return None

    def fits(self, cell, host: str) -> bool:
        if self.cuda_hosts is None or cell.device == "cpu":
            return True
        return host in self.cuda_hosts

    def check_devices(self, client, cells) -> None:
        """With cells on a GPU (`--devices cuda`): ask each host what its GPU libraries see
        (bench.worker.devices; recorded in env.json's hosts as `devices`); those cells go only
        to hosts with CUDA, and a cluster without any is a usage error before anything runs."""
        wanted = sorted({c.device for c in cells if c.device != "cpu"})
        if not wanted:
            return
        found = {}
        for host in self.hosts.values():
            try:
                answer = client.run(worker_devices, workers=host.workers[:1])
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

    def describe(self) -> dict:
        """The hosts' part of env.json's `schedulers` entry."""
        return {
            "hosts": {h.name: list(h.workers) for h in self.hosts.values()},
            "refused": dict(self.refused),
        }


def worker_devices() -> dict:
    """Run on a Dask worker: what its GPU libraries see there (in a short process of its own)."""
    from bench.worker.devices import cuda_devices

    return cuda_devices()


def short_reason(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
