"""Fig. 2: cosine similarity between the gradient used for the update and the FDG (Sec. 4.2).

The toy CNN is trained with autograd for ``epochs`` epochs, (a) as an ANN with ReLU and (b) as
an SNN with the rectangular surrogate (a = 1). In each of the first ``iterations`` iterations of
every epoch the first layer's update gradient is compared with its FDG (Eq. 10) at each eps, on
the same minibatch and weights; the figure shows the per-epoch mean.

Outputs in ``out_dir``: ``fig2.csv`` (one row per mode, epoch and eps: mean, std and count of
the similarities), ``fig2_iterations.csv`` (every similarity) and ``fig2.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from torch.utils.data import Dataset

from dspike.fdg import FIRST_LAYER, cosine_similarity, fdg
from dspike.io import atomic_path, pyplot, save_figure
from dspike.surrogate import Rectangular

from .toy_training import PAPER_TOY, Iteration, ToySettings, make_toy, sample_shape, train_toy

__all__ = ["plot", "run"]

PANELS = {"ann": "(a) ANN (ReLU)", "snn": "(b) SNN (rectangular SG)"}


def run(
    train_data: Dataset,
    out_dir: str | Path,
    *,
    epochs: int = 5,
    iterations: int = 100,
    epsilons: Sequence[float] = (0.1, 0.01, 0.001),
    modes: Sequence[str] = ("ann", "snn"),
    toy: ToySettings = PAPER_TOY,
) -> pd.DataFrame:
    """Train each mode, record the similarities, write the CSVs and the PNG; return the curves."""
    records: list[dict] = []
    for mode in modes:
        if mode not in PANELS:
            raise ValueError(f"modes must be among {sorted(PANELS)}, got {mode!r}")
        surrogate = Rectangular(1.0) if mode == "snn" else None
        model = make_toy(mode, surrogate, toy.time_steps, sample_shape(train_data),
                         toy.num_classes, toy.seed)

        def compare(it: Iteration, mode: str = mode) -> None:
            if it.iteration >= iterations:
                return
            used = it.model.conv1.weight.grad
            for eps in epsilons:
                ref = fdg(it.model, FIRST_LAYER, it.inputs, it.targets, eps,
                          chunk_size=toy.chunk_size)
                records.append({"mode": mode, "epoch": it.epoch + 1, "iteration": it.iteration,
                                "eps": eps, "cos": cosine_similarity(used, ref)})

        train_toy(model, train_data, epochs, batch_size=toy.batch_size, lr=toy.lr, seed=toy.seed,
                  callback=compare)
    raw = pd.DataFrame(records, columns=["mode", "epoch", "iteration", "eps", "cos"])
    curves = (raw.groupby(["mode", "epoch", "eps"], sort=False)["cos"]
              .agg(cos_mean="mean", cos_std="std", n="count").reset_index())
    out = Path(out_dir)
    for name, frame in (("fig2.csv", curves), ("fig2_iterations.csv", raw)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    plot(curves, out / "fig2.png")
    return curves


def plot(curves: pd.DataFrame, path: str | Path) -> Path:
    """Fig. 2's layout: one panel per mode, cosine similarity per epoch, one line per eps."""
    plt = pyplot()

    modes = list(dict.fromkeys(curves["mode"]))
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.4), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        part = curves[curves["mode"] == mode]
        for eps, line in part.groupby("eps", sort=False):
            ax.errorbar(line["epoch"], line["cos_mean"], yerr=line["cos_std"].fillna(0.0),
                        marker="o", capsize=3, label=f"ε = {eps:g}")
        ax.set(title=PANELS[mode], xlabel="epoch", ylabel="cosine similarity", ylim=(-0.1, 1.05))
        ax.set_xticks(sorted(part["epoch"].unique()))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
