"""Stage ``prepare_dvs``: CIFAR10-DVS events -> T frames resized to 48x48, cached once (Sec. 5.2).

With ``data.source: bundled`` the recordings are SIMULATED from bundled CIFAR-10 images
(``dspike.data.simulate_saccade``) and read back through tonic's real loader; every table
that shows a result of them says so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dspike.data import SUBSTITUTES, materialize_bundled, prepare_dvs_frames

from .cli import stage_main
from .params import get

FRAME_OPTIONS = ("time_steps", "size", "interpolation", "slicing", "split")


def _run(params: dict, args: argparse.Namespace) -> None:
    root = Path(get(params, "data.root"))
    dvs = get(params, "data.dvs")
    if get(params, "data.source") == "bundled":
        materialize_bundled("cifar10dvs", root, n_per_class=int(dvs.get("simulated_per_class", 10)))
    elif not (root / "CIFAR10DVS").is_dir() and get(params, "data.download"):
        from dspike.data import open_cifar10dvs

        open_cifar10dvs(root, download=True)
    out = Path(get(params, "data.prepared")) / "cifar10dvs"
    prepare_dvs_frames(root, out, **{k: dvs[k] for k in FRAME_OPTIONS if k in dvs})
    if get(params, "data.source") == "bundled":
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["substitute"] = SUBSTITUTES["cifar10dvs"]
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"frames cached in {out}")


def main(argv=None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
