"""Training configuration grouped by topic (model, surrogate, optim, data, run).

Every field has the paper's default where the paper states one (Sec. 5.2: SGD, momentum 0.9,
cosine decay to 0, weight decay 1e-4, b0 = 1, delta_b = 0.2, eps = 0.1).
:meth:`TrainConfig.validate` runs before any work and raises :class:`ConfigError` naming the
offending field ("optim.lr").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import ConfigError, check_at_least, check_choice, check_number
from ..models import MODELS, MODES
from ..spec import NeuronSpec

__all__ = [
    "SCHEDULES",
    "SURROGATES",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SurrogateConfig",
    "TrainConfig",
]

# "none": the ANN; "dspike": fixed temperature; "dspike_adaptive": Algorithm 1 every epoch.
SURROGATES = ("none", "rectangular", "triangular", "dspike", "dspike_adaptive")
SCHEDULES = ("cosine", "constant")
SELECTIONS = ("final", "best")


@dataclass
class ModelConfig:
    """Network (Sec. 5.1) and its neuron/tdBN constants (``spec``, validated when made);
    ``init`` is a state_dict file to start from: the ANN for the first SNN (Sec. 5.2) or the
    higher-T SNN for TIT (Sec. 4.4)."""

    name: str = "resnet18"
    mode: str = "snn"
    time_steps: int = 6
    num_classes: int = 10
    options: dict[str, Any] = field(default_factory=dict)  # width, head, in_channels, image_size
    spec: NeuronSpec = field(default_factory=NeuronSpec)
    init: str = ""


@dataclass
class SurrogateConfig:
    """Surrogate gradient; Dspike's temperature ``b0`` and Algorithm 1's ``delta``, FDG ``eps``."""

    name: str = "dspike_adaptive"
    temperature: float = 1.0
    delta: float = 0.2
    fdg_epsilon: float = 0.1
    fdg_batch_size: int = 32


@dataclass
class OptimConfig:
    """SGD with momentum, stepped once per epoch by the schedule (cosine decays to 0)."""

    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "cosine"


@dataclass
class DataConfig:
    """``batch_size`` is global: each of the W processes takes ``batch_size / W``."""

    batch_size: int = 128
    workers: int = 4


@dataclass
class RunConfig:
    """Length, seed, precision, checkpoint file (``""``: none) and which accuracy tables use."""

    epochs: int = 300
    seed: int = 0
    bf16: bool = False
    checkpoint: str = ""
    select: str = "final"
    progress: bool = True


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    surrogate: SurrogateConfig = field(default_factory=SurrogateConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def flat(self) -> dict[str, Any]:
        """``{"optim.lr": 0.01, "model.spec.tau": 0.25, ...}``: the parameters a tracker logs."""
        out: dict[str, Any] = {}
        for group, values in dataclasses.asdict(self).items():
            for key, value in values.items():
                if key == "spec":
                    out.update({f"{group}.spec.{k}": v for k, v in value.items()})
                else:
                    out[f"{group}.{key}"] = value
        return out

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` naming the first bad field; return ``self``."""
        m, s, o, d, r = self.model, self.surrogate, self.optim, self.data, self.run
        check_choice("model.name", m.name, tuple(sorted(MODELS)))
        check_choice("model.mode", m.mode, MODES)
        check_at_least("model.time_steps", m.time_steps, 1)
        check_at_least("model.num_classes", m.num_classes, 1)
        if not isinstance(m.spec, NeuronSpec):
            raise ConfigError("model.spec", f"must be a NeuronSpec, got {m.spec!r}")
        if m.init and not Path(m.init).is_file():
            raise ConfigError("model.init", f"no such file {m.init!r}")
        if s.name == "fdg":
            raise ConfigError(
                "surrogate.name",
                "'fdg' (training with finite differences, Table 1) is done by the toy study "
                "(paper), not the training engine",
            )
        check_choice("surrogate.name", s.name, SURROGATES)
        if (m.mode == "ann") != (s.name == "none"):
            want = "'none'" if m.mode == "ann" else f"one of {SURROGATES[1:]}"
            raise ConfigError("surrogate.name", f"mode {m.mode!r} needs {want}, got {s.name!r}")
        check_number("surrogate.temperature", s.temperature, positive=True)
        check_number("surrogate.delta", s.delta, positive=True)
        check_number("surrogate.fdg_epsilon", s.fdg_epsilon, positive=True)
        check_at_least("surrogate.fdg_batch_size", s.fdg_batch_size, 1)
        check_number("optim.lr", o.lr, positive=True)
        check_number("optim.momentum", o.momentum, low=0.0, high=1.0)
        check_number("optim.weight_decay", o.weight_decay, low=0.0)
        check_choice("optim.schedule", o.schedule, SCHEDULES)
        check_at_least("data.batch_size", d.batch_size, 1)
        check_at_least("data.workers", d.workers, 0)
        check_at_least("run.epochs", r.epochs, 1)
        check_at_least("run.seed", r.seed, 0)
        check_choice("run.select", r.select, SELECTIONS)
        return self
