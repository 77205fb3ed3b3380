"""``build_dataset``: the real loaders (torchvision, ImageFolder, tonic) + the paper's transforms.

Every builder checks its files first, so a missing dataset raises ``DatasetNotFoundError`` (where
the files must be, how to get them) and a corrupt file raises ``CorruptDataError`` naming it,
instead of a loader's bare "Dataset not found or corrupted" or a decoder traceback. Downloads
happen only with ``download=True``.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets as tvd

from . import transforms as tr
from .bundled import bundle_info
from .dvs_frames import MANIFEST, DVSFrames, frame_options, prepare_dvs_frames
from .errors import CorruptDataError, DatasetNotFoundError
from .registry import DATASETS, DatasetInfo, dataset_info
from .safe_pickle import check_plain_pickle


def _checked(name: str, path: Path) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(name, path, DATASETS[name].how_to_get)
    return path


# --- MNIST ------------------------------------------------------------------------------------


def _check_idx(path: Path) -> None:
    """An IDX file's size must match the dimensions in its header (catches truncation)."""
    data = path.read_bytes()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or not 1 <= data[3] <= 3:
        raise CorruptDataError(path, "not a uint8 IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + math.prod(dims)
    if len(data) != expected:
        raise CorruptDataError(path, f"{len(data)} bytes, header {dims} needs {expected}")


def _mnist(info: DatasetInfo, root: Path, train: bool, download: bool) -> Dataset:
    prefix = "train" if train else "t10k"
    try:
        for kind in ("images-idx3", "labels-idx1"):
            _check_idx(_checked("mnist", root / "MNIST" / "raw" / f"{prefix}-{kind}-ubyte"))
    except (DatasetNotFoundError, CorruptDataError):
        if not download:
            raise
    return tvd.MNIST(root, train=train, download=download, transform=tr.mnist_transform())


# --- CIFAR-10 / CIFAR-100 ----------------------------------------------------------------------


class _BundleChecksums:
    """Mixin: torchvision's CIFAR class verified against the bundle manifest's MD5s instead of the
    official ones (the bundled files are smaller); all reading code is torchvision's."""

    def __init__(self, root, md5: dict[str, str], **kwargs) -> None:
        folder = self.base_folder
        self.train_list = [[f, md5[f"{folder}/{f}"]] for f, _ in type(self).train_list]
        self.test_list = [[f, md5[f"{folder}/{f}"]] for f, _ in type(self).test_list]
        meta = type(self).meta
        self.meta = {**meta, "md5": md5[f"{folder}/{meta['filename']}"]}
        super().__init__(root, **kwargs)


class BundledCIFAR10(_BundleChecksums, tvd.CIFAR10):
    """torchvision CIFAR10 on a bundled (smaller) cifar-10-batches-py."""


class BundledCIFAR100(_BundleChecksums, tvd.CIFAR100):
    """torchvision CIFAR100 on the bundled substitute cifar-100-python."""


def _cifar_files(cls) -> list[tuple[str, str]]:
    return [(f, md5) for f, md5 in [*cls.train_list, *cls.test_list]] + [
        (cls.meta["filename"], cls.meta["md5"])
    ]


def _verify_md5(name: str, folder: Path, expected: list[tuple[str, str]]) -> None:
    """Raise for the first missing file or the first file whose MD5 differs."""
    for f, want in expected:
        path = _checked(name, folder / f)
        if hashlib.md5(path.read_bytes()).hexdigest() != want:
            raise CorruptDataError(path, f"MD5 differs from {want} (truncated or modified?)")


def _cifar(
    info: DatasetInfo, root: Path, train: bool, download: bool, augment: bool, **opts
) -> Dataset:
    """torchvision CIFAR10/100; bundled copies are verified against their manifest's MD5s.

    Real data: torchvision checks the official MD5s itself; only when that fails are the files
    checked here one by one, to name the bad one. ``download`` fetches only when a check fails.
    """
    name = info.name
    cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    kwargs = dict(train=train, transform=tr.cifar_transform(name, train, augment, **opts))
    folder = root / cls.base_folder
    bundle = bundle_info(root, name)
    try:
        if bundle:
            md5 = {k: v["md5"] for k, v in bundle["files"].items()}
            expected = [(f, md5[f"{cls.base_folder}/{f}"]) for f, _ in _cifar_files(cls)]
            _verify_md5(name, folder, expected)
            for f, _ in expected:  # the manifest lies in the data folder: it vouches for nothing
                check_plain_pickle(folder / f)
            bundled = BundledCIFAR10 if name == "cifar10" else BundledCIFAR100
            return bundled(root, md5, **kwargs)
        for f, _ in _cifar_files(cls):
            _checked(name, folder / f)
        try:
            return cls(root, **kwargs)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted"
            _verify_md5(name, folder, _cifar_files(cls))
            raise
    except (DatasetNotFoundError, CorruptDataError):
        if not download:
            raise
    return cls(root, download=True, **kwargs)


# --- ImageNet ----------------------------------------------------------------------------------


def checked_image_loader(path: str) -> Image.Image:
    """ImageFolder's PIL loader, raising ``CorruptDataError`` with the path for a bad JPEG."""
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            img.load()
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise CorruptDataError(path, f"{type(err).__name__}: {err}") from None


def _imagenet(
    info: DatasetInfo, root: Path, train: bool, download: bool, augment: bool, **opts
) -> Dataset:
    if download:
        raise ValueError(f"imagenet cannot be downloaded. {DATASETS['imagenet'].how_to_get}")
    split = "train" if train else "val"
    transform = tr.imagenet_transform(train, augment, **opts)
    if (root / "ILSVRC2012_devkit_t12.tar.gz").is_file() or (root / "meta.bin").is_file():
        return tvd.ImageNet(root, split=split, transform=transform, loader=checked_image_loader)
    for folder in {root / "train", root / split}:
        if not folder.is_dir():
            raise DatasetNotFoundError("imagenet", folder, DATASETS["imagenet"].how_to_get)
    return _TrainIndexedFolder(root / split, root / "train", transform=transform,
                               loader=checked_image_loader)  # fmt: skip


class _TrainIndexedFolder(tvd.ImageFolder):
    """``ImageFolder`` whose class index is always the training split's, so a label means the
    same class in ``val/`` even where ``val/`` lacks some classes; a ``val/`` class that
    ``train/`` does not have is a ``CorruptDataError`` naming the folder."""

    def __init__(self, root: Path, train_root: Path, **kwargs) -> None:
        self._train_root = train_root
        super().__init__(root, allow_empty=root != train_root, **kwargs)
        if not self.samples:
            raise DatasetNotFoundError("imagenet", root, DATASETS["imagenet"].how_to_get)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        classes, index = super().find_classes(self._train_root)
        if Path(directory) != self._train_root:
            extra = sorted(set(super().find_classes(directory)[0]) - set(classes))
            if extra:
                raise CorruptDataError(
                    Path(directory) / extra[0],
                    f"class folder not in {self._train_root} ({len(extra)} such classes)",
                )
        return classes, index


# --- CIFAR10-DVS -------------------------------------------------------------------------------


def _cifar10dvs(
    info: DatasetInfo, root: Path, train: bool, download: bool, augment: bool, **opts
) -> Dataset:
    frame_opts = frame_options(opts)
    opts = {k: v for k, v in opts.items() if k not in frame_opts}
    workers = opts.pop("prepare_workers", 0)
    transform = tr.dvs_transform(train, augment, **opts)
    if not (root / MANIFEST).is_file():
        if download:
            from .dvs_frames import open_cifar10dvs

            open_cifar10dvs(root, download=True)
        elif not (root / "CIFAR10DVS").is_dir():
            raise DatasetNotFoundError("cifar10dvs", root, DATASETS["cifar10dvs"].how_to_get)
        key = "_".join(f"{k}={frame_opts[k]}" for k in sorted(frame_opts)) or "default"
        cache = root / "CIFAR10DVS_frames" / key
        root = prepare_dvs_frames(root, cache, workers=workers, **frame_opts)
    elif frame_opts:
        raise ValueError(f"{root} is a prepared frame cache; frame options {frame_opts} apply "
                         "only when preparing (prepare_dvs_frames)")  # fmt: skip
    return DVSFrames(root, train, transform)


def build_dataset(
    name: str,
    root: str | Path,
    train: bool,
    *,
    download: bool = False,
    augment: bool = True,
    **options,
) -> Dataset:
    """The dataset ``name`` under ``root``, yielding (float32 tensor, int label), opened by the
    builder its registry record names (:mod:`dspike.data.registry`).

    Shapes: mnist [1,28,28]; cifar10/cifar100 [3,32,32]; imagenet [3,crop,crop] (crop_size=224);
    cifar10dvs [T,2,48,48] frames (T=time_steps=10). ``augment=False`` gives the test transform
    on the training split. Options: cifar ``autoaugment``, ``cutout``; imagenet ``crop_size``,
    ``resize_size``; cifar10dvs ``max_shift`` and the ``prepare_dvs_frames`` options (used when
    ``root`` holds the raw tonic tree rather than a frame cache; the cache then goes to
    ``root/CIFAR10DVS_frames/<options>/``).
    """
    info = dataset_info(name)
    build = _BUILDERS[info.builder]
    if info.augmented:
        options["augment"] = augment
    return build(info, Path(root).expanduser(), train, download, **options)


# The builders registry records name (DatasetInfo.builder).
_BUILDERS = {f.__name__: f for f in (_mnist, _cifar, _imagenet, _cifar10dvs)}
