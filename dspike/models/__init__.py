"""The paper's networks as ANN/SNN twins; :func:`build_model` is the one entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..data.registry import DATASETS
from ..spec import NeuronSpec
from ..surrogate import Surrogate
from .base import MODES, SpikingNet
from .resnet import ResNet, resnet18, resnet19, resnet34
from .toy import ToyCNN
from .vgg import VGG16

__all__ = [
    "MODELS",
    "MODES",
    "PAPER_DATASET",
    "PAPER_INPUT",
    "VGG16",
    "NeuronSpec",
    "ResNet",
    "SpikingNet",
    "ToyCNN",
    "build_model",
]

MODELS: dict[str, Callable[..., SpikingNet]] = {
    "toy_cnn": ToyCNN,
    "resnet18": resnet18,
    "resnet19": resnet19,
    "resnet34": resnet34,
    "vgg16": VGG16,
}

# The dataset each network was built for in the paper; PAPER_INPUT: its input (C, H, W).
PAPER_DATASET = {
    "toy_cnn": "mnist",
    "resnet18": "cifar10",
    "resnet19": "cifar10",
    "resnet34": "imagenet",
    "vgg16": "imagenet",
}
PAPER_INPUT = {name: DATASETS[dataset].shape for name, dataset in PAPER_DATASET.items()}


def build_model(
    name: str,
    num_classes: int,
    mode: str = "snn",
    time_steps: int = 6,
    surrogate: Surrogate | None = None,
    spec: NeuronSpec | None = None,
    **options: Any,
) -> SpikingNet:
    """Build network ``name`` as an SNN (``mode="snn"``) or its ANN twin (``mode="ann"``).

    ``spec`` holds the LIF and tdBN constants (:class:`dspike.spec.NeuronSpec`; its
    ``backend`` is how every LIF runs). ``options`` go to the network's constructor (e.g.
    ``width``, ``image_size``, ``in_channels``, ``head``).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return MODELS[name](num_classes=num_classes, mode=mode, spec=spec, surrogate=surrogate,
                        time_steps=time_steps, **options)  # fmt: skip
