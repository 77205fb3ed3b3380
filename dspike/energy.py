"""Op counts, firing rates and energy of ANN vs SNN (paper Sec. 5.4, Table 3, Fig. 4).

* :func:`count_macs`: multiply-accumulates per layer, per input sample and time step,
  counted by :class:`torch.utils.flop_counter.FlopCounterMode` (MACs = FLOPs / 2).
* :func:`measure_activity`: ONE evaluation pass with counters on: the firing rate of every
  LIF layer (Fig. 4, read from the LIF modules) and, for every conv/linear layer, the
  fraction of its input elements that are nonzero, plus top-1 accuracy from the same pass.
* :func:`op_counts`: Table 3's #Add and #Mult. ANN: #Mult = #Add = MACs. SNN:
  #Mult = MACs(first layer) x T, #Add = sum over the other layers of
  MACs(layer) x (input rate of the layer) x T; only a nonzero input triggers work.
* :func:`energy`: 4.6 pJ per #Mult + 0.9 pJ per #Add (45 nm CMOS, following Diet-SNN [27]).

torch is imported where counting starts, not with the module: the report stage reads the cost
model (:data:`E_MAC`, :data:`E_AC`, :func:`energy`) without it.

Inputs that are not spikes. Average-pooled spikes (the ResNet-D shortcut's 1x1 conv, the FC
head after global pooling) are graded, not binary. We count such a layer like a spiking one:
one accumulate per nonzero input and synapse (the event-driven cost). The report flags those
layers (``binary=False``) so their share of #Add is visible.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn

__all__ = [
    "E_AC",
    "E_MAC",
    "ActivityReport",
    "LayerInput",
    "OpCounts",
    "count_macs",
    "energy",
    "measure_activity",
    "op_counts",
]


E_MAC = 4.6e-12  # J per multiply-accumulate, 45 nm CMOS (Sec. 5.4)
E_AC = 0.9e-12  # J per accumulate


def energy(n_mult: float, n_add: float, e_mac: float = E_MAC, e_ac: float = E_AC) -> float:
    """Energy in joules: ``e_mac * #Mult + e_ac * #Add`` (Sec. 5.4, Table 3)."""
    return e_mac * n_mult + e_ac * n_add


def _is_leaf(m: nn.Module) -> bool:
    return next(m.children(), None) is None


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode without gradients; every module's own training flag is restored after."""
    import torch

    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, flag in flags:
            m.training = flag


def count_macs(model: nn.Module, example_input: torch.Tensor) -> dict[str, int]:
    """MACs of every leaf layer that does any, per input sample and per time step.

    Each layer's FLOPs (``torch.utils.flop_counter``) are halved and divided by the leading
    dimension of its input, which is the batch, folded with time where the layer runs on
    ``[T*B, ...]``. So a static image's ``conv1``, which runs once and is broadcast over T,
    and a layer that runs T times both report their cost for one step (Table 3's convention).
    The model runs once in eval mode without gradients; its training flags are restored.
    Shapes are all it needs: a model and input on the ``meta`` device cost no arithmetic.
    """
    from torch.utils.flop_counter import FlopCounterMode

    mode = FlopCounterMode(display=False)
    macs: dict[str, float] = {}
    start: dict[str, int] = {}
    attributed = 0
    handles = []

    def pre(name: str):
        def hook(_m: nn.Module, _args: Any) -> None:
            start[name] = mode.get_total_flops()

        return hook

    def post(name: str):
        def hook(_m: nn.Module, args: Any, _out: Any) -> None:
            nonlocal attributed
            flops = mode.get_total_flops() - start.pop(name)
            attributed += flops
            if flops:
                rows = args[0].shape[0] if args and args[0].dim() > 1 else 1
                macs[name] = macs.get(name, 0.0) + flops / 2 / rows

        return hook

    for name, m in model.named_modules():
        if _is_leaf(m):
            handles.append(m.register_forward_pre_hook(pre(name)))
            handles.append(m.register_forward_hook(post(name)))
    try:
        with _eval_mode(model), mode:
            model(example_input)
    finally:
        for h in handles:
            h.remove()
    if mode.get_total_flops() != attributed:
        raise ValueError("some FLOPs happen outside leaf modules; cannot attribute them")
    return {k: round(v) for k, v in macs.items()}


@dataclass(frozen=True)
class OpCounts:
    """Table 3's operation counts for one forward pass of one sample."""

    n_add: float
    n_mult: float
    adds_by_layer: dict[str, float] = field(default_factory=dict)


def op_counts(
    macs: Mapping[str, float],
    input_rates: Mapping[str, float] | None = None,
    time_steps: int = 1,
    first_layer: str = "conv1",
) -> OpCounts:
    """#Add and #Mult of Table 3 from per-step MACs (:func:`count_macs`).

    ANN (``input_rates`` is None): every MAC is one multiplication and one addition.
    SNN: the encoding layer ``first_layer`` multiplies, ``MACs x T`` times; every other layer
    adds once per nonzero input and synapse, ``MACs x rate x T`` times, where ``rate`` is the
    fraction of its inputs that are nonzero (:attr:`ActivityReport.input_rates`).
    """
    if input_rates is None:
        total = float(sum(macs.values()))
        return OpCounts(total, total, {k: float(v) for k, v in macs.items()})
    if first_layer not in macs:
        raise KeyError(f"first layer {first_layer!r} not among the counted layers {list(macs)}")
    missing = [k for k, v in macs.items() if k != first_layer and v and k not in input_rates]
    if missing:
        raise KeyError(f"no input rate measured for layers {missing}")
    adds = {
        k: float(v) * input_rates[k] * time_steps
        for k, v in macs.items()
        if k != first_layer and v
    }
    return OpCounts(math.fsum(adds.values()), float(macs[first_layer]) * time_steps, adds)


