"""Stage ``fig2``: cosine similarity of the gradient used for the update vs the FDG (Fig. 2)."""

from __future__ import annotations

import argparse

from harness.cli import stage_main
from harness.params import Params
from harness.study import log_study, mnist_splits, study_arguments, toy_settings
from paper import fig2


def _run(params: Params, args: argparse.Namespace) -> None:
    train, _ = mnist_splits(params)
    cfg = params.studies.fig2
    curves = fig2.run(
        train, args.out, epochs=cfg.epochs, iterations=cfg.iterations,
        epsilons=list(cfg.epsilons), toy=toy_settings(params),
    )  # fmt: skip
    print(curves.to_string(index=False))
    log_study(params, "fig2", args)


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, study_arguments)


if __name__ == "__main__":
    main()
