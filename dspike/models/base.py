"""What every network shares: ANN/SNN twinning, time folding and the Eq. (3) readout.

Activations flow as ``[T*B, C, H, W]``: convolutions, BN and pooling run once on time folded
into the batch, and only the LIF recurrence loops over T. A static image ``[B, C, H, W]`` is
the same at every step, so the first conv (+BN) runs once on B images and is broadcast over T;
event frames ``[B, T, C, H, W]`` are folded as they come. The output is the mean over T of the
last (non-spiking) layer, Eq. (3). In the SNN, autograd keeps the spikes it saves as bytes
(:mod:`dspike.saved_spikes`).

The same class builds the ANN (ReLU, plain BN, T=1) and the SNN (LIF, tdBN with alpha*V_th)
with identical parameter names, so an ANN state_dict initialises the SNN and a T=6 SNN
initialises T=4 (Time Inheritance Training, Sec. 4.4) by ``load_state_dict`` alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..neurons import LIF
from ..norm import TdBatchNorm2d
from ..saved_spikes import spikes_saved_as_bytes
from ..spec import NeuronSpec
from ..surrogate import Dspike, Surrogate

__all__ = ["MODES", "SpikingNet", "recomputed"]

MODES = ("snn", "ann")


@contextlib.contextmanager
def _leaves_no_trace(module: nn.Module) -> Iterator[None]:
    """Undo, on exit, what a forward of ``module`` changes besides its output: its buffers
    (BN running statistics and batch counts) and its LIFs' firing-rate counts."""
    buffers = [(b, b.clone()) for b in module.buffers()]
    lifs = [(m, m._spike_count, m.neuron_steps) for m in module.modules() if isinstance(m, LIF)]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in buffers:
                b.copy_(value)
        for m, count, steps in lifs:
            m._spike_count, m.neuron_steps = count, steps


def recomputed(
    module: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """``forward(x)`` keeping nothing for backward but ``x``; the backward runs it again
    (``torch.utils.checkpoint``), without a second update of ``module``'s running statistics
    or firing-rate counts. The gradients are those of ``forward(x)``."""
    if not torch.is_grad_enabled():
        return forward(x)
    return checkpoint(
        forward,
        x,
        use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), _leaves_no_trace(module)),
    )


class SpikingNet(nn.Module):
    """Base of every model: subclasses build ``conv1`` and implement :meth:`body`.

    ``conv1`` is the encoding layer (its weight is the FDG's default parameter and the only
    layer that multiplies in the SNN, Sec. 5.4); ``bn1`` follows it (``nn.Identity`` if none).

    ``mode`` is ``"snn"`` or ``"ann"``; ``spec`` holds the LIF and tdBN constants of every layer
    (:class:`~dspike.spec.NeuronSpec`); ``surrogate`` is the one surrogate every LIF shares
    (default: Dspike, b = 1, its window at ``spec.v_threshold``).
    """

    conv1: nn.Module
    bn1: nn.Module

    def __init__(
        self,
        time_steps: int,
        mode: str = "snn",
        spec: NeuronSpec | None = None,
        surrogate: Surrogate | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be 'snn' or 'ann', got {mode!r}")
        if int(time_steps) < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        self.mode = mode
        self.spec = spec or NeuronSpec()
        self.surrogate = surrogate or Dspike(v_threshold=self.spec.v_threshold)
        self.time_steps = 1 if mode == "ann" else int(time_steps)
        # Whether autograd keeps the spikes it saves as bytes (dspike.saved_spikes); only the
        # benchmark's comparison turns it off.
        self.spikes_as_bytes = self.is_snn

    @property
    def is_snn(self) -> bool:
        return self.mode == "snn"

    def act(self) -> nn.Module:
        """A new activation: LIF in the SNN, ReLU in the ANN."""
        if not self.is_snn:
            return nn.ReLU(inplace=True)
        return LIF(self.spec, self.surrogate, self.time_steps)

    def norm(self, channels: int, residual: bool = False) -> nn.Module:
        """tdBN in the SNN, plain BN (scale 1, same parameter names) in the ANN."""
        if not self.is_snn:
            return TdBatchNorm2d(channels, alpha=1.0, v_threshold=1.0)
        # The SNN's norms keep their output, which the LIF after them keeps too (dspike.norm).
        return TdBatchNorm2d.from_spec(channels, self.spec, residual, saves_output=True)

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
        with spikes_saved_as_bytes() if self.spikes_as_bytes else contextlib.nullcontext():
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
