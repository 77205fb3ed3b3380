"""dspike: Dspike surrogate gradients, LIF neurons, tdBN and the paper's networks.

The names below are loaded on first use (PEP 562), so ``import dspike.surrogate`` loads the
surrogates and nothing else. That keeps each pipeline stage's code dependencies exact: a stage
that only plots surrogates does not depend on the networks (``dvc.yaml`` lists, per stage, the
project files it imports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from .models import build_model
    from .neurons import LIF, lif, set_lif_backend
    from .norm import TdBatchNorm2d
    from .surrogate import Dspike, Rectangular, Triangular, build_surrogate, spike

_EXPORTS = {
    "build_model": "models",
    "LIF": "neurons",
    "lif": "neurons",
    "set_lif_backend": "neurons",
    "TdBatchNorm2d": "norm",
    "Dspike": "surrogate",
    "Rectangular": "surrogate",
    "Triangular": "surrogate",
    "build_surrogate": "surrogate",
    "spike": "surrogate",
}

__all__ = [
    "LIF",
    "Dspike",
    "Rectangular",
    "TdBatchNorm2d",
    "Triangular",
    "build_model",
    "build_surrogate",
    "lif",
    "set_lif_backend",
    "spike",
]
__version__ = "0.1.0"


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
