"""Dspike (Eq. 11-12) as a SpikingJelly surrogate, with a settable temperature.

``neuron.LIFNode(surrogate_function=Dspike(1.0), v_threshold=0.5)``: SpikingJelly's neurons
fire ``surrogate_function(v - v_threshold)``, which is dspike's ``v = u - V_th``
(:mod:`dspike.surrogate`), so the forward spike is ``v > 0`` and the backward pass is
:func:`dspike.surrogate.dspike_grad` of that ``v``: non-zero only in Eq. (12)'s window
``|u - V_th| <= 0.5``. That window is the paper's ``0 <= x <= 1`` when ``V_th = 0.5``, the
paper's threshold (SpikingJelly's default is 1.0, which puts it at ``0.5 <= u <= 1.5``).
SpikingJelly runs a surrogate it does not know with its PyTorch reference neuron code.
"""

from __future__ import annotations

import torch

from ..surrogate import Dspike as _Dspike
from ..surrogate import spike
from . import _HoldsDspike, _missing

try:
    from spikingjelly.activation_based.surrogate import SurrogateFunctionBase
except ImportError as error:
    raise ImportError(_missing("spikingjelly")) from error

__all__ = ["Dspike"]


class Dspike(_HoldsDspike, SurrogateFunctionBase):
    """SpikingJelly surrogate equal to :class:`dspike.surrogate.Dspike` (Eq. 11-12).

    ``spiking=True``: Heaviside ``v > 0`` forward, Eq. (12)'s derivative backward;
    ``spiking=False``: the relaxed spike, Eq. (12) itself (SpikingJelly's primitive mode).
    ``temperature`` (b > 0) is read at every call and may be set at any time; the Dspike it
    lives in is :attr:`dspike`, which :func:`dspike.temperature.set_temperature` and
    Algorithm 1 update.
    """

    def __init__(self, temperature: float = 1.0, spiking: bool = True) -> None:
        self.dspike = _Dspike(temperature)  # first: the base class sets self.temperature
        super().__init__(spiking=spiking, temperature=temperature)

    @staticmethod
    def spiking_function(x: torch.Tensor, temperature: float) -> torch.Tensor:
        """Heaviside step of ``x = v - V_th`` with the Dspike gradient of Eq. (12)."""
        return spike(x, _Dspike(temperature))

    @staticmethod
    def primitive_function(x: torch.Tensor, temperature: float) -> torch.Tensor:
        """Eq. (12) in ``x = v - V_th``, clipped to 0 / 1 outside ``|x| <= 0.5`` (Eq. 11)."""
        return _Dspike(temperature).primitive(x)
