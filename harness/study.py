"""What the gradient-study stages share: the MNIST splits and the toy settings (Sec. 4.2)."""

from __future__ import annotations

import argparse
from pathlib import Path

from torch.utils.data import Dataset

from dspike.data import build_dataset, materialize_bundled, random_subset
from paper.toy_training import ToySettings

from .cli import out_dir_argument
from .params import Params, flatten
from .tracking import STUDIES, DatasetRecord, experiment_name, log_stage_run, run_tags


def mnist_splits(params: Params) -> tuple[Dataset, Dataset]:
    """MNIST train (``studies.toy.train_size`` samples, 0 = all) and test splits."""
    root, download = Path(params.data.root), params.data.download
    if params.data.source == "bundled":
        materialize_bundled("mnist", root)
    train = build_dataset("mnist", root, train=True, download=download)
    test = build_dataset("mnist", root, train=False, download=download)
    return random_subset(train, params.studies.toy.train_size), test


def toy_settings(params: Params) -> ToySettings:
    """How every toy study trains, from ``studies.toy`` and the first of ``seeds``."""
    toy = params.studies.toy
    return ToySettings(
        batch_size=toy.batch_size, lr=toy.lr, time_steps=toy.time_steps, seed=params.seeds[0]
    )


def study_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` and ``--manifest`` (the MNIST manifest the study's run logs as its input)."""
    out_dir_argument(parser)
    parser.add_argument("--manifest", type=Path, required=True, help="input: MNIST's manifest")


def log_study(params: Params, name: str, args: argparse.Namespace) -> None:
    """The study's MLflow run: its params, MNIST as its input, its outputs as artifacts."""
    log_stage_run(
        experiment_name("studies"), name, run_tags(params, f"{name}.py", stage=name),
        params={**flatten(params.studies.toy, "studies.toy"),
                **flatten(getattr(params.studies, name), f"studies.{name}")},
        artifacts={"": args.out}, inputs=[DatasetRecord.from_manifest(args.manifest, "train")],
        description=STUDIES,
    )  # fmt: skip
