"""Backends that say when each of their epochs starts and ends, plugged in by file path by
tests/test_interleave.py: each appends "NAME PID start|end" to the file named by
$INTERLEAVE_LOG, so that the test sees the order of the epochs across worker processes."""

import os

from impls.numpy_vec import NumpyVecMLP


class _Logged(NumpyVecMLP):
    NAME = ""

    def _say(self, what: str) -> None:
        path = os.environ.get("INTERLEAVE_LOG")
        if path:
            with open(path, "a") as f:  # one short append: whole lines across processes
                f.write(f"{self.NAME} {os.getpid()} {what}\n")

    def train_epoch(self, *args, **kwargs):
        self._say("start")
        loss = super().train_epoch(*args, **kwargs)
        self._say("end")
        return loss


class A(_Logged):
    NAME = "A"


class B(_Logged):
    NAME = "B"


class C(_Logged):
    NAME = "C"
