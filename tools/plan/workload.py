"""What one DVC stage computes, read from its ``cmd`` in dvc.yaml and from params.yaml, as a list
of :class:`Term`: a count (training images, test images, Algorithm 1 calls, ...) of one unit
whose cost a device's throughput table holds.

Training stages take their settings from :func:`harness.train_config.build_config`, exactly as
the stage does. Dataset sizes are known facts, never read from data (which may not be there
yet): the full splits the paper uses, or the samples bundled with the project
(``data.source: bundled``), then ``train.max_*_samples`` as
:func:`harness.train_data.build_datasets` applies them.
"""

from __future__ import annotations

import argparse
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspike.data import DATASETS
from dspike.data.dvs_frames import split_indices
from dspike.engine import TrainConfig
from dspike.spec import NeuronSpec
from harness.params import Params
from harness.train_config import build_config
from harness.train_data import sample_shape

__all__ = ["StepKey", "Term", "Workload", "launcher_processes", "split_sizes", "workload"]


@dataclass(frozen=True)
class StepKey:
    """The shape of one measured step: two stages with equal keys run at equal rates."""

    model: str
    mode: str
    time_steps: int
    options: tuple[tuple[str, Any], ...]  # models.<model> (width, head), without the input shape
    sample: tuple[int, ...]  # one input: (C, H, W), or (T, C, H, W) for DVS frames
    batch: int
    backend: str = NeuronSpec.backend  # LIF backend
    precision: str = "fp32"  # bf16 applies on GPUs only, as in the engine

    @property
    def label(self) -> str:
        """``resnet18 snn T=6 width=8 in=3x32x32 batch=32 eager fp32``: the key in the JSON."""
        parts = [self.model, self.mode, f"T={self.time_steps}"]
        parts += [f"{k}={v}" for k, v in self.options]
        parts += ["in=" + "x".join(map(str, self.sample)), f"batch={self.batch}"]
        return " ".join([*parts, self.backend, self.precision])


@dataclass(frozen=True)
class Term:
    """``count`` units of ``unit`` at step shape ``key`` (``None``: a per-device figure).

    Units: ``train``/``eval``/``activity`` (one image trained, evaluated, evaluated with every
    layer's firing rate recorded), ``alg1`` (one Algorithm 1 call, ``key.batch`` = the FDG
    batch), ``fdg`` (one FDG of the first layer, Eq. 10), ``checkpoint``, ``warmup`` (the first
    steps' excess, once per process), ``startup:<process>``, ``dvs_recording``."""

    unit: str
    key: StepKey | None
    count: float


@dataclass(frozen=True)
class Workload:
    stage: str
    kind: str  # train | energy | prepare | study | report | skipped
    dataset: str | None = None
    seed: int | None = None
    model: str = ""
    time_steps: int | None = None
    epochs: int = 0
    train_images: int = 0
    test_images: int = 0
    batch: int = 0
    processes: int = 1  # devices a torchrun launcher starts
    terms: tuple[Term, ...] = ()
    configs: dict[StepKey, Any] = field(default_factory=dict, compare=False)  # what builds a key
    note: str = ""

    @property
    def steps(self) -> int:
        """Optimiser steps over all epochs (per process)."""
        if not self.batch:
            return 0
        return math.ceil(self.train_images / self.processes / self.batch) * self.epochs

    @property
    def chain(self) -> str | None:
        """``cifar10/seed0``: the dataset and seed the stage belongs to (training, energy)."""
        return None if self.seed is None else f"{self.dataset}/seed{self.seed}"


def split_sizes(
    params: Params, dataset: str, capped: bool = True, stage: str | None = None
) -> tuple[int, int]:
    """(train, test) samples of the known split; ``capped``: as a training stage sees them,
    capped by ``max_*_samples`` of ``stages.<stage>`` over ``train`` (of ``train`` without a
    stage)."""
    source = params.data.source
    if source == "bundled" and dataset == "cifar10dvs":
        per_class = params.data.dvs.simulated_per_class
        classes = DATASETS[dataset].num_classes
        files = [f"r{i}" for _ in range(classes) for i in range(per_class)]
        targets = [c for c in range(classes) for _ in range(per_class)]
        train, test = split_indices(files, targets, params.data.dvs.split)
        sizes = (len(train), len(test))
    else:
        info = DATASETS[dataset]
        sizes = info.bundled_splits if source == "bundled" else info.splits
    if not capped:
        return sizes
    caps = params.sample_caps(stage)
    return tuple(min(n, cap) if cap else n for n, cap in zip(sizes, caps, strict=True))  # type: ignore[return-value]


