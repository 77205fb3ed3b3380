"""Dspike (Eq. 11-12) as an snnTorch ``spike_grad``, with a temperature saved in the model.

``snn.Leaky(beta=0.25, threshold=0.5, spike_grad=Dspike(1.0), reset_mechanism="zero")``:
snnTorch's neurons fire ``spike_grad(mem - threshold)``, which is dspike's ``v = u - V_th``
(:mod:`dspike.surrogate`), so the forward spike is ``v > 0`` (snnTorch's convention and
dspike's) and the backward pass is :func:`dspike.surrogate.dspike_grad` of that ``v``: non-zero
only in Eq. (12)'s window ``|u - V_th| <= V_th``, where V_th is the neuron's ``threshold``
(followed at every call: per-neuron and learnt thresholds too; see
:mod:`dspike.integrations.base`). snnTorch detaches its reset, so such a Leaky is dspike's LIF
with ``detach_reset=True`` and ``tau = beta``.
"""

from __future__ import annotations

import torch

from . import _missing
from .base import DspikeModule

try:
    import snntorch  # noqa: F401  (the module is for snnTorch models; fail early without it)
except ImportError as error:
    raise ImportError(_missing("snntorch")) from error

__all__ = ["Dspike"]


class Dspike(DspikeModule):
    """snnTorch ``spike_grad`` equal to :class:`dspike.surrogate.Dspike` (Eq. 11-12).

    Called on ``mem - threshold``: Heaviside ``v > 0`` forward, Eq. (12)'s derivative backward.
    ``temperature`` (b > 0) may be set at any time and is the buffer ``b`` of ``state_dict``;
    ``v_threshold`` defaults to the neuron's ``threshold``.
    """

    framework = "snnTorch"
    threshold_attr = "threshold"
    fires_at_threshold = False

    def __init__(self, temperature: float = 1.0, v_threshold: float | None = None) -> None:
        super().__init__(temperature, v_threshold)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.spike(v)
