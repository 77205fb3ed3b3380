"""Finite-difference gradients (paper Eq. 10) and their cosine similarity with autograd.

    FDG_i = (L(w + eps e_i) - L(w - eps e_i)) / (2 eps),   i = 1..k          (10)

**BN mode.** The FDG and the surrogate gradient it is compared with are taken on the same
minibatch in the same mode, ``bn_mode``:

* ``"train"`` (default): every BatchNorm normalises with the statistics of the batch it sees,
  as in a training step, and its running statistics are left untouched;
* ``"eval"``: every BatchNorm uses its running statistics.

Dropout is off in both, and the model's own train/eval flags are restored afterwards.

**Batched fast path** (``conv1.weight``, the encoding layer the paper studies): the first layer
is linear in its weight, so ``conv1(x; W + s eps E_j) = conv1(x; W) + s eps conv1(x; E_j)`` with
``E_j`` the unit weight of coordinate j. conv1 runs once, the ``2k`` perturbed outputs are
stacked along the batch, ``chunk_size`` copies per forward pass, and the rest of the network
(:meth:`~dspike.models.SpikingNet.forward_from_first`) runs on them together; while it does,
every tdBN (in train mode) normalises each copy with that copy's own statistics, exactly as a
separate forward pass would (:meth:`dspike.norm.TdBatchNorm2d.per_copy_statistics`, the hook
the norm layers provide). A network whose body is an element-wise activation then a linear
head (the toy CNN: :meth:`~dspike.models.SpikingNet.act_then_linear`) goes further
(:class:`_OneChannelShortcut`): a weight of output channel o changes only channel o up to the
head, so each copy recomputes one channel's activation. Any other parameter, and a network
with a BatchNorm that is not a tdBN, takes the coordinate-by-coordinate path
(``batched=False``: ``2k`` ordinary forward passes of a copy of the model), which is slower but
equally correct.

Cost: on ResNet-18 a perturbed copy costs one forward pass minus conv1 (CPU time is compute
bound, so batching saves little there); on the toy CNN about 1/C of one (C = 6 channels).

**Other networks** (SpikingJelly, snnTorch, any ``nn.Module``; :mod:`dspike.integrations`):
``param_name=None`` means :func:`first_layer`; every forward pass starts from a reset neuron
state (SpikingJelly ``MemoryModule.reset``, snnTorch ``SpikingNeuron.reset_mem``, found without
importing either framework), and the model's state is reset again afterwards, so ``L(w)`` of
Eq. (10) is a function of the weights. In ``"train"`` mode their BatchNorms normalise with the
batch statistics and their running statistics are restored afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .neurons import LIF, lif
from .norm import TdBatchNorm2d

__all__ = ["FIRST_LAYER", "cosine_similarity", "fdg", "first_layer", "surrogate_gradient"]

FIRST_LAYER = "conv1.weight"
CHUNK_ELEMENTS = 2**25  # default size of one batched pass: stacked conv1 outputs x time steps
BNMode = Literal["train", "eval"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fdg(
    model: nn.Module,
    param_name: str | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    batched: bool = True,
    *,
    loss_fn: LossFn = F.cross_entropy,
    bn_mode: BNMode = "train",
    chunk_size: int | None = None,
    indices: Sequence[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Central finite-difference gradient (Eq. 10) of ``loss_fn(model(inputs), targets)``.

    ``param_name`` names one parameter (``None``: the first layer's weight, :func:`first_layer`);
    the result has its shape and dtype. ``chunk_size`` is the number of perturbed copies per
    forward pass of the batched path (default: as many as keep the stacked first-layer output,
    over all time steps, near ``2**25`` elements, 128 MiB in float32).
    ``indices`` restricts Eq. (10) to those flat coordinates (the others are 0).
    """
    param_name = param_name or first_layer(model)
    param = _check(model, param_name, inputs, targets, eps, bn_mode)
    coords = _coords(param, indices)
    if chunk_size is not None and int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    out = torch.zeros(param.numel(), dtype=param.dtype, device=param.device)
    if batched and param_name == FIRST_LAYER and _batchable(model):
        values = _fdg_first_layer(model, inputs, targets, eps, loss_fn, bn_mode, coords, chunk_size)
    else:
        values = _fdg_naive(model, param_name, inputs, targets, eps, loss_fn, bn_mode, coords)
    out[coords] = values.to(out.dtype)
    return out.view_as(param)


def surrogate_gradient(
    model: nn.Module,
    param_name: str | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss_fn: LossFn = F.cross_entropy,
    bn_mode: BNMode = "train",
) -> torch.Tensor:
    """Autograd (surrogate, in an SNN) gradient of the loss for one parameter, in ``bn_mode``.

    Same minibatch conventions as :func:`fdg`; ``.grad`` of the model is left untouched.
    """
    param_name = param_name or first_layer(model)
    param = _check(model, param_name, inputs, targets, 1.0, bn_mode)
    with _fdg_mode(model, bn_mode, copies=1, batch=inputs.shape[0]), torch.enable_grad():
        loss = loss_fn(model(inputs), targets)
        (grad,) = torch.autograd.grad(loss, param)
    return grad


