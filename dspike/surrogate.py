"""Spike function and surrogate gradients (paper Sec. 4.1 and 4.3).

A surrogate is a plain object with two methods of ``v = u_pre - V_th``:

* ``grad(v)``: the surrogate derivative d spike / d u_pre used in the backward pass;
* ``primitive(v)``: the smooth function whose derivative ``grad`` is (a relaxed spike).

:func:`spike` returns the Heaviside step forward and ``surrogate.grad(v)`` backward,
saving only ``v``. The LIF neuron (:mod:`dspike.neurons`) calls ``grad`` the same way.

The built-in surrogates are also :class:`FunctionalSurrogate`: each formula is one pure
function (:func:`rectangular_grad`, :func:`triangular_grad`, :func:`dspike_grad`) whose
parameters may be floats or 0-d tensors, and ``grad(v)`` is that function applied to
``grad_params()``. The compiled LIF backend passes the parameters as tensors, so a new Dspike
temperature (Algorithm 1, every epoch) is new data for the compiled kernel, not a recompile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Protocol, runtime_checkable

import torch

from .spec import NeuronSpec

__all__ = [
    "Dspike",
    "FunctionalSurrogate",
    "Rectangular",
    "Surrogate",
    "Triangular",
    "build_surrogate",
    "dspike_grad",
    "rectangular_grad",
    "spike",
    "triangular_grad",
]

Param = float | torch.Tensor
GradFunction = Callable[..., torch.Tensor]


@runtime_checkable
class Surrogate(Protocol):
    """What a surrogate gradient provides; ``v`` is the potential minus the threshold."""

    def grad(self, v: torch.Tensor) -> torch.Tensor: ...

    def primitive(self, v: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class FunctionalSurrogate(Surrogate, Protocol):
    """A surrogate whose ``grad(v)`` is ``grad_function(v, *grad_params())``."""

    grad_function: ClassVar[GradFunction]

    def grad_params(self) -> tuple[float, ...]: ...


def _tanh(x: Param) -> Param:
    return torch.tanh(x) if isinstance(x, torch.Tensor) else math.tanh(x)


def rectangular_grad(v: torch.Tensor, width: Param) -> torch.Tensor:
    """Eq. (7): ``1/a`` where ``|v| < a/2``, else 0."""
    return (v.abs() < width / 2).to(v.dtype) / width


def triangular_grad(v: torch.Tensor, gamma: Param, v_threshold: Param) -> torch.Tensor:
    """Eq. (8) in ``v = u - V_th``: ``gamma * max(0, 1 - |v| / V_th)``."""
    return gamma * (1.0 - v.abs() / v_threshold).clamp(min=0.0)


def dspike_grad(v: torch.Tensor, temperature: Param, v_threshold: Param) -> torch.Tensor:
    """Eq. (12)'s derivative in ``x = v / (2 V_th)``: ``d/dv Dspike`` for ``|v| <= V_th``, else 0.

    ``b/(2 V_th) (1 - tanh(b x)^2) / (2 tanh(b/2))``; at V_th = 0.5, x = v.
    """
    b = temperature
    k = b / (2.0 * _tanh(b / 2.0) * (2.0 * v_threshold))
    t = torch.tanh(v * (b / (2.0 * v_threshold)))
    g = t.mul_(t).sub_(1.0).mul_(-k)  # k * (1 - tanh(b x)^2), in place: hot in backward
    return g.masked_fill_(v.abs() > v_threshold, 0.0)


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


class Rectangular:
    """Rectangular surrogate, Eq. (7): ``1/a`` where ``|v| < a/2``, else 0.

    With ``V_th = 0.5`` and ``a = 1`` this is the straight-through estimator on [0, 1].
    """

    grad_function: ClassVar[GradFunction] = staticmethod(rectangular_grad)

    def __init__(self, width: float = 1.0) -> None:
        self.width = _positive("width", width)

    def grad_params(self) -> tuple[float, ...]:
        return (self.width,)

    def grad(self, v: torch.Tensor) -> torch.Tensor:
        return rectangular_grad(v, self.width)

    def primitive(self, v: torch.Tensor) -> torch.Tensor:
        return (v / self.width + 0.5).clamp(0.0, 1.0)

    def __repr__(self) -> str:
        return f"Rectangular(width={self.width})"


class Triangular:
    """Triangular surrogate, Eq. (8): ``gamma * max(0, 1 - |u/V_th - 1|)``.

    In terms of ``v = u - V_th`` the peak is ``gamma`` at ``v = 0`` and the support is
    ``|v| < V_th``.
    """

    grad_function: ClassVar[GradFunction] = staticmethod(triangular_grad)

    def __init__(self, gamma: float = 1.0, v_threshold: float = NeuronSpec.v_threshold) -> None:
        self.gamma = _positive("gamma", gamma)
        self.v_threshold = _positive("v_threshold", v_threshold)

    def grad_params(self) -> tuple[float, ...]:
        return (self.gamma, self.v_threshold)

    def grad(self, v: torch.Tensor) -> torch.Tensor:
        return triangular_grad(v, self.gamma, self.v_threshold)

    def primitive(self, v: torch.Tensor) -> torch.Tensor:
        z = (v / self.v_threshold).clamp(-1.0, 1.0)
        # Integral of gamma * (1 - |z|) dv from -V_th, so that primitive(-inf) = 0.
        half = self.gamma * self.v_threshold / 2
        return half * (1.0 + z * (2.0 - z.abs()))

    def __repr__(self) -> str:
        return f"Triangular(gamma={self.gamma}, v_threshold={self.v_threshold})"


class Dspike:
    """Differentiable spike, Eq. (11)-(12), with temperature ``b > 0``, for a LIF of threshold
    ``v_threshold`` (V_th).

    Eq. (12) is defined on x in [0, 1] with its centre at 0.5, the paper's V_th; here it is
    written in ``v = u - V_th`` with ``x = v / (2 V_th) + 1/2``, so its window is
    ``|v| <= V_th`` (u in [0, 2 V_th]) and the curve scales with the threshold:

        primitive(v) = (tanh(b x') + tanh(b/2)) / (2 tanh(b/2)),  x' = v / (2 V_th),
                       for |v| <= V_th, clipped to 0 / 1 outside
        grad(v)      = d primitive / dv = b (1 - tanh(b x')^2) / (4 V_th tanh(b/2))  in the
                       window, else 0

    At the paper's V_th = 0.5, x' = v. Lemma 4.1: b -> 0+ gives the identity (rectangular
    gradient), b -> inf the step. ``temperature`` is plain mutable state: Algorithm 1
    (:mod:`dspike.temperature`) sets it every epoch.
    """

    grad_function: ClassVar[GradFunction] = staticmethod(dspike_grad)

    def __init__(
        self, temperature: float = 1.0, v_threshold: float = NeuronSpec.v_threshold
    ) -> None:
        self.temperature = temperature
        self.v_threshold = _positive("v_threshold", v_threshold)

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = _positive("Dspike temperature", value)

    def grad_params(self) -> tuple[float, ...]:
        return (self._temperature, self.v_threshold)

    def grad(self, v: torch.Tensor) -> torch.Tensor:
        return dspike_grad(v, self._temperature, self.v_threshold)

    def primitive(self, v: torch.Tensor) -> torch.Tensor:
        b, w = self._temperature, self.v_threshold
        th = math.tanh(b / 2.0)
        return (torch.tanh(v.clamp(-w, w) * (b / (2.0 * w))) + th) / (2.0 * th)

    def __repr__(self) -> str:
        if self.v_threshold == NeuronSpec.v_threshold:
            return f"Dspike(temperature={self._temperature:g})"
        return f"Dspike(temperature={self._temperature:g}, v_threshold={self.v_threshold:g})"


_SURROGATES = {"rectangular": Rectangular, "triangular": Triangular, "dspike": Dspike}


def build_surrogate(name: str, **kwargs: float) -> Surrogate:
    """Surrogate by name (``rectangular``, ``triangular``, ``dspike``) with its options."""
    try:
        cls = _SURROGATES[name]
    except KeyError:
        raise ValueError(
            f"unknown surrogate {name!r}; expected one of {sorted(_SURROGATES)}"
        ) from None
    return cls(**kwargs)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.surrogate = surrogate
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(v), None


def spike(v: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Heaviside step of ``v`` (1 where v > 0) with ``surrogate.grad(v)`` as its gradient."""
    return _Spike.apply(v, surrogate)
