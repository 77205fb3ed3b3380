"""Threshold-dependent batch normalisation, tdBN (Zheng et al. 2021; paper Eq. 4-5).

Inputs carry time folded into the batch, ``[T*B, C, H, W]``, so one plain
``nn.BatchNorm2d`` normalises each channel over (T, B, H, W) as Eq. (4) asks. The module
*wraps* that BatchNorm (``self.bn``) instead of subclassing it, so
``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` swaps the inner layer for a synchronised
one and the alpha * V_th factor survives the conversion.

Two forms exist in public code, both offered:

* ``form="scale"`` (paper, Eq. 4-5): ``gamma * alpha * V_th * x_hat + beta``, a fixed factor.
* ``form="init"``: a plain BN whose weight gamma starts at ``alpha * V_th`` (same function at
  initialisation, but the factor is then learned and weight decay acts on it).

The ANN twin uses ``scale=1`` (plain BN), so ANN and SNN share parameter names.

**Per-copy statistics** (:meth:`TdBatchNorm2d.per_copy_statistics`): the batched FDG
(:mod:`dspike.fdg`) stacks perturbed copies of one minibatch along the batch axis; while the
context is open each copy is normalised on its own batch statistics, exactly as a separate
forward pass in train mode would, and the running statistics are neither read nor written.

**Saving the output** (``saves_output=True``, what the SNN's norms do): in training, the norm
keeps its output ``y`` for its backward instead of its input, and recovers
``x_hat = (y - beta) / g`` from it, ``g = scale * gamma`` (the trick of In-Place ABN, Rota Bulo
et al. 2018). The LIF after it keeps that same ``y`` as its input (:mod:`dspike.neurons`), so
the pair keeps one tensor where it kept two. Where ``x_hat`` cannot be recovered to float
precision (a channel with ``g = 0`` or ``|beta| > 100 |g|``), in eval mode, per copy, and for
any other layer than ``nn.BatchNorm2d`` (``SyncBatchNorm``), the norm keeps its input as
before. It is off in the ANN twin, whose in-place ReLU overwrites the norm's output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .spec import NeuronSpec, TdBNForm

__all__ = ["TdBatchNorm2d"]


class TdBatchNorm2d(nn.Module):
    """tdBN over ``[T*B, C, H, W]``: Eq. (4)-(5). :meth:`from_spec` builds the one a network's
    :class:`~dspike.spec.NeuronSpec` asks for."""

    def __init__(
        self,
        num_features: int,
        alpha: float = NeuronSpec.alpha,
        v_threshold: float = NeuronSpec.v_threshold,
        form: TdBNForm = NeuronSpec.form,
        eps: float = 1e-5,
        momentum: float = 0.1,
        saves_output: bool = False,
    ) -> None:
        super().__init__()
        if form not in ("scale", "init"):
            raise ValueError(f"tdBN form must be 'scale' or 'init', got {form!r}")
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum)
        self.form = form
        self.saves_output = saves_output
        self._copies: tuple[int, int] | None = None  # (copies, batch) while per_copy_statistics
        factor = float(alpha) * float(v_threshold)
        self.scale = factor if form == "scale" else 1.0
        if form == "init":
            nn.init.constant_(self.bn.weight, factor)

    @classmethod
    def from_spec(
        cls, num_features: int, spec: NeuronSpec, residual: bool = False,
        saves_output: bool = False,
    ) -> TdBatchNorm2d:
        """tdBN with ``spec``'s form and threshold; alpha is ``spec.alpha_residual`` for a norm
        whose output meets another at a residual addition, else ``spec.alpha``."""
        alpha = spec.alpha_residual if residual else spec.alpha
        return cls(num_features, alpha, spec.v_threshold, spec.form, saves_output=saves_output)

    @contextlib.contextmanager
    def per_copy_statistics(self, copies: int, batch: int) -> Iterator[None]:
        """Normalise each of ``copies`` stacked copies of a ``batch``-sample minibatch on its
        own statistics while the context is open (see the module docstring).

        The batch axis of the input reads ``[time, copy, sample]`` (time folded outermost, as
        everywhere here); statistics are taken per copy and channel over (time, sample, H, W).
        """
        previous, self._copies = self._copies, (int(copies), int(batch))
        try:
            yield
        finally:
            self._copies = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        if self._copies is not None:
            return _per_copy_batch_norm(bn, x, self.scale, *self._copies)
        if type(bn) is nn.BatchNorm2d and self.saves_output and bn.affine:
            weight = bn.weight * self.scale
            return _batch_norm(bn, x, weight, _recoverable(bn, x, weight))
        if self.scale == 1.0:
            return bn(x)
        if type(bn) is nn.BatchNorm2d:
            # One fused kernel: fold alpha*V_th into the affine weight.
            return _batch_norm(bn, x, bn.weight * self.scale)
        # Any replacement layer (e.g. SyncBatchNorm): s*(g*xh + b) + (1-s)*b = s*g*xh + b.
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return torch.add(bn(x) * self.scale, bn.bias.view(shape), alpha=1.0 - self.scale)

    def extra_repr(self) -> str:
        return f"form={self.form!r}, scale={self.scale:g}, saves_output={self.saves_output}"


def _per_copy_batch_norm(
    bn: nn.Module, x: torch.Tensor, scale: float, copies: int, batch: int
) -> torch.Tensor:
    """``scale * gamma * x_hat + beta`` with ``x_hat`` normalised per copy (no running stats)."""
    k, n = copies, batch
    g = x.unflatten(0, (-1, k, n)).transpose(1, 2)  # [time, sample, copy, C, ...]
    g = g.flatten(0, 1).flatten(1, 2)  # [time*sample, copy*C, ...]
    weight = bn.weight * scale if bn.weight is not None else None
    weight = weight.repeat(k) if weight is not None else None
    bias = bn.bias.repeat(k) if bn.bias is not None else None
    y = F.batch_norm(g, None, None, weight, bias, True, 0.0, bn.eps)
    y = y.unflatten(1, (k, -1)).unflatten(0, (-1, n)).transpose(1, 2)
    return y.flatten(0, 2)


# x_hat = (y - beta) / g is recovered to about this many float epsilons (relative).
_RECOVERY_RANGE = 100.0


def _recoverable(bn: nn.BatchNorm2d, x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a normalisation of ``x`` may keep its output: in training with batch
    statistics, with a gradient to take, and ``x_hat`` recoverable from the output in every
    channel (``g != 0`` and ``|beta| <= 100 |g|``; one host synchronisation). Not under
    autocast, nor for an input of another dtype than the weight."""
    if not (bn.training and torch.is_grad_enabled() and x.dim() == 4):
        return False
    if torch.is_autocast_enabled(x.device.type) or x.dtype != weight.dtype:
        return False
    if not (x.requires_grad or weight.requires_grad or bn.bias.requires_grad):
        return False
    g, b = weight.detach().abs(), bn.bias.detach().abs()
    return bool(((g > 0) & (b <= _RECOVERY_RANGE * g)).all())


