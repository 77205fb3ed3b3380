"""Stage ``fig3``: Dspike's forward and backward curves for several temperatures (Fig. 3)."""

from __future__ import annotations

import argparse

from dspike.studies import fig3

from .cli import out_dir_argument, stage_main
from .params import get


def _run(params: dict, args: argparse.Namespace) -> None:
    fig3.run(args.out, [float(b) for b in get(params, "studies.fig3.temperatures")])
    print(f"wrote {args.out / 'fig3.png'}")


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, out_dir_argument)


if __name__ == "__main__":
    main()
