"""What differs between two runs' machines and software (their env.json), in words.

A time ratio between two runs is only a ratio of the code when everything else is the same:
the machine (CPU, cores, platform), the BLAS, Python and the packages' versions, the thread
counts. `bench compare` names each difference at the top of its output.
"""

from __future__ import annotations

import json

_MACHINE = ("cpu", "cores", "platform", "memory_gib")


def _text(value) -> str:
    if value is None:
        return "unrecorded"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _host(env: dict):
    sessions = [s for s in env.get("sessions") or [] if isinstance(s, dict)]
    hosts = sorted({str(s["host"]) for s in sessions if s.get("host")})
    return ", ".join(hosts) or None


def machine_differs(base: dict, new: dict) -> bool:
    """Whether the two runs ran on different machines (any machine fact or host differs,
    where both recorded it)."""
    b, n = base.get("machine") or {}, new.get("machine") or {}
    facts = [(b.get(k), n.get(k)) for k in _MACHINE] + [(_host(base), _host(new))]
    return any(x is not None and y is not None and x != y for x, y in facts)


def env_differences(base: dict, new: dict) -> list[str]:
    """`machine cpu: A → B`, one line per differing fact (both recorded or one missing)."""
    pairs = []
    b_machine, n_machine = base.get("machine") or {}, new.get("machine") or {}
    for k in _MACHINE:
        pairs.append((f"machine {k}", b_machine.get(k), n_machine.get(k)))
    pairs.append(("host", _host(base), _host(new)))
    for k in ("blas", "python", "threads", "keras_backend"):
        pairs.append((k, base.get(k), new.get(k)))
    b_versions, n_versions = base.get("versions") or {}, new.get("versions") or {}
    for k in sorted(set(b_versions) | set(n_versions)):
        pairs.append((f"{k} version", b_versions.get(k), n_versions.get(k)))
    b_threads, n_threads = base.get("threads_effective"), new.get("threads_effective")
    pairs.append(("threads in effect", b_threads, n_threads))
    return [
        f"{what}: {_text(b)} → {_text(n)}"
        for what, b, n in pairs
        if b != n and not (b is None and n is None)
    ]
