"""Ctrl-C and SIGTERM during a run: raised once in the main thread, held while a cell is
written or the run folder closed, so that what is on disk always agrees with env.json."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run."""


class Interrupts:
    """SIGINT and SIGTERM raise Interrupted in the main thread, once: a second Ctrl-C while
    the run is stopping is said and ignored, so that env.json is always closed."""

    def __init__(self):
        self.raised = False
        self.holding = False  # writing a cell or closing the folder: an interrupt waits
        self.pending = None

    def _handle(self, signum, frame):
        if self.raised:
            print("still stopping: saving the run folder", file=sys.stderr, flush=True)
        elif self.holding:
            self.pending = signal.Signals(signum).name
        else:
            self.raised = True
            raise Interrupted(signal.Signals(signum).name)

    @contextlib.contextmanager
    def hold(self, closing: bool = False):
        """Interrupts wait until the block is done: then they are raised, or, while the run
        folder is being closed (`closing`), only said."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            pending, self.pending = self.pending, None
            if pending and closing:
                print("still stopping: saving the run folder", file=sys.stderr, flush=True)
            elif pending and not self.raised:
                self.raised = True
                raise Interrupted(pending)

    @contextlib.contextmanager
    def active(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only; there the caller handles Ctrl-C
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, self._handle)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
