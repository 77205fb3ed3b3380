"""Fused LIF kernels (Eq. 1-2) for the ``compiled`` backend of :mod:`dspike.neurons`.

Both functions are written one time step at a time on a ``[T, N]`` view; torch.compile
(inductor) unrolls the T steps and fuses them into one loop over the N neurons (C++ on CPU,
Triton on GPU). The forward reads ``c`` once and writes spikes and ``u_pre`` once; the backward
reads ``dL/dy`` and ``u_pre`` once, evaluates the surrogate inline and writes ``dL/dc``, with
no other buffer of size T x N.

What changes the generated code is specialised (one compile each): T, the dtype and the
surrogate's formula. Everything else is data: ``consts = [tau, V_th, detach_reset,
*surrogate.grad_params()]`` is a float64 tensor on the input's device, so a new Dspike
temperature (Algorithm 1, every epoch) is not a recompile, and N is dynamic, so every layer
of a network shares one kernel. ``emulate_precision_casts`` rounds every bf16/fp16
intermediate as eager does, so the two backends emit the same spikes in low precision too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from .surrogate import GradFunction

__all__ = ["lif_backward", "lif_forward"]

# Specialisations the library can legitimately need: surrogate formula x dtype x T. Beyond
# this, fullgraph=True raises instead of silently falling back to eager.
RECOMPILE_LIMIT = 32


def _forward_steps(c: torch.Tensor, consts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    tau, v_threshold = consts[0], consts[1]
    spikes, potentials = [], []
    u = None
    for t in range(c.shape[0]):
        u_pre = c[t] if u is None else c[t] + tau * u  # Eq. 1
        fired = u_pre > v_threshold  # Eq. 2
        u = torch.where(fired, 0.0, u_pre)
        spikes.append(fired.to(c.dtype))
        potentials.append(u_pre)
    return torch.stack(spikes), torch.stack(potentials)


def _backward_steps(
    grad_spikes: torch.Tensor,
    u_pre: torch.Tensor,
    consts: torch.Tensor,
    grad_function: GradFunction,
) -> torch.Tensor:
    tau, v_threshold, detach_reset = consts[0], consts[1], consts[2] != 0
    params = consts[3:].unbind()
    grads: list[torch.Tensor] = []
    for t in range(u_pre.shape[0] - 1, -1, -1):
        v = u_pre[t] - v_threshold
        sg = grad_function(v, *params)
        grad = grad_spikes[t] * sg
        if grads:
            # dL/dc(t) = dL/dy(t) sg(t) + tau du(t)/du_pre(t) dL/dc(t+1), as in the eager backward.
            not_fired = (v <= 0).to(v.dtype)
            carry = torch.where(detach_reset, not_fired, not_fired - u_pre[t] * sg)
            grad = grad + (tau * carry) * grads[-1]
        grads.append(grad)
    return torch.stack(grads[::-1])


def _compile(fn: Callable) -> Callable:
    return torch.compile(
        fn,
        fullgraph=True,
        recompile_limit=RECOMPILE_LIMIT,
        options={"emulate_precision_casts": True},
    )


@functools.cache
def _compiled_forward() -> Callable:
    return _compile(_forward_steps)


@functools.cache
def _compiled_backward() -> Callable:
    return _compile(_backward_steps)


@functools.lru_cache(maxsize=256)
def _consts(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, device=device)


def _steps_view(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached as contiguous ``[T, N]`` (so strides never recompile), N dynamic."""
    flat = x.detach().reshape(x.shape[0], -1).contiguous()
    torch._dynamo.maybe_mark_dynamic(flat, 1)
    return flat


def lif_forward(
    c: torch.Tensor, tau: float, v_threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes (shape of ``c``) and ``u_pre`` (``[T, N]``) of Eq. 1-2, one fused kernel."""
    spikes, u_pre = _compiled_forward()(_steps_view(c), _consts((tau, v_threshold), c.device))
    return spikes.view(c.shape), u_pre


def lif_backward(
    grad_spikes: torch.Tensor,
    u_pre: torch.Tensor,
    tau: float,
    v_threshold: float,
    grad_function: GradFunction,
    grad_params: tuple[float, ...],
    detach_reset: bool,
) -> torch.Tensor:
    """``dL/dc`` (shape of ``grad_spikes``) from ``u_pre`` ``[T, N]``, one fused kernel."""
    consts = _consts((tau, v_threshold, float(detach_reset), *grad_params), u_pre.device)
    grad = _compiled_backward()(_steps_view(grad_spikes), _steps_view(u_pre), consts, grad_function)
    return grad.view(grad_spikes.shape)