def _batch_norm(
    bn: nn.modules.batchnorm._BatchNorm,
    x: torch.Tensor,
    weight: torch.Tensor,
    saves_output: bool = False,
):
    """``bn(x)`` with another affine weight; mirrors ``_BatchNorm.forward``'s bookkeeping.
    ``saves_output``: through :class:`_NormSavingOutput` (batch statistics only)."""
    use_batch_stats = bn.training or bn.running_mean is None
    momentum = bn.momentum if bn.momentum is not None else 0.0
    if bn.training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    running_mean = bn.running_mean if not bn.training or bn.track_running_stats else None
    running_var = bn.running_var if not bn.training or bn.track_running_stats else None
    if saves_output:
        return _NormSavingOutput.apply(
            x, weight, bn.bias, running_mean, running_var, momentum, bn.eps
        )
    return F.batch_norm(
        x, running_mean, running_var, weight, bn.bias, use_batch_stats, momentum, bn.eps
    )


class _NormSavingOutput(torch.autograd.Function):
    """Eq. (4)-(5) with batch statistics, ``y = g * x_hat + beta``, keeping ``y`` (not ``x``).

    The forward is the native batch norm (the same kernel and values as ``F.batch_norm``). The
    backward is the native one too, given ``y`` for the input with ``beta`` as its "mean" and
    ``1 / g`` as its "invstd", so that the ``x_hat`` it forms is ``(y - beta) / g``; the weight
    it is given, ``g^2 invstd``, makes its input gradient
    ``g invstd (dL/dy - mean(dL/dy) - x_hat mean(dL/dy x_hat))``, and its weight and bias
    gradients, ``sum(dL/dy x_hat)`` and ``sum(dL/dy)``, do not depend on either.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x, weight, bias, running_mean, running_var, momentum: float, eps: float
    ) -> torch.Tensor:
        y, _, invstd = torch.native_batch_norm(
            x, weight, bias, running_mean, running_var, True, momentum, eps
        )
        ctx.save_for_backward(y, weight, bias, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        y, g, b, invstd = ctx.saved_tensors
        grad_x, grad_g, grad_b = torch.ops.aten.native_batch_norm_backward(
            grad_y, y, g * g * invstd, None, None, b, g.reciprocal(), True, ctx.eps,
            [ctx.needs_input_grad[0], True, True],
        )
        return grad_x, grad_g, grad_b, None, None, None, None
