"""Stage ``fig3``: Dspike's forward and backward curves for several temperatures (Fig. 3)."""

from __future__ import annotations

import argparse

from dspike.studies import fig3

from .cli import stage_main
from .params import get
from .studies import OUT


def _run(params: dict, args: argparse.Namespace) -> None:
    fig3.run(OUT, [float(b) for b in get(params, "studies.fig3.temperatures")])
    print(f"wrote {OUT / 'fig3.png'}")


def main(argv=None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