def launcher_processes(tokens: list[str]) -> int:
    """Processes (devices) a ``torchrun`` launcher starts: nproc_per_node x nnodes; else 1."""
    if not any(Path(t).name == "torchrun" for t in tokens):
        return 1
    found = {"nproc": 1, "nnodes": 1}
    names = {"--nproc_per_node": "nproc", "--nproc-per-node": "nproc", "--nnodes": "nnodes"}
    for i, token in enumerate(tokens):
        name, _, value = token.partition("=")
        if name in names:
            value = (value or (tokens[i + 1] if i + 1 < len(tokens) else "1")).split(":")[-1]
            found[names[name]] = int(value) if value.isdigit() else 1
    return found["nproc"] * found["nnodes"]


def _key(params: Params, config: TrainConfig, dataset: str, batch: int) -> StepKey:
    m = config.model
    sample = sample_shape(params, dataset)
    return StepKey(
        model=m.name,
        mode=m.mode,
        time_steps=m.time_steps,
        options=tuple(
            sorted((k, v) for k, v in m.options.items() if k not in ("in_channels", "image_size"))
        ),
        sample=sample,
        batch=batch,
        backend=m.spec.backend if m.mode == "snn" else "-",
        precision="bf16" if config.run.bf16 else "fp32",
    )


def _training(stage: str, params: Params, launcher: list[str], args: list[str]) -> Workload:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("run")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epsilon")
    ns = parser.parse_known_args(args)[0]
    dataset = params.stage(ns.run).dataset
    config = build_config(params, ns.run, ns.seed, ns.epsilon)
    train, test = split_sizes(params, dataset, stage=ns.run)
    p, epochs = launcher_processes(launcher), config.run.epochs
    key = _key(params, config, dataset, config.data.batch_size)
    common = dict(
        stage=stage,
        dataset=dataset,
        seed=ns.seed,
        model=config.model.name,
        time_steps=config.model.time_steps,
    )
    if dataset == "imagenet" and not params.data.imagenet.root:
        note = "skipped: data.imagenet.root is empty"
        return Workload(
            kind="skipped", terms=(Term("startup:train", None, 1),), note=note, **common
        )
    terms = [
        Term("train", key, epochs * train / p),
        Term("eval", key, epochs * test / p),
        Term("checkpoint", key, epochs),
        Term("warmup", key, 1),
        Term("startup:train", None, 1),
    ]
    configs = {key: config}
    if config.surrogate.name == "dspike_adaptive":  # Algorithm 1 before every epoch
        alg1 = _key(params, config, dataset, config.surrogate.fdg_batch_size)
        terms.append(Term("alg1", alg1, epochs / p))
        configs[alg1] = config
    return Workload(
        kind="train",
        epochs=epochs,
        train_images=train,
        test_images=test,
        batch=key.batch,
        processes=p,
        terms=tuple(terms),
        configs=configs,
        **common,
    )


def _energy(stage: str, params: Params) -> Workload:
    """Two evaluation passes over the test split, every layer's activity recorded."""
    seed, runs = params.energy.seed, [params.energy.ann_stage, params.energy.snn_stage]
    dataset = params.stage(runs[0]).dataset
    _, test = split_sizes(params, dataset)
    terms, configs = [Term("startup:train", None, 1)], {}
    for run in runs:
        config = build_config(params, run, seed)
        key = _key(params, config, dataset, params.stage(runs[0]).batch_size)
        terms += [Term("activity", key, test), Term("warmup", key, 1)]
        configs[key] = config
    return Workload(
        stage=stage,
        kind="energy",
        dataset=dataset,
        seed=seed,
        test_images=test,
        terms=tuple(terms),
        configs=configs,
    )


