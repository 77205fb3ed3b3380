"""Spiking ResNets: the paper's ResNet-18 (Sec. 5.1), tdBN's ResNet-19 and ResNet-34.

* ``resnet18``: CIFAR ResNet-18 modified after "Bag of Tricks" (He et al. 2019): a stem of
  three 3x3 convs (ResNet-C) and average-pool + 1x1-conv downsampling (ResNet-D); 4 stages of
  2 basic blocks, 64 initial channels doubled per stage.
* ``resnet19``: Zheng et al. (tdBN) CIFAR ResNet-19: a 128-channel 3x3 stem, stages
  128x3 / 256x3 / 512x2; ``head="fc256"`` adds the FC-256 layer of the other public variant.
* ``resnet34``: tdBN's ImageNet ResNet-34 (7x7 stem, stages 3/4/6/3), max-pool replaced by
  average-pool as the paper does for every SNN (Sec. 5).

Residual blocks end ``act(tdBN(conv2(.)) + shortcut)``; the two BNs that meet at the addition
use tdBN's ``alpha_residual``. With ``spec.recompute`` a block keeps only its input for backward
and runs again there (:func:`~dspike.models.base.recomputed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from ..neurons import LIF
from ..spec import NeuronSpec
from ..surrogate import Surrogate
from .base import SpikingNet, recomputed

__all__ = ["ResNet", "resnet18", "resnet19", "resnet34"]

Downsample = Literal["avgpool", "conv"]


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, net: SpikingNet, cin: int, cout: int, stride: int, down: Downsample):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = net.norm(cout)
        self.act1 = net.act()
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = net.norm(cout, residual=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            layers: list[nn.Module] = []
            if down == "avgpool" and stride != 1:
                layers.append(nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False))
            conv_stride = 1 if down == "avgpool" else stride
            layers += [nn.Conv2d(cin, cout, 1, stride=conv_stride, bias=False)]
            layers += [net.norm(cout, residual=True)]
            self.shortcut = nn.Sequential(*layers)
        self.act2 = net.act()
        self.recompute = net.spec.recompute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recompute:
            return recomputed(self, self._forward, x)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        if isinstance(self.act2, LIF):  # it keeps the two summands, not their sum
            return self.act2(out, self.shortcut(x))
        return self.act2(out + self.shortcut(x))


class ResNet(SpikingNet):
    """Configurable spiking/ANN ResNet; ``conv1``+``bn1`` is the encoding layer."""

    def __init__(
        self,
        blocks: Sequence[int],
        channels: Sequence[int],
        strides: Sequence[int],
        num_classes: int,
        mode: str = "snn",
        spec: NeuronSpec | None = None,
        surrogate: Surrogate | None = None,
        time_steps: int = 6,
        stem: Literal["cifar3", "cifar1", "imagenet"] = "cifar3",
        stem_channels: int = 64,
        downsample: Downsample = "avgpool",
        head: Literal["fc", "fc256"] = "fc",
        in_channels: int = 3,
    ) -> None:
        super().__init__(time_steps, mode, spec, surrogate)
        c0 = stem_channels
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, c0, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_channels, c0)
        self.bn1 = self.norm(c0)
        stem_layers: list[nn.Module] = [self.act()]
        if stem == "cifar3":  # ResNet-C: two more 3x3 convs; the last halves the resolution
            for stride in (1, 2):
                stem_layers += [conv3x3(c0, c0, stride), self.norm(c0), self.act()]
        elif stem == "imagenet":
            stem_layers.append(nn.AvgPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem_layers)
        stages, cin = [], c0
        for n, cout, stride in zip(blocks, channels, strides, strict=True):
            layers = []
            for i in range(n):
                layers.append(BasicBlock(self, cin, cout, stride if i == 0 else 1, downsample))
                cin = cout
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        if head == "fc256":
            self.head = nn.Sequential(nn.Linear(cin, 256), self.act(), nn.Linear(256, num_classes))
        else:
            self.head = nn.Linear(cin, num_classes)

    def body(self, c: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(c))).flatten(1))


def resnet18(num_classes: int = 10, width: int = 64, **kw) -> ResNet:
    """The paper's CIFAR ResNet-18 (Sec. 5.1); ``width`` is the initial channel count."""
    w = width
    return ResNet(
        (2, 2, 2, 2),
        (w, 2 * w, 4 * w, 8 * w),
        (1, 2, 2, 2),
        num_classes,
        stem="cifar3",
        stem_channels=w,
        downsample="avgpool",
        **kw,
    )


def resnet19(num_classes: int = 10, width: int = 128, head: str = "fc", **kw) -> ResNet:
    """tdBN's CIFAR ResNet-19: 128x3 / 256x3 / 512x2 (``head="fc256"``: the other variant)."""
    w = width
    return ResNet(
        (3, 3, 2),
        (w, 2 * w, 4 * w),
        (1, 2, 2),
        num_classes,
        stem="cifar1",
        stem_channels=w,
        downsample="conv",
        head=head,
        **kw,
    )


def resnet34(num_classes: int = 1000, width: int = 64, **kw) -> ResNet:
    """tdBN's ImageNet ResNet-34 with average pooling."""
    w = width
    return ResNet(
        (3, 4, 6, 3),
        (w, 2 * w, 4 * w, 8 * w),
        (1, 2, 2, 2),
        num_classes,
        stem="imagenet",
        stem_channels=w,
        downsample="conv",
        **kw,
    )
