"""Stage ``train``: one training run of the paper (Sec. 4.4, 5.2, 5.3) for a stage and a seed.

    python -m pipelines.train STAGE --seed S [--epsilon E] [--params params.yaml]
    torchrun --nproc_per_node N -m pipelines.train STAGE --seed S

reads ``stages.STAGE`` over the ``train`` defaults, plus ``neuron``, ``tdbn``, ``dspike``, ``fdg``,
``data`` and ``models.<model>``; ``init`` names the stage whose ``models/<init>/seed<S>.pt`` starts
this one (the ANN for the first SNN; the T=6 SNN for TIT's T=4, Sec. 4.4). ``--epsilon``
overrides ``fdg.epsilon`` (Table 5) and names the run ``STAGE_eps<E>``. Writes, for run R:

* ``models/R/seed<S>.pt``: the final state_dict;
* ``metrics/R/seed<S>.json``: final and best test accuracy (%), which one tables use
  (``train.select``), temperature, time, params hash, MLflow run id;
* ``plots/R/seed<S>.csv``: one row per epoch (:data:`dspike.engine.PLOT_COLUMNS`);
* ``<train.checkpoint_dir>/R/seed<S>-<hash>/last.pt`` while it runs: the same command resumes it;
  it is deleted once the outputs are written.

ImageNet stages with ``data.imagenet.root: ""`` write outputs marked skipped and exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import hashlib
import inspect
import io
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from dspike.engine import (
    PLOT_COLUMNS,
    CheckpointError,
    ConfigError,
    DataConfig,
    FitResult,
    ModelConfig,
    NonFiniteLossError,
    OptimConfig,
    RunConfig,
    SurrogateConfig,
    TrainConfig,
    TrainingInterrupted,
    build_network,
    distributed,
    fit,
)
from dspike.io import atomic_path, atomic_write_text
from dspike.models import MODELS

from .cli import stage_main
from .params import ParamsError, get, params_hash, provenance

__all__ = ["build_config", "main", "run_name"]

log = logging.getLogger("pipelines.train")

NUM_CLASSES = {"mnist": 10, "cifar10": 10, "cifar100": 100, "cifar10dvs": 10, "imagenet": 1000}

# Config field -> where params.yaml holds it; "@k" is key k of stages.<stage> over train.
FIELDS = {
    "model.name": "@model",
    "model.mode": "@mode",
    "model.time_steps": "@time_steps",
    "model.init": "@init",
    "model.tau": "neuron.tau",
    "model.v_threshold": "neuron.v_threshold",
    "model.detach_reset": "neuron.detach_reset",
    "model.lif_backend": "neuron.backend",
    "model.alpha": "tdbn.alpha",
    "model.alpha_residual": "tdbn.alpha_residual",
    "model.tdbn_form": "tdbn.form",
    "surrogate.name": "@surrogate",
    "surrogate.temperature": "dspike.b0",
    "surrogate.delta": "dspike.delta_b",
    "surrogate.fdg_epsilon": "fdg.epsilon",
    "surrogate.fdg_batch_size": "fdg.batch_size",
    "optim.lr": "@lr",
    "optim.momentum": "@momentum",
    "optim.weight_decay": "@weight_decay",
    "optim.nesterov": "@nesterov",
    "optim.schedule": "@schedule",
    "data.batch_size": "@batch_size",
    "data.workers": "data.workers",
    "run.epochs": "@epochs",
    "run.bf16": "@bf16",
    "run.select": "@select",
}
_GROUPS = {
    "model": ModelConfig,
    "surrogate": SurrogateConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "run": RunConfig,
}


def run_name(stage: str, epsilon: str | None = None) -> str:
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
        return {"run.seed": "--seed", "model.arch": "models"}.get(field, field)
    if where.startswith("@"):
        key = where[1:]
        return f"stages.{stage}.{key}" if key in params["stages"][stage] else f"train.{key}"
    return where


def _data_shape(params: dict, dataset: str) -> tuple[int, int]:
    """(input channels, image side) of ``dataset`` as the stage loads it."""
    if dataset == "cifar10dvs":
        return 2, int(get(params, "data.dvs.size"))
    if dataset == "imagenet":
        return 3, int(get(params, "data.imagenet.image_size", 224))
    return (1, 28) if dataset == "mnist" else (3, 32)


def build_config(
    params: dict, stage: str, seed: int, epsilon: str | None = None, checkpoint: str = ""
) -> TrainConfig:
    """The validated :class:`TrainConfig` of ``stage``; a bad value names its params key."""
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
    model = values["model"]
    if model["mode"] == "ann":
        model["time_steps"] = 1
    model["init"] = f"models/{model['init']}/seed{seed}.pt" if model["init"] else ""
    dataset = settings.get("dataset")
    if dataset not in NUM_CLASSES:
        raise ConfigError(
            f"stages.{stage}.dataset",
            f"unknown dataset {dataset!r}; expected one of {list(NUM_CLASSES)}",
        )
    model["num_classes"] = NUM_CLASSES[dataset]
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
    channels, side = _data_shape(params, dataset)
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


# --- data --------------------------------------------------------------------------------------


def _subset(dataset: Dataset, limit: int) -> Dataset:
    """A fixed (seed 0) random subset of ``limit`` samples; 0 keeps everything."""
    n = len(dataset)  # type: ignore[arg-type]
    if not limit or limit >= n:
        return dataset
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:limit]
    return Subset(dataset, sorted(pick.tolist()))


def build_datasets(
    params: dict, dataset: str, info: distributed.DistInfo
) -> tuple[Dataset, Dataset]:
    """Train and test splits of ``dataset`` as ``data`` configures them (bundled or real).

    Bundled data is written once, by rank 0, while the other processes wait.
    """
    from dspike.data import build_dataset, materialize_bundled

    bundled = get(params, "data.source") == "bundled"
    download = bool(get(params, "data.download"))
    options: dict[str, Any] = {}
    if dataset == "cifar10dvs":
        root = Path(get(params, "data.prepared")) / "cifar10dvs"
        options["max_shift"] = int(get(params, "data.dvs.max_roll"))
        download = False  # the frame cache comes from the prepare_dvs stage
    elif dataset == "imagenet":
        root = Path(get(params, "data.imagenet.root"))
        side = _data_shape(params, dataset)[1]
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
    return _subset(sets[0], limits[0]), _subset(sets[1], limits[1])


# --- outputs -----------------------------------------------------------------------------------


def _paths(run: str, seed: int) -> dict[str, Path]:
    return {
        "model": Path("models") / run / f"seed{seed}.pt",
        "metrics": Path("metrics") / run / f"seed{seed}.json",
        "plots": Path("plots") / run / f"seed{seed}.csv",
    }


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, PLOT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    atomic_write_text(path, buf.getvalue())


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def _save_model(path: Path, state: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp)


def write_skipped(paths: dict[str, Path], reason: str) -> None:
    """Outputs of a stage that cannot run here, so ``dvc repro`` goes on."""
    _save_model(paths["model"], {})
    _write_json(paths["metrics"], {"skipped": True, "reason": reason})
    _write_csv(paths["plots"], [])


def write_outputs(
    paths: dict[str, Path], result: FitResult, config: TrainConfig, meta: dict[str, Any]
) -> None:
    _save_model(paths["model"], result.model.state_dict())
    _write_csv(paths["plots"], result.history)
    select = config.run.select
    _write_json(
        paths["metrics"],
        {
            **meta,
            "acc": result.final_acc if select == "final" else result.best_acc,
            "select": select,
            "final_acc": result.final_acc,
            "best_acc": result.best_acc,
            "best_epoch": result.best_epoch,
            "epochs": config.run.epochs,
            "time_steps": config.model.time_steps,
            "temperature": result.temperature,
            "seconds": round(result.seconds, 3),
            "mlflow_run_id": result.run_id,
        },
    )


# --- the stage ---------------------------------------------------------------------------------


def _tracker(dataset: str, run: str, seed: int, stage: str, digest: str):
    from .tracking import MLflowTracker

    prov = provenance()
    tags = {
        "git_commit": prov["git_commit"],
        "git_dirty": prov["git_dirty"],
        "params_hash": digest,
        "stage": stage,
        "seed": str(seed),
        "dataset": dataset,
    }
    experiment = os.environ.get("DSPIKE_EXPERIMENT_PREFIX", "") + dataset
    return MLflowTracker(experiment, f"{run}/seed{seed}", tags)


def _run(params: dict, args: argparse.Namespace) -> None:
    stage, seed, epsilon = args.stage, args.seed, args.epsilon
    run = run_name(stage, epsilon)
    paths = _paths(run, seed)
    settings = stage_settings(params, stage)
    dataset = settings.get("dataset")
    info = distributed.setup()
    logging.basicConfig(
        level=logging.INFO if info.is_main else logging.WARNING,
        format="%(message)s",
        stream=sys.stdout,
    )
    if dataset == "imagenet" and not get(params, "data.imagenet.root"):
        if info.is_main:
            write_skipped(paths, "data.imagenet.root is empty: no ImageNet on this machine")
        log.info("%s: skipped (data.imagenet.root is empty)", run)
        return
    config = build_config(params, stage, seed, epsilon)
    digest = run_hash(params, config, dataset)
    checkpoint_dir = Path(get(params, "train.checkpoint_dir")) / run / f"seed{seed}-{digest}"
    config.run.checkpoint = str(checkpoint_dir / "last.pt")
    with named_by_params(params, stage, epsilon):
        model = build_network(config)
        train_set, test_set = build_datasets(params, dataset, info)
        tracker = _tracker(dataset, run, seed, stage, digest) if info.is_main else None
        result = fit(config, model, train_set, test_set, tracker=tracker)
    if info.is_main:
        meta = {
            "stage": stage,
            "run": run,
            "seed": seed,
            "dataset": dataset,
            "data_source": get(params, "data.source"),
            "params_hash": digest,
        }
        write_outputs(paths, result, config, meta)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        log.info(
            "%s seed %d: final %.2f%%, best %.2f%% (epoch %d)",
            run,
            seed,
            result.final_acc,
            result.best_acc,
            result.best_epoch,
        )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", help="a key of stages: in params.yaml")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epsilon", help="override fdg.epsilon (Table 5); run STAGE_eps<E>")


def main(argv: list[str] | None = None) -> None:
    try:
        stage_main(_run, __doc__.splitlines()[0], argv, _arguments)
    except TrainingInterrupted as err:
        print(f"stopped: {err}; run the same command to resume", file=sys.stderr)
        raise SystemExit(143) from None
    except (NonFiniteLossError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        distributed.teardown()


if __name__ == "__main__":
    main()