@dataclass(frozen=True)
class LayerInput:
    """What one conv/linear layer received over the measured pass."""

    nonzero: int
    numel: int
    binary: bool  # every nonzero input was 1 (spikes), up to float rounding

    @property
    def rate(self) -> float:
        return self.nonzero / max(self.numel, 1)


@dataclass(frozen=True)
class ActivityReport:
    """Firing rates (Fig. 4) and layer-input rates (Table 3) over one pass of a loader."""

    firing_rates: dict[str, float]  # LIF layer -> spikes per neuron per step, in call order
    inputs: dict[str, LayerInput]  # conv/linear layer -> its inputs, in call order
    samples: int
    correct: int | None = None

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None else self.correct / max(self.samples, 1)

    @property
    def input_rates(self) -> dict[str, float]:
        return {k: v.rate for k, v in self.inputs.items()}

    def firing_rate_frame(self) -> pd.DataFrame:
        """One row per LIF layer: index (1-based, call order), layer, firing_rate."""
        import pandas as pd

        rows = [{"index": i, "layer": k, "firing_rate": r}
                for i, (k, r) in enumerate(self.firing_rates.items(), 1)]
        return pd.DataFrame(rows, columns=["index", "layer", "firing_rate"])


class _InputCounter:
    """Forward pre-hook accumulating, on the input's device, the input's nonzero count and
    whether every input so far was binary: in [0, 1] and summing to its nonzero count, which
    holds only if every nonzero value is exactly 1.

    Counts are per-row float32 sums of ``|sign(x)|``: exact for rows of < 2**24 elements, in
    any input dtype, and several times cheaper than ``torch.count_nonzero`` on CPU.
    """

    def __init__(self) -> None:
        self.nonzero: torch.Tensor | int = 0
        self.binary: torch.Tensor | bool = True
        self.numel = 0

    def __call__(self, _m: nn.Module, args: Any) -> None:
        import torch

        x = args[0]
        if not x.numel():
            return
        rows = x.reshape(x.shape[0], -1) if x.dim() > 1 else x.reshape(1, -1)
        if rows.shape[1] < 2**24:
            counts = rows.sign().abs_().sum(1, dtype=torch.float32)
            sums = rows.sum(1, dtype=torch.float32)
        else:  # rows too long for exact float32 counts
            counts = torch.count_nonzero(rows, dim=1).double()
            sums = rows.sum(1, dtype=torch.float64)
        lo, hi = torch.aminmax(x)
        binary = (lo >= 0) & (hi <= 1) & torch.eq(sums, counts).all()
        self.nonzero = self.nonzero + counts.sum(dtype=torch.int64)
        self.binary = binary & self.binary
        self.numel += x.numel()


def _default_layers(model: nn.Module) -> list[str]:
    from torch import nn

    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    return [n for n, m in model.named_modules() if isinstance(m, kinds)]


def measure_activity(
    model: nn.Module,
    loader: Iterable[Any],
    device: torch.device | str | None = None,
    layers: Iterable[str] | None = None,
) -> ActivityReport:
    """Run ``model`` once over ``loader`` (eval mode, no gradients) with counters on.

    Records every LIF layer's firing rate through its ``record_rate`` counters, and for
    each layer in ``layers`` (default: every conv and linear layer) how many of its input
    elements were nonzero. Batches are ``x`` or ``(x, y, ...)``; with targets, top-1
    accuracy comes from the same pass. Counters and hooks are removed afterwards, and the
    modules' training flags and the LIFs' ``record_rate`` flags are restored.
    """
    import torch

    from .neurons import LIF

    modules = dict(model.named_modules())
    names = list(layers) if layers is not None else _default_layers(model)
    counters = {n: _InputCounter() for n in names}
    lifs = {n: m for n, m in modules.items() if isinstance(m, LIF)}
    order: dict[str, None] = {}  # first-call order of counted layers and LIFs

    def first_call(name: str):
        def hook(_m: nn.Module, _args: Any) -> None:
            order.setdefault(name, None)

        return hook

    handles = [modules[n].register_forward_pre_hook(c) for n, c in counters.items()]
    handles += [modules[n].register_forward_pre_hook(first_call(n)) for n in (*names, *lifs)]
    flags = {n: m.record_rate for n, m in lifs.items()}
    samples, correct, has_targets = 0, torch.zeros((), dtype=torch.long), False
    try:
        for m in lifs.values():
            m.reset_rate()
            m.record_rate = True
        with _eval_mode(model):
            for batch in loader:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                x = x.to(device) if device is not None else x
                out = model(x)
                samples += x.shape[0]
                if isinstance(batch, (tuple, list)) and len(batch) > 1:
                    has_targets = True
                    y = batch[1].to(out.device)
                    correct = correct.to(out.device) + (out.argmax(1) == y).sum()
    finally:
        for h in handles:
            h.remove()
        for n, m in lifs.items():
            m.record_rate = flags[n]
    rates = {n: lifs[n].firing_rate for n in order if n in lifs}
    inputs = {
        n: LayerInput(int(c.nonzero), c.numel, bool(c.binary))
        for n in order
        if (c := counters.get(n)) is not None
    }
    return ActivityReport(rates, inputs, samples, int(correct) if has_targets else None)
