"""Stage ``prepare_dvs``: CIFAR10-DVS events -> T frames resized to 48x48, cached once (Sec. 5.2).

    python -m pipelines.prepare_dvs --out FRAMES_DIR --manifest data/manifests/cifar10dvs.json

With ``data.source: bundled`` the recordings are SIMULATED from bundled CIFAR-10 images
(``dspike.data.simulate_saccade``) and read back through tonic's real loader; the manifest says
so, and so does every table that shows a result of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from dspike.data import (
    DATASETS,
    frame_options,
    materialize_bundled,
    open_cifar10dvs,
    prepare_dvs_frames,
)
from dspike.io import atomic_write_text
from harness.cli import stage_main
from harness.params import Params


def _run(params: Params, args: argparse.Namespace) -> None:
    root, dvs, source = Path(params.data.root), params.data.dvs, params.data.source
    if source == "bundled":
        materialize_bundled("cifar10dvs", root, n_per_class=dvs.simulated_per_class)
    elif not (root / "CIFAR10DVS").is_dir() and params.data.download:
        open_cifar10dvs(root, download=True)
    prepare_dvs_frames(
        root, args.out, workers=dvs.prepare_workers, **frame_options(dataclasses.asdict(dvs))
    )
    frames = json.loads((args.out / "manifest.json").read_text())
    manifest = {
        "name": "cifar10dvs",
        "skipped": False,
        "root": str(args.out),
        "source": source,
        "substitute": DATASETS["cifar10dvs"].substitute if source == "bundled" else None,
        "samples": {split: frames[split]["count"] for split in ("train", "test")},
    }
    atomic_write_text(args.manifest, json.dumps(manifest, indent=1) + "\n")
    print(f"frames cached in {args.out}")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output: the frame cache (dir)")
    parser.add_argument("--manifest", type=Path, required=True, help="output: manifest (.json)")


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, _arguments)


if __name__ == "__main__":
    main()
