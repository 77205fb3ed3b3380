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
import contextlib
import csv
import io
import json
import logging
import os
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
    RunLock,
    TrainConfig,
    TrainingInterrupted,
    build_network,
    distributed,
    fit,
)
from dspike.io import atomic_outputs, check_writable, pyplot, save_figure, save_tensors

from .cli import fail, stage_main
from .params import ParamsError, get
from .schema import check_stage_name
from .tracking import RETRY_S, DatasetRecord, MLflowTracker, experiment_name, run_tags
from .training import (
    build_config,
    build_datasets,
    checkpoint_folder,
    code_digest,
    named_by_params,
    run_hash,
    stage_settings,
)

__all__ = ["main", "run_name"]

log = logging.getLogger("pipelines.train")


def run_name(stage: str, epsilon: str | None = None) -> str:
    """``STAGE`` or, for a Table 5 run at another FDG eps, ``STAGE_eps<E>``."""
    return stage if epsilon is None else f"{stage}_eps{epsilon}"


# --- outputs -----------------------------------------------------------------------------------


def _paths(args: argparse.Namespace) -> dict[str, Path]:
    return {"model": args.model, "metrics": args.metrics, "plots": args.plots}


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, PLOT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


def _commit(
    paths: dict[str, Path], state: dict[str, torch.Tensor], metrics: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Write model, metrics and plots as one set (:func:`dspike.io.atomic_outputs`)."""
    with atomic_outputs(paths) as tmp:
        save_tensors({k: v.detach().cpu() for k, v in state.items()}, tmp["model"])
        tmp["metrics"].write_text(json.dumps(metrics, indent=2) + "\n")
        tmp["plots"].write_text(_csv_text(rows))


def _selected(result: FitResult, select: str, column: str) -> Any:
    """``column`` of the epoch ``select`` ships: the last, or the best test epoch."""
    epoch = result.best_epoch if select == "best" else len(result.history)
    return result.history[epoch - 1][column]


def write_skipped(paths: dict[str, Path], reason: str) -> None:
    """Outputs of a stage that cannot run here, so ``dvc repro`` goes on."""
    _commit(paths, {}, {"skipped": True, "reason": reason}, [])


def write_outputs(
    paths: dict[str, Path], result: FitResult, config: TrainConfig, meta: dict[str, Any]
) -> None:
    select = config.run.select
    metrics = {
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
    }
    _commit(paths, result.selected_state(select), metrics, result.history)


def _check_paths(args: argparse.Namespace) -> None:
    """Every file named on the command line lies inside the working directory (the DVC
    workspace): a ``../`` path must not read or write elsewhere."""
    cwd = Path.cwd()
    for flag in ("init", "init_metrics", "manifest", "model", "metrics", "plots"):
        path = getattr(args, flag)  # lexically: DVC may link outputs to a cache elsewhere
        if path is not None and not Path(os.path.abspath(path)).is_relative_to(cwd):
            raise ValueError(f"--{flag.replace('_', '-')} {path}: outside the workspace {cwd}")


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
                         description=description, background=True,
                         retry_s=float(get(params, "tracking.retry_s", RETRY_S)))  # fmt: skip


def _run(params: dict, args: argparse.Namespace) -> None:
    stage, seed, epsilon = args.stage, args.seed, args.epsilon
    run = run_name(stage, epsilon)
    try:
        check_stage_name(run, "run")
    except ValueError as err:
        raise ValueError(f"{stage} / --epsilon: {err}") from None
    _check_paths(args)
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
    with named_by_params(params, stage, epsilon):
        model = build_network(config)
        train_set, test_set = build_datasets(params, dataset, info)
    digest = run_hash(params, config, dataset)
    if info.is_main:
        check_writable(paths)  # before training, not after it
    checkpoints = Path(get(params, "train.checkpoint_dir")) / run
    checkpoint_dir = checkpoint_folder(checkpoints, seed, digest, code_digest(), info.is_main)
    config.run.checkpoint = str(checkpoint_dir / "last.pt")
    with RunLock(checkpoint_dir) if info.is_main else contextlib.nullcontext():
        tracker = None
        if info.is_main:
            tracker = _tracker(params, dataset, run, seed, stage, digest, args.manifest)
        with named_by_params(params, stage, epsilon):
            result = fit(config, model, train_set, test_set, tracker=tracker)
        if info.is_main:
            _finish(params, args, paths, result, config, digest, tracker, checkpoint_dir)


def _finish(
    params: dict, args: argparse.Namespace, paths: dict[str, Path], result: FitResult,
    config: TrainConfig, digest: str, tracker: MLflowTracker | None, checkpoint_dir: Path,
) -> None:  # fmt: skip
    """Rank 0 after training: the outputs as one set, then the MLflow artifacts."""
    stage, seed, run = args.stage, args.seed, run_name(args.stage, args.epsilon)
    if tracker is not None:  # a run created late, after an outage at the start
        result.run_id = tracker.run_id
    meta = {
        "stage": stage,
        "run": run,
        "seed": seed,
        "dataset": stage_settings(params, stage).get("dataset"),
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
        run, seed, result.final_acc, result.best_acc, result.best_epoch,
    )  # fmt: skip


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
    except CheckpointError as err:
        fail(err)
    except NonFiniteLossError as err:
        fail(err, status=1)
    finally:
        distributed.teardown()


if __name__ == "__main__":
    main()
