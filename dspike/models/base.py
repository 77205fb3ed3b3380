"""What every network shares: ANN/SNN twinning, time folding and the Eq. (3) readout.

Activations flow as ``[T*B, C, H, W]``: convolutions, BN and pooling run once on time folded
into the batch, and only the LIF recurrence loops over T. A static image ``[B, C, H, W]`` is
the same at every step, so the first conv (+BN) runs once on B images and is broadcast over T;
event frames ``[B, T, C, H, W]`` are folded as they come. The output is the mean over T of the
last (non-spiking) layer, Eq. (3).

The same class builds the ANN (ReLU, plain BN, T=1) and the SNN (LIF, tdBN with alpha*V_th)
with identical parameter names, so an ANN state_dict initialises the SNN and a T=6 SNN
initialises T=4 (Time Inheritance Training, Sec. 4.4) by ``load_state_dict`` alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..neurons import LIF, LIFBackend, check_backend
from ..norm import TdBatchNorm2d
from ..surrogate import Dspike, Surrogate

__all__ = ["NeuronSpec", "SpikingNet"]


@dataclass
class NeuronSpec:
    """Neuron and normalisation choices shared by every layer of one network."""

    mode: Literal["snn", "ann"] = "snn"
    tau: float = 0.25
    v_threshold: float = 0.5
    surrogate: Surrogate = field(default_factory=Dspike)
    detach_reset: bool = False
    alpha: float = 1.0
    # tdBN's alpha for the two BNs that meet at a residual addition (Zheng et al.: 1/sqrt 2).
    alpha_residual: float = 1 / math.sqrt(2)
    tdbn_form: Literal["scale", "init"] = "scale"
    # How every LIF runs (dspike.neurons.lif); set_lif_backend changes it on a built model.
    lif_backend: LIFBackend = "eager"

    def __post_init__(self) -> None:
        if self.mode not in ("snn", "ann"):
            raise ValueError(f"mode must be 'snn' or 'ann', got {self.mode!r}")
        check_backend(self.lif_backend, "lif_backend")


class SpikingNet(nn.Module):
    """Base of every model: subclasses build ``conv1`` and implement :meth:`body`.

    ``conv1`` is the encoding layer (its weight is the FDG's default parameter and the only
    layer that multiplies in the SNN, Sec. 5.4); ``bn1`` follows it (``nn.Identity`` if none).
    """

    conv1: nn.Module
    bn1: nn.Module

    def __init__(self, spec: NeuronSpec, time_steps: int) -> None:
        super().__init__()
        if int(time_steps) < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        self.spec = spec
        self.time_steps = 1 if spec.mode == "ann" else int(time_steps)

    @property
    def is_snn(self) -> bool:
        return self.spec.mode == "snn"

    def act(self) -> nn.Module:
        """A new activation: LIF in the SNN, ReLU in the ANN."""
        s = self.spec
        if not self.is_snn:
            return nn.ReLU(inplace=True)
        return LIF(
            s.tau, s.v_threshold, s.surrogate, s.detach_reset, self.time_steps, s.lif_backend
        )

    def norm(self, channels: int, residual: bool = False) -> nn.Module:
        """tdBN in the SNN, plain BN (scale 1, same parameter names) in the ANN."""
        s = self.spec
        alpha = s.alpha_residual if residual else s.alpha
        if not self.is_snn:
            return TdBatchNorm2d(channels, alpha=1.0, v_threshold=1.0)
        return TdBatchNorm2d(channels, alpha, s.v_threshold, s.tdbn_form)

    def set_time_steps(self, time_steps: int) -> None:
        """Change T in place (Time Inheritance Training); parameters are untouched."""
        if int(time_steps) < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        if not self.is_snn:
            return
        self.time_steps = int(time_steps)
        for m in self.modules():
            if isinstance(m, LIF):
                m.time_steps = self.time_steps

    def fold_input(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Static ``[B,C,H,W]`` stays as is; frames ``[B,T,C,H,W]`` become ``[T*B,C,H,W]``."""
        if x.dim() == 4:
            return x, True
        if x.dim() != 5:
            raise ValueError(
                f"expected [B,C,H,W] images or [B,T,C,H,W] frames, got {list(x.shape)}"
            )
        if self.is_snn and x.shape[1] != self.time_steps:
            raise ValueError(
                f"input has {x.shape[1]} frames but the model runs {self.time_steps} time steps"
            )
        return x.transpose(0, 1).flatten(0, 1), False

    def forward_from_first(self, c: torch.Tensor, static: bool, steps: int) -> torch.Tensor:
        """Everything after ``conv1``, given conv1's output ``c`` on the folded input.

        ``static``: ``c`` is ``[B, ...]`` and is broadcast over ``steps``; otherwise ``c`` is
        already ``[steps*B, ...]``.
        """
        c = self.bn1(c)
        if static and steps > 1:
            c = c.unsqueeze(0).expand(steps, *c.shape).flatten(0, 1)
        return self.body(c).unflatten(0, (steps, -1)).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded, static = self.fold_input(x)
        steps = self.time_steps if static else x.shape[1]
        return self.forward_from_first(self.conv1(folded), static, steps)

    def body(self, c: torch.Tensor) -> torch.Tensor:
        """From the normalised first-layer output ``[T*B, ...]`` to logits ``[T*B, classes]``."""
        raise NotImplementedError

    def act_then_linear(self) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]] | None:
        """``(act, head)`` when everything after ``conv1`` is ``head(act(c))`` with ``act``
        element-wise (LIF or ReLU), ``head`` linear and ``bn1`` the identity; else None.

        The batched FDG (:mod:`dspike.fdg`) then recomputes one activation channel per
        perturbed copy instead of the whole network. A subclass that returns a pair and
        changes :meth:`body` must keep the promise.
        """
        return None
