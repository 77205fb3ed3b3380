"""Stage ``train``: one training run of the paper (Sec. 4.4, 5.2, 5.3) for a stage and a seed.

    python -m pipelines.train STAGE --seed S [--epsilon E] [--init IN.pt [--init-metrics M.json]]
        --manifest DATA.json --model OUT.pt --metrics OUT.json --plots OUT.csv [--params FILE]
    torchrun --nproc_per_node N -m pipelines.train ...   (the same arguments)

reads ``stages.STAGE`` over the ``train`` defaults, plus ``neuron``, ``tdbn``, ``dspike``, ``fdg``,
``data`` and ``models.<model>``. ``--init`` is the state_dict this run
starts from (the ANN for the first SNN; the T=6 SNN for TIT's T=4, Sec. 4.4), and
``--init-metrics`` its metrics, whose final Dspike temperature b starts this round when
``dspike.inherit_temperature`` is true (TIT rounds; otherwise b starts at ``dspike.b0``).
``--epsilon`` overrides ``fdg.epsilon`` (Table 5) and names the variant ``STAGE_eps<E>``. dvc.yaml
names every file; the stage writes, each atomically:

* ``--model``: the state_dict of the epoch the metrics report (``train.select``: the final
  epoch, or the best test epoch);
* ``--metrics``: final and best test accuracy (%), which one tables use, temperature, time,
  params hash, MLflow run id;
* ``--plots``: one row per epoch (:data:`dspike.engine.PLOT_COLUMNS`);
* ``<train.checkpoint_dir>/<variant>/seed<S>-<key>/last.pt`` while it runs: the same command
  resumes it; it is deleted once the outputs are written. SIGTERM or SIGINT (Ctrl-C) checkpoints
  mid-epoch and exits 143 or 130 with one line; a folder whose run's outputs DVC restored from
  its run cache meanwhile is removed when the next training run completes. If params this run
  read changed in params.yaml while it trained, it writes no outputs and keeps the checkpoint
  (one ``error:`` line naming the keys, exit status 1): with the values put back, the same
  command writes the outputs from it without training again.

The MLflow run (:mod:`harness.tracking`) gets the config as params, every epoch's metrics, the
dataset (``--manifest``) as its inputs, and as artifacts the plots CSV, the metrics JSON, a
figure of the curves (``curves.png``) and, unless ``tracking.log_weights`` is false, the weights
(``weights/``).

ImageNet stages with ``data.imagenet.root: ""`` write outputs marked skipped and exit 0.

This module is the entry point only; its parts live in modules named for them:
:mod:`harness.train_config` (params -> TrainConfig, and the words stage / variant / run /
network), :mod:`harness.train_data` (input shape, datasets), :mod:`harness.train_outputs`
(outputs, checkpoint folder) and :mod:`harness.train_tracking` (the MLflow run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
from pathlib import Path

from dspike.engine import (
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
from dspike.io import check_writable
from harness.cli import fail, stage_main
from harness.params import Params, ParamsError, check_stage_name, check_unchanged
from harness.tracking import MLflowTracker
from harness.train_config import config_and_keys, named_by, run_hash, variant_name
from harness.train_data import build_datasets
from harness.train_outputs import (
    check_in_workspace,
    checkpoint_folder,
    code_digest,
    output_paths,
    remove_orphaned_checkpoints,
    write_outputs,
    write_skipped,
)
from harness.train_tracking import log_outputs, open_tracker

__all__ = ["main"]

log = logging.getLogger("pipelines.train")


def _inherited_b(params: Params, args: argparse.Namespace) -> float | None:
    """The previous TIT round's final b (``--init-metrics``), if ``dspike.inherit_temperature``."""
    if args.init_metrics is None or not params.dspike.inherit_temperature:
        return None
    previous = json.loads(args.init_metrics.read_text())
    return previous.get("temperature")  # None after an ANN: b starts at dspike.b0


