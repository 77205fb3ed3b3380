"""Stage ``table1``: the toy SNN trained with the rectangular SG and with the FDG (Table 1)."""

from __future__ import annotations

import argparse

from dspike.studies import table1

from .cli import stage_main
from .params import flatten, get
from .studies import mnist_splits, study_arguments, toy_settings
from .tracking import STUDIES, DatasetRecord, experiment_name, log_stage_run, run_tags


def _run(params: dict, args: argparse.Namespace) -> None:
    train, test = mnist_splits(params)
    cfg = get(params, "studies.table1")
    table = table1.run(
        train, test, args.out, epochs=int(cfg["epochs"]),
        epsilons=[float(e) for e in cfg["epsilons"]], **toy_settings(params),
    )  # fmt: skip
    print(table.to_string(index=False))
    log_stage_run(
        experiment_name("studies"), "table1", run_tags(params, __file__, stage="table1"),
        params={**flatten(get(params, "studies.toy"), "studies.toy"),
                **flatten(cfg, "studies.table1")},
        artifacts={"": args.out}, inputs=[DatasetRecord.from_manifest(args.manifest, "train")],
        description=STUDIES,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, study_arguments)


if __name__ == "__main__":
    main()
