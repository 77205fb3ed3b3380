"""A training run's MLflow set-up (:mod:`harness.tracking`): the tracker it opens, and what
it logs when it ends besides every epoch's metrics: the curves figure, the plots CSV, the
metrics JSON and, unless ``tracking.log_weights`` is false, the weights."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from dspike.engine import FitResult
from dspike.io import pyplot, save_figure

from .params import Params
from .tracking import DatasetRecord, MLflowTracker, experiment_name, run_tags

__all__ = ["log_outputs", "open_tracker", "plot_curves"]


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


def open_tracker(
    params: Params, dataset: str, variant: str, seed: int, stage: str, digest: str, manifest: Path
) -> MLflowTracker:
    """The MLflow run ``VARIANT/seed<S>`` in the dataset's experiment (its source: the stage
    module :mod:`pipelines.train`); its inputs are the data manifest's splits. The training loop
    starts it, in the background: MLflow is imported and the run opened while the first steps
    run."""
    tags = run_tags(
        params, "pipelines/train.py", params_hash=digest, stage=stage, seed=seed, dataset=dataset,
        chain=f"{dataset}/seed{seed}",
    )  # fmt: skip
    description = (
        f"Dspike training runs on {dataset} ({tags['scale']} scale): one run per DVC stage and "
        "seed. tags.chain groups a seed's ANN -> T=6 -> TIT T=4 -> T=2 chain."
    )
    inputs = [DatasetRecord.from_manifest(manifest, split) for split in ("train", "test")]
    return MLflowTracker(experiment_name(dataset), f"{variant}/seed{seed}", tags, inputs=inputs,
                         description=description, background=True,
                         retry_s=params.tracking.retry_s)  # fmt: skip


def log_outputs(
    params: Params, tracker: MLflowTracker, result: FitResult, paths: dict[str, Path], title: str
) -> None:
    """The run's artifacts once its outputs are written: curves, plots CSV, metrics, weights."""
    with tempfile.TemporaryDirectory() as tmp:
        curves = Path(tmp) / "curves.png"
        plot_curves(result.history, curves, title)
        tracker.log_artifacts({"": curves})
        tracker.log_artifacts({"": paths["plots"], "metrics": paths["metrics"]})
        if params.tracking.log_weights:
            tracker.log_artifacts({"weights": paths["model"]})
