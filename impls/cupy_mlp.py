"""`cupy`: numpy-vec's network on an NVIDIA GPU. The same source, `impls.core` through
`NumpyVecMLP`, with CuPy arrays in place of NumPy ones: nothing here computes."""

from __future__ import annotations

import cupy

from .numpy_vec import NumpyVecMLP


class CupyMLP(NumpyVecMLP):
    """numpy-vec on the CUDA device `spec.device` ("cuda" is device 0).

    Parameters, optimiser state and staged data live on the device; each epoch's order is
    applied there (`HandWrittenMLP._train_staged`) and the epoch ends when its summed loss
    reaches the host. `spec.tf32` is CuPy's CUPY_TF32 switch, read when CuPy is imported: the
    harness starts a worker with it set for such cells; here it is only checked.
    """

    backend = "cupy"
    devices = ("cuda",)

    def __init__(self, spec, params, adam_epsilon_on: str = "v_hat"):
        count = cupy.cuda.runtime.getDeviceCount()  # raises CUDARuntimeError without a driver
        if spec.device_kind == "cuda" and spec.device_index >= count:
            raise ValueError(
                f"device {spec.device!r} was asked for but CuPy sees {count} CUDA device"
                f"{'' if count == 1 else 's'}"
            )
        if spec.tf32 != tf32_enabled():
            raise ValueError(
                f"tf32={spec.tf32} was asked for but this process imported CuPy with "
                f"CUPY_TF32={'1' if tf32_enabled() else '0'}: set it before CuPy is imported"
            )
        self.cuda_device = cupy.cuda.Device(spec.device_index)
        self.cuda_device.use()  # this thread's current device: every array below goes there
        super().__init__(spec, params, adam_epsilon_on=adam_epsilon_on, xp=cupy)


def tf32_enabled() -> bool:
    import os

    return os.environ.get("CUPY_TF32", "0") == "1"
