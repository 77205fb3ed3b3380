"""The paper's toy network (Sec. 4.2): conv3x3 (6 channels) -> ReLU or LIF -> avg-pool -> FC."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..neurons import LIF
from ..spec import NeuronSpec
from ..surrogate import Surrogate
from .base import SpikingNet

__all__ = ["ToyCNN"]


class ToyCNN(SpikingNet):
    """28x28x1 MNIST classifier whose first layer has 1*6*3*3 = 54 weights (footnote 3)."""

    def __init__(
        self,
        num_classes: int = 10,
        mode: str = "snn",
        spec: NeuronSpec | None = None,
        surrogate: Surrogate | None = None,
        time_steps: int = 4,
        width: int = 6,
        in_channels: int = 1,
        image_size: int = 28,
    ) -> None:
        super().__init__(time_steps, mode, spec, surrogate)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.Identity()
        self.act1 = self.act()
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(width * (image_size // 2) ** 2, num_classes)

    def body(self, c: torch.Tensor) -> torch.Tensor:
        return self.head(self.act1(c))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """Average pooling then the FC layer: linear in ``z``."""
        return self.fc(self.pool(z).flatten(1))

    def act_then_linear(
        self,
    ) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]] | None:
        plain = (
            isinstance(self.bn1, nn.Identity)
            and isinstance(self.act1, LIF | nn.ReLU)
            and isinstance(self.pool, nn.AvgPool2d)
        )
        return (self.act1, self.head) if plain else None
