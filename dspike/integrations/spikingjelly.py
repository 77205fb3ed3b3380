"""Dspike (Eq. 11-12) as a SpikingJelly surrogate, with a temperature saved in the model.

``neuron.LIFNode(surrogate_function=Dspike(1.0))``: SpikingJelly's neurons fire
``surrogate_function(v - v_threshold)``, which is dspike's ``v = u - V_th``
(:mod:`dspike.surrogate`). The forward spike follows SpikingJelly's convention, ``v >= 0``
(its ``heaviside``: a neuron exactly at threshold fires, as its ANN-to-SNN conversion expects);
the backward pass is :func:`dspike.surrogate.dspike_grad` of that ``v``: non-zero only in Eq.
(12)'s window ``|u - V_th| <= V_th``, where V_th is the neuron's ``v_threshold``, followed at
every call (:mod:`dspike.integrations.base`).

SpikingJelly 2.0 runs its CUDA and Triton neuron kernels only for its built-in surrogates; a
neuron with this one runs its PyTorch reference loop instead (one step at a time), and the
first call on a GPU says so once (a ``UserWarning``). Its explicit neuron precision
(``neuron_storage``) and a forced ``SJ_*_CUDA_IMPLEMENTATION`` raise, from SpikingJelly.
"""

from __future__ import annotations

import warnings

import torch

from ..surrogate import Dspike as _Dspike
from . import _missing
from .base import DspikeModule, dspike_spike

try:
    from spikingjelly.activation_based.surrogate import SurrogateFunctionBase
except ImportError as error:
    raise ImportError(_missing("spikingjelly")) from error

__all__ = ["Dspike"]

SLOW_PATH = (
    "dspike.integrations.spikingjelly.Dspike on {device}: SpikingJelly runs its CUDA/Triton "
    "neuron kernels only for its built-in surrogates (Sigmoid, ATan, PiecewiseQuadratic, "
    "PiecewiseExp, SoftSign, SuperSpike, Erf), so neurons with this surrogate run its PyTorch "
    "reference loop, one time step per call: slower on a GPU"
)
_warned: set[str] = set()


def warn_slow_path(device: torch.device) -> bool:
    """Warn, once per device type, that SpikingJelly leaves its fused kernels on ``device``;
    True if it warned now. On the CPU its built-in surrogates run the same reference loop."""
    if device.type == "cpu" or device.type in _warned:
        return False
    _warned.add(device.type)
    warnings.warn(SLOW_PATH.format(device=device.type), UserWarning, stacklevel=3)
    return True


class Dspike(DspikeModule, SurrogateFunctionBase):
    """SpikingJelly surrogate equal to :class:`dspike.surrogate.Dspike` (Eq. 11-12).

    ``spiking=True``: Heaviside ``v >= 0`` forward, Eq. (12)'s derivative backward;
    ``spiking=False``: the relaxed spike, Eq. (12) itself (SpikingJelly's primitive mode).
    ``temperature`` (b > 0) may be set at any time and is the buffer ``b`` of ``state_dict``;
    ``v_threshold`` defaults to the neuron's.
    """

    framework = "SpikingJelly"
    threshold_attr = "v_threshold"
    fires_at_threshold = True
    per_neuron_thresholds = False  # e.g. MPBNLIFNode reshapes its (C,) threshold to (1, C, 1, 1)

    def __init__(
        self, temperature: float = 1.0, spiking: bool = True, v_threshold: float | None = None
    ) -> None:
        super().__init__(temperature, v_threshold, spiking=spiking)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike(x) if self.spiking else self.primitive(x)

    def _warn_path(self, device: torch.device) -> None:
        warn_slow_path(device)

    @staticmethod
    def spiking_function(x: torch.Tensor, temperature: float, v_threshold: float) -> torch.Tensor:
        """Heaviside ``x >= 0`` of ``x = v - V_th`` with the Dspike gradient of Eq. (12)."""
        return dspike_spike(x, temperature, v_threshold, fires_at_threshold=True)

    @staticmethod
    def primitive_function(x: torch.Tensor, temperature: float, v_threshold: float) -> torch.Tensor:
        """Eq. (12) in ``x = v - V_th``, clipped to 0 / 1 outside ``|x| <= V_th`` (Eq. 11)."""
        return _Dspike(temperature, v_threshold).primitive(x)
