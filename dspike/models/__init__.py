"""The paper's networks as ANN/SNN twins; :func:`build_model` is the one entry point."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..surrogate import Surrogate
from .base import NeuronSpec, SpikingNet
from .resnet import ResNet, resnet18, resnet19, resnet34
from .toy import ToyCNN
from .vgg import VGG16

__all__ = ["MODELS", "VGG16", "NeuronSpec", "ResNet", "SpikingNet", "ToyCNN", "build_model"]

MODELS: dict[str, Callable[..., SpikingNet]] = {
    "toy_cnn": ToyCNN,
    "resnet18": resnet18,
    "resnet19": resnet19,
    "resnet34": resnet34,
    "vgg16": VGG16,
}

# Input size each network was built for in the paper (C, H, W).
PAPER_INPUT = {
    "toy_cnn": (1, 28, 28),
    "resnet18": (3, 32, 32),
    "resnet19": (3, 32, 32),
    "resnet34": (3, 224, 224),
    "vgg16": (3, 224, 224),
}


def build_model(
    name: str,
    num_classes: int,
    mode: str = "snn",
    time_steps: int = 6,
    surrogate: Surrogate | None = None,
    tau: float = 0.25,
    v_threshold: float = 0.5,
    alpha: float = 1.0,
    alpha_residual: float = 1 / math.sqrt(2),
    tdbn_form: str = "scale",
    detach_reset: bool = False,
    lif_backend: str = "eager",
    **kwargs: Any,
) -> SpikingNet:
    """Build ``name`` as an SNN (``mode="snn"``) or its ANN twin (``mode="ann"``).

    ``lif_backend`` (``"eager"`` or ``"compiled"``) is how every LIF runs
    (:func:`dspike.neurons.lif`). Extra keyword arguments go to the architecture (e.g.
    ``width``, ``image_size``, ``in_channels``, ``head``).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    spec_kw: dict[str, Any] = dict(
        mode=mode,
        tau=tau,
        v_threshold=v_threshold,
        alpha=alpha,
        alpha_residual=alpha_residual,
        tdbn_form=tdbn_form,
        detach_reset=detach_reset,
        lif_backend=lif_backend,
    )
    if surrogate is not None:
        spec_kw["surrogate"] = surrogate
    return MODELS[name](
        num_classes=num_classes, spec=NeuronSpec(**spec_kw), time_steps=time_steps, **kwargs
    )
