"""What the SpikingJelly and snnTorch Dspike surrogates share (Eq. 11-12 as a module).

* **The temperature is state.** b lives in a float64 buffer ``b``: ``state_dict()`` saves it,
  ``load_state_dict`` restores it, ``.to(dtype)`` keeps it exact, and setting it writes the
  buffer in place, so a compiled graph reads the new value as data (no retrace).
* **Explicit inputs.** The spike is an autograd function of ``(v, b, V_th)``: the backward reads
  nothing from the module, which is what ``torch.compile`` needs when one surrogate serves
  several layers or time steps and b changes between calls (Algorithm 1, every epoch).
* **The window follows the neuron.** Both frameworks call the surrogate on ``v - V_th``; Eq.
  (12)'s window is ``|v - V_th| <= V_th``, so it needs the neuron's threshold. A module
  registration hook records each neuron the surrogate is given to; with ``v_threshold=None``
  (the default) the window is that neuron's threshold at every call, per-neuron tensors and
  learnt thresholds included. An explicit ``v_threshold`` that disagrees with the neuron's is
  an error at the first call, as in :class:`dspike.neurons.LIF`.
* **The firing convention is the framework's**: ``fires_at_threshold`` (SpikingJelly fires at
  ``v >= V_th``, snnTorch and dspike at ``v > V_th``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..surrogate import Dspike, _positive, dspike_grad

__all__ = ["DspikeModule", "dspike_spike"]

Threshold = float | torch.Tensor


class _DspikeSpike(torch.autograd.Function):
    """Heaviside of ``v`` forward, Eq. (12)'s derivative backward, from explicit inputs."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, v: torch.Tensor, b: torch.Tensor, v_threshold: Threshold, at_zero: bool
    ) -> torch.Tensor:
        if isinstance(v_threshold, torch.Tensor):
            ctx.save_for_backward(v, b, v_threshold)
        else:
            ctx.save_for_backward(v, b)
            ctx.v_threshold = v_threshold
        return (v >= 0 if at_zero else v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        v, b, *rest = ctx.saved_tensors
        v_threshold = rest[0] if rest else ctx.v_threshold
        return grad_out * dspike_grad(v, b, v_threshold), None, None, None


def dspike_spike(
    v: torch.Tensor, temperature: float | torch.Tensor, v_threshold: Threshold,
    fires_at_threshold: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Spike of ``v = u - V_th`` (``v > 0``, or ``v >= 0`` if ``fires_at_threshold``) with the
    Dspike gradient of Eq. (12) at temperature b and window ``|v| <= V_th``."""
    b = torch.as_tensor(temperature, dtype=torch.float64)
    return _DspikeSpike.apply(v, b, v_threshold, fires_at_threshold)


def _scalar(threshold: Threshold) -> float | None:
    """The threshold as one number, or None if it is per-neuron or learnt."""
    if isinstance(threshold, torch.Tensor):
        if threshold.numel() != 1 or threshold.requires_grad:
            return None
        return float(threshold)
    return float(threshold)


def _describe(threshold: Threshold) -> str:
    value = _scalar(threshold)
    if value is not None:
        return f"{value:g}"
    kind = "learnt" if threshold.requires_grad else "per-neuron"  # type: ignore[union-attr]
    return f"{kind} {tuple(threshold.shape)}"  # type: ignore[union-attr]


class DspikeModule(nn.Module):
    """Base of ``dspike.integrations.{spikingjelly,snntorch}.Dspike`` (see the module docstring).

    Subclasses set ``framework``, ``threshold_attr`` (the neuron attribute holding V_th),
    ``fires_at_threshold`` and ``per_neuron_thresholds`` (whether a tensor threshold is laid
    out as the potential, so that the window can follow it element by element).
    :func:`dspike.temperature.dspike_surrogates` finds every instance in a model
    (``is_dspike_surrogate``) and sets its :attr:`temperature`.
    """

    is_dspike_surrogate: ClassVar[bool] = True
    framework: ClassVar[str]
    threshold_attr: ClassVar[str]
    fires_at_threshold: ClassVar[bool] = False
    per_neuron_thresholds: ClassVar[bool] = True  # a tensor threshold broadcasts against v

    b: torch.Tensor

    def __init__(
        self, temperature: float = 1.0, v_threshold: float | None = None, **base: Any
    ) -> None:
        super().__init__(**base)
        b = _positive("Dspike temperature", temperature)
        self.register_buffer("b", torch.tensor(b, dtype=torch.float64))
        self._v_threshold = None if v_threshold is None else _positive("v_threshold", v_threshold)
        self.neurons: list[nn.Module] = []  # the modules it was given to (registration hook)
        self._checked = False
        _install_registration_hook()

    @property
    def temperature(self) -> float:
        """The temperature b of Eq. (12), saved in ``state_dict`` as ``b``."""
        return float(self.b)

    @temperature.setter
    def temperature(self, value: float) -> None:
        with torch.no_grad():
            self.b.fill_(_positive("Dspike temperature", value))

    @property
    def v_threshold(self) -> Threshold:
        """The window's V_th: the one given, else the neuron's (a float or a tensor)."""
        if self._v_threshold is not None:
            return self._v_threshold
        neurons = self._threshold_neurons()
        if not neurons:
            where = (
                f"{type(self.neurons[0]).__name__} has no '{self.threshold_attr}'"
                if self.neurons else "it is in none"
            )  # fmt: skip
            raise ValueError(
                f"{self._name()}() takes the threshold of the {self.framework} neuron it is "
                f"given to ('{self.threshold_attr}'), and {where}: pass it, e.g. "
                "Dspike(1.0, v_threshold=1.0)"
            )
        threshold = getattr(neurons[0], self.threshold_attr)
        if not isinstance(threshold, torch.Tensor):
            return float(threshold)
        if threshold.numel() > 1 and not self.per_neuron_thresholds:
            raise ValueError(
                f"{self._name()} serves a {type(neurons[0]).__name__} whose "
                f"{self.threshold_attr} is a tensor of shape {tuple(threshold.shape)}: "
                f"{self.framework} lays such thresholds out per neuron class, which the "
                "window cannot follow; give the neuron a scalar threshold"
            )
        return threshold.detach()

    def spike(self, v: torch.Tensor) -> torch.Tensor:
        """The Dspike spike of ``v = u - V_th`` in this framework's firing convention."""
        if not self._checked:
            self._check(v.device)
        return _DspikeSpike.apply(v, self.b, self.v_threshold, self.fires_at_threshold)

    def primitive(self, v: torch.Tensor) -> torch.Tensor:
        """Eq. (12) itself in ``v = u - V_th`` (the relaxed spike), for a scalar threshold."""
        threshold = _scalar(self.v_threshold)
        if threshold is None:
            raise ValueError(f"{self._name()}: the relaxed spike needs one threshold value")
        return Dspike(self.temperature, threshold).primitive(v)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        """``.to``/``.half()``/``.cuda()``: b follows the device and stays float64 (exact)."""
        b = self.b
        super()._apply(fn, recurse)
        if self.b.dtype != torch.float64:
            self.b = b.to(self.b.device)
        return self

    def _threshold_neurons(self) -> list[nn.Module]:
        return [n for n in self.neurons if hasattr(n, self.threshold_attr)]

    def _name(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}"

    @torch.compiler.disable
    def _check(self, device: torch.device) -> None:
        """Once, at the first call: the window agrees with every neuron this surrogate serves."""
        thresholds = [getattr(n, self.threshold_attr) for n in self._threshold_neurons()]
        if self._v_threshold is not None:
            for t in thresholds:
                if _scalar(t) != self._v_threshold:
                    raise ValueError(
                        f"{self._name()}(v_threshold={self._v_threshold:g}) serves a neuron "
                        f"whose threshold is {_describe(t)}: leave v_threshold out, and the "
                        "window follows the neuron's"
                    )
        elif len(thresholds) > 1:
            values = {_scalar(t) for t in thresholds}
            if len(values) > 1 or None in values:
                shown = ", ".join(_describe(t) for t in thresholds)
                raise ValueError(
                    f"one {self._name()} serves {len(thresholds)} neurons whose thresholds "
                    f"are {shown}: give each neuron its own Dspike()"
                )
        else:
            self.v_threshold  # noqa: B018  (raises if there is no neuron and no v_threshold)
        self._warn_path(device)
        self._checked = True

    def _warn_path(self, device: torch.device) -> None:
        """Tell, once, when the framework leaves a faster path for this surrogate."""

    def extra_repr(self) -> str:
        if self._v_threshold is not None:
            window = f"v_threshold={self._v_threshold:g}"
        else:
            thresholds = self._threshold_neurons()
            shown = _describe(getattr(thresholds[0], self.threshold_attr)) if thresholds else "?"
            window = f"v_threshold=neuron's ({shown})"
        fires = ">=" if self.fires_at_threshold else ">"
        return f"temperature={self.temperature:g}, {window}, window=|v|<=V_th, fires v {fires} 0"


_HOOK: Any = None


def _bind(module: nn.Module, name: str, submodule: nn.Module | None) -> None:
    """Module registration hook: remember each module a Dspike surrogate is given to."""
    if isinstance(submodule, DspikeModule) and not any(n is module for n in submodule.neurons):
        submodule.neurons.append(module)
        submodule._checked = False


def _install_registration_hook() -> None:
    global _HOOK
    if _HOOK is None:
        _HOOK = nn.modules.module.register_module_module_registration_hook(_bind)
