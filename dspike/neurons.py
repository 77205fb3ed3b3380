"""Multi-step leaky integrate-and-fire neuron with hard reset (paper Eq. 1-2).

    u_pre(t) = tau * u(t-1) + c(t)            (1)
    y(t)     = H(u_pre(t) - V_th)              (2)
    u(t)     = u_pre(t) * (1 - y(t)),  u(0) = 0

:func:`lif` is the pure function; its backward pass is written by hand so that the whole
time loop stores one tensor, its input ``c``, instead of an autograd graph of ``5 T`` small ops;
the backward recomputes ``u_pre`` from it. That input is the output of the tdBN before the LIF,
which tdBN keeps for its own backward (:mod:`dspike.norm`), so the two share one saved tensor.
A residual block's LIF takes its two summands (``addend``) and keeps those instead of their sum,
and the spikes a LIF returns are marked so that layers after it save them as bytes
(:mod:`dspike.saved_spikes`). :func:`lif_reference` is the same recurrence built from :func:`spike`
with plain autograd, kept as the ground truth the tests compare against.
:class:`LIF` is the thin module: it takes its constants from a :class:`~dspike.spec.NeuronSpec`
(the defaults live there) and optionally records firing rates. Without a surrogate, both use
Dspike with its window at the neuron's threshold.

Two backends compute the same node: ``"compiled"`` (default) fuses each pass into one kernel
(:mod:`dspike._lif_fused`), built ahead of time once per machine (10-30 s per pass x T x dtype
x device x surrogate formula) and loaded in milliseconds by every later process; ``"eager"``
loops over T with ATen ops and needs no compiler. Where a kernel cannot be built, ``compiled``
warns once per reason and runs the eager kernels there (:func:`compiled_fallbacks`).
:func:`set_lif_backend` switches a model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from . import _kernel_cache, _lif_fused
from .saved_spikes import mark_spikes
from .spec import LIF_BACKENDS, LIFBackend, NeuronSpec, check_backend
from .surrogate import Dspike, FunctionalSurrogate, Surrogate, spike

__all__ = [
    "LIF",
    "LIF_BACKENDS",
    "LIFBackend",
    "check_backend",
    "compiled_fallbacks",
    "lif",
    "lif_reference",
    "set_lif_backend",
    "use_eager_if_short",
]


# Why fused kernels could not be built in this process, one entry per reason; the LIF calls
# that needed them ran the eager kernels (the same node), the rest stay fused.
_fallbacks: dict[str, None] = {}


def _fused(kernel: Callable[..., Any], *args: Any) -> Any:
    """``kernel(*args)``, or None (with one warning per reason) where it cannot be built."""
    try:
        return kernel(*args)
    except _kernel_cache.KernelBuildError as error:
        reason = str(error)
        if reason not in _fallbacks:
            _fallbacks[reason] = None
            warnings.warn(
                f"{reason}. The LIF runs its eager kernels there instead, with the results of "
                f"neuron.backend: eager (which says so without this warning)",
                RuntimeWarning,
                stacklevel=2,
            )
    return None


def compiled_fallbacks() -> tuple[str, ...]:
    """Why ``compiled`` LIFs ran the eager kernels in this process (a kernel that could not be
    built, one reason each); empty while every fused kernel ran."""
    return tuple(_fallbacks)


def _eager_forward(
    c: torch.Tensor, tau: float, v_threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and ``u_pre`` of Eq. 1-2: per step one add, one compare, one select. The
    backward calls it again for ``u_pre``: the same ops on the same ``c``, the same values."""
    u_pre = torch.empty_like(c)
    fired = torch.empty_like(c, dtype=torch.bool)
    u_pre[0].copy_(c[0])
    torch.gt(u_pre[0], v_threshold, out=fired[0])
    for t in range(1, c.shape[0]):
        u = torch.where(fired[t - 1], 0.0, u_pre[t - 1])
        torch.add(c[t], u, alpha=tau, out=u_pre[t])
        torch.gt(u_pre[t], v_threshold, out=fired[t])
    return fired.to(c.dtype), u_pre


def _eager_backward(
    grad_spikes: torch.Tensor,
    u_pre: torch.Tensor,
    tau: float,
    v_threshold: float,
    surrogate: Surrogate,
    detach_reset: bool,
) -> torch.Tensor:
    """Everything off the recurrence for all T at once, then one multiply-add per step."""
    v = u_pre - v_threshold
    sg = surrogate.grad(v)
    not_fired = (v <= 0).to(v.dtype)
    # u(t) = u_pre * (1 - y): du/du_pre = (1 - y) - u_pre * sg, the reset's own gradient.
    carry = not_fired if detach_reset else not_fired.addcmul_(u_pre, sg, value=-1)
    carry.mul_(tau)
    grad_c = sg.mul_(grad_spikes)
    for t in range(grad_c.shape[0] - 2, -1, -1):
        grad_c[t].addcmul_(carry[t], grad_c[t + 1])
    return grad_c


