"""pytest plugin: every SpikingJelly neuron built during the run gets a fresh dspike surrogate.

Load it with ``-p swap_spikingjelly`` (``PYTHONPATH=tools/framework_suites``). At plugin load it
wraps the ``__init__`` of every class in ``spikingjelly.activation_based.neuron`` (and its
submodules) whose own ``__init__`` takes ``surrogate_function``: ``SimpleBaseNode``,
``BaseNode`` and the neurons that take or set the surrogate themselves (IF/LIF/PLIF/PSN/
few-spike/noisy/inter-layer/LIF variants, ...). The outermost constructor replaces the
surrogate given (or the default: SpikingJelly's shared ``Sigmoid()``/``ATan()``/``Rect()``
instance, or ``None`` where the neuron defaults to one) by a fresh
``dspike.integrations.spikingjelly.Dspike(spiking=<the replaced surrogate's spiking mode>)``:
temperature 1, window following the neuron's ``v_threshold``, firing at ``v >= 0``; the inner
``super().__init__`` calls then see a Dspike and keep it.

Not swapped (their forward is not a Heaviside of ``v - V_th``): ``MultiLevelSpikeCount``
(ILIF's integer spike counts), ``PoissonPass`` (Bernoulli sampling), non-surrogate callables,
and a Dspike already given. Classes outside ``activation_based.neuron`` (``rnn`` cells,
``encoding``, ``lava_exchange``) are not patched: they are not spiking neurons with a
``v_threshold`` for the window to follow.

``SWAP_SPIKINGJELLY_REPORT=1`` prints how many surrogates were swapped at the session's end.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import pkgutil
from collections import Counter

import pytest

_swapped: Counter[str] = Counter()
_kept: Counter[str] = Counter()
_NOT_HEAVISIDE = ("MultiLevelSpikeCount", "PoissonPass")


def _replacement(surrogate_function):
    from spikingjelly.activation_based.surrogate import SurrogateFunctionBase

    from dspike.integrations.spikingjelly import Dspike

    if isinstance(surrogate_function, Dspike):
        _kept["dspike"] += 1
        return surrogate_function
    if surrogate_function is None:
        _swapped["None"] += 1
        return Dspike()
    name = type(surrogate_function).__name__
    if isinstance(surrogate_function, SurrogateFunctionBase) and name not in _NOT_HEAVISIDE:
        _swapped[name] += 1
        return Dspike(spiking=bool(surrogate_function.spiking))
    _kept[name] += 1
    return surrogate_function


def _wrap(cls: type) -> bool:
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, "_dspike_swap", False):
        return False
    try:
        signature = inspect.signature(init)
    except (TypeError, ValueError):
        return False
    parameter = signature.parameters.get("surrogate_function")
    if parameter is None:
        return False
    default = parameter.default

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        given = bound.arguments.get("surrogate_function", default)
        if given is inspect.Parameter.empty:
            given = None
        bound.arguments["surrogate_function"] = _replacement(given)
        init(*bound.args, **bound.kwargs)

    __init__._dspike_swap = True  # type: ignore[attr-defined]
    cls.__init__ = __init__
    return True


def install() -> list[str]:
    """Patch every neuron constructor taking ``surrogate_function``; returns those patched."""
    from torch import nn

    package = importlib.import_module("spikingjelly.activation_based.neuron")
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        try:
            modules.append(importlib.import_module(info.name))
        except Exception:  # optional back ends (cupy, lava, ...) may be missing
            continue
    patched = []
    for module in modules:
        for obj in list(vars(module).values()):
            if (
                isinstance(obj, type) and issubclass(obj, nn.Module)
                and obj.__module__ == module.__name__ and _wrap(obj)
            ):  # fmt: skip
                patched.append(f"{obj.__module__}.{obj.__qualname__}")
    return patched


_PATCHED = install()


def pytest_report_header(config):
    return (
        "swap_spikingjelly: surrogate_function -> dspike.integrations.spikingjelly.Dspike() "
        f"in {len(_PATCHED)} neuron classes"
    )


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    if os.environ.get("SWAP_SPIKINGJELLY_REPORT"):
        terminalreporter.write_line(f"swap_spikingjelly: patched {_PATCHED}")
        terminalreporter.write_line(
            f"swap_spikingjelly: swapped {dict(_swapped)}, kept {dict(_kept)}"
        )
