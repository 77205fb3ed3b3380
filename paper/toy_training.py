"""The toy study's training loop (Sec. 4.2): the toy CNN on MNIST, gradient from autograd or FDG.

SGD (momentum 0.9, as Sec. 5.2; the toy's optimiser is not stated), learning rate ``lr``
cosine-decayed to 0 over all iterations ("0.01 decayed to 0"), cross-entropy loss.

``gradient="fdg"`` is Table 1's training signal: the first layer's gradient is replaced by
its FDG (Eq. 10, step ``eps``) on the same minibatch; every other parameter (the FC layer)
keeps its exact autograd gradient. A ``callback`` sees every iteration after the gradient
used for the update is in ``.grad`` and before the optimiser step (Fig. 2 compares it with
the FDG there).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from dspike.energy import measure_activity
from dspike.fdg import FIRST_LAYER, fdg
from dspike.models import build_model
from dspike.models.toy import ToyCNN
from dspike.neurons import use_eager_if_short
from dspike.surrogate import Surrogate

__all__ = [
    "PAPER_TOY",
    "Iteration",
    "ToySettings",
    "evaluate",
    "make_toy",
    "sample_shape",
    "train_toy",
]

GradientSource = Literal["autograd", "fdg"]


@dataclass(frozen=True)
class ToySettings:
    """How every toy study trains (Sec. 4.2: lr 0.01 decayed to 0); Fig. 2 and Table 1 share it.

    ``time_steps`` (4) and ``batch_size`` (128) are not stated in the paper; ``chunk_size`` is
    the FDG's number of perturbed copies per batched pass (:func:`dspike.fdg.fdg`).
    """

    batch_size: int = 128
    lr: float = 0.01
    time_steps: int = 4
    num_classes: int = 10
    seed: int = 0
    chunk_size: int | None = None


PAPER_TOY = ToySettings()


@dataclass
class Iteration:
    """What a training callback sees: the model's ``.grad`` holds the update's gradient."""

    epoch: int
    iteration: int
    model: ToyCNN
    inputs: torch.Tensor
    targets: torch.Tensor
    loss: float


def make_toy(
    mode: Literal["snn", "ann"],
    surrogate: Surrogate | None,
    time_steps: int,
    sample_shape: tuple[int, ...],
    num_classes: int = 10,
    seed: int = 0,
) -> ToyCNN:
    """The toy CNN for images of ``sample_shape`` (C, H, W), initialised from ``seed``."""
    torch.manual_seed(seed)
    channels, size = sample_shape[0], sample_shape[-1]
    model = build_model("toy_cnn", num_classes, mode=mode, time_steps=time_steps,
                        surrogate=surrogate, in_channels=channels, image_size=size)
    assert isinstance(model, ToyCNN)
    return model


def train_toy(
    model: ToyCNN,
    data: Dataset | DataLoader,
    epochs: int,
    *,
    batch_size: int = 128,
    lr: float = 0.01,
    momentum: float = 0.9,
    gradient: GradientSource = "autograd",
    eps: float = 0.1,
    seed: int = 0,
    callback: Callable[[Iteration], None] | None = None,
    chunk_size: int | None = None,
    epoch_start: Callable[[int, ToyCNN], None] | None = None,
) -> pd.DataFrame:
    """Train in place; one row per epoch: ``epoch, loss`` (mean train loss), ``lr``, ``seconds``.

    ``epoch_start(epoch, model)`` runs before each epoch's first iteration (Algorithm 1's place).
    """
    if gradient not in ("autograd", "fdg"):
        raise ValueError(f"gradient must be 'autograd' or 'fdg', got {gradient!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    loader = _loader(data, batch_size, shuffle=True, seed=seed)
    if len(loader) == 0:
        raise ValueError("data is empty")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    total = epochs * len(loader)
    use_eager_if_short(model, total, model.spec)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: 0.5 * (1.0 + math.cos(math.pi * i / total))
    )
    rows = []
    for epoch in range(epochs):
        if epoch_start is not None:
            epoch_start(epoch, model)
        model.train()
        start, losses, lr_now = time.perf_counter(), [], schedule.get_last_lr()[0]
        for i, (x, y) in enumerate(loader):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            value = loss.item()
            if gradient == "fdg":
                model.conv1.weight.grad = fdg(model, FIRST_LAYER, x, y, eps, chunk_size=chunk_size)
            if callback is not None:
                callback(Iteration(epoch, i, model, x, y, value))
            optimizer.step()
            schedule.step()
            losses.append(value)
        rows.append({"epoch": epoch, "loss": sum(losses) / len(losses), "lr": lr_now,
                     "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)


def evaluate(model: torch.nn.Module, data: Dataset | DataLoader, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent, from the evaluation pass the training engine uses
    (:func:`dspike.energy.measure_activity`: eval mode, no gradients, every flag restored)."""
    report = measure_activity(model, _loader(data, batch_size, shuffle=False, seed=0), layers=[])
    if report.samples == 0 or report.correct is None:
        raise ValueError("data is empty")
    return 100.0 * report.correct / report.samples


def sample_shape(data: Dataset | DataLoader) -> tuple[int, ...]:
    """Shape of one input image (C, H, W)."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    return tuple(dataset[0][0].shape)


def _loader(data: Dataset | DataLoader, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)
