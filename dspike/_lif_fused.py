"""Fused LIF kernels (Eq. 1-2) for the ``compiled`` backend of :mod:`dspike.neurons`.

Both passes are written one time step at a time on a ``[T, N]`` view; inductor unrolls the T
steps and fuses them into one loop over the N neurons (C++/OpenMP on CPU, Triton on GPU). The
forward reads ``c`` once and writes spikes once; the backward reads ``dL/dy`` and ``c`` once,
evaluates the surrogate inline and writes ``dL/dc``, with no other buffer of size T x N. The
node keeps only ``c`` (which the tdBN before it keeps anyway, :mod:`dspike.norm`): the backward
runs the forward's recurrence once more, in registers, for ``u_pre``.

They run as packages compiled ahead of time once per machine (:mod:`dspike._kernel_cache`): one
per pass, T, dtype, device and surrogate formula. Everything else is data:
``consts = [tau, V_th, detach_reset, *surrogate.grad_params()]`` is a float64 tensor on the
input's device, so a new Dspike temperature (Algorithm 1, every epoch) is not a rebuild; N is
dynamic, so every layer of a network shares one kernel. Where a package cannot be built,
:class:`~dspike._kernel_cache.KernelBuildError` is raised and :mod:`dspike.neurons` warns once
per reason and runs the eager kernels.
"""

from __future__ import annotations

import functools

import torch

from ._kernel_cache import KernelBuildError, code_digest, formula_key, package_key, run
from .surrogate import GradFunction

__all__ = ["lif_backward", "lif_forward"]


def _potentials(c: torch.Tensor, consts: torch.Tensor) -> list[torch.Tensor]:
    """``u_pre`` of Eq. 1-2 at every step, from the input currents ``c``."""
    tau, v_threshold = consts[0], consts[1]
    potentials: list[torch.Tensor] = []
    u = None
    for t in range(c.shape[0]):
        u_pre = c[t] if u is None else c[t] + tau * u  # Eq. 1
        u = torch.where(u_pre > v_threshold, 0.0, u_pre)  # Eq. 2 and the hard reset
        potentials.append(u_pre)
    return potentials


def _forward_steps(c: torch.Tensor, consts: torch.Tensor) -> torch.Tensor:
    return torch.stack([(u_pre > consts[1]).to(c.dtype) for u_pre in _potentials(c, consts)])


def _backward_steps(
    grad_spikes: torch.Tensor,
    c: torch.Tensor,
    consts: torch.Tensor,
    grad_function: GradFunction,
) -> torch.Tensor:
    tau, v_threshold, detach_reset = consts[0], consts[1], consts[2] != 0
    params = consts[3:].unbind()
    u_pre = _potentials(c, consts)  # again, as the forward did: the node keeps only c
    grads: list[torch.Tensor] = []
    for t in range(c.shape[0] - 1, -1, -1):
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


# What the generated code depends on here (not the docs): a change builds new packages.
_CODE = code_digest(_potentials, _forward_steps, _backward_steps)


@functools.lru_cache(maxsize=256)
def _consts(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, device=device)


def _steps_view(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached as contiguous ``[T, N]``."""
    return x.detach().reshape(x.shape[0], -1).contiguous()


def lif_forward(c: torch.Tensor, tau: float, v_threshold: float) -> torch.Tensor:
    """Spikes (shape of ``c``) of Eq. 1-2, one fused kernel."""
    flat = _steps_view(c)
    key = package_key("forward", flat.shape[0], flat.dtype, flat.device, _CODE)
    consts = _consts((tau, v_threshold), c.device)
    (spikes,) = run(key, [flat, consts], _forward_steps)
    return spikes.view(c.shape)


def lif_backward(
    grad_spikes: torch.Tensor,
    c: torch.Tensor,
    tau: float,
    v_threshold: float,
    grad_function: GradFunction,
    grad_params: tuple[float, ...],
    detach_reset: bool,
) -> torch.Tensor:
    """``dL/dc`` (shape of ``grad_spikes``) from the input currents ``c``, one fused kernel."""
    consts = _consts((tau, v_threshold, float(detach_reset), *grad_params), c.device)
    try:
        formula = formula_key(grad_function)
    except TypeError as error:  # unhashable: functools.cache cannot hold it
        raise KernelBuildError(f"the surrogate formula {grad_function!r} is unhashable") from error
    key = package_key("backward", c.shape[0], c.dtype, c.device, _CODE, formula)
    inputs = [_steps_view(grad_spikes), _steps_view(c), consts]
    (grad,) = run(key, inputs, _backward_steps, grad_function)
    return grad.view(grad_spikes.shape)
