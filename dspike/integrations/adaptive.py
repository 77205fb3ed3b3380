"""Algorithm 1 (Sec. 4.3) at each epoch start of a training loop you write yourself."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fdg import BNMode, LossFn
from ..temperature import TemperatureUpdate, dspike_surrogates, update_temperature

__all__ = ["AdaptiveTemperature"]


class AdaptiveTemperature:
    """Adaptive Dspike temperature for any model: call :meth:`step` at the start of each epoch.

    Each step is one call of :func:`~dspike.temperature.update_temperature`: the FDG (Eq. 10,
    step ``eps``) of the first layer's weight (``param_name``, default
    :func:`~dspike.fdg.first_layer`) on the minibatch given, then ``b``, ``b - delta`` or
    ``b + delta``, whichever Dspike gradient is closest to it in cosine similarity, is set on
    every Dspike surrogate of ``model`` (ours, SpikingJelly's or snnTorch's, see
    :func:`~dspike.temperature.dspike_surrogates`). ``loss_fn(model(inputs), targets)`` must be
    the loss your loop trains on, e.g. cross-entropy of the time-averaged output.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        delta: float = 0.2,
        eps: float = 0.1,
        param_name: str | None = None,
        loss_fn: LossFn = F.cross_entropy,
        bn_mode: BNMode = "train",
    ) -> None:
        if not dspike_surrogates(model):
            raise ValueError("AdaptiveTemperature: the model has no Dspike surrogate")
        self.model, self.delta, self.eps = model, float(delta), float(eps)
        self.param_name, self.loss_fn, self.bn_mode = param_name, loss_fn, bn_mode
        self.history: list[TemperatureUpdate] = []

    @property
    def temperature(self) -> float:
        """The temperature b now set on the model's (first) Dspike surrogate."""
        return dspike_surrogates(self.model)[0].temperature

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> TemperatureUpdate:
        """One update of b on this minibatch; returns it and appends it to :attr:`history`."""
        update = update_temperature(
            self.model, inputs, targets, self.temperature, self.delta, self.eps,
            param_name=self.param_name, loss_fn=self.loss_fn, bn_mode=self.bn_mode,
        )  # fmt: skip
        self.history.append(update)
        return update
