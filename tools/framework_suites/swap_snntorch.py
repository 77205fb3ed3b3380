"""pytest plugin: every snnTorch neuron built during the run gets a fresh dspike surrogate.

Load it with ``-p swap_snntorch`` (``PYTHONPATH=tools/framework_suites``). At plugin load it
wraps the ``__init__`` of

* ``snntorch._neurons.neurons.SpikingNeuron`` (base of Leaky, Synaptic, Alpha, Lapicque, RLeaky,
  RSynaptic, SLSTM, SConv2dLSTM, LinearLeaky, StateLeaky, DeltaLeaky, AssociativeLeaky, ...), and
* the neurons that are plain ``nn.Module`` and set ``spike_grad`` themselves (``LeakyParallel``,
  and the ``LeakyKernel`` / unrolled variants when present),

so that ``spike_grad=None`` (snnTorch's default ATan) or any snnTorch built-in surrogate (a
callable defined in a ``snntorch`` module: ``surrogate.fast_sigmoid()``, ``atan()``,
``straight_through_estimator()``, the neurons' own ``ATan.apply``, ...) becomes a fresh
``dspike.integrations.snntorch.Dspike()``: temperature 1, window following the neuron's
``threshold``, firing at ``v > 0``. Left as they are: a Dspike already given, user-defined callables
(e.g. a test's own lambda), and ``surrogate_disable=True`` (snnTorch then bypasses the surrogate).

``SWAP_SNNTORCH_REPORT=1`` prints how many surrogates were swapped at the end of the session.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections import Counter

import pytest

_swapped: Counter[str] = Counter()
_kept: Counter[str] = Counter()


def _builtin(spike_grad) -> bool:
    """A snnTorch built-in surrogate (closure, autograd ``apply`` or module from snntorch)."""
    fn = getattr(spike_grad, "__func__", spike_grad)  # bound ``Function.apply``
    owner = getattr(spike_grad, "__self__", None)
    modules = {getattr(fn, "__module__", None), getattr(type(spike_grad), "__module__", None)}
    if owner is not None:
        modules.add(getattr(owner, "__module__", None))
    return any(m and m.split(".")[0] == "snntorch" for m in modules)


def _replacement(spike_grad):
    from dspike.integrations.snntorch import Dspike

    if isinstance(spike_grad, Dspike):
        _kept["dspike"] += 1
        return spike_grad
    if spike_grad is None or _builtin(spike_grad):
        _swapped[type(spike_grad).__name__ if spike_grad is not None else "None"] += 1
        return Dspike()
    _kept[type(spike_grad).__name__] += 1
    return spike_grad


def _wrap(cls: type) -> None:
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, "_dspike_swap", False):
        return
    signature = inspect.signature(init)
    if "spike_grad" not in signature.parameters:
        return

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        if not bound.arguments.get("surrogate_disable", False):
            bound.arguments["spike_grad"] = _replacement(bound.arguments.get("spike_grad"))
        init(*bound.args, **bound.kwargs)

    __init__._dspike_swap = True  # type: ignore[attr-defined]
    cls.__init__ = __init__


def install() -> list[str]:
    """Patch snnTorch's neuron constructors; returns the classes patched."""
    from torch import nn

    neurons = importlib.import_module("snntorch._neurons.neurons")
    patched = [neurons.SpikingNeuron]
    # Neurons that are not SpikingNeuron but take spike_grad themselves.
    for name in ("leakyparallel", "leakyunroll", "leakykernel"):
        try:
            module = importlib.import_module(f"snntorch._neurons.{name}")
        except ImportError:
            continue
        for obj in vars(module).values():
            if (
                isinstance(obj, type) and issubclass(obj, nn.Module)
                and not issubclass(obj, neurons.SpikingNeuron)
                and obj.__module__ == module.__name__
            ):  # fmt: skip
                patched.append(obj)
    for cls in patched:
        _wrap(cls)
    return [f"{c.__module__}.{c.__qualname__}" for c in patched]


_PATCHED = install()


def pytest_report_header(config):
    return f"swap_snntorch: spike_grad -> dspike.integrations.snntorch.Dspike() in {_PATCHED}"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    if os.environ.get("SWAP_SNNTORCH_REPORT"):
        terminalreporter.write_line(f"swap_snntorch: swapped {dict(_swapped)}, kept {dict(_kept)}")
