"""Errors raised by the dataset layer: a missing dataset or a corrupt file, each naming the path."""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk where its loader looks; the message says where and how to get it."""

    def __init__(self, name: str, path: str | Path, how: str) -> None:
        self.name, self.path, self.how = name, Path(path), how
        super().__init__(f"{name}: dataset not found at {self.path}. {how}")

    def __str__(self) -> str:  # FileNotFoundError would otherwise print only the first argument
        return self.args[0]


class CorruptDataError(ValueError, RuntimeError):
    """A dataset file exists but cannot be read (truncated, wrong checksum, wrong format).

    A ``ValueError`` (a bad input, which stages report in one line with exit status 2) and, as
    before, a ``RuntimeError``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"corrupt or unreadable data file {self.path}: {reason}")


HOW_TO_GET = {
    "mnist": "Expected <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (torchvision "
    "MNIST layout). Pass download=True to fetch it, or write the bundled sample with "
    "dspike.data.materialize_bundled('mnist', root).",
    "cifar10": "Expected <root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} "
    "(torchvision CIFAR10 layout). Pass download=True to fetch it, or write the bundled sample "
    "with dspike.data.materialize_bundled('cifar10', root).",
    "cifar100": "Expected <root>/cifar-100-python/{train,test,meta} (torchvision CIFAR100 layout). "
    "Pass download=True to fetch it, or write the bundled substitute with "
    "dspike.data.materialize_bundled('cifar100', root).",
    "imagenet": "Expected <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG (ImageFolder "
    "layout; with ILSVRC2012_devkit_t12.tar.gz in <root>, torchvision's ImageNet class is used). "
    "ImageNet cannot be downloaded automatically: get it from https://image-net.org, or write the "
    "bundled Imagenette sample with dspike.data.materialize_bundled('imagenet', root).",
    "cifar10dvs": "Expected <root>/CIFAR10DVS/CIFAR10DVS.zip and "
    "<root>/CIFAR10DVS/<class>/*.aedat4 (tonic.datasets.CIFAR10DVS layout), or a frame cache "
    "made by prepare_dvs_frames (with "
    "manifest.json). Pass download=True to fetch it (figshare, ~7 GB), or write the bundled "
    "simulated recordings with dspike.data.materialize_bundled('cifar10dvs', root).",
}
