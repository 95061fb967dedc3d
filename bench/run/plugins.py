"""Users' own backends in a run folder: which source each ran from, and resuming with it.

env.json's `plugins` holds, for every backend of the sweep that is a user's class
(`path/file.py:Class`, `module:Class`, an entry point), the file its class is read from, the
class and a SHA-256 of the file. A resume compares them with the files as they are: results of
two versions of a class never mix in one folder unless the user asks for it.
"""

from __future__ import annotations

from bench.errors import UsageError
from impls.registry import plugin_source

ALLOW_FLAG = "--allow-changed-plugins"


def plugin_sources(cells) -> dict[str, dict]:
    """backend name -> {"file", "class", "sha256"} for each user's backend among `cells`."""
    sources = {}
    for backend in dict.fromkeys(c.backend for c in cells):
        source = plugin_source(backend)
        if source is not None:
            sources[backend] = source
    return sources


def check_unchanged(stored: dict | None, current: dict, allow: bool) -> list[str]:
    """Compare the sources a run folder recorded (`stored`) with the files now (`current`).

    Raises UsageError naming the backend, its file and both hashes when one changed, unless
    `allow`; then returns one warning per changed backend (recorded with the session)."""
    changed = []
    for backend, now in current.items():
        before = (stored or {}).get(backend)
        if before is not None and before.get("sha256") != now["sha256"]:
            changed.append(
                f"backend {backend!r}: {now['file']} changed since the run started "
                f"(sha256 {before.get('sha256')} then, {now['sha256']} now)"
            )
    if changed and not allow:
        raise UsageError(
            "; ".join(changed)
            + ". Its finished cells ran the earlier code: restore that file, start a new run, "
            f"or resume anyway with {ALLOW_FLAG} (the folder then mixes both versions)"
        )
    return [f"{text}; resumed with {ALLOW_FLAG}: results of both versions" for text in changed]
