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
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TdBatchNorm2d"]


class TdBatchNorm2d(nn.Module):
    """tdBN over ``[T*B, C, H, W]``: Eq. (4)-(5)."""

    def __init__(
        self,
        num_features: int,
        alpha: float = 1.0,
        v_threshold: float = 0.5,
        form: Literal["scale", "init"] = "scale",
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if form not in ("scale", "init"):
            raise ValueError(f"tdBN form must be 'scale' or 'init', got {form!r}")
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum)
        self.form = form
        factor = float(alpha) * float(v_threshold)
        self.scale = factor if form == "scale" else 1.0
        if form == "init":
            nn.init.constant_(self.bn.weight, factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        if self.scale == 1.0:
            return bn(x)
        if type(bn) is nn.BatchNorm2d:
            # One fused kernel: fold alpha*V_th into the affine weight.
            return _batch_norm(bn, x, bn.weight * self.scale)
        # Any replacement layer (e.g. SyncBatchNorm): s*(g*xh + b) + (1-s)*b = s*g*xh + b.
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return torch.add(bn(x) * self.scale, bn.bias.view(shape), alpha=1.0 - self.scale)

    def extra_repr(self) -> str:
        return f"form={self.form!r}, scale={self.scale:g}"


def _batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, weight: torch.Tensor):
    """``bn(x)`` with another affine weight; mirrors ``_BatchNorm.forward``'s bookkeeping."""
    use_batch_stats = bn.training or bn.running_mean is None
    momentum = bn.momentum if bn.momentum is not None else 0.0
    if bn.training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    return F.batch_norm(
        x,
        bn.running_mean if not bn.training or bn.track_running_stats else None,
        bn.running_var if not bn.training or bn.track_running_stats else None,
        weight,
        bn.bias,
        use_batch_stats,
        momentum,
        bn.eps,
    )
