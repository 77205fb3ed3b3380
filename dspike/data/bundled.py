"""Write the bundled real data (data/bundled/) in the exact on-disk formats the real loaders read.

Smoke runs and tests use the same loader code as paper-scale runs (torchvision MNIST/CIFAR,
ImageFolder, tonic CIFAR10DVS); only the files are small. What is written (provenance in
data/bundled/README.md):

- mnist: ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, 2,000 training digits and
  1,000 test digits of the real MNIST.
- cifar10: ``cifar-10-batches-py/`` pickles (data_batch_1..5, test_batch, batches.meta) of
  the 10,000 real CIFAR-10 images of the official *test* set (decoded from JPEG): 900 per class
  for "train", 100 per class for "test".
- cifar100: SUBSTITUTE. No CIFAR-100 image is available offline: ``cifar-100-python/`` pickles of
  the same CIFAR-10 images, fine label = CIFAR-10 label (10 of the 100 classes used), class names
  prefixed ``SUBSTITUTE-cifar10-``. ``bundle_info(root, 'cifar100')['substitute']`` says so for
  tables.
- imagenet: ``train/`` and ``val/`` ImageFolder trees of real Imagenette JPEGs (10 ImageNet
  classes, 5 per class and split).

Each dataset's label for its bundled stand-in (SUBSET, SUBSTITUTE, SIMULATED) is its registry
record's ``substitute`` (:mod:`dspike.data.registry`).
- cifar10dvs: SIMULATED. ``CIFAR10DVS/<class>/cifar10_<class>_<i>.aedat4`` made by
  ``simulate_saccade`` from bundled CIFAR-10 images (n_per_class each), plus a marker
  ``CIFAR10DVS.zip`` (tonic checks that the archive is present; ours holds only a note).

Each write goes to a temporary folder under ``root`` whose top-level folders are then moved into
place (:func:`dspike.io.replace_dir`), and a manifest ``root/.dspike-bundled-<name>.json``
(options, files, sizes, MD5s) is written last, atomically: a call that finds a matching manifest
and all its files returns at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from itertools import pairwise
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import atomic_write_text, replace_dir
from .dvs_frames import DVS_CLASSES
from .dvs_sim import simulate_saccade, write_aedat4
from .errors import DatasetNotFoundError
from .registry import dataset_info

CIFAR10_CLASSES = DVS_CLASSES  # same names, same order (tonic labels = CIFAR-10 labels)
CIFAR_TRAIN_PER_CLASS = 900  # of the 1,000 bundled images per class; the other 100 are "test"


def bundled_dir() -> Path:
    """data/bundled/ of this checkout, or $DSPIKE_BUNDLED_DIR."""
    default = Path(__file__).resolve().parents[2] / "data" / "bundled"
    path = Path(os.environ.get("DSPIKE_BUNDLED_DIR", default))
    if not (path / "cifar10.npz").is_file():
        raise DatasetNotFoundError(
            "bundled data",
            path,
            "It ships with the git checkout (data/bundled/); set "
            "DSPIKE_BUNDLED_DIR if the package is installed elsewhere.",
        )
    return path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _manifest_path(root: Path, name: str) -> Path:
    return root / f".dspike-bundled-{name}.json"


def bundle_info(root: str | Path, name: str) -> dict | None:
    """The manifest of bundled data written under ``root`` for ``name``, or None (real data)."""
    path = _manifest_path(Path(root), name)
    return json.loads(path.read_text()) if path.is_file() else None


# The bundled file each dataset is written from: a copy made from another version of it (the
# CIFAR-10 sample grew from 2,000 to 10,000 images on 2026-12-08) is written again.
_SOURCES = {"mnist": "mnist.npz", "cifar10": "cifar10.npz", "cifar100": "cifar10.npz",
            "cifar10dvs": "cifar10.npz"}  # fmt: skip


def _source_md5(name: str) -> str | None:
    source = _SOURCES.get(name)
    return _md5(bundled_dir() / source) if source else None


def _is_complete(root: Path, info: dict | None, options: dict, source: str | None) -> bool:
    if info is None or info.get("options") != options or info.get("source_md5") != source:
        return False
    return all(
        (root / rel).is_file() and (root / rel).stat().st_size == meta["size"]
        for rel, meta in info["files"].items()
    )


# --- writers: each fills ``out`` with the final layout ---------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX (MNIST) encoding of a uint8 array: magic 0x00000800 + ndim, big-endian dims, data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def _write_mnist(out: Path) -> None:
    data = np.load(bundled_dir() / "mnist.npz")
    raw = out / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, split in (("train", "train"), ("t10k", "test")):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx_bytes(data[f"{split}_images"]))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(data[f"{split}_labels"]))


def load_bundled_cifar10() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bundled CIFAR-10 images (uint8 [N,32,32,3], decoded from the source JPEGs), labels, and
    each image's index within its class in the official test set."""
    data = np.load(bundled_dir() / "cifar10.npz")
    blob, off = data["jpeg_bytes"].tobytes(), data["offsets"]
    decode = [Image.open(io.BytesIO(blob[a:b])).convert("RGB") for a, b in pairwise(off)]
    images = np.stack([np.asarray(img) for img in decode])
    return images, data["labels"].astype(np.int64), data["index_in_class"].astype(np.int64)


