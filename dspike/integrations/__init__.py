"""Dspike in SpikingJelly and snnTorch networks: the surrogate (Eq. 11-12), Algorithm 1, FDG.

* :mod:`dspike.integrations.spikingjelly`: ``Dspike``, a ``surrogate_function=`` for any
  SpikingJelly neuron (``LIFNode``, ``IFNode``, ...);
* :mod:`dspike.integrations.snntorch`: ``Dspike``, a ``spike_grad=`` for snnTorch's neurons
  (``Leaky``, ``Synaptic``, ...);
* :class:`AdaptiveTemperature`: Algorithm 1 at each epoch start of your own training loop, on
  any ``nn.Module`` holding Dspike surrogates. :func:`dspike.fdg.fdg` (Eq. 10) and
  :func:`dspike.temperature.update_temperature` take such models directly.

Both surrogates (:mod:`dspike.integrations.base`) keep b in ``state_dict``, work under
``torch.compile`` when b changes between calls, follow their neuron's threshold and fire in
their framework's convention.

Importing this package imports neither framework; each submodule imports its own and, where it
is missing, raises an ImportError that names the extra to install (``dspike[spikingjelly]``,
``dspike[snntorch]``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .adaptive import AdaptiveTemperature

__all__ = ["AdaptiveTemperature"]


def _missing(name: str) -> str:
    """The ImportError message for a missing framework ``name`` (also its extra's name)."""
    return (
        f"dspike.integrations.{name} needs {name}, an optional dependency: "
        f"pip install 'dspike[{name}]'"
    )


def __getattr__(name: str) -> Any:
    if name == "AdaptiveTemperature":
        value = importlib.import_module(".adaptive", __name__).AdaptiveTemperature
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