class _LIFFunction(torch.autograd.Function):
    """Eq. 1-2 over all T steps as one autograd node driven by ``c (+ addend)``; saves only
    ``c`` (and ``addend``), from which the backward recomputes ``u_pre``.

    With ``a(t) = dL/dy(t) * sg(t)`` and ``r(t) = tau * du(t)/du_pre(t)`` the backward is the
    reverse recurrence ``dL/dc(t) = a(t) + r(t) * dL/dc(t+1)``. ``eager`` evaluates everything
    off the recurrence for all T at once; ``compiled`` runs both passes as fused kernels
    (:mod:`dspike._lif_fused`).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        c: torch.Tensor,
        addend: torch.Tensor | None,
        tau: float,
        v_threshold: float,
        surrogate: Surrogate,
        detach_reset: bool,
        backend: LIFBackend,
    ) -> torch.Tensor:
        current = c if addend is None else c + addend
        spikes = None
        if backend == "compiled":
            spikes = _fused(_lif_fused.lif_forward, current, tau, v_threshold)
        if spikes is None:
            spikes = _eager_forward(current, tau, v_threshold)[0]
        if any(ctx.needs_input_grad[:2]):
            ctx.save_for_backward(c, addend)
        ctx.constants = (tau, v_threshold, surrogate, detach_reset, backend)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):  # type: ignore[override]
        c, addend = ctx.saved_tensors
        if addend is not None:
            c = c + addend
        tau, v_threshold, surrogate, detach_reset, backend = ctx.constants
        grad_c = None
        if backend == "compiled":
            grad_c = _fused(
                _lif_fused.lif_backward,
                grad_spikes,
                c,
                tau,
                v_threshold,
                surrogate.grad_function,
                surrogate.grad_params(),
                detach_reset,
            )
        if grad_c is None:
            u_pre = _eager_forward(c, tau, v_threshold)[1]
            grad_c = _eager_backward(grad_spikes, u_pre, tau, v_threshold, surrogate, detach_reset)
        grads = [grad_c if needed else None for needed in ctx.needs_input_grad[:2]]
        return *grads, None, None, None, None, None


def lif(
    c: torch.Tensor,
    tau: float = NeuronSpec.tau,
    v_threshold: float = NeuronSpec.v_threshold,
    surrogate: Surrogate | None = None,
    detach_reset: bool = NeuronSpec.detach_reset,
    backend: LIFBackend = NeuronSpec.backend,
    addend: torch.Tensor | None = None,
) -> torch.Tensor:
    """Spikes of LIF neurons driven by input currents ``c`` of shape ``[T, ...]`` (Eq. 1-2),
    or by ``c + addend`` (a residual sum: the node then keeps the two summands, which the
    layers that made them keep anyway, instead of a sum of its own).

    ``backend="compiled"`` runs fused kernels (built once per machine, see :mod:`._lif_fused`)
    for a :class:`~dspike.surrogate.FunctionalSurrogate` (every built-in one is), whose
    formula the backward kernel inlines; a surrogate with only ``grad``, and a tensor on another
    device than the CPU or a CUDA GPU (``meta``, say), runs the eager kernels.
    """
    surrogate = surrogate or Dspike(v_threshold=v_threshold)
    if check_backend(backend) == "compiled" and (
        not isinstance(surrogate, FunctionalSurrogate)
        or c.device.type not in _kernel_cache.DEVICE_TYPES
    ):
        backend = "eager"
    if addend is not None and (addend.shape, addend.dtype) != (c.shape, c.dtype):
        # broadcast or promotion: the node takes the sum
        c, addend = c + addend, None
    spikes = _LIFFunction.apply(c, addend, tau, v_threshold, surrogate, detach_reset, backend)
    return mark_spikes(spikes)


def lif_reference(
    c: torch.Tensor,
    tau: float = NeuronSpec.tau,
    v_threshold: float = NeuronSpec.v_threshold,
    surrogate: Surrogate | None = None,
    detach_reset: bool = NeuronSpec.detach_reset,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1-2 step by step with autograd; returns (spikes, membrane potential u) as [T, ...]."""
    surrogate = surrogate or Dspike(v_threshold=v_threshold)
    u = torch.zeros_like(c[0])
    spikes, potentials = [], []
    for t in range(c.shape[0]):
        u_pre = tau * u + c[t]
        y = spike(u_pre - v_threshold, surrogate)
        u = u_pre * (1 - (y.detach() if detach_reset else y))
        spikes.append(y)
        potentials.append(u)
    return torch.stack(spikes), torch.stack(potentials)


