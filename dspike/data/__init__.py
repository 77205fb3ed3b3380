"""Datasets of the paper (MNIST, CIFAR-10/100, CIFAR10-DVS, ImageNet): the registry of what is
known about each (:mod:`.registry`), the real loaders with the paper's transforms, bundled offline
samples in the real on-disk formats, and a DVS event simulator.

The names below are loaded on first use (PEP 562): ``from dspike.data import DATASETS`` reads the
registry without importing torchvision, so report stages can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .builders import build_dataset, checked_image_loader
    from .bundled import bundle_info, bundled_dir, load_bundled_cifar10, materialize_bundled
    from .dvs_frames import (
        DVS_CLASSES,
        DVSFrames,
        FrameOptions,
        frame_options,
        open_cifar10dvs,
        prepare_dvs_frames,
        split_indices,
    )
    from .dvs_sim import EVENT_DTYPE, read_aedat4, saccade_path, simulate_saccade, write_aedat4
    from .errors import CorruptDataError, DatasetNotFoundError
    from .loader import make_loader
    from .registry import DATASETS, DatasetInfo, dataset_info
    from .subset import random_subset
    from .transforms import (
        Cutout,
        RandomRoll,
        cifar_transform,
        dvs_transform,
        imagenet_transform,
        mnist_transform,
    )

_EXPORTS = {
    "build_dataset": "builders",
    "checked_image_loader": "builders",
    "bundle_info": "bundled",
    "bundled_dir": "bundled",
    "load_bundled_cifar10": "bundled",
    "materialize_bundled": "bundled",
    "DVS_CLASSES": "dvs_frames",
    "DVSFrames": "dvs_frames",
    "FrameOptions": "dvs_frames",
    "frame_options": "dvs_frames",
    "open_cifar10dvs": "dvs_frames",
    "prepare_dvs_frames": "dvs_frames",
    "split_indices": "dvs_frames",
    "EVENT_DTYPE": "dvs_sim",
    "read_aedat4": "dvs_sim",
    "saccade_path": "dvs_sim",
    "simulate_saccade": "dvs_sim",
    "write_aedat4": "dvs_sim",
    "CorruptDataError": "errors",
    "DatasetNotFoundError": "errors",
    "make_loader": "loader",
    "random_subset": "subset",
    "Cutout": "transforms",
    "RandomRoll": "transforms",
    "cifar_transform": "transforms",
    "dvs_transform": "transforms",
    "imagenet_transform": "transforms",
    "mnist_transform": "transforms",
    "DATASETS": "registry",
    "DatasetInfo": "registry",
    "dataset_info": "registry",
}

__all__ = [
    "DATASETS",
    "DVS_CLASSES",
    "EVENT_DTYPE",
    "CorruptDataError",
    "Cutout",
    "DVSFrames",
    "DatasetInfo",
    "DatasetNotFoundError",
    "FrameOptions",
    "RandomRoll",
    "build_dataset",
    "bundle_info",
    "bundled_dir",
    "checked_image_loader",
    "cifar_transform",
    "dataset_info",
    "dvs_transform",
    "frame_options",
    "imagenet_transform",
    "load_bundled_cifar10",
    "make_loader",
    "materialize_bundled",
    "mnist_transform",
    "open_cifar10dvs",
    "prepare_dvs_frames",
    "random_subset",
    "read_aedat4",
    "saccade_path",
    "simulate_saccade",
    "split_indices",
    "write_aedat4",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
