"""`torch`: the network as PyTorch users write it: nn.Sequential of nn.Linear and torch.optim."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .base import MLPModel, check_params, is_identity

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
# output activation applied to the logits for predictions (and, for mse, before the loss)
OUTPUTS = {
    "softmax": lambda z: torch.softmax(z, dim=-1),
    "sigmoid": torch.sigmoid,
    "linear": lambda z: z,
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
PREDICT_CHUNK = 8192


def _mse_loss(output):
    act = OUTPUTS[output]

    def loss(logits, target):
        return nn.functional.mse_loss(act(logits), target)

    return loss


def _cce_loss(output):
    # CrossEntropyLoss takes logits; with probability targets it is -sum(y log softmax(z)),
    # averaged over the batch.
    return nn.CrossEntropyLoss()


def _bce_loss(output):
    return nn.BCEWithLogitsLoss()  # mean over batch and outputs


LOSSES = {"cce": _cce_loss, "bce": _bce_loss, "mse": _mse_loss}
OPTIMIZERS = {
    "sgd": lambda groups, spec: torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum),
    "adam": lambda groups, spec: torch.optim.Adam(
        groups, lr=spec.lr, betas=spec.betas, eps=spec.eps
    ),
}


class TorchMLP(MLPModel):
    """nn.Sequential of nn.Linear layers trained with torch.optim, loss from the logits.

    Weight decay goes to the weights only (a separate parameter group for the biases), as
    torch.optim's coupled L2 term: grad += λW. `spec.device` ("cpu", "cuda", "cuda:N") places
    the model and each epoch's data. Parameters cross the boundary as NumPy (n_in, n_out)
    matrices; nn.Linear keeps (n_out, n_in), so they are transposed here.
    """

    backend = "torch"

    def __init__(self, spec, params):
        super().__init__(spec, params)
        if spec.device_kind == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if spec.device_index >= count:
                raise ValueError(
                    f"device {spec.device!r} was asked for but torch sees {count} CUDA "
                    f"device{'' if count == 1 else 's'}"
                )
        # Full float32 matrix products unless the spec asks for TF32 (CUDA tensor cores, 10-bit
        # mantissa inputs). A process-wide switch: set for every model built, so a worker's
        # cells never inherit an earlier cell's.
        torch.set_float32_matmul_precision("high" if spec.tf32 else "highest")
        self.device = torch.device(spec.device)
        self.dtype = DTYPES[spec.dtype]
        layers = []
        sizes = spec.layer_sizes
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[spec.activation]())
        self.net = nn.Sequential(*layers).to(device=self.device, dtype=self.dtype)
        self.linears = [m for m in self.net if isinstance(m, nn.Linear)]
        self.set_params(params)
        groups = [
            {"params": [m.weight for m in self.linears], "weight_decay": spec.weight_decay},
            {"params": [m.bias for m in self.linears], "weight_decay": 0.0},
        ]
        self.optimizer = OPTIMIZERS[spec.optimizer](groups, spec)
        self.loss_fn = LOSSES[spec.loss](spec.output)
        self.output = OUTPUTS[spec.output]

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device, non_blocking=True)

    def _stage(self, X, Y):
        """X and the targets as tensors on the model's device, once per cell. The targets are
        class indices where Y is one-hot: CrossEntropyLoss's fast path, the same values."""
        X, Y = super()._stage(X, Y)
        labels = _one_hot_labels(Y) if self.spec.loss == "cce" else None
        return self._tensor(X), self._tensor(Y if labels is None else labels)

    def _train_staged(self, data, batch_size, order):
        """The epoch's order applied where the tensors are (index_select on the device), then
        the epoch; in the order 0..n-1 the staged tensors are used as they are."""
        Xt, Yt = data.X, data.Y
        if order.shape[0] != data.n or not is_identity(order):
            index = torch.from_numpy(np.ascontiguousarray(order)).to(self.device)
            Xt, Yt = Xt.index_select(0, index), Yt.index_select(0, index)
        return self._train_ordered(Xt, Yt, batch_size)

    def _train_ordered(self, Xt, Yt, batch_size):
        """One epoch over tensors already in order. It ends when the batch losses reach the
        host (one transfer), so the device has finished before the caller's clock stops."""
        net, opt, loss_fn = self.net, self.optimizer, self.loss_fn
        net.train()
        n = Xt.shape[0]
        losses = []  # kept on the device and summed once: no extra work or sync per batch
        for start in range(0, n, batch_size):
            xb = Xt[start : start + batch_size]
            yb = Yt[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        per_batch = torch.stack(losses).tolist()  # one transfer from the device
        last = n - batch_size * (len(per_batch) - 1)  # the last batch may be smaller
        return (math.fsum(per_batch[:-1]) * batch_size + per_batch[-1] * last) / n

    def _predict(self, X):
        return self._predict_staged(X)

    def _predict_staged(self, X):
        """The outputs in chunks, each computed where the model is; X is a NumPy array (each
        chunk is sent to the device) or a staged tensor (already there)."""
        self.net.eval()
        out = np.empty((X.shape[0], self.spec.n_outputs), dtype=self.spec.dtype)
        with torch.inference_mode():
            for start in range(0, X.shape[0], PREDICT_CHUNK):
                chunk = X[start : start + PREDICT_CHUNK]
                if isinstance(chunk, np.ndarray):
                    chunk = self._tensor(chunk)
                out[start : start + PREDICT_CHUNK] = self.output(self.net(chunk)).cpu().numpy()
        return out

    def get_params(self):
        with torch.no_grad():
            return [
                (m.weight.detach().cpu().numpy().T.copy(), m.bias.detach().cpu().numpy().copy())
                for m in self.linears
            ]

    def set_params(self, params):
        checked = check_params(self.spec, params, copy=False)
        with torch.no_grad():
            for m, (W, b) in zip(self.linears, checked):
                m.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                m.bias.copy_(torch.from_numpy(b))


def _one_hot_labels(Y: np.ndarray) -> np.ndarray | None:
    """The class index of each row if every row of Y is one-hot (one 1, the rest 0), else None.

    Exactly n nonzero entries, and each row's largest entry equal to 1, make every row one-hot.
    """
    labels = Y.argmax(axis=1)
    if np.count_nonzero(Y) != Y.shape[0] or not (Y[np.arange(Y.shape[0]), labels] == 1).all():
        return None
    return labels
