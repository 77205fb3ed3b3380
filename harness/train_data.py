"""A training stage's data: the input shape it loads and its train/test datasets, as ``data``
and the dataset registry (:data:`dspike.data.DATASETS`) say."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from dspike.data import DATASETS, build_dataset, materialize_bundled, random_subset
from dspike.engine import distributed

from .params import Params

__all__ = ["build_datasets", "dvs_frames_dir", "frame_shape", "sample_shape"]


def frame_shape(params: Params, dataset: str) -> tuple[int, int, int]:
    """(C, H, W) of one image or event frame of ``dataset`` as the stage loads it: the
    registry's (:data:`dspike.data.DATASETS`) with the side ``params`` set (``data.dvs.size``,
    ``data.imagenet.image_size``)."""
    channels, _, side = DATASETS[dataset].shape
    if dataset == "cifar10dvs":
        side = params.data.dvs.size
    elif dataset == "imagenet" and params.data.imagenet.image_size is not None:
        side = params.data.imagenet.image_size
    return channels, side, side


def sample_shape(params: Params, dataset: str) -> tuple[int, ...]:
    """One sample: :func:`frame_shape`, preceded by ``data.dvs.time_steps`` frames where the
    dataset's samples carry their own time axis."""
    frames = (params.data.dvs.time_steps,) if DATASETS[dataset].time_axis else ()
    return (*frames, *frame_shape(params, dataset))


def dvs_frames_dir(params: Params) -> Path:
    """Where the prepare_dvs stage caches CIFAR10-DVS frames: ``<data.prepared>/cifar10dvs``."""
    return Path(params.data.prepared) / "cifar10dvs"


def build_datasets(
    params: Params, dataset: str, info: distributed.DistInfo, stage: str | None = None
) -> tuple[Dataset, Dataset]:
    """Train and test splits of ``dataset`` as ``data`` configures them (bundled or real),
    each cut to ``max_train_samples`` / ``max_test_samples`` of ``stages.<stage>`` over
    ``train`` (of ``train`` without a stage).

    Bundled data is written once, by rank 0, while the other processes wait.
    """
    data = params.data
    bundled, download = data.source == "bundled", data.download
    options: dict[str, Any] = {}
    if dataset == "cifar10dvs":
        root = dvs_frames_dir(params)
        options["max_shift"] = data.dvs.max_roll
        download = False  # the frame cache comes from the prepare_dvs stage
    elif dataset == "imagenet":
        root = Path(data.imagenet.root)
        side = frame_shape(params, dataset)[-1]
        options.update(crop_size=side, resize_size=round(side * 256 / 224))
    else:
        root = Path(data.root)
        if dataset in ("cifar10", "cifar100"):
            options.update(dataclasses.asdict(data.cifar))
    if bundled and dataset != "cifar10dvs" and info.is_main:
        materialize_bundled(dataset, root)
    distributed.barrier(info)
    sets = [
        build_dataset(dataset, root, train, download=download, **options) for train in (True, False)
    ]
    max_train, max_test = params.sample_caps(stage)
    return random_subset(sets[0], max_train), random_subset(sets[1], max_test)