class LIF(nn.Module):
    """Multi-step LIF layer (Eq. 1-2); no state survives between calls.

    Input is ``[T, B, ...]``, or ``[T*B, ...]`` when ``time_steps`` is set (the layout the
    networks use: stateless layers run on time folded into the batch). With ``record_rate``
    on, the module accumulates its spike count and neuron-step count (Fig. 4). The count stays
    a float64 tensor on the spikes' device: summing in float64 is exact for any spike dtype
    (a float16 sum overflows at 65504) and needs no host synchronisation per call.

    ``spec`` gives ``tau``, ``v_threshold``, ``detach_reset`` and ``backend`` (its tdBN fields
    are the norm layer's). A surrogate with a window of its own (``v_threshold``: Dspike,
    triangular) must have it at the neuron's threshold; without one, Dspike(b=1) there.
    """

    def __init__(
        self,
        spec: NeuronSpec | None = None,
        surrogate: Surrogate | None = None,
        time_steps: int | None = None,
    ) -> None:
        super().__init__()
        spec = spec or NeuronSpec()
        self.tau = float(spec.tau)
        self.v_threshold = float(spec.v_threshold)
        self.surrogate = surrogate or Dspike(v_threshold=spec.v_threshold)
        window = getattr(self.surrogate, "v_threshold", self.v_threshold)
        if window != self.v_threshold:
            raise ValueError(f"LIF: surrogate {self.surrogate!r} has its window at threshold "
                             f"{window}, the neuron fires at {self.v_threshold}")  # fmt: skip
        self.detach_reset = spec.detach_reset
        self.time_steps = time_steps
        self.backend = spec.backend
        self.record_rate = False
        self._spike_count: torch.Tensor | None = None
        self.neuron_steps = 0

    @property
    def backend(self) -> LIFBackend:
        """``"eager"`` or ``"compiled"`` (see :func:`lif`)."""
        return self._backend

    @backend.setter
    def backend(self, value: LIFBackend) -> None:
        self._backend = check_backend(value)

    def reset_rate(self) -> None:
        self._spike_count, self.neuron_steps = None, 0

    @property
    def spike_count(self) -> float:
        """Spikes emitted since the last :meth:`reset_rate` (synchronises with the device)."""
        return 0.0 if self._spike_count is None else float(self._spike_count)

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per time step since the last :meth:`reset_rate`."""
        return self.spike_count / max(self.neuron_steps, 1)

    def forward(self, x: torch.Tensor, addend: torch.Tensor | None = None) -> torch.Tensor:
        """Spikes for the input currents ``x``, or ``x + addend`` (see :func:`lif`)."""
        folded = self.time_steps is not None
        c = x.unflatten(0, (self.time_steps, -1)) if folded else x
        if folded and addend is not None:
            addend = addend.unflatten(0, (self.time_steps, -1))
        y = lif(
            c, self.tau, self.v_threshold, self.surrogate, self.detach_reset, self.backend, addend
        )
        if self.record_rate:
            total = y.detach().sum(dtype=torch.float64)
            self._spike_count = total if self._spike_count is None else self._spike_count + total
            self.neuron_steps += y.numel()
        return y.flatten(0, 1) if folded else y

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, v_threshold={self.v_threshold}, surrogate={self.surrogate!r}, "
            f"detach_reset={self.detach_reset}, time_steps={self.time_steps}, "
            f"backend={self.backend!r}"
        )


def set_lif_backend(model: nn.Module, backend: LIFBackend) -> int:
    """Set ``backend`` on every LIF of ``model``; returns how many LIF modules there are."""
    check_backend(backend)
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    for m in lifs:
        m.backend = backend
    return len(lifs)


def use_eager_if_short(model: nn.Module, steps: int, spec: NeuronSpec) -> bool:
    """Run ``model``'s ``compiled`` LIFs on the eager kernels (the same node) if a training run
    of ``steps`` optimiser steps is shorter than ``spec.compile_min_steps``, too short to repay
    building a kernel it has none of; returns whether it did."""
    if spec.backend != "compiled" or steps >= spec.compile_min_steps:
        return False
    return set_lif_backend(model, "eager") > 0
