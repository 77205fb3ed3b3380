"""Stage ``fig3``: Dspike's forward and backward curves for several temperatures (Fig. 3)."""

from __future__ import annotations

import argparse

from harness.cli import out_dir_argument, stage_main
from harness.params import Params, flatten
from harness.tracking import STUDIES, experiment_name, log_stage_run, run_tags
from paper import fig3


def _run(params: Params, args: argparse.Namespace) -> None:
    v_th = params.spec.v_threshold
    fig3.run(args.out, list(params.studies.fig3.temperatures), v_threshold=v_th)
    print(f"wrote {args.out / 'fig3.png'}")
    log_stage_run(
        experiment_name("studies"), "fig3", run_tags(params, __file__, stage="fig3"),
        params={**flatten(params.studies.fig3, "studies.fig3"),
                "neuron.v_threshold": v_th},
        artifacts={"": args.out}, description=STUDIES,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, out_dir_argument)


if __name__ == "__main__":
    main()