def toy_key(params: Params, mode: str) -> StepKey:
    """The toy CNN's step (Sec. 4.2) on MNIST at ``studies.toy`` settings."""
    toy = params.studies.toy
    return StepKey("toy_cnn", mode, toy.time_steps, (), DATASETS["mnist"].shape, toy.batch_size)


def _study(stage: str, params: Params) -> Workload:
    """fig2: each mode trained, FDG at every eps in its first ``iterations`` iterations per
    epoch; table1: one rectangular-SG run and one FDG-trained run per eps and seed, each evaluated;
    surrogates: one run per surrogate and seed, each evaluated, fig2's FDG on the first seed."""
    terms = [Term("startup:study", None, 1)]
    if stage not in ("fig2", "table1", "surrogates"):
        return Workload(stage=stage, kind="study", terms=tuple(terms), note="start-up only")
    full_train, test = split_sizes(params, "mnist", capped=False)
    size = params.studies.toy.train_size
    train = min(size, full_train) if size else full_train
    cfg = getattr(params.studies, stage)
    epochs, eps = cfg.epochs, len(cfg.epsilons)
    batch = params.studies.toy.batch_size
    per_epoch = math.ceil(train / batch)
    if stage == "fig2":
        for mode in ("ann", "snn"):
            key = toy_key(params, mode)
            compared = min(cfg.iterations, per_epoch)
            terms += [
                Term("train", key, epochs * train),
                Term("warmup", key, 1),
                Term("fdg", key, epochs * compared * eps),
            ]
    elif stage == "surrogates":  # one run per surrogate and seed; the FDG on the first seed
        surrogates, key = len(cfg.list), toy_key(params, "snn")
        runs, compared = surrogates * len(cfg.seeds), min(cfg.iterations, per_epoch)
        test = min(cfg.test_size, test) if cfg.test_size else test
        terms += [
            Term("train", key, runs * epochs * train),
            Term("warmup", key, runs),
            Term("fdg", key, surrogates * epochs * compared * eps),
            Term("eval", key, runs * test),
        ]
    else:  # table1: each run kind once per seed
        key, seeds = toy_key(params, "snn"), len(cfg.seeds)
        runs = (1 + eps) * seeds
        terms += [
            Term("train", key, runs * epochs * train),
            Term("warmup", key, runs),
            Term("fdg", key, eps * seeds * epochs * per_epoch),
            Term("eval", key, runs * test),
        ]
    return Workload(
        stage=stage,
        kind="study",
        dataset="mnist",
        model="toy_cnn",
        time_steps=toy_key(params, "snn").time_steps,
        epochs=epochs,
        train_images=train,
        test_images=test,
        batch=batch,
        terms=tuple(terms),
    )


def _prepare(stage: str, module: str, params: Params) -> Workload:
    terms = [Term("startup:prepare", None, 1)]
    if module != "prepare_dvs":
        return Workload(stage=stage, kind="prepare", terms=tuple(terms))
    train, test = split_sizes(params, "cifar10dvs", capped=False)
    terms.append(Term("dvs_recording", None, train + test))
    note = "per recording measured on simulated recordings"
    return Workload(
        stage=stage,
        kind="prepare",
        dataset="cifar10dvs",
        train_images=train,
        test_images=test,
        terms=tuple(terms),
        note=note,
    )


def workload(stage: str, cmd: str, params: Params) -> Workload:
    """The work of DVC stage ``stage`` (its addressing, e.g. ``ann@cifar10-0``) running ``cmd``."""
    tokens = shlex.split(cmd)
    at = next((i for i, t in enumerate(tokens) if t.startswith("pipelines.")), len(tokens))
    module = tokens[at].removeprefix("pipelines.") if at < len(tokens) else ""
    if module == "train":
        return _training(stage, params, tokens[:at], tokens[at + 1 :])
    if module == "energy":
        return _energy(stage, params)
    if module in ("prepare", "prepare_dvs"):
        return _prepare(stage, module, params)
    if module == "tables":
        return Workload(
            stage=stage,
            kind="report",
            terms=(Term("startup:report", None, 1),),
            note="start-up only",
        )
    return _study(stage, params)