def first_layer(model: nn.Module) -> str:
    """Name of the first layer's weight, the one Algorithm 1 takes the FDG of (Sec. 4.3).

    ``conv1.weight`` where the model has it (dspike's networks), else the weight of the first
    Conv or Linear module in registration order (``model.modules()``), which for a
    ``nn.Sequential`` is the layer that sees the input. Name it explicitly when it is not.
    """
    if FIRST_LAYER in dict(model.named_parameters()):
        return FIRST_LAYER
    for name, m in model.named_modules():
        layer = isinstance(m, nn.modules.conv._ConvNd | nn.Linear)
        if layer and isinstance(m.weight, nn.Parameter):
            return f"{name}.weight" if name else "weight"
    raise ValueError("param_name: the model has no Conv or Linear layer; name its first weight")


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """``a . b / (|a| |b|)`` of the flattened tensors (Sec. 4.2), in float64; 0 if either is 0."""
    a, b = a.detach().flatten().double(), b.detach().flatten().double()
    if a.numel() != b.numel():
        raise ValueError(f"cosine_similarity: sizes differ ({a.numel()} vs {b.numel()})")
    norm = a.norm() * b.norm()
    return float(a @ b / norm) if norm > 0 else 0.0


def _check(
    model: nn.Module,
    param_name: str,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    bn_mode: str,
) -> nn.Parameter:
    params = dict(model.named_parameters())
    if param_name not in params:
        raise ValueError(
            f"param_name {param_name!r} is not a parameter of the model "
            f"(first few: {list(params)[:5]})"
        )
    if not 0 < float(eps) < math.inf:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise ValueError(f"inputs is an empty batch (shape {list(inputs.shape)})")
    if targets.shape[:1] != inputs.shape[:1]:
        raise ValueError(
            f"targets has {targets.shape[:1]} items but inputs has {inputs.shape[0]}"
        )
    if bn_mode not in ("train", "eval"):
        raise ValueError(f"bn_mode must be 'train' or 'eval', got {bn_mode!r}")
    return params[param_name]


def _coords(param: torch.Tensor, indices: Sequence[int] | torch.Tensor | None) -> torch.Tensor:
    if indices is None:
        return torch.arange(param.numel(), device=param.device)
    coords = torch.as_tensor(indices, dtype=torch.long, device=param.device).flatten()
    if coords.numel() and (coords.min() < 0 or coords.max() >= param.numel()):
        raise ValueError(f"indices must lie in [0, {param.numel()}), got {coords.tolist()}")
    return coords


