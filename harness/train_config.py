"""A training stage's config: :class:`harness.params.Params` -> a validated
:class:`dspike.engine.TrainConfig`.

:func:`build_config` fills every config field from the record that holds it, naming the
params.yaml key beside the value (``optim.lr`` <- ``stages.<stage>.lr`` or ``train.lr``), so a
bad value is reported under the key (or command-line flag) it came from. The dataset's registry
record (:data:`dspike.data.DATASETS`) gives the class count and input shape.

Words used across the training stage (:mod:`pipelines.train`):

* **stage**: a key of ``stages:`` in params.yaml (``cifar10_snn_t6``);
* **variant**: the stage, or a Table 5 variant of it at another FDG eps, ``STAGE_eps<E>``
  (:func:`variant_name`): it names the outputs' folders and the checkpoints' parent folder;
* **run**: one variant at one seed: one process tree, one MLflow run (``VARIANT/seed<S>``),
  one checkpoint folder; :func:`run_hash` digests what its result depends on;
* **network**: the model a config builds: ``model.name`` (a key of :data:`dspike.models.MODELS`)
  with ``model.options`` (its constructor's keyword options: ``models.<name>`` plus the
  input channels and side).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dspike.data import DATASETS
from dspike.engine import (
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SurrogateConfig,
    TrainConfig,
)
from dspike.models import MODELS

from .params import Params, params_hash
from .train_data import frame_shape

__all__ = ["build_config", "config_and_keys", "named_by", "run_hash", "variant_name"]


def variant_name(stage: str, epsilon: str | None = None) -> str:
    """``STAGE`` or, for a Table 5 run at another FDG eps, ``STAGE_eps<E>``."""
    return stage if epsilon is None else f"{stage}_eps{epsilon}"


def _group(cls: type, keys: dict[str, str], **fields: tuple[str, Any]) -> Any:
    """``cls(**values)`` from ``fields`` = {field: (params key, value)}; records each field's
    params key in ``keys`` under ``<group>.<field>`` (the group: ``cls``'s config name)."""
    group = cls.__name__.removesuffix("Config").lower()
    keys.update({f"{group}.{name}": key for name, (key, _) in fields.items()})
    return cls(**{name: value for name, (_, value) in fields.items()})


def build_config(params: Params, stage: str, seed: int, *args: Any, **kwargs: Any) -> TrainConfig:
    """The validated :class:`TrainConfig` of ``stage``: :func:`config_and_keys` without the keys."""
    return config_and_keys(params, stage, seed, *args, **kwargs)[0]


def config_and_keys(
    params: Params,
    stage: str,
    seed: int,
    epsilon: str | None = None,
    init: str | Path = "",
    checkpoint: str = "",
    temperature: float | None = None,
) -> tuple[TrainConfig, dict[str, str]]:
    """The validated :class:`TrainConfig` of ``stage``, and the params key (or flag) each of
    its fields came from (``{"optim.lr": "stages.<stage>.lr"}``, for :func:`named_by`); a bad
    value raises under its key.

    ``init`` is the state_dict file the run starts from (``--init``; dvc.yaml names it): the
    ANN for the first SNN (Sec. 5.2), the higher-T SNN for TIT (Sec. 4.4), or none;
    ``temperature``, when given, replaces ``dspike.b0`` as Dspike's starting b.
    """
    s = params.stage(stage)
    if s.dataset not in DATASETS:
        raise ConfigError(
            s.key("dataset"), f"unknown dataset {s.dataset!r}; expected one of {list(DATASETS)}"
        )
    keys: dict[str, str] = {}

    def at(name: str) -> tuple[str, Any]:
        return s.key(name), getattr(s, name)

    b0 = ("dspike.b0", params.dspike.b0) if temperature is None else (
        "--init-metrics", float(temperature))  # TIT: the previous round's b  # fmt: skip
    eps = ("fdg.epsilon", params.fdg.epsilon) if epsilon is None else (
        "--epsilon", float(epsilon))  # fmt: skip
    config = TrainConfig(
        model=_group(
            ModelConfig, keys, name=at("model"), mode=at("mode"),
            time_steps=(s.key("time_steps"), 1 if s.mode == "ann" else s.time_steps),
            num_classes=(s.key("dataset"), DATASETS[s.dataset].num_classes),
            options=("models", _network_options(params, s.model, s.dataset)),
            spec=("neuron", params.spec), init=("--init", str(init)),
        ),
        surrogate=_group(
            SurrogateConfig, keys, name=at("surrogate"), temperature=b0,
            delta=("dspike.delta_b", params.dspike.delta_b), fdg_epsilon=eps,
            fdg_batch_size=("fdg.batch_size", params.fdg.batch_size),
        ),
        optim=_group(
            OptimConfig, keys, lr=at("lr"), momentum=at("momentum"),
            weight_decay=at("weight_decay"), nesterov=at("nesterov"), schedule=at("schedule"),
        ),
        data=_group(DataConfig, keys, batch_size=at("batch_size"),
                    workers=("data.workers", params.data.workers)),
        run=_group(
            RunConfig, keys, epochs=at("epochs"), seed=("--seed", seed), bf16=at("bf16"),
            checkpoint=("train.checkpoint_dir", checkpoint), select=at("select"),
        ),
    )  # fmt: skip
    with named_by(keys):
        return config.validate(), keys


@contextlib.contextmanager
def named_by(keys: dict[str, str]) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` under the params.yaml key (or flag) ``keys`` maps its
    config field to."""
    try:
        yield
    except ConfigError as err:
        raise ConfigError(keys.get(err.key, err.key), err.message) from None


def _network_options(params: Params, name: str, dataset: str) -> dict[str, Any]:
    """``models.<name>`` plus the input channels, and the side where the network's constructor
    takes one (its signature says so; the ResNets pool adaptively)."""
    options = params.model_options(name)
    channels, _, side = frame_shape(params, dataset)
    options["in_channels"] = channels
    builder = MODELS.get(name)
    if builder is not None and "image_size" in inspect.signature(builder).parameters:
        options["image_size"] = side
    return options


def _file_digest(path: str) -> str:
    if not path:
        return ""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def run_hash(params: Params, config: TrainConfig, stage: str) -> str:
    """What the run's result depends on: the config, the data settings (the samples ``stage``
    takes of them included) and the init weights."""
    settings = params.stage(stage)
    cfg = dataclasses.asdict(config)
    cfg["run"] = {k: v for k, v in cfg["run"].items() if k not in ("checkpoint", "progress")}
    return params_hash(
        {
            "dataset": settings.dataset,
            "config": cfg,
            "data": dataclasses.asdict(params.data),
            "max_train_samples": settings.max_train_samples,
            "max_test_samples": settings.max_test_samples,
            "init_sha256": _file_digest(config.model.init),
        }
    )
