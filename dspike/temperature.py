"""Algorithm 1: choose Dspike's temperature b by matching the finite-difference gradient.

The paper's listing of Algorithm 1 did not survive in our copy of the text; what is
implemented here is reconstructed from Sec. 4.3 ("we verify the cosine similarity between
our Dspike gradients and the FDG at the beginning of each training epoch and update the
temperature to better match the FDG"; FDG of the first layer only), Sec. 5.2 (eps = 0.1,
b initialised to 1, "update step size Delta b = 0.2") and Sec. 5.6 / Fig. 5 (b drifts by
small steps from epoch to epoch). One call of :func:`update_temperature`, made at the start
of every epoch, does exactly this:

1. On one minibatch ``(inputs, targets)``, compute the FDG (Eq. 10, step ``eps``) of the
   first layer's weight, ``conv1.weight`` (another network's: :func:`dspike.fdg.first_layer`),
   or take ``reference`` if one is given.
2. For each candidate ``b' in (b, b - delta, b + delta)`` with ``b' > 0`` (a non-positive
   candidate is dropped, so b stays > 0), set ``b'`` on every Dspike surrogate of the model and
   compute the surrogate (autograd) gradient of the same layer on the same minibatch.
3. Keep the candidate whose gradient has the highest cosine similarity with the FDG; a tie
   keeps the earlier candidate in the order above (so the current b wins ties).
4. Set the kept b on every Dspike surrogate and return it with every candidate's similarity.

Why a three-point greedy step rather than, say, a line search: "update step size Delta b"
implies b moves by at most Delta b per update, and Fig. 5's curve (300 epochs, b between
about 0.6 and 4) is consistent with at most one such step per epoch. The FDG and the
surrogate gradients are taken in the same BN mode (:mod:`dspike.fdg`; default train-mode batch
statistics with the running statistics untouched), so the only difference between them is
the gradient estimator. Candidates are rounded to 12 decimals so repeated steps of 0.2 do
not accumulate binary rounding (1.0 + 5 * 0.2 is logged as 2.0).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .fdg import BNMode, LossFn, cosine_similarity, fdg, surrogate_gradient
from .neurons import LIF
from .surrogate import Dspike

__all__ = [
    "TemperatureHolder",
    "TemperatureUpdate",
    "dspike_surrogates",
    "set_temperature",
    "update_temperature",
]


class TemperatureUpdate(NamedTuple):
    """One step of Algorithm 1: the new b, and the cosine similarity of every candidate b'."""

    temperature: float
    similarities: dict[float, float]
    previous: float


class TemperatureHolder(Protocol):
    """Anything whose Dspike temperature b can be read and set."""

    temperature: float


def dspike_surrogates(model: nn.Module) -> list[TemperatureHolder]:
    """Every distinct Dspike surrogate of the model, in module order.

    That is the ``surrogate`` of each of its LIF neurons, and each module that declares itself
    one with a class attribute ``is_dspike_surrogate = True``: the SpikingJelly and snnTorch
    surrogates of :mod:`dspike.integrations`, whose ``temperature`` is their buffer ``b``.
    """
    found: dict[int, TemperatureHolder] = {}
    for m in model.modules():
        if isinstance(m, LIF) and isinstance(m.surrogate, Dspike):
            found.setdefault(id(m.surrogate), m.surrogate)
        elif getattr(type(m), "is_dspike_surrogate", False):
            found.setdefault(id(m), m)  # type: ignore[arg-type]
    return list(found.values())


def set_temperature(model: nn.Module, temperature: float) -> None:
    """Set ``temperature`` on every Dspike surrogate of the model."""
    surrogates = dspike_surrogates(model)
    if not surrogates:
        raise ValueError(
            "model has no Dspike surrogate (a LIF's, or one of dspike.integrations' "
            "SpikingJelly / snnTorch surrogates)"
        )
    for s in surrogates:
        s.temperature = temperature


def update_temperature(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    delta: float = 0.2,
    eps: float = 0.1,
    *,
    reference: torch.Tensor | None = None,
    param_name: str | None = None,
    loss_fn: LossFn = F.cross_entropy,
    bn_mode: BNMode = "train",
    chunk_size: int | None = None,
) -> TemperatureUpdate:
    """Algorithm 1 (see the module docstring): one greedy step of b toward the FDG.

    ``reference`` replaces the FDG as the gradient to match (same shape as the parameter);
    ``param_name`` defaults to the first layer's weight (:func:`dspike.fdg.first_layer`). The
    model may be any ``nn.Module`` with Dspike surrogates (:func:`dspike_surrogates`), e.g. a
    SpikingJelly or snnTorch network. The chosen b is left set on every one of them.
    """
    b = float(temperature)
    if not 0 < b < math.inf:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if not 0 < float(delta) < math.inf:
        raise ValueError(f"delta must be a finite number > 0, got {delta!r}")
    set_temperature(model, b)  # also checks that there is a Dspike surrogate
    if reference is None:
        reference = fdg(model, param_name, inputs, targets, eps, loss_fn=loss_fn,
                        bn_mode=bn_mode, chunk_size=chunk_size)
    candidates = [c for c in (round(b + s * delta, 12) for s in (0, -1, 1)) if c > 0]
    similarities: dict[float, float] = {}
    best = b
    try:
        for c in candidates:
            set_temperature(model, c)
            grad = surrogate_gradient(model, param_name, inputs, targets, loss_fn=loss_fn,
                                      bn_mode=bn_mode)
            similarities[c] = cosine_similarity(grad, reference)
        best = max(similarities, key=similarities.__getitem__)
    finally:
        set_temperature(model, best)
    return TemperatureUpdate(best, similarities, b)
