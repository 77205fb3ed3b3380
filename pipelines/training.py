"""What the training and energy stages share: a stage's config and its datasets.

``stages.<stage>`` over the ``train`` defaults, plus ``neuron``, ``tdbn``, ``dspike``, ``fdg``,
``data`` and ``models.<model>``, become one validated :class:`dspike.engine.TrainConfig`; a bad
value is reported under the params.yaml key (or command-line flag) it came from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from dspike.data import DATASETS, build_dataset, materialize_bundled, random_subset
from dspike.engine import (
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    RunLock,
    SurrogateConfig,
    TrainConfig,
    distributed,
)
from dspike.models import MODELS
from dspike.spec import NeuronSpec

from .config_keys import FIELDS
from .params import ParamsError, get, params_hash

__all__ = [
    "build_config",
    "build_datasets",
    "checkpoint_folder",
    "code_digest",
    "dvs_frames_dir",
    "named_by_params",
    "run_hash",
    "sample_shape",
    "stage_settings",
]

log = logging.getLogger("pipelines.train")
KEY_FILE = "key.json"  # in a checkpoint folder: the params hash and code digest it was made by

_GROUPS = {
    "model": ModelConfig,
    "surrogate": SurrogateConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "run": RunConfig,
}


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
        return {"run.seed": "--seed", "model.arch": "models", "model.init": "--init"}.get(
            field, field
        )
    if where.startswith("@"):
        key = where[1:]
        return f"stages.{stage}.{key}" if key in params["stages"][stage] else f"train.{key}"
    return where


def sample_shape(params: dict, dataset: str) -> tuple[int, ...]:
    """One sample of ``dataset`` as the stage loads it: the registry's (C, H, W)
    (:data:`dspike.data.DATASETS`) with the side ``params`` set (``data.dvs.size``,
    ``data.imagenet.image_size``), preceded by ``data.dvs.time_steps`` frames where samples
    carry their own time axis."""
    info = DATASETS[dataset]
    channels, side = info.shape[0], info.shape[-1]
    if dataset == "cifar10dvs":
        side = int(get(params, "data.dvs.size"))
    elif dataset == "imagenet":
        side = int(get(params, "data.imagenet.image_size", side))
    frames = (int(get(params, "data.dvs.time_steps")),) if info.time_axis else ()
    return (*frames, channels, side, side)


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
    model["arch"] = _arch(params, model["name"], dataset)
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


def _arch(params: dict, name: str, dataset: str) -> dict[str, Any]:
    """``models.<name>`` plus the input channels (and side, where the builder takes it)."""
    arch = dict(get(params, f"models.{name}", {}) or {})
    channels, side = sample_shape(params, dataset)[-3::2]
    arch["in_channels"] = channels
    builder = MODELS.get(name)
    if builder is not None and "image_size" in inspect.signature(builder).parameters:
        arch["image_size"] = side
    return arch


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


def code_digest() -> str:
    """sha256 (12 hex digits) of the project's source files this process has loaded.

    With :func:`run_hash` it keys a run's checkpoint: a checkpoint written by other code is
    never resumed.
    """
    root = Path(__file__).resolve().parent.parent
    files = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and name.split(".")[0] in ("dspike", "pipelines"):
            files.add(Path(path).resolve())
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def checkpoint_folder(parent: Path, seed: int, digest: str, code: str, claim: bool = True) -> Path:
    """``<parent>/seed<S>-<key>``: the checkpoint folder of this code, config and data.

    With ``claim`` (rank 0 only, under torchrun) a folder of the same run and seed with another
    key (other code, config or data), never to be resumed, is removed with one line saying why,
    and the run starts afresh; one that another process holds
    (:class:`dspike.engine.RunLock`) raises ``CheckpointError``.
    """
    key = params_hash({"run": digest, "code": code})
    folder = parent / f"seed{seed}-{key}"
    if not claim:
        return folder
    for other in sorted(parent.glob(f"seed{seed}-*")):
        if other == folder or not other.is_dir():
            continue
        try:
            written = json.loads((other / KEY_FILE).read_text())
        except (OSError, ValueError):
            written = {}
        why = (
            "other code" if written.get("params_hash") == digest
            else "another config or data" if written.get("code") == code
            else "other code, config or data"
        )  # fmt: skip
        with RunLock(other):
            shutil.rmtree(other)
        log.warning("checkpoint %s was written by %s: not resumed, starting afresh", other, why)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / KEY_FILE).write_text(json.dumps({"params_hash": digest, "code": code}) + "\n")
    return folder


def dvs_frames_dir(params: dict) -> Path:
    """Where the prepare_dvs stage caches CIFAR10-DVS frames: ``<data.prepared>/cifar10dvs``."""
    return Path(get(params, "data.prepared")) / "cifar10dvs"


# --- data --------------------------------------------------------------------------------------


def build_datasets(
    params: dict, dataset: str, info: distributed.DistInfo
) -> tuple[Dataset, Dataset]:
    """Train and test splits of ``dataset`` as ``data`` configures them (bundled or real).

    Bundled data is written once, by rank 0, while the other processes wait.
    """
    bundled = get(params, "data.source") == "bundled"
    download = bool(get(params, "data.download"))
    options: dict[str, Any] = {}
    if dataset == "cifar10dvs":
        root = dvs_frames_dir(params)
        options["max_shift"] = int(get(params, "data.dvs.max_roll"))
        download = False  # the frame cache comes from the prepare_dvs stage
    elif dataset == "imagenet":
        root = Path(get(params, "data.imagenet.root"))
        side = sample_shape(params, dataset)[-1]
        options.update(crop_size=side, resize_size=round(side * 256 / 224))
    else:
        root = Path(get(params, "data.root"))
        if dataset in ("cifar10", "cifar100"):
            options.update(get(params, "data.cifar"))
    if bundled and dataset != "cifar10dvs" and info.is_main:
        materialize_bundled(dataset, root)
    distributed.barrier(info)
    sets = [
        build_dataset(dataset, root, train, download=download, **options) for train in (True, False)
    ]
    limits = [int(get(params, f"train.max_{s}_samples", 0)) for s in ("train", "test")]
    return random_subset(sets[0], limits[0]), random_subset(sets[1], limits[1])
