"""Build what a :class:`~dspike.engine.config.TrainConfig` describes: network, optimiser, schedule.

:func:`build_network` also loads ``model.init``: an ANN state_dict initialises its SNN twin
(Sec. 5.2) and a T=6 SNN initialises T=4 (Time Inheritance Training, Sec. 4.4), because twins
share parameter names and no parameter depends on T. A file of another architecture is rejected
with :class:`ConfigError` before training starts.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import SpikingNet, build_model
from ..surrogate import Surrogate, build_surrogate
from .config import ConfigError, OptimConfig, SurrogateConfig, TrainConfig

__all__ = [
    "build_network",
    "build_optimizer",
    "build_scheduler",
    "build_surrogate_from",
]


def build_surrogate_from(cfg: SurrogateConfig, v_threshold: float) -> Surrogate | None:
    """The configured surrogate (``None`` for the ANN) of a LIF firing at ``v_threshold``:
    Dspike starts at ``temperature``; Dspike's and the triangular window sit at the threshold."""
    if cfg.name == "none":
        return None
    if cfg.name in ("dspike", "dspike_adaptive"):
        return build_surrogate("dspike", temperature=cfg.temperature, v_threshold=v_threshold)
    if cfg.name == "triangular":
        return build_surrogate(cfg.name, v_threshold=v_threshold)
    return build_surrogate(cfg.name)


def build_network(cfg: TrainConfig) -> SpikingNet:
    """The network, initialised from ``run.seed`` and then from ``model.init`` if set."""
    m = cfg.model
    torch.manual_seed(cfg.run.seed)
    model = build_model(
        m.name,
        m.num_classes,
        m.mode,
        m.time_steps,
        surrogate=build_surrogate_from(cfg.surrogate, m.spec.v_threshold),
        spec=m.spec,
        **m.options,
    )
    if m.init:
        try:
            state = torch.load(m.init, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ConfigError("model.init", f"{m.init}: no such file") from None
        except Exception as err:
            raise ConfigError(
                "model.init",
                f"{m.init} is not a plain state_dict of tensors ({type(err).__name__}); "
                "only tensors are loaded from it (weights_only), never pickled code",
            ) from None
        if not isinstance(state, dict):
            raise ConfigError("model.init", f"{m.init} holds a {type(state).__name__}, "
                              "not a state_dict")  # fmt: skip
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ConfigError(
                "model.init", f"{m.init} does not fit {m.name} ({m.mode}): {err}"
            ) from None
    return model


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay on every parameter (Sec. 5.2)."""
    return torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch: cosine from ``lr`` to 0 over ``epochs`` [39], or constant."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