def _cifar_split(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """Bundled CIFAR-10 as (HWC images, labels, file names) for "train" and "test", shuffled."""
    images, labels, index = load_bundled_cifar10()
    is_train = index < CIFAR_TRAIN_PER_CLASS
    rng = np.random.default_rng(seed)
    out = {}
    for split, mask in (("train", is_train), ("test", ~is_train)):
        idx = rng.permutation(np.flatnonzero(mask))
        names = [f"{CIFAR10_CLASSES[labels[i]]}_test_{index[i]:04d}.jpg" for i in idx]
        out[split] = (images[idx], labels[idx], names)
    return out


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """[N,32,32,3] -> [N,3072] rows, channel planes R, G, B (the CIFAR pickle layout)."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _write_cifar10(out: Path) -> None:
    parts = _cifar_split()
    folder = out / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images, labels, names = parts["train"]
    for b, chunk in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        _pickle(folder / f"data_batch_{b}", {
            "batch_label": f"training batch {b} of 5 (dspike bundled sample)",
            "labels": labels[chunk].tolist(), "data": _cifar_rows(images[chunk]),
            "filenames": [names[i] for i in chunk],
        })  # fmt: skip
    images, labels, names = parts["test"]
    _pickle(folder / "test_batch", {
        "batch_label": "testing batch 1 of 1 (dspike bundled sample)", "labels": labels.tolist(),
        "data": _cifar_rows(images), "filenames": names,
    })  # fmt: skip
    _pickle(folder / "batches.meta", {
        "label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": len(chunk), "num_vis": 3072,
    })  # fmt: skip


def _write_cifar100(out: Path) -> None:
    parts = _cifar_split()
    folder = out / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, (images, labels, names) in parts.items():
        _pickle(folder / split, {
            "batch_label": f"{split} (dspike SUBSTITUTE: CIFAR-10 images)",
            "fine_labels": labels.tolist(), "coarse_labels": labels.tolist(),
            "data": _cifar_rows(images), "filenames": names,
        })  # fmt: skip
    fine = [f"SUBSTITUTE-cifar10-{c}" for c in CIFAR10_CLASSES]
    fine += [f"SUBSTITUTE-unused-{i:02d}" for i in range(10, 100)]
    coarse = fine[:10] + [f"SUBSTITUTE-unused-{i:02d}" for i in range(10, 20)]
    _pickle(folder / "meta", {"fine_label_names": fine, "coarse_label_names": coarse})


def _write_imagenet(out: Path) -> None:
    shutil.copytree(bundled_dir() / "imagenette" / "train", out / "train")
    shutil.copytree(bundled_dir() / "imagenette" / "val", out / "val")


def _write_cifar10dvs(out: Path, *, n_per_class: int = 10) -> None:
    images, labels, index = load_bundled_cifar10()
    folder = out / "CIFAR10DVS"
    for label, name in enumerate(DVS_CLASSES):
        (folder / name).mkdir(parents=True)
        for i in np.flatnonzero(labels == label)[:n_per_class]:
            path = folder / name / f"cifar10_{name}_{index[i]}.aedat4"
            write_aedat4(path, simulate_saccade(images[i]))
    with zipfile.ZipFile(folder / "CIFAR10DVS.zip", "w") as z:
        z.writestr("NOTE.txt", "Marker for tonic.datasets.CIFAR10DVS, which checks that this "
                   "archive exists. The recordings next to it are SIMULATED by dspike "
                   "(dspike.data.simulate_saccade) from CIFAR-10 test images.\n")  # fmt: skip


_WRITERS = {
    "mnist": _write_mnist,
    "cifar10": _write_cifar10,
    "cifar100": _write_cifar100,
    "imagenet": _write_imagenet,
    "cifar10dvs": _write_cifar10dvs,
}


def materialize_bundled(name: str, root: str | Path, **options) -> Path:
    """Write bundled data for ``name`` under ``root`` in its real loader's layout; return ``root``.

    Idempotent (returns at once when a complete copy with the same options, written from the
    same bundled file, is there) and atomic
    (temporary folder + rename, manifest last). Options: ``n_per_class`` (cifar10dvs, default 10
    recordings per class). A folder in the way that is not from an earlier bundle is left alone
    and an error is raised.
    """
    dataset_info(name)  # an unknown name is a ValueError naming the datasets
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest = _manifest_path(root, name)
    previous = bundle_info(root, name)
    source = _source_md5(name)
    if _is_complete(root, previous, options, source):
        return root
    with tempfile.TemporaryDirectory(dir=root, prefix=f".tmp-{name}-") as staging:
        tmp = Path(staging)
        _WRITERS[name](tmp, **options)
        files = {
            str(f.relative_to(tmp)): {"size": f.stat().st_size, "md5": _md5(f)}
            for f in sorted(tmp.rglob("*")) if f.is_file()
        }  # fmt: skip
        ours = set(previous["top"]) if previous else set()
        for top in sorted(tmp.iterdir()):
            dest = root / top.name
            if dest.exists() and top.name not in ours:
                raise FileExistsError(f"{dest} exists and is not bundled data; not overwriting")
        manifest.unlink(missing_ok=True)
        for top in sorted(tmp.iterdir()):
            replace_dir(top, root / top.name)
    info = dict(name=name, options=options, substitute=dataset_info(name).substitute,
                source_md5=source, files=files,
                top=sorted({Path(rel).parts[0] for rel in files}))  # fmt: skip
    atomic_write_text(manifest, json.dumps(info, indent=1))
    return root
