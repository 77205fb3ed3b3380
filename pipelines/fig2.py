"""Stage ``fig2``: cosine similarity of the gradient used for the update vs the FDG (Fig. 2)."""

from __future__ import annotations

import argparse

from dspike.studies import fig2

from .cli import stage_main
from .params import flatten, get
from .studies import mnist_splits, study_arguments, toy_settings
from .tracking import STUDIES, DatasetRecord, experiment_name, log_stage_run, run_tags


def _run(params: dict, args: argparse.Namespace) -> None:
    train, _ = mnist_splits(params)
    cfg = get(params, "studies.fig2")
    curves = fig2.run(
        train, args.out, epochs=int(cfg["epochs"]), iterations=int(cfg["iterations"]),
        epsilons=[float(e) for e in cfg["epsilons"]], **toy_settings(params),
    )  # fmt: skip
    print(curves.to_string(index=False))
    log_stage_run(
        experiment_name("studies"), "fig2", run_tags(params, __file__, stage="fig2"),
        params={**flatten(get(params, "studies.toy"), "studies.toy"),
                **flatten(cfg, "studies.fig2")},
        artifacts={"": args.out}, inputs=[DatasetRecord.from_manifest(args.manifest, "train")],
        description=STUDIES,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, study_arguments)


if __name__ == "__main__":
    main()
