"""The yardstick for torch on a GPU: the training loop a PyTorch user writes when the data fits
on the device, and the `torch` backend driven as `bench run` drives it, on the same network,
data and batch size.

The plain loop: the tensors are sent to the device once, each epoch is a `torch.randperm` on
the device and one `index_select` of X and the labels, batches are slices of those,
`nn.Sequential` of `nn.Linear` + ReLU, `torch.optim.SGD`, `CrossEntropyLoss` on class indices,
and the epoch ends with one transfer of its loss to the host, so the clock stops only when the
device has finished. Float32 matrix products are full float32
(`torch.set_float32_matmul_precision("highest")`) unless `tf32`, as the backend's.

`bench run`'s torch cells should come within 1.15x of it at batch 256 and above; the
harness's own cost (the order sent each epoch, one gather, per-batch losses) is what the ratio
shows. `plain_torch_epochs(...)` and `harness_epochs(...)` return the seconds of every epoch
(the first included: it pays for cuBLAS handles and the allocator's first blocks); scripts/
gpu-check imports the first, tests/benchmarks/test_plain_torch_overhead.py times both.

torch is imported inside the functions: importing this module needs NumPy only.
"""

from __future__ import annotations

import numpy as np

from bench.worker.measure import Stopwatch

LR = 0.01


def synthetic(n: int, n_in: int = 784, n_out: int = 10, seed: int = 0):
    """n samples of standard normal features and one-hot targets, float32."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in), dtype=np.float32)
    Y = np.eye(n_out, dtype=np.float32)[rng.integers(0, n_out, n)]
    return X, Y


def mlp_spec(layer_sizes, device, tf32=False, lr=LR):
    """The backend's spec for the plain loop's network: ReLU, softmax cross-entropy, SGD."""
    from impls import MLPSpec

    return MLPSpec(
        tuple(layer_sizes), loss="cce", optimizer="sgd", lr=lr, dtype="float32",
        device=device, tf32=tf32,
    )  # fmt: skip


def plain_torch_loop(
    X, Y, layer_sizes, batch_size, device="cpu", params=None, tf32=False, lr=LR, seed=0,
    gather="epoch",
):  # fmt: skip
    """A function running one epoch of the plain loop per call and returning the mean of its
    batches' losses. gather="epoch": the epoch's samples gathered once, batches are slices
    of them (as the torch backend does); "batch": each batch indexes the data with its slice
    of the permutation (X[index], the other way plain loops are written).

    X (n, n_in) float32 and one-hot Y (n, n_out) are moved to `device` once, here. `params`
    ([(W (n_in, n_out), b), ...], e.g. `impls.init_params`) sets the initial weights, else
    PyTorch's own initialisation (seeded with `seed`).
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    device = torch.device(device)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(layer_sizes) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers).to(device)
    if params is not None:
        with torch.no_grad():
            for linear, (W, b) in zip([m for m in net if isinstance(m, nn.Linear)], params):
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(np.asarray(b)))
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    Xd = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)
    yd = torch.from_numpy(np.asarray(Y).argmax(axis=1)).to(device)
    n = Xd.shape[0]

    def epoch() -> float:
        perm = torch.randperm(n, device=device)
        if gather == "epoch":
            Xs, ys = Xd.index_select(0, perm), yd.index_select(0, perm)
        losses = []
        for start in range(0, n, batch_size):
            if gather == "epoch":
                xb, yb = Xs[start : start + batch_size], ys[start : start + batch_size]
            else:
                index = perm[start : start + batch_size]
                xb, yb = Xd[index], yd[index]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        # one transfer to the host, which waits for the device to finish the epoch
        return torch.stack(losses).mean().item()

    return epoch


def harness_loop(
    X, Y, layer_sizes, batch_size, device="cpu", params=None, tf32=False, lr=LR, seed=0,
    backend="torch",
):  # fmt: skip
    """A function running one epoch of `backend` per call as `bench run` drives it: the data
    staged once (here), each epoch a new permutation made on the host and
    `train_epoch(data, batch_size, order)`."""
    from impls import init_params, make_model

    spec = mlp_spec(layer_sizes, device, tf32, lr)
    model = make_model(backend, spec, init_params(spec, seed=seed) if params is None else params)
    data = model.stage(X, Y)
    rng = np.random.default_rng(seed + 1)

    def epoch() -> float:
        return model.train_epoch(data, batch_size, rng.permutation(data.n))

    return epoch


def _timed_epochs(epoch, epochs: int) -> list[float]:
    seconds = []
    for _ in range(epochs):
        with Stopwatch() as watch:
            epoch()
        seconds.append(watch.seconds)
    return seconds


def plain_torch_epochs(
    sizes, n: int, batch_size: int, epochs: int, device: str = "cpu", lr: float = LR, seed=0,
    *, data=None, params=None, tf32=False, gather="epoch",
) -> list[float]:  # fmt: skip
    """Seconds of each of `epochs` epochs of the plain loop (`plain_torch_loop`) for the ReLU
    network `sizes` (inputs, hidden..., classes) on `device`, float32: on `data` (X, one-hot
    Y) if given, else on `n` synthetic samples."""
    X, Y = synthetic(n, sizes[0], sizes[-1], seed) if data is None else data
    loop = plain_torch_loop(X, Y, sizes, batch_size, device, params, tf32, lr, seed, gather)
    return _timed_epochs(loop, epochs)


def harness_epochs(
    sizes, n: int, batch_size: int, epochs: int, device: str = "cpu", lr: float = LR, seed=0,
    *, data=None, params=None, tf32=False, backend="torch",
) -> list[float]:  # fmt: skip
    """Seconds of each of `epochs` epochs of `backend` through the harness's contract
    (`harness_loop`), with the same arguments as `plain_torch_epochs`."""
    X, Y = synthetic(n, sizes[0], sizes[-1], seed) if data is None else data
    loop = harness_loop(X, Y, sizes, batch_size, device, params, tf32, lr, seed, backend)
    return _timed_epochs(loop, epochs)
