"""Datasets of the paper (MNIST, CIFAR-10/100, CIFAR10-DVS, ImageNet), its transforms, bundled
offline samples in the real on-disk formats, and a DVS event simulator."""

from .builders import build_dataset, checked_image_loader
from .bundled import (
    DATASETS,
    SUBSTITUTES,
    bundle_info,
    bundled_dir,
    load_bundled_cifar10,
    materialize_bundled,
)
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
from .subset import random_subset
from .transforms import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MNIST_MEAN,
    MNIST_STD,
    NORMALIZATION,
    Cutout,
    RandomRoll,
    cifar_transform,
    dvs_transform,
    imagenet_transform,
    mnist_transform,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "DVS_CLASSES",
    "EVENT_DTYPE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MNIST_MEAN",
    "MNIST_STD",
    "NORMALIZATION",
    "SUBSTITUTES",
    "CorruptDataError",
    "Cutout",
    "DVSFrames",
    "DatasetNotFoundError",
    "FrameOptions",
    "RandomRoll",
    "build_dataset",
    "bundle_info",
    "bundled_dir",
    "checked_image_loader",
    "cifar_transform",
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
