"""Stage ``energy``: Table 3 (op counts, energy) and Fig. 4 (firing rate per LIF layer), Sec. 5.4.

    python -m pipelines.energy --ann ANN.pt --snn SNN.pt --manifest DATA.json --out DIR

The ANN (``--ann``, trained by ``energy.ann_stage``) and the T=2 SNN (``--snn``, by
``energy.snn_stage``) are evaluated once each over the CIFAR-10 test split with the counters on:
MACs per layer from ``torch.utils.flop_counter``, input spike rates and firing rates from the
same pass. Writes ``DIR/table3_ours.csv`` and Fig. 4 as ``DIR/fig4.csv`` and ``DIR/fig4.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from dspike.data import make_loader
from dspike.energy import count_macs, measure_activity, op_counts
from dspike.engine import distributed
from dspike.engine.factory import build_network
from dspike.io import atomic_write_text
from harness.cli import stage_main
from harness.params import Params, flatten
from harness.tracking import DatasetRecord, experiment_name, log_stage_run, run_tags
from harness.train_config import build_config
from harness.train_data import build_datasets
from paper.energy_report import write_firing_rates


def _trained(params: Params, stage: str, seed: int, weights: Path) -> torch.nn.Module:
    config = build_config(params, stage, seed)
    model = build_network(config)
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()


def _run(params: Params, args: argparse.Namespace) -> None:
    seed, ann_stage, snn_stage = (params.energy.seed, params.energy.ann_stage,
                                  params.energy.snn_stage)  # fmt: skip
    ann_settings = params.stage(ann_stage)
    dataset = ann_settings.dataset
    info = distributed.setup()
    _, test = build_datasets(params, dataset, info)
    loader = make_loader(test, ann_settings.batch_size, train=False, workers=0)
    ann, snn = (
        _trained(params, stage, seed, weights).to(info.device)
        for stage, weights in ((ann_stage, args.ann), (snn_stage, args.snn))
    )
    # Per-step MACs of every layer: the ANN twin has the same layers (same parameter names).
    macs = count_macs(ann, test[0][0].unsqueeze(0).to(info.device))
    rows = []
    for stage, model in ((ann_stage, ann), (snn_stage, snn)):
        activity = measure_activity(model, loader, info.device)
        ops = op_counts(macs, activity.input_rates if model.is_snn else None, model.time_steps)
        if model.is_snn:
            write_firing_rates(activity.firing_rate_frame(), args.out, stem="fig4")
        rows.append(
            {
                "method": f"SNN (ours, T={model.time_steps})" if model.is_snn else "ANN (ours)",
                "model": params.stage(stage).model,
                "time_steps": model.time_steps,
                "acc": 100.0 * (activity.accuracy or 0.0),
                "n_add": ops.n_add,
                "n_mult": ops.n_mult,
                "stage": stage,
            }
        )
    table = pd.DataFrame(rows)
    atomic_write_text(args.out / "table3_ours.csv", table.to_csv(index=False))
    print(table.to_string(index=False))
    metrics = {
        f"{kind}.{key}": float(row[key])
        for kind, row in zip(("ann", "snn"), rows, strict=True)
        for key in ("acc", "n_add", "n_mult")
    }
    log_stage_run(
        experiment_name(dataset), f"energy/seed{seed}",
        run_tags(params, __file__, stage="energy", seed=seed, dataset=dataset,
                 chain=f"{dataset}/seed{seed}"),
        params=flatten(params.energy, "energy"), metrics=metrics,
        artifacts={"": args.out}, inputs=[DatasetRecord.from_manifest(args.manifest, "test")],
    )  # fmt: skip


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ann", type=Path, required=True, help="input: the ANN's weights")
    parser.add_argument("--snn", type=Path, required=True, help="input: the SNN's weights")
    parser.add_argument("--manifest", type=Path, required=True, help="input: the data manifest")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, _arguments)


if __name__ == "__main__":
    main()
