"""The neuron and tdBN constants of a network: one typed, frozen spec whose defaults live here.

:class:`NeuronSpec` (after Norse's ``LIFParameters``) holds the LIF constants of Eq. 1-2
(params.yaml section ``neuron``: ``tau``, ``v_threshold``, ``detach_reset``, ``backend``,
``recompute``) and
tdBN's of Eq. 4-5 (section ``tdbn``: ``alpha``, ``alpha_residual``, ``form``), under the same
names, so :meth:`NeuronSpec.from_sections` loads both sections as they are. The model config
(:class:`dspike.engine.ModelConfig`) carries it; :func:`dspike.models.build_model`,
:class:`dspike.neurons.LIF` and :meth:`dspike.norm.TdBatchNorm2d.from_spec` take it. Every other
default of these constants in the library reads this class, so each value is written once.

A bad value raises :class:`~dspike.checks.ConfigError` naming its params key (``neuron.tau``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast, get_args

from .checks import ConfigError, check_at_least, check_choice, check_number

__all__ = ["LIF_BACKENDS", "TDBN_FORMS", "LIFBackend", "NeuronSpec", "TdBNForm", "check_backend"]

LIFBackend = Literal["eager", "compiled"]
LIF_BACKENDS: tuple[str, ...] = get_args(LIFBackend)
TdBNForm = Literal["scale", "init"]
TDBN_FORMS: tuple[str, ...] = get_args(TdBNForm)


def check_backend(backend: str, name: str = "backend") -> LIFBackend:
    """``backend`` if it is a LIF backend, else a ValueError naming the argument ``name``."""
    if backend not in LIF_BACKENDS:
        raise ValueError(f"{name} must be one of {LIF_BACKENDS}, got {backend!r}")
    return cast(LIFBackend, backend)


def _in(section: str) -> dict[str, str]:
    return {"section": section}


@dataclass(frozen=True)
class NeuronSpec:
    """LIF (Eq. 1-2) and tdBN (Eq. 4-5) constants shared by every layer of one network.

    ``neuron`` section:

    * ``tau``: leak factor of Eq. 1, in [0, 1];
    * ``v_threshold``: V_th of Eq. 2 (Sec. 3.1: 0.5); Dspike's window follows it
      (:class:`dspike.surrogate.Dspike`);
    * ``detach_reset``: whether the reset of Eq. 2 is left out of the gradient;
    * ``backend``: how the LIF runs, not what it computes (:func:`dspike.neurons.lif`);
    * ``compile_min_steps``: a training run of fewer optimiser steps runs ``compiled`` LIFs
      on the eager kernels (the same node) and builds no kernel: a build costs 10-30 s per
      pass and T, and at smoke scale the fused kernels save nothing (docs/performance.md).
    * ``recompute``: how a network trains, not what it computes: each residual block keeps
      only its input for backward and runs its forward again there (time for memory, for the
      largest runs; :func:`dspike.models.base.recomputed`).

    ``tdbn`` section:

    * ``alpha``: tdBN's alpha of Eq. 4; ``alpha_residual``: the alpha of the two norms that
      meet at a residual addition (Zheng et al.: 1/sqrt 2);
    * ``form``: ``"scale"`` (a fixed alpha*V_th factor, Eq. 4) or ``"init"`` (alpha*V_th as
      the initial BN weight).
    """

    tau: float = field(default=0.25, metadata=_in("neuron"))
    v_threshold: float = field(default=0.5, metadata=_in("neuron"))
    detach_reset: bool = field(default=False, metadata=_in("neuron"))
    backend: LIFBackend = field(default="compiled", metadata=_in("neuron"))
    compile_min_steps: int = field(default=1000, metadata=_in("neuron"))
    recompute: bool = field(default=False, metadata=_in("neuron"))
    alpha: float = field(default=1.0, metadata=_in("tdbn"))
    alpha_residual: float = field(default=math.sqrt(0.5), metadata=_in("tdbn"))  # 1/sqrt 2
    form: TdBNForm = field(default="scale", metadata=_in("tdbn"))

    def __post_init__(self) -> None:
        key = self.key
        check_number(key("tau"), self.tau, low=0.0, high=1.0)
        check_number(key("v_threshold"), self.v_threshold, positive=True)
        if not isinstance(self.detach_reset, bool):
            raise ConfigError(key("detach_reset"), f"must be true or false, got "
                              f"{self.detach_reset!r}")  # fmt: skip
        check_choice(key("backend"), self.backend, LIF_BACKENDS)
        check_at_least(key("compile_min_steps"), self.compile_min_steps, 0)
        if not isinstance(self.recompute, bool):
            raise ConfigError(key("recompute"), f"must be true or false, got {self.recompute!r}")
        check_number(key("alpha"), self.alpha, positive=True)
        check_number(key("alpha_residual"), self.alpha_residual, positive=True)
        check_choice(key("form"), self.form, TDBN_FORMS)

    @staticmethod
    def key(name: str) -> str:
        """The params key of field ``name``: ``"neuron.tau"``, ``"tdbn.form"``."""
        return f"{_SECTIONS[name]}.{name}"

    @classmethod
    def from_sections(
        cls, neuron: Mapping[str, Any] | None = None, tdbn: Mapping[str, Any] | None = None
    ) -> NeuronSpec:
        """The spec of params.yaml's ``neuron`` and ``tdbn`` sections; absent keys keep the
        defaults, an unknown key is a :class:`ConfigError` naming it."""
        values: dict[str, Any] = {}
        for section, given in (("neuron", neuron), ("tdbn", tdbn)):
            for name, value in (given or {}).items():
                if _SECTIONS.get(name) != section:
                    known = [n for n, s in _SECTIONS.items() if s == section]
                    raise ConfigError(f"{section}.{name}", f"unknown key; expected one of {known}")
                values[name] = value
        return cls(**values)

    def sections(self) -> dict[str, dict[str, Any]]:
        """``{"neuron": {...}, "tdbn": {...}}``: the inverse of :meth:`from_sections`."""
        out: dict[str, dict[str, Any]] = {"neuron": {}, "tdbn": {}}
        for f in fields(self):
            out[f.metadata["section"]][f.name] = getattr(self, f.name)
        return out


_SECTIONS = {f.name: f.metadata["section"] for f in fields(NeuronSpec)}
