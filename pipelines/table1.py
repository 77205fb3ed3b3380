"""Stage ``table1``: the toy SNN trained with the rectangular SG and with the FDG (Table 1)."""

from __future__ import annotations

import argparse

from dspike.studies import table1

from .cli import out_dir_argument, stage_main
from .params import get
from .studies import mnist_splits, toy_settings


def _run(params: dict, args: argparse.Namespace) -> None:
    train, test = mnist_splits(params)
    cfg = get(params, "studies.table1")
    table = table1.run(
        train, test, args.out, epochs=int(cfg["epochs"]),
        epsilons=[float(e) for e in cfg["epsilons"]], **toy_settings(params),
    )  # fmt: skip
    print(table.to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, out_dir_argument)


if __name__ == "__main__":
    main()
