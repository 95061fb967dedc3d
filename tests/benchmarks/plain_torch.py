"""The yardstick for torch on a GPU: the training loop a PyTorch user writes when the data fits
on the device. The data is sent there once, each epoch shuffles it there (torch.randperm on the
device, one index per batch), and the epoch ends with one transfer of the summed loss to the
host, so the clock stops only when the device has finished.

`bench run`'s torch cells should come within 1.15x of this at batch 256 and above; the
harness's own cost (the order sent each epoch, one gather, per-batch losses) is what the ratio
shows. Used by tests/benchmarks/test_plain_torch_overhead.py and scripts/gpu-check.
"""

from __future__ import annotations

from bench import measure


def plain_torch_epochs(
    sizes, n: int, batch_size: int, epochs: int, device: str = "cpu", lr: float = 0.01, seed=0
) -> list[float]:
    """Seconds of each of `epochs` epochs of SGD on `n` random samples for the ReLU network
    `sizes` (inputs, hidden..., classes) with softmax cross-entropy, on `device`, float32."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    where = torch.device(device)
    torch.set_float32_matmul_precision("highest")  # full float32, as the harness's cells
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers).to(where)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    X = torch.randn(n, sizes[0], device=where)
    y = torch.randint(0, sizes[-1], (n,), device=where)
    times = []
    for _ in range(epochs):
        with measure.Stopwatch() as watch:
            perm = torch.randperm(n, device=where)
            total = torch.zeros((), device=where)
            for start in range(0, n, batch_size):
                index = perm[start : start + batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(X[index]), y[index])
                loss.backward()
                opt.step()
                total += loss.detach() * index.shape[0]
            (total / n).item()  # the epoch's mean loss on the host: the device has finished
        times.append(watch.seconds)
    return times