@torch.no_grad()
def _fdg_first_layer(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    loss_fn: LossFn,
    bn_mode: BNMode,
    coords: torch.Tensor,
    chunk_size: int | None,
) -> torch.Tensor:
    """Eq. (10) for conv1.weight: shared first layer, ``chunk_size`` perturbed copies per pass."""
    conv1 = model.conv1
    weight = conv1.weight
    folded, static = model.fold_input(inputs)
    steps = model.time_steps if static else inputs.shape[1]
    base = conv1(folded)
    chunk = int(chunk_size or max(1, CHUNK_ELEMENTS // (base.numel() * (steps if static else 1))))
    basis = _unit_basis(conv1, folded)
    toy, split = None, getattr(model, "act_then_linear", lambda: None)()
    if split is not None and basis is not None:
        with _fdg_mode(model, bn_mode, copies=1, batch=inputs.shape[0]):
            toy = _OneChannelShortcut(model, *split, base, basis, static, steps)
    # All +eps copies of the coordinates, then all -eps copies.
    both = torch.cat([coords, coords])
    shifts = torch.cat([torch.ones_like(coords), -torch.ones_like(coords)]).to(weight.dtype) * eps
    losses = torch.empty(both.numel(), dtype=torch.float64, device=weight.device)
    for start in range(0, both.numel(), chunk):
        idx, shift = both[start : start + chunk], shifts[start : start + chunk]
        k = idx.numel()
        with _fdg_mode(model, bn_mode, copies=k, batch=inputs.shape[0]):
            if toy is not None:
                logits = toy(idx, shift)
            else:
                c = _stack_copies(_perturbed(conv1, folded, base, basis, idx, shift), static, steps)
                logits = model.forward_from_first(c, static, steps).unflatten(0, (k, -1))
        losses[start : start + k] = torch.func.vmap(loss_fn, in_dims=(0, None))(logits, targets)
    half = coords.numel()
    return (losses[:half] - losses[half:]) / (2.0 * eps)


def _perturbed(
    layer: nn.Module,
    x: torch.Tensor,
    base: torch.Tensor,
    basis: torch.Tensor | None,
    idx: torch.Tensor,
    shift: torch.Tensor,
) -> torch.Tensor:
    """``layer(x)`` with weight ``W + shift_k e_{idx_k}`` for each k: ``[K, *base.shape]``."""
    k = idx.numel()
    if basis is not None:  # the unit weight (o, j) adds basis[:, j] to output channel o only
        o, j = idx // basis.shape[1], idx % basis.shape[1]
        c = base.unsqueeze(0).repeat(k, *([1] * base.dim()))
        c[torch.arange(k), :, o] += _col(shift, basis.dim()) * basis[:, j].transpose(0, 1)
        return c
    weight = layer.weight
    units = torch.zeros(k, weight.numel(), dtype=weight.dtype, device=weight.device)
    units[torch.arange(k), idx] = shift
    return base.unsqueeze(0) + _responses(layer, x, units.view(k, *weight.shape))


def _col(v: torch.Tensor, dim: int) -> torch.Tensor:
    """``v`` of shape ``[K]`` viewed as ``[K, 1, ..., 1]`` with ``dim`` dimensions."""
    return v.view(-1, *([1] * (dim - 1)))


def _batchable(model: nn.Module) -> bool:
    """One of dspike's networks whose every BatchNorm is a tdBN's (the per-copy hook)."""
    inner = {m.bn for m in model.modules() if isinstance(m, TdBatchNorm2d)}
    return hasattr(model, "forward_from_first") and all(
        m in inner for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    )


class _OneChannelShortcut:
    """Logits of perturbed copies of a network ``head(act(conv1(x)))``, one channel each.

    The toy CNN (Sec. 4.2) computes ``fc(pool(act(conv1(x))))`` averaged over time (Eq. 3).
    The activation acts element by element, so changing a weight of conv1's output channel o
    changes only channel o of ``act``; the head is linear with a matrix ``A`` (taken once, by
    autograd), so the logits change by ``A[:, o] @ (sum_t act'_o - sum_t act_o) / T``. Each
    copy costs one channel of the activation and no head.
    """

    def __init__(
        self,
        model: nn.Module,
        act: nn.Module,
        head: Callable[[torch.Tensor], torch.Tensor],
        base: torch.Tensor,
        basis: torch.Tensor,
        static: bool,
        steps: int,
    ) -> None:
        self.act, self.base, self.basis = act, base, basis
        self.static, self.steps = static, steps
        self.logits = model.forward_from_first(base.clone(), static, steps)  # [N, classes]
        self.counts = self._act_sum(base.clone())  # [N, C, H*W]
        z = torch.zeros(1, *base.shape[1:], dtype=base.dtype, device=base.device)
        jac = torch.func.jacrev(head)(z)  # [1, classes, 1, C, H, W]
        self.head = jac.reshape(jac.shape[1], base.shape[1], -1)  # [classes, C, H*W]

    def _act_sum(self, c: torch.Tensor) -> torch.Tensor:
        """``sum_t act(c)`` for conv1-like outputs ``[B', M, H, W]``, as ``[N, M, H*W]``."""
        m, hw = c.shape[1], c.shape[-2] * c.shape[-1]
        flat = c.reshape(-1, 1, *c.shape[-2:])  # every (sample, channel) plane on its own
        act = self.act
        if isinstance(act, LIF) and self.static:  # the same input at every step, not copied
            c_t = flat.expand(self.steps, *flat.shape)
            out = lif(c_t, act.tau, act.v_threshold, act.surrogate, act.detach_reset)
        else:
            out = act(flat)
        return out.view(self.steps, -1, m, hw).sum(0)

    def __call__(self, idx: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        k, per_out = idx.numel(), self.basis.shape[1]
        o, j = idx // per_out, idx % per_out
        c = torch.addcmul(self.base[:, o], shift.view(1, k, 1, 1), self.basis[:, j])  # [B',K,H,W]
        diff = self._act_sum(c) - self.counts[:, o]  # [N, K, H*W]
        delta = torch.einsum("nkh,ckh->knc", diff, self.head[:, o]) / self.steps
        return self.logits + delta


def _unit_basis(layer: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """A plain Conv2d's response to each unit kernel of one output channel (``None`` if not).

    ``[N, Cin*kh*kw, H', W']``: the im2col patches of ``x``; the response of the unit weight
    ``(o, j)`` is this tensor's channel j placed in output channel o, zero elsewhere.
    """
    if not (isinstance(layer, nn.Conv2d) and layer.groups == 1 and layer.padding_mode == "zeros"):
        return None
    cin, kh, kw = layer.weight.shape[1:]
    eye = torch.eye(cin * kh * kw, dtype=x.dtype, device=x.device).view(-1, cin, kh, kw)
    return F.conv2d(x, eye, None, layer.stride, layer.padding, layer.dilation)


def _responses(layer: nn.Module, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` with each of ``weights`` as its weight and no bias: ``[K, *layer(x).shape]``."""
    names = {n for n, _ in layer.named_parameters(recurse=False)}
    bias = {"bias": torch.zeros_like(layer.bias)} if "bias" in names else {}

    def respond(w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, {"weight": w, **bias}, (x,))

    return torch.func.vmap(respond)(weights)


def _stack_copies(c: torch.Tensor, static: bool, steps: int) -> torch.Tensor:
    """``[K, B', ...]`` copies of conv1's output into the layout ``forward_from_first`` expects.

    Static input: ``[K*B, ...]``; frames (``B' = steps*B``, time outermost): ``[steps*K*B, ...]``.
    Either way the batch axis reads ``[time, copy, sample]``, as the per-copy tdBN assumes.
    """
    if static:
        return c.flatten(0, 1)
    return c.unflatten(1, (steps, -1)).transpose(0, 1).flatten(0, 2)


@torch.no_grad()
def _fdg_naive(
    model: nn.Module,
    param_name: str,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    loss_fn: LossFn,
    bn_mode: BNMode,
    coords: torch.Tensor,
) -> torch.Tensor:
    """Eq. (10) coordinate by coordinate: two ordinary forward passes of a model copy each."""
    ref = copy.deepcopy(model)
    ref.eval()
    resets = _state_resets(ref)
    for m in ref.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(bn_mode == "train")  # its running stats are the copy's, discarded after
        if isinstance(m, LIF):
            m.record_rate = False
    flat = dict(ref.named_parameters())[param_name].view(-1)
    out = torch.empty(coords.numel(), dtype=torch.float64, device=flat.device)
    for n, i in enumerate(coords.tolist()):
        original = flat[i].clone()
        losses = []
        for sign in (1.0, -1.0):
            flat[i] = original + sign * eps
            _reset(resets)
            losses.append(loss_fn(ref(inputs), targets).double())
        flat[i] = original
        out[n] = (losses[0] - losses[1]) / (2.0 * eps)
    return out


@contextlib.contextmanager
def _fdg_mode(model: nn.Module, bn_mode: BNMode, copies: int, batch: int) -> Iterator[None]:
    """Dropout off, BNs per ``bn_mode`` (train: per-copy batch statistics), no rate recording.

    In a network whose BatchNorms are all tdBNs (:func:`_batchable`), ``"train"`` opens each
    tdBN's per-copy statistics hook. In any other model (one copy per pass) it puts the BNs in
    train mode and restores their buffers afterwards; its neuron state is reset on entry and on
    exit (:func:`_state_resets`).
    """
    flags = {m: m.training for m in model.modules()}
    rates = {m: m.record_rate for m in model.modules() if isinstance(m, LIF)}
    ours = _batchable(model)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = {} if ours else {m: [b.clone() for b in m.buffers(recurse=False)] for m in norms}
    resets = _state_resets(model)
    hooks = contextlib.ExitStack()
    try:
        model.eval()
        for m in rates:
            m.record_rate = False
        _reset(resets)
        if bn_mode == "train" and not ours:
            for m in norms:
                m.train()
        elif bn_mode == "train":
            for m in model.modules():
                if isinstance(m, TdBatchNorm2d):
                    hooks.enter_context(m.per_copy_statistics(copies, batch))
        yield
    finally:
        hooks.close()
        for m, flag in flags.items():
            m.training = flag
        for m, rate in rates.items():
            m.record_rate = rate
        with torch.no_grad():
            for m, buffers in saved.items():
                for b, old in zip(m.buffers(recurse=False), buffers, strict=True):
                    b.copy_(old)
        _reset(resets)


def _state_resets(model: nn.Module) -> list[Callable[[], object]]:
    """The state resets of the model's SpikingJelly and snnTorch neurons (empty for ours).

    A SpikingJelly ``MemoryModule`` and an snnTorch ``SpikingNeuron`` keep their membrane
    potential from one call to the next. The frameworks are looked up in ``sys.modules`` only:
    a model can hold their modules only if they are imported.
    """
    kinds = []
    for module, cls, method in (
        ("spikingjelly.activation_based.base", "MemoryModule", "reset"),
        ("snntorch._neurons.neurons", "SpikingNeuron", "reset_mem"),
    ):
        base = getattr(sys.modules.get(module), cls, None)
        if base is not None:
            kinds.append((base, method))
    return [
        getattr(m, method)
        for m in model.modules()
        for base, method in kinds
        if isinstance(m, base) and hasattr(m, method)
    ]


def _reset(resets: list[Callable[[], object]]) -> None:
    for reset in resets:
        reset()
