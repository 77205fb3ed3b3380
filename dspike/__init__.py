"""dspike: Dspike surrogate gradients, LIF neurons, tdBN and the paper's networks.

The names below are loaded on first use (PEP 562), so ``import dspike.surrogate`` loads the
surrogates and nothing else. That keeps each pipeline stage's code dependencies exact: a stage
that only plots surrogates does not depend on the networks (``dvc.yaml`` lists, per stage, the
project files it imports).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dspike' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
