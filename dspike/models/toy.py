"""The paper's toy network (Sec. 4.2): conv3x3 (6 channels) -> ReLU or LIF -> avg-pool -> FC."""

from __future__ import annotations

import torch
from torch import nn

from .base import NeuronSpec, SpikingNet

__all__ = ["ToyCNN"]


class ToyCNN(SpikingNet):
    """28x28x1 MNIST classifier whose first layer has 1*6*3*3 = 54 weights (footnote 3)."""

    def __init__(
        self,
        num_classes: int = 10,
        spec: NeuronSpec | None = None,
        time_steps: int = 4,
        width: int = 6,
        in_channels: int = 1,
        image_size: int = 28,
    ) -> None:
        super().__init__(spec or NeuronSpec(), time_steps)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.Identity()
        self.act1 = self.act()
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(width * (image_size // 2) ** 2, num_classes)

    def body(self, c: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act1(c)).flatten(1))
