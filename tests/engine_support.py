"""Shared by the engine tests: a tiny spiking network config and a learnable toy dataset."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from dspike.engine import (
    DataConfig,
    ModelConfig,
    NullTracker,
    OptimConfig,
    RunConfig,
    SurrogateConfig,
    TrainConfig,
)


def toy_config(
    checkpoint: str | Path = "",
    *,
    epochs: int = 2,
    surrogate: str = "dspike",
    mode: str = "snn",
    time_steps: int = 2,
    lr: float = 0.1,
    **run: object,
) -> TrainConfig:
    """ToyCNN (width 4) on 1x8x8 inputs, 2 classes, batch 16, no worker processes."""
    return TrainConfig(
        model=ModelConfig(
            name="toy_cnn",
            mode=mode,
            time_steps=time_steps,
            num_classes=2,
            options={"width": 4, "image_size": 8, "in_channels": 1},
        ),
        surrogate=SurrogateConfig(name=surrogate, fdg_batch_size=8),
        optim=OptimConfig(lr=lr),
        data=DataConfig(batch_size=16, workers=0),
        run=RunConfig(epochs=epochs, checkpoint=str(checkpoint), progress=False, **run),
    )


def replace(config: TrainConfig, group: str, **values: object) -> TrainConfig:
    """``config`` with some fields of one group changed."""
    return dataclasses.replace(
        config, **{group: dataclasses.replace(getattr(config, group), **values)}
    )


def toy_data(n_train: int = 96, n_test: int = 64, seed: int = 0):
    """Random 1x8x8 images labelled by the sign of their mean: easy to learn."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    return TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])


class Flipped(Dataset):
    """``base`` (2 classes) with every label swapped once ``on`` is set: test accuracy falls."""

    def __init__(self, base: Dataset, on: bool = False) -> None:
        self.base, self.on = base, on

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return x, (1 - y if self.on else y)


class FlipAfter(NullTracker):
    """Sets ``data.on`` once epoch ``epoch``'s metrics arrive, before that epoch's checkpoint."""

    def __init__(self, data: Flipped, epoch: int) -> None:
        self.data, self.epoch = data, epoch

    def log_metrics(self, metrics, step: int) -> None:
        if step == self.epoch:
            self.data.on = True


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Bit-identical state_dicts."""
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread: on a shared 2-core machine, 2 threads wait on each other ~80x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
