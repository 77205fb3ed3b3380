"""Stage ``train``: one training run of the paper (Sec. 4.4, 5.2, 5.3) for a stage and a seed.

    python -m pipelines.train STAGE --seed S [--epsilon E] [--init IN.pt [--init-metrics M.json]]
        --manifest DATA.json --model OUT.pt --metrics OUT.json --plots OUT.csv [--params FILE]
    torchrun --nproc_per_node N -m pipelines.train ...   (the same arguments)

reads ``stages.STAGE`` over the ``train`` defaults, plus ``neuron``, ``tdbn``, ``dspike``, ``fdg``,
``data`` and ``models.<model>`` (:mod:`pipelines.training`). ``--init`` is the state_dict this run
starts from (the ANN for the first SNN; the T=6 SNN for TIT's T=4, Sec. 4.4), and
``--init-metrics`` its metrics, whose final Dspike temperature b starts this round when
``dspike.inherit_temperature`` is true (TIT rounds; otherwise b starts at ``dspike.b0``).
``--epsilon`` overrides ``fdg.epsilon`` (Table 5) and names the run ``STAGE_eps<E>``. dvc.yaml
names every file; the stage writes, each atomically:

* ``--model``: the state_dict of the epoch the metrics report (``train.select``: the final
  epoch, or the best test epoch);
* ``--metrics``: final and best test accuracy (%), which one tables use, temperature, time,
  params hash, MLflow run id;
* ``--plots``: one row per epoch (:data:`dspike.engine.PLOT_COLUMNS`);
* ``<train.checkpoint_dir>/R/seed<S>-<hash>/last.pt`` while it runs (R: the run name): the same
  command resumes it; it is deleted once the outputs are written.

The MLflow run (:mod:`pipelines.tracking`) gets the config as params, every epoch's metrics, the
dataset (``--manifest``) as its inputs, and as artifacts the plots CSV, the metrics JSON, a
figure of the curves (``curves.png``) and, unless ``tracking.log_weights`` is false, the weights
(``weights/``).

ImageNet stages with ``data.imagenet.root: ""`` write outputs marked skipped and exit 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from dspike.engine import (
    PLOT_COLUMNS,
    CheckpointError,
    FitResult,
    NonFiniteLossError,
    TrainConfig,
    TrainingInterrupted,
    build_network,
    distributed,
    fit,
)
from dspike.io import atomic_path, atomic_write_text, pyplot, save_figure

from .cli import stage_main
from .params import ParamsError, get
from .tracking import DatasetRecord, MLflowTracker, experiment_name, run_tags
from .training import build_config, build_datasets, named_by_params, run_hash, stage_settings

__all__ = ["main", "run_name"]

log = logging.getLogger("pipelines.train")

def run_name(stage: str, epsilon: str | None = None) -> str:
    """``STAGE`` or, for a Table 5 run at another FDG eps, ``STAGE_eps<E>``."""
    return stage if epsilon is None else f"{stage}_eps{epsilon}"


# --- outputs -----------------------------------------------------------------------------------


def _paths(args: argparse.Namespace) -> dict[str, Path]:
    return {"model": args.model, "metrics": args.metrics, "plots": args.plots}


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, PLOT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    atomic_write_text(path, buf.getvalue())


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def _save_model(path: Path, state: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp)


def _selected(result: FitResult, select: str, column: str) -> Any:
    """``column`` of the epoch ``select`` ships: the last, or the best test epoch."""
    epoch = result.best_epoch if select == "best" else len(result.history)
    return result.history[epoch - 1][column]


def write_skipped(paths: dict[str, Path], reason: str) -> None:
    """Outputs of a stage that cannot run here, so ``dvc repro`` goes on."""
    _save_model(paths["model"], {})
    _write_json(paths["metrics"], {"skipped": True, "reason": reason})
    _write_csv(paths["plots"], [])


def write_outputs(
    paths: dict[str, Path], result: FitResult, config: TrainConfig, meta: dict[str, Any]
) -> None:
    select = config.run.select
    _save_model(paths["model"], result.selected_state(select))
    _write_csv(paths["plots"], result.history)
    _write_json(
        paths["metrics"],
        {
            **meta,
            "acc": result.final_acc if select == "final" else result.best_acc,
            "select": select,
            "final_acc": result.final_acc,
            "best_acc": result.best_acc,
            "best_epoch": result.best_epoch,
            "epochs": config.run.epochs,
            "time_steps": config.model.time_steps,
            "b0": config.surrogate.temperature if config.model.mode == "snn" else None,
            "temperature": _selected(result, select, "temperature"),
            "seconds": round(result.seconds, 3),
            "mlflow_run_id": result.run_id,
        },
    )


# --- the stage ---------------------------------------------------------------------------------


def plot_curves(history: list[dict[str, Any]], path: Path, title: str) -> None:
    """Loss, accuracy, Dspike temperature and firing rate per epoch, one panel each."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    panels = (
        ("loss", ("train_loss",)),
        ("accuracy (%)", ("train_acc", "test_acc")),
        ("temperature b", ("temperature",)),
        ("firing rate", ("firing_rate",)),
    )
    fig, axes = plt.subplots(1, 4, figsize=(13, 3))
    for ax, (label, keys) in zip(axes, panels, strict=True):
        for key in keys:
            values = [row.get(key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [float("nan") if v is None else v for v in values], "o-", ms=3,
                        label=key)  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(keys) > 1:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def _inherited_b(params: dict, args: argparse.Namespace) -> float | None:
    """The previous TIT round's final b (``--init-metrics``), if ``dspike.inherit_temperature``."""
    if args.init_metrics is None or not get(params, "dspike.inherit_temperature"):
        return None
    previous = json.loads(args.init_metrics.read_text())
    return previous.get("temperature")  # None after an ANN: b starts at dspike.b0


def _tracker(
    params: dict, dataset: str, run: str, seed: int, stage: str, digest: str, manifest: Path
) -> MLflowTracker:
    tags = run_tags(
        params, __file__, params_hash=digest, stage=stage, seed=seed, dataset=dataset,
        chain=f"{dataset}/seed{seed}",
    )  # fmt: skip
    description = (
        f"Dspike training runs on {dataset} ({tags['scale']} scale): one run per DVC stage and "
        "seed. tags.chain groups a seed's ANN -> T=6 -> TIT T=4 -> T=2 chain."
    )
    inputs = [DatasetRecord.from_manifest(manifest, split) for split in ("train", "test")]
    return MLflowTracker(experiment_name(dataset), f"{run}/seed{seed}", tags, inputs=inputs,
                         description=description)  # fmt: skip


def _run(params: dict, args: argparse.Namespace) -> None:
    stage, seed, epsilon = args.stage, args.seed, args.epsilon
    run = run_name(stage, epsilon)
    paths = _paths(args)
    settings = stage_settings(params, stage)
    dataset = settings.get("dataset")
    info = distributed.setup()
    logging.basicConfig(
        level=logging.INFO if info.is_main else logging.WARNING,
        format="%(message)s",
        stream=sys.stdout,
    )
    if dataset == "imagenet" and not get(params, "data.imagenet.root"):
        if info.is_main:
            write_skipped(paths, "data.imagenet.root is empty: no ImageNet on this machine")
        log.info("%s: skipped (data.imagenet.root is empty)", run)
        return
    if epsilon is not None and float(epsilon) == float(get(params, "fdg.epsilon")):
        raise ParamsError(
            f"ablation.epsilons: {epsilon} is fdg.epsilon, so this run would repeat {stage}; "
            "Table 5 takes that row from the main runs: remove it from ablation.epsilons"
        )
    config = build_config(
        params, stage, seed, epsilon, init=args.init or "", temperature=_inherited_b(params, args)
    )
    digest = run_hash(params, config, dataset)
    checkpoint_dir = Path(get(params, "train.checkpoint_dir")) / run / f"seed{seed}-{digest}"
    config.run.checkpoint = str(checkpoint_dir / "last.pt")
    with named_by_params(params, stage, epsilon):
        model = build_network(config)
        train_set, test_set = build_datasets(params, dataset, info)
        tracker = None
        if info.is_main:
            tracker = _tracker(params, dataset, run, seed, stage, digest, args.manifest)
        result = fit(config, model, train_set, test_set, tracker=tracker)
    if info.is_main:
        meta = {
            "stage": stage,
            "run": run,
            "seed": seed,
            "dataset": dataset,
            "data_source": get(params, "data.source"),
            "params_hash": digest,
        }
        write_outputs(paths, result, config, meta)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if tracker is not None:
            with tempfile.TemporaryDirectory() as tmp:
                curves = Path(tmp) / "curves.png"
                plot_curves(result.history, curves, f"{run} seed {seed}")
                tracker.log_artifacts({"": curves})
                tracker.log_artifacts({"": paths["plots"], "metrics": paths["metrics"]})
                if get(params, "tracking.log_weights", True):
                    tracker.log_artifacts({"weights": paths["model"]})
        log.info(
            "%s seed %d: final %.2f%%, best %.2f%% (epoch %d)",
            run,
            seed,
            result.final_acc,
            result.best_acc,
            result.best_epoch,
        )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", help="a key of stages: in params.yaml")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epsilon", help="override fdg.epsilon (Table 5); run STAGE_eps<E>")
    parser.add_argument("--init", type=Path, help="state_dict to start from (ANN or higher-T SNN)")
    parser.add_argument("--manifest", type=Path, required=True, help="input: the data manifest")
    parser.add_argument(
        "--init-metrics", type=Path, help="input: --init's metrics (its b, for TIT rounds)"
    )
    parser.add_argument("--model", type=Path, required=True, help="output: the weights (.pt)")
    parser.add_argument("--metrics", type=Path, required=True, help="output: metrics (.json)")
    parser.add_argument("--plots", type=Path, required=True, help="output: per-epoch rows (.csv)")


def main(argv: list[str] | None = None) -> None:
    try:
        stage_main(_run, __doc__.splitlines()[0], argv, _arguments)
    except TrainingInterrupted as err:
        print(f"stopped: {err}; run the same command to resume", file=sys.stderr)
        raise SystemExit(143) from None
    except (NonFiniteLossError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        distributed.teardown()


if __name__ == "__main__":
    main()
