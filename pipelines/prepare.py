"""Stage ``prepare``: check (or write, at smoke scale) a dataset and record a small manifest.

    python -m pipelines.prepare NAME --out data/manifests/NAME.json

The manifest (``--out``; dvc.yaml names it) is what later stages depend on, never the raw
folder: DVC then hashes a few hundred bytes, not ImageNet. With ``data.source: bundled`` the
small real samples shipped in ``data/bundled/`` are written in the real loaders' on-disk format
first. ImageNet with ``data.imagenet.root: ""`` records ``skipped`` so ``dvc repro`` works
without it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dspike.data import DATASETS, build_dataset, materialize_bundled
from dspike.io import atomic_write_text
from harness.cli import stage_main
from harness.params import Params


def dataset_root(params: Params, name: str) -> Path:
    """Where ``name`` lives: ``data.imagenet.root`` for ImageNet, ``data.root`` otherwise."""
    return Path(params.data.imagenet.root if name == "imagenet" else params.data.root)


def prepare(params: Params, name: str, out: Path) -> dict:
    """Make sure ``name`` is readable by its real loader; write its manifest to ``out``."""
    source = params.data.source  # "bundled" or "download", checked when params.yaml loads
    if name == "imagenet" and not params.data.imagenet.root:
        manifest = {
            "name": name,
            "skipped": True,
            "reason": "data.imagenet.root is empty: ImageNet stages are skipped",
        }
    else:
        root = dataset_root(params, name)
        if source == "bundled":
            materialize_bundled(name, root)
        download = params.data.download and source == "download"
        sizes = {
            split: len(
                build_dataset(name, root, train=split == "train", download=download, augment=False)
            )
            for split in ("train", "test")
        }
        manifest = {
            "name": name,
            "skipped": False,
            "root": str(root),
            "source": source,
            "substitute": DATASETS[name].substitute if source == "bundled" else None,
            "samples": sizes,
        }
    atomic_write_text(out, json.dumps(manifest, indent=1) + "\n")
    return manifest


def _run(params: Params, args: argparse.Namespace) -> None:
    print(json.dumps(prepare(params, args.dataset, args.out)))


def _arguments(parser: argparse.ArgumentParser) -> None:
    # Event datasets are prepared by pipelines.prepare_dvs (frames cached as a DVC output).
    images = [name for name, info in DATASETS.items() if not info.time_axis]
    parser.add_argument("dataset", choices=images)
    parser.add_argument("--out", type=Path, required=True, help="output: the manifest (.json)")


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, _arguments)


if __name__ == "__main__":
    main()
