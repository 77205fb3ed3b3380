"""Dspike (Eq. 11-12) as a SpikingJelly surrogate, with a settable temperature.

``neuron.LIFNode(surrogate_function=Dspike(1.0), v_threshold=0.5)``: SpikingJelly's neurons
fire ``surrogate_function(v - v_threshold)``, which is dspike's ``v = u - V_th``
(:mod:`dspike.surrogate`), so the forward spike is ``v > 0`` and the backward pass is
:func:`dspike.surrogate.dspike_grad` of that ``v``: non-zero only in Eq. (12)'s window
``|u - V_th| <= V_th``. The surrogate cannot see the neuron's threshold: give it the same one,
``Dspike(1.0, v_threshold=1.0)`` for SpikingJelly's default 1.0 (the default here is the
paper's 0.5, :class:`dspike.spec.NeuronSpec`).
SpikingJelly runs a surrogate it does not know with its PyTorch reference neuron code.
"""

from __future__ import annotations

import torch

from ..spec import NeuronSpec
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

    def __init__(
        self,
        temperature: float = 1.0,
        spiking: bool = True,
        v_threshold: float = NeuronSpec.v_threshold,
    ) -> None:
        # first: the base class sets self.temperature and self.v_threshold, which live here
        self.dspike = _Dspike(temperature, v_threshold)
        super().__init__(spiking=spiking, temperature=temperature, v_threshold=v_threshold)

    @property
    def v_threshold(self) -> float:
        """The threshold V_th of the neuron this surrogate serves; the window is ``|x| <= V_th``."""
        return self.dspike.v_threshold

    @v_threshold.setter
    def v_threshold(self, value: float) -> None:
        self.dspike = _Dspike(self.dspike.temperature, value)

    @staticmethod
    def spiking_function(
        x: torch.Tensor, temperature: float, v_threshold: float = NeuronSpec.v_threshold
    ) -> torch.Tensor:
        """Heaviside step of ``x = v - V_th`` with the Dspike gradient of Eq. (12)."""
        return spike(x, _Dspike(temperature, v_threshold))

    @staticmethod
    def primitive_function(
        x: torch.Tensor, temperature: float, v_threshold: float = NeuronSpec.v_threshold
    ) -> torch.Tensor:
        """Eq. (12) in ``x = v - V_th``, clipped to 0 / 1 outside ``|x| <= V_th`` (Eq. 11)."""
        return _Dspike(temperature, v_threshold).primitive(x)
