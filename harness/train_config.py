"""A training stage's config: the param mini-language of :mod:`harness.config_keys` ->
a validated :class:`dspike.engine.TrainConfig`.

``stages.<stage>`` over the ``train`` defaults, plus ``dspike``, ``fdg``, ``data`` and
``models.<model>``, fill the config's fields; the ``neuron`` and ``tdbn`` sections load as they
are into ``model.spec`` (:class:`dspike.spec.NeuronSpec`); the dataset's registry record
(:data:`dspike.data.DATASETS`) gives the class count and input shape. A bad value is reported
under the params.yaml key (or command-line flag) it came from.

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
from dspike.spec import NeuronSpec

from .config_keys import FIELDS
from .params import ParamsError, get, params_hash
from .train_data import frame_shape

__all__ = [
    "build_config",
    "named_by_params",
    "run_hash",
    "stage_settings",
    "variant_name",
]

_GROUPS = {
    "model": ModelConfig,
    "surrogate": SurrogateConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "run": RunConfig,
}


def variant_name(stage: str, epsilon: str | None = None) -> str:
    """``STAGE`` or, for a Table 5 run at another FDG eps, ``STAGE_eps<E>``."""
    return stage if epsilon is None else f"{stage}_eps{epsilon}"


def stage_settings(params: dict, stage: str) -> dict[str, Any]:
    """``stages.<stage>`` merged over the ``train`` defaults."""
    stages = get(params, "stages")
    if stage not in stages:
        raise ParamsError(
            f"{params.get('_file', 'params.yaml')}: no stage 'stages.{stage}' "
            f"(stages: {', '.join(stages)})"
        )
    return {**get(params, "train"), **stages[stage]}


def _source(params: dict, stage: str, field: str, epsilon: str | None) -> str:
    """The params.yaml key (or CLI flag) a config field comes from, for error messages."""
    where = FIELDS.get(field)
    if field == "surrogate.fdg_epsilon" and epsilon is not None:
        return "--epsilon"
    if where is None:
        return {"run.seed": "--seed", "model.options": "models", "model.init": "--init"}.get(
            field, field
        )
    if where.startswith("@"):
        key = where[1:]
        return f"stages.{stage}.{key}" if key in params["stages"][stage] else f"train.{key}"
    return where


def build_config(
    params: dict,
    stage: str,
    seed: int,
    epsilon: str | None = None,
    init: str | Path = "",
    checkpoint: str = "",
    temperature: float | None = None,
) -> TrainConfig:
    """The validated :class:`TrainConfig` of ``stage``; a bad value names its params key.

    ``init`` is the state_dict file the run starts from (``--init``; dvc.yaml names it): the
    ANN for the first SNN (Sec. 5.2), the higher-T SNN for TIT (Sec. 4.4), or none;
    ``temperature``, when given, replaces ``dspike.b0`` as Dspike's starting b.
    """
    settings = stage_settings(params, stage)
    values: dict[str, dict[str, Any]] = {group: {} for group in _GROUPS}
    for field, where in FIELDS.items():
        group, name = field.split(".")
        if where.startswith("@"):
            if where[1:] not in settings:
                raise ParamsError(
                    f"{params.get('_file', 'params.yaml')}: missing key "
                    f"'stages.{stage}.{where[1:]}' (nor 'train.{where[1:]}')"
                )
            values[group][name] = settings[where[1:]]
        else:
            values[group][name] = get(params, where)
    if epsilon is not None:
        values["surrogate"]["fdg_epsilon"] = float(epsilon)
    if temperature is not None:  # TIT: the previous round's b (dspike.inherit_temperature)
        values["surrogate"]["temperature"] = float(temperature)
    model = values["model"]
    if model["mode"] == "ann":
        model["time_steps"] = 1
    model["init"] = str(init)
    model["spec"] = NeuronSpec.from_sections(get(params, "neuron"), get(params, "tdbn"))
    dataset = settings.get("dataset")
    if dataset not in DATASETS:
        raise ConfigError(
            f"stages.{stage}.dataset",
            f"unknown dataset {dataset!r}; expected one of {list(DATASETS)}",
        )
    model["num_classes"] = DATASETS[dataset].num_classes
    model["options"] = _network_options(params, model["name"], dataset)
    values["run"].update(seed=seed, checkpoint=checkpoint)
    config = TrainConfig(**{g: cls(**values[g]) for g, cls in _GROUPS.items()})
    with named_by_params(params, stage, epsilon):
        return config.validate()


@contextlib.contextmanager
def named_by_params(params: dict, stage: str, epsilon: str | None) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` under the params.yaml key (or flag) it came from."""
    try:
        yield
    except ConfigError as err:
        raise ConfigError(_source(params, stage, err.key, epsilon), err.message) from None


def _network_options(params: dict, name: str, dataset: str) -> dict[str, Any]:
    """``models.<name>`` plus the input channels, and the side where the network's constructor
    takes one (its signature says so; the ResNets pool adaptively)."""
    options = dict(get(params, f"models.{name}", {}) or {})
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


def run_hash(params: dict, config: TrainConfig, dataset: str) -> str:
    """What the run's result depends on: the config, the data settings and the init weights."""
    cfg = dataclasses.asdict(config)
    cfg["run"] = {k: v for k, v in cfg["run"].items() if k not in ("checkpoint", "progress")}
    return params_hash(
        {
            "dataset": dataset,
            "config": cfg,
            "data": get(params, "data"),
            "max_train_samples": get(params, "train.max_train_samples", 0),
            "max_test_samples": get(params, "train.max_test_samples", 0),
            "init_sha256": _file_digest(config.model.init),
        }
    )