def _train(params: Params, args: argparse.Namespace) -> None:
    """One run: the variant of ``args.stage`` at ``args.seed``, from config to outputs."""
    stage, seed, epsilon = args.stage, args.seed, args.epsilon
    variant = variant_name(stage, epsilon)
    try:
        check_stage_name(variant, "variant")
    except ParamsError as err:
        raise ParamsError(f"{stage} / --epsilon: {err}") from None
    check_in_workspace(args)
    paths = output_paths(args)
    dataset = params.stage(stage).dataset
    info = distributed.setup()
    logging.basicConfig(
        level=logging.INFO if info.is_main else logging.WARNING,
        format="%(message)s",
        stream=sys.stdout,
    )
    if dataset == "imagenet" and not params.data.imagenet.root:
        if info.is_main:
            write_skipped(paths, "data.imagenet.root is empty: no ImageNet on this machine")
        log.info("%s: skipped (data.imagenet.root is empty)", variant)
        return
    if epsilon is not None and float(epsilon) == params.fdg.epsilon:
        raise ParamsError(
            f"ablation.epsilons: {epsilon} is fdg.epsilon, so this run would repeat {stage}; "
            "Table 5 takes that row from the main runs: remove it from ablation.epsilons"
        )
    config, keys = config_and_keys(
        params, stage, seed, epsilon, init=args.init or "", temperature=_inherited_b(params, args)
    )
    with named_by(keys):
        model = build_network(config)
        train_set, test_set = build_datasets(params, dataset, info, stage)
    digest = run_hash(params, config, stage)
    if info.is_main:
        check_writable(paths)  # before training, not after it
    checkpoints = Path(params.train.checkpoint_dir) / variant
    code = code_digest()
    checkpoint_dir = checkpoint_folder(
        checkpoints, seed, digest, code, info.is_main, metrics=paths["metrics"]
    )
    config.run.checkpoint = str(checkpoint_dir / "last.pt")
    with RunLock(checkpoint_dir) if info.is_main else contextlib.nullcontext():
        tracker = None
        if info.is_main:
            tracker = open_tracker(params, dataset, variant, seed, stage, digest, args.manifest)
        with named_by(keys):
            result = fit(config, model, train_set, test_set, tracker=tracker)
        if info.is_main:
            _finish(params, args, paths, result, config, (digest, code), tracker, checkpoint_dir)


def _finish(
    params: Params, args: argparse.Namespace, paths: dict[str, Path], result: FitResult,
    config: TrainConfig, keys: tuple[str, str], tracker: MLflowTracker | None,
    checkpoint_dir: Path,
) -> None:  # fmt: skip
    """Rank 0 after training: the outputs as one set, then the MLflow artifacts; checkpoint
    folders of runs whose outputs are in place (this one's, and orphans) are removed."""
    digest, code = keys
    check_unchanged(params, f"; no output is written and its checkpoint {checkpoint_dir} is kept")
    stage, seed, variant = args.stage, args.seed, variant_name(args.stage, args.epsilon)
    if tracker is not None:  # a run created late, after an outage at the start
        result.run_id = tracker.run_id
    meta = {
        "stage": stage,
        "run": variant,  # the key tables read: the variant these metrics belong to
        "seed": seed,
        "dataset": params.stage(stage).dataset,
        "data_source": params.data.source,
        "params_hash": digest,
        "code_digest": code,
    }
    write_outputs(paths, result, config, meta)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    remove_orphaned_checkpoints(Path(params.train.checkpoint_dir))
    if tracker is not None:
        log_outputs(params, tracker, result, paths, f"{variant} seed {seed}")
    log.info(
        "%s seed %d: final %.2f%%, best %.2f%% (epoch %d)",
        variant, seed, result.final_acc, result.best_acc, result.best_epoch,
    )  # fmt: skip


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", help="a key of stages: in params.yaml")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument(
        "--epsilon", help="override fdg.epsilon (Table 5): the variant STAGE_eps<E>"
    )
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
        stage_main(_train, __doc__.splitlines()[0], argv, _arguments)
    except TrainingInterrupted as err:  # SIGTERM 143, SIGINT (Ctrl-C) 130, as shells count
        print(f"stopped: {err}; run the same command to resume", file=sys.stderr)
        raise SystemExit(128 + err.signum) from None
    except CheckpointError as err:
        fail(err)
    except NonFiniteLossError as err:
        fail(err, status=1)
    finally:
        distributed.teardown()


if __name__ == "__main__":
    main()
