"""CIFAR10-DVS (Sec. 5.2): tonic's loader -> T frames -> 48x48, cached once on disk; split 9k/1k.

Two choices where public implementations disagree are parameters: the split (``first900``: the first
900 recordings of each class for training and the last 100 for test, the practice of tdBN [26]; or
``random``: a seeded per-class shuffle with the same counts) and the resize interpolation
(``bilinear``, our default, or ``nearest``). Events are binned into ``time_steps`` frames of equal
event counts (``slicing="event_count"``, tonic ``n_event_bins``) or equal durations
(``slicing="time"``, tonic ``n_time_bins``); each frame holds per-pixel event counts of each
polarity (channel 0 = OFF, 1 = ON), resized to ``size`` x ``size``. Sec. 5.1 feeds neuromorphic
inputs "already converted to 0/1 spike format": with ``values="binary"`` (the default) a pixel of a
polarity channel is 1 where its resized event count is > 0 (some event fell within the
interpolation footprint of that output pixel) and 0 elsewhere; ``values="count"`` keeps the
resized counts (graded, possibly above 1), as much public code does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..io import atomic_dir, save_tensors
from .errors import CorruptDataError, DatasetNotFoundError
from .registry import DATASETS

DVS_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
MANIFEST = "manifest.json"
CACHE_FORMAT = 2  # 2: the "values" option (binary spike frames or counts)
FRAME_VALUES = ("binary", "count")


@dataclass(frozen=True)
class FrameOptions:
    """How recordings become cached frames (this module's docstring); a cache is keyed by them.

    The one list of these options: :func:`prepare_dvs_frames` takes them as keywords, and
    :func:`frame_options` picks them out of a larger mapping (``build_dataset``'s options,
    params.yaml's ``data.dvs``).
    """

    time_steps: int = 10
    size: int = 48
    interpolation: str = "bilinear"
    slicing: str = "event_count"
    split: str = "first900"
    seed: int = 0
    antialias: bool = False
    values: str = "binary"

    def __post_init__(self) -> None:
        if self.slicing not in ("event_count", "time"):
            raise ValueError(f"slicing must be 'event_count' or 'time', not {self.slicing!r}")
        if self.interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"interpolation must be 'bilinear' or 'nearest', not {self.interpolation!r}"
            )
        if self.values not in FRAME_VALUES:
            raise ValueError(f"values must be one of {list(FRAME_VALUES)}, not {self.values!r}")


def frame_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` that are :class:`FrameOptions` fields."""
    names = [f.name for f in dataclasses.fields(FrameOptions)]
    return {k: options[k] for k in names if k in options}


def _tonic_cifar10dvs():
    from tonic.datasets import CIFAR10DVS

    return CIFAR10DVS


def _recording_number(path: str) -> tuple[int, str]:
    match = re.search(r"(\d+)\D*$", Path(path).stem)
    return (int(match.group(1)) if match else -1, Path(path).name)


def split_indices(
    files: Sequence[str], targets: Sequence[int], split: str = "first900", seed: int = 0
) -> tuple[list[int], list[int]]:
    """Train and test indices, 9:1 within each class (900/100 on the full 10k recordings).

    ``first900`` orders each class by the recording number in its file name; ``random`` shuffles
    each class with ``seed``. With n recordings in a class, max(1, round(n/10)) go to test (n > 1).
    """
    if split not in ("first900", "random"):
        raise ValueError(f"split must be 'first900' or 'random', not {split!r}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in sorted(set(targets)):
        idx = [i for i, t in enumerate(targets) if t == label]
        idx.sort(key=lambda i: _recording_number(files[i]))
        if split == "random":
            idx = [idx[i] for i in rng.permutation(len(idx))]
        n_test = max(1, round(len(idx) / 10)) if len(idx) > 1 else 0
        train += idx[: len(idx) - n_test]
        test += idx[len(idx) - n_test :]
    return sorted(train), sorted(test)


class _FrameConverter(Dataset):
    """tonic recording i -> float16 [T,2,size,size] frames; a Dataset so DataLoader workers help."""

    def __init__(
        self, tonic_ds, size: int, interpolation: str, antialias: bool, binary: bool
    ) -> None:
        self.ds, self.size, self.antialias, self.binary = tonic_ds, size, antialias, binary
        self.mode = InterpolationMode(interpolation)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        try:
            frames, label = self.ds[i]
        except Exception as err:  # aedat/tonic errors do not name the file
            raise CorruptDataError(self.ds.data[i], f"{type(err).__name__}: {err}") from None
        x = torch.from_numpy(np.asarray(frames, dtype=np.float32))
        x = TF.resize(x, [self.size, self.size], interpolation=self.mode, antialias=self.antialias)
        if self.binary:
            x = (x > 0).to(x.dtype)  # Sec. 5.1: 0/1 spikes, after resizing
        return x.to(torch.float16), int(label)


def prepare_dvs_frames(
    root: str | Path, out_dir: str | Path, *, workers: int = 0, **options: Any
) -> Path:
    """Convert tonic's CIFAR10DVS under ``root`` into a frame cache in ``out_dir``; return it.

    ``options`` are :class:`FrameOptions` (defaults: T = 10 frames of equal event counts,
    48x48 bilinear, 0/1 values, the ``first900`` split); ``workers`` DataLoader processes
    convert the recordings.

    Writes ``train.pt`` and ``test.pt`` (dicts of ``frames`` float16 [N,T,2,size,size] and
    ``labels`` int64) and ``manifest.json`` (options, counts, file lists) into a temporary folder
    that is renamed into place, so a cache is either complete or absent. An existing cache with the
    same options is reused. ``antialias=False`` matches 2021-era torchvision resizing of tensors.
    """
    from tonic.transforms import ToFrame

    opts = FrameOptions(**options)
    options = dataclasses.asdict(opts)
    time_steps, size = opts.time_steps, opts.size
    root, out_dir = Path(root), Path(out_dir)
    if (out_dir / MANIFEST).is_file():
        manifest = json.loads((out_dir / MANIFEST).read_text())
        if manifest.get("options") == options and manifest.get("format") == CACHE_FORMAT:
            return out_dir
    sensor = _tonic_cifar10dvs().sensor_size
    bins = {"n_event_bins" if opts.slicing == "event_count" else "n_time_bins": time_steps}
    tonic_ds = open_cifar10dvs(root, transform=ToFrame(sensor_size=sensor, **bins))
    train_idx, test_idx = split_indices(tonic_ds.data, tonic_ds.targets, opts.split, opts.seed)
    converter = _FrameConverter(
        tonic_ds, size, opts.interpolation, opts.antialias, opts.values == "binary"
    )
    loader = DataLoader(converter, batch_size=None, num_workers=workers)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-recording ops are tiny: intra-op threads only add overhead
    try:
        frames, labels = zip(*loader, strict=True)
    finally:
        torch.set_num_threads(threads)

    rel = [os.path.relpath(f, root) for f in tonic_ds.data]
    manifest = dict(
        format=CACHE_FORMAT,
        options=options,
        source=str(root.resolve()),
        classes=list(DVS_CLASSES),
        shape=[time_steps, 2, size, size],
    )
    with atomic_dir(out_dir) as tmp:
        for part, idx in (("train", train_idx), ("test", test_idx)):
            save_tensors(
                {
                    "frames": torch.stack([frames[i] for i in idx])
                    if idx
                    else torch.empty(0, time_steps, 2, size, size, dtype=torch.float16),
                    "labels": torch.tensor([labels[i] for i in idx], dtype=torch.int64),
                },
                tmp / f"{part}.pt",
            )
            manifest[part] = {"count": len(idx), "files": [rel[i] for i in idx]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return out_dir


def open_cifar10dvs(root: str | Path, *, download: bool = False, transform: Callable | None = None):
    """tonic's CIFAR10DVS on ``root`` (the thin subclass of ``tonic_compat``); a missing tree raises
    ``DatasetNotFoundError``, unless ``download``: then tonic's own class fetches it."""
    folder = Path(root) / "CIFAR10DVS"
    if not (folder / "CIFAR10DVS.zip").is_file() or not any(folder.glob("*/*.aedat4")):
        if download:
            return _tonic_cifar10dvs()(str(root), transform=transform)
        raise DatasetNotFoundError("cifar10dvs", folder, DATASETS["cifar10dvs"].how_to_get)
    from .tonic_compat import CIFAR10DVS

    return CIFAR10DVS(str(root), transform=transform)


class DVSFrames(Dataset):
    """A prepared CIFAR10-DVS frame cache: (float32 [T,2,H,W] frames, int label)."""

    def __init__(self, cache_dir: str | Path, train: bool, transform: Callable | None = None):
        self.cache_dir, self.train, self.transform = Path(cache_dir), train, transform
        self.manifest = json.loads((self.cache_dir / MANIFEST).read_text())
        self.classes = self.manifest["classes"]
        path = self.cache_dir / ("train.pt" if train else "test.pt")
        if not path.is_file():
            raise DatasetNotFoundError("cifar10dvs", path, "Rebuild it with prepare_dvs_frames().")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            self.frames, self.targets = blob["frames"], blob["labels"]
        except Exception as err:
            raise CorruptDataError(path, f"{type(err).__name__}: {err}") from None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.frames[i].float()
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[i])
