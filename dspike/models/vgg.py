"""Diet-SNN's VGG-16 (Rathi & Roy 2020) with average pooling, as the paper uses on ImageNet."""

from __future__ import annotations

import torch
from torch import nn

from ..spec import NeuronSpec
from ..surrogate import Surrogate
from .base import SpikingNet

__all__ = ["VGG16"]

_CFG = (64, 64, "A", 128, 128, "A", 256, 256, 256, "A", 512, 512, 512, "A", 512, 512, 512, "A")


class VGG16(SpikingNet):
    """13 conv+tdBN layers in 5 blocks, each closed by 2x2 average pooling, then 3 FC layers.

    ``width`` scales every channel count (64 is the paper's); the two hidden FC layers have
    ``64 * width`` units (4096 at full width).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        mode: str = "snn",
        spec: NeuronSpec | None = None,
        surrogate: Surrogate | None = None,
        time_steps: int = 5,
        width: int = 64,
        image_size: int = 224,
        in_channels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(time_steps, mode, spec, surrogate)
        scale = width / 64
        chans = [c if c == "A" else max(1, int(c * scale)) for c in _CFG]
        self.conv1 = nn.Conv2d(in_channels, chans[0], 3, padding=1, bias=False)
        self.bn1 = self.norm(chans[0])
        layers: list[nn.Module] = [self.act()]
        cin = chans[0]
        for c in chans[1:]:
            if c == "A":
                layers.append(nn.AvgPool2d(2))
            else:
                layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), self.norm(c), self.act()]
                cin = c
        self.features = nn.Sequential(*layers)
        side = image_size // 32
        hidden = 64 * width
        self.classifier = nn.Sequential(
            nn.Linear(cin * side * side, hidden),
            self.act(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            self.act(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def body(self, c: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(c).flatten(1))
