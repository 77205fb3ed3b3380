"""The dataset registry: one record per dataset of the paper, after timm's ``default_cfgs``.

Each :class:`DatasetInfo` holds what the rest of the project knows about a dataset: its class
count, input shape (C, H, W as the paper feeds it, and whether a sample carries its own time
axis), the normalisation of its training set, whether training augments it, its builder (a
function of :mod:`dspike.data.builders`), the label of the bundled stand-in that smoke runs use,
and how to get the real files. :data:`DATASETS` maps each name to its record;
:func:`dataset_info` looks one up with an error naming the choices.

Plain data, importing neither torch nor torchvision: report stages and the models read it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATASETS", "DatasetInfo", "dataset_info"]


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about one dataset.

    * ``num_classes``: labels 0 .. num_classes - 1;
    * ``shape``: one sample as (C, H, W) at the paper's size; ``time_axis``: a sample is
      ``[T, C, H, W]`` event frames with T set by the data (``data.dvs.time_steps``), not the
      network; H and W follow ``data.dvs.size`` / ``data.imagenet.image_size`` where set;
    * ``mean``, ``std``: per-channel normalisation of the training set in [0, 1] units (None:
      event frames, not normalised);
    * ``augmented``: whether the training split is augmented (Sec. 5.1-5.3; MNIST is not);
    * ``splits``: (train, test) samples of the real dataset; ``bundled_splits``: of the bundled
      sample (data/bundled/README.md; None: made to order, ``simulated_per_class``);
    * ``builder``: the function of :mod:`dspike.data.builders` that opens it;
    * ``substitute``: the label every table row carries when the bundled sample stands in for
      it at smoke scale (None: the bundled sample is a plain subset named by its size);
    * ``how_to_get``: the expected layout under the data root, and how to get it.
    """

    name: str
    num_classes: int
    shape: tuple[int, int, int]
    time_axis: bool
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    augmented: bool
    splits: tuple[int, int]
    bundled_splits: tuple[int, int] | None
    builder: str
    substitute: str | None
    how_to_get: str


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="mnist",
            num_classes=10,
            shape=(1, 28, 28),
            time_axis=False,
            mean=(0.1307,),
            std=(0.3081,),
            augmented=False,
            splits=(60_000, 10_000),
            bundled_splits=(2_000, 1_000),
            builder="_mnist",
            substitute=None,
            how_to_get="Expected <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte "
            "(torchvision MNIST layout). Pass download=True to fetch it, or write the bundled "
            "sample with dspike.data.materialize_bundled('mnist', root).",
        ),
        DatasetInfo(
            name="cifar10",
            num_classes=10,
            shape=(3, 32, 32),
            time_axis=False,
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            augmented=True,
            splits=(50_000, 10_000),
            bundled_splits=(9_000, 1_000),
            builder="_cifar",
            substitute="SUBSET: the 10,000 bundled CIFAR-10 images, the official test set "
            "(9,000 used as 'train', 1,000 as 'test'), not the 50k/10k splits",
            how_to_get="Expected <root>/cifar-10-batches-py/{data_batch_1..5,test_batch,"
            "batches.meta} (torchvision CIFAR10 layout). Pass download=True to fetch it, or write "
            "the bundled sample with dspike.data.materialize_bundled('cifar10', root).",
        ),
        DatasetInfo(
            name="cifar100",
            num_classes=100,
            shape=(3, 32, 32),
            time_axis=False,
            mean=(0.5071, 0.4865, 0.4409),
            std=(0.2673, 0.2564, 0.2762),
            augmented=True,
            splits=(50_000, 10_000),
            bundled_splits=(9_000, 1_000),
            builder="_cifar",
            substitute="SUBSTITUTE: bundled CIFAR-10 images in CIFAR-100 format (10 of 100 "
            "labels used), not CIFAR-100",
            how_to_get="Expected <root>/cifar-100-python/{train,test,meta} (torchvision CIFAR100 "
            "layout). Pass download=True to fetch it, or write the bundled substitute with "
            "dspike.data.materialize_bundled('cifar100', root).",
        ),
        DatasetInfo(
            name="cifar10dvs",
            num_classes=10,
            shape=(2, 48, 48),
            time_axis=True,
            mean=None,
            std=None,
            augmented=True,
            splits=(9_000, 1_000),
            bundled_splits=None,
            builder="_cifar10dvs",
            substitute="SIMULATED: CIFAR-10 images moved in front of a software DVS "
            "(dspike.data.simulate_saccade), not the recorded CIFAR10-DVS",
            how_to_get="Expected <root>/CIFAR10DVS/CIFAR10DVS.zip and "
            "<root>/CIFAR10DVS/<class>/*.aedat4 (tonic.datasets.CIFAR10DVS layout), or a frame "
            "cache made by prepare_dvs_frames (with manifest.json). Pass download=True to fetch "
            "it (figshare, ~7 GB), or write the bundled simulated recordings with "
            "dspike.data.materialize_bundled('cifar10dvs', root).",
        ),
        DatasetInfo(
            name="imagenet",
            num_classes=1000,
            shape=(3, 224, 224),
            time_axis=False,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            augmented=True,
            splits=(1_281_167, 50_000),
            bundled_splits=(50, 50),
            builder="_imagenet",
            substitute="SUBSET: bundled Imagenette (10 ImageNet classes, 50 train / 50 val "
            "images), not ImageNet-1k",
            how_to_get="Expected <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG "
            "(ImageFolder layout; with ILSVRC2012_devkit_t12.tar.gz in <root>, torchvision's "
            "ImageNet class is used). ImageNet cannot be downloaded automatically: get it from "
            "https://image-net.org, or write the bundled Imagenette sample with "
            "dspike.data.materialize_bundled('imagenet', root).",
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    """The record of dataset ``name``; ValueError naming the known datasets otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS)}") from None
