"""Stage ``surrogates``: every framework's surrogate gradient against the FDG (beyond the paper)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from dspike.data import random_subset
from harness.cli import fail, stage_main
from harness.params import Params
from harness.study import log_study, mnist_splits, study_arguments, toy_settings
from paper import surrogates


def _run(params: Params, args: argparse.Namespace) -> None:
    cfg = params.studies.surrogates
    choices = [surrogates.SurrogateChoice(**asdict(c)) for c in cfg.list]
    train, test = mnist_splits(params)
    try:
        table = surrogates.run(
            train, random_subset(test, cfg.test_size), args.out, choices, epochs=cfg.epochs,
            iterations=cfg.iterations, epsilons=list(cfg.epsilons), seeds=list(cfg.seeds),
            finite_limit=cfg.finite_limit, delta=params.dspike.delta_b,
            adapt_eps=params.fdg.epsilon, toy=toy_settings(params),
        )  # fmt: skip
    except surrogates.FrameworkMissing as err:  # raised before any training: name the extra
        fail(err)
    print(table.to_string(index=False))
    print(table.attrs["note"])
    log_study(params, "surrogates", args)


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, study_arguments)


if __name__ == "__main__":
    main()
