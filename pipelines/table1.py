"""Stage ``table1``: the toy SNN trained with the rectangular SG and with the FDG (Table 1)."""

from __future__ import annotations

import argparse

from harness.cli import stage_main
from harness.params import Params
from harness.study import log_study, mnist_splits, study_arguments, toy_settings
from paper import table1


def _run(params: Params, args: argparse.Namespace) -> None:
    train, test = mnist_splits(params)
    cfg = params.studies.table1
    table = table1.run(
        train, test, args.out, epochs=cfg.epochs, epsilons=list(cfg.epsilons),
        seeds=list(cfg.seeds), toy=toy_settings(params),
    )  # fmt: skip
    print(table.to_string(index=False))
    log_study(params, "table1", args)


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, study_arguments)


if __name__ == "__main__":
    main()
