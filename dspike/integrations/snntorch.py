"""Dspike (Eq. 11-12) as an snnTorch ``spike_grad``, with a settable temperature.

``snn.Leaky(beta=0.25, threshold=0.5, spike_grad=Dspike(1.0), reset_mechanism="zero")``:
snnTorch's neurons fire ``spike_grad(mem - threshold)``, which is dspike's ``v = u - V_th``
(:mod:`dspike.surrogate`), so the forward spike is ``v > 0`` and the backward pass is
:func:`dspike.surrogate.dspike_grad` of that ``v``: non-zero only in Eq. (12)'s window
``|u - V_th| <= V_th``. The surrogate cannot see the neuron's threshold: give it the same one,
``Dspike(1.0, v_threshold=1.0)`` for snnTorch's default 1.0 (the default here is the paper's
0.5, :class:`dspike.spec.NeuronSpec`). snnTorch detaches its reset, so such a Leaky is
dspike's LIF with ``detach_reset=True`` and ``tau = beta``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..spec import NeuronSpec
from ..surrogate import Dspike as _Dspike
from ..surrogate import spike
from . import _HoldsDspike, _missing

try:
    import snntorch  # noqa: F401  (the module is for snnTorch models; fail early without it)
except ImportError as error:
    raise ImportError(_missing("snntorch")) from error

__all__ = ["Dspike"]


class Dspike(_HoldsDspike, nn.Module):
    """snnTorch ``spike_grad`` equal to :class:`dspike.surrogate.Dspike` (Eq. 11-12).

    Called on ``mem - threshold``: Heaviside ``v > 0`` forward, Eq. (12)'s derivative backward.
    A module without parameters, so a neuron registers it as its child ``spike_grad``, where
    :func:`dspike.temperature.dspike_surrogates` finds it; ``temperature`` (b > 0) lives in
    :attr:`dspike` and may be set at any time.
    """

    def __init__(
        self, temperature: float = 1.0, v_threshold: float = NeuronSpec.v_threshold
    ) -> None:
        super().__init__()
        self.dspike = _Dspike(temperature, v_threshold)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return spike(v, self.dspike)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:g}"
