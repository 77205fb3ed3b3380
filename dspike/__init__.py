"""dspike: Dspike surrogate gradients, LIF neurons, tdBN and the paper's networks."""

from .models import build_model
from .neurons import LIF, lif, set_lif_backend
from .norm import TdBatchNorm2d
from .surrogate import Dspike, Rectangular, Triangular, build_surrogate, spike

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
