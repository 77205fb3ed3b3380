"""The toy studies at tiny scale: FDG training, Fig. 2, Table 1, Fig. 3, and a study stage."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from stage_support import run_mnist_study
from torch.utils.data import TensorDataset

from dspike.fdg import fdg
from dspike.surrogate import Rectangular
from paper import fig2, fig3, table1
from paper.toy_training import ToySettings, evaluate, make_toy, train_toy


def _blobs(n: int, classes: int = 3, size: int = 10, seed: int = 0) -> TensorDataset:
    """Class c: a bright 3x3 square at position c on a noisy background."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = 0.3 * torch.randn(n, 1, size, size, generator=g)
    for i, c in enumerate(y.tolist()):
        x[i, 0, 1 + 3 * c : 4 + 3 * c, 1 + 3 * c : 4 + 3 * c] += 2.0
    return TensorDataset(x, y)


def test_fdg_training_decreases_loss() -> None:
    data = _blobs(96)
    model = make_toy("snn", Rectangular(1.0), 3, (1, 10, 10), num_classes=3, seed=0)
    seen = []

    def check(it) -> None:
        if it.iteration == 0:
            expected = fdg(it.model, None, it.inputs, it.targets, 0.1)
            seen.append(torch.equal(it.model.conv1.weight.grad, expected))

    history = train_toy(model, data, 4, batch_size=32, lr=0.05, gradient="fdg", eps=0.1,
                        callback=check)
    assert seen == [True] * 4
    assert history["loss"].iloc[-1] < 0.7 * history["loss"].iloc[0]
    assert evaluate(model, _blobs(48, seed=1)) > 60.0


def test_fig2_small(tmp_path: Path) -> None:
    toy = ToySettings(batch_size=32, lr=0.05, time_steps=2, num_classes=3)
    curves = fig2.run(_blobs(64), tmp_path, epochs=2, iterations=2, epsilons=(0.1, 0.001),
                      toy=toy)
    assert len(curves) == 2 * 2 * 2 and set(curves["n"]) == {2}
    assert {"mode", "epoch", "eps", "cos_mean", "cos_std", "n"} <= set(curves.columns)
    ann = curves[(curves["mode"] == "ann") & (curves["eps"] == 0.001)]
    assert (ann["cos_mean"] > 0.99).all()  # Experiment I
    assert curves["cos_mean"].between(-1, 1).all()
    for name in ("fig2.csv", "fig2_iterations.csv", "fig2.png"):
        assert (tmp_path / name).stat().st_size > 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "fig2.csv"), curves, check_dtype=False)


def test_table1_small(tmp_path: Path) -> None:
    table = table1.run(_blobs(64), _blobs(30, seed=1), tmp_path, epochs=1, epsilons=(0.1, 0.5),
                       toy=ToySettings(batch_size=32, time_steps=2, num_classes=3))
    assert list(table["gradient"]) == ["rectangular", "fdg", "fdg"]
    assert math.isnan(table["eps"].iloc[0]) and list(table["eps"].iloc[1:]) == [0.1, 0.5]
    assert table["test_acc"].between(0, 100).all()
    md = (tmp_path / "table1.md").read_text()
    assert "Best FDG ε here" in md  # the paper's numbers beside ours: tests/test_report.py
    assert len(pd.read_csv(tmp_path / "table1.csv")) == 3


def test_fig3(tmp_path: Path) -> None:
    data = fig3.run(tmp_path, temperatures=(0.5, 2.0, 8.0), points=301)
    assert (tmp_path / "fig3.png").stat().st_size > 0
    peaks = []
    for _, part in data.groupby("temperature"):
        x, fwd, bwd = (torch.tensor(part[c].to_numpy()) for c in ("x", "forward", "backward"))
        assert fwd[x <= 0].eq(0).all() and fwd[x >= 1].eq(1).all()
        assert (fwd.diff() >= 0).all()
        inside = (x >= 0) & (x <= 1)
        assert torch.trapezoid(bwd[inside], x[inside]).item() == pytest.approx(1.0, abs=0.02)
        peaks.append(bwd.max().item())
    assert peaks == sorted(peaks)  # a higher temperature gives a sharper gradient


STUDY_PARAMS = {
    "data": {"source": "bundled", "download": False, "root": "data/raw"},
    "seeds": [0],
    "studies": {"toy": {"train_size": 64, "batch_size": 32, "lr": 0.01, "time_steps": 2},
                "table1": {"epochs": 1, "epsilons": [0.1]}},
}  # fmt: skip


def test_table1_stage_on_bundled_mnist(tmp_path: Path, monkeypatch) -> None:
    """The study's one entry point, ``python -m pipelines.table1``, on real (bundled) MNIST."""
    from pipelines.table1 import main

    out = run_mnist_study(main, tmp_path, STUDY_PARAMS, "results/table1", monkeypatch)
    table = pd.read_csv(out / "table1.csv")
    assert len(table) == 2 and (out / "table1.md").exists()


def test_fig3_follows_the_threshold() -> None:
    """At V_th = 1 the curves are those the LIF uses: Dspike of u - 1, window [0, 2]."""
    data = fig3.curves(temperatures=(2.0,), points=301, v_threshold=1.0)
    x, fwd = torch.tensor(data["x"].to_numpy()), torch.tensor(data["forward"].to_numpy())
    assert x.min() == pytest.approx(-0.5) and x.max() == pytest.approx(2.5)
    assert fwd[x <= 0.0].eq(0).all() and fwd[x >= 2.0].eq(1).all()
    assert fwd[(x > 1e-9) & (x < 2.0)].gt(0).all()  # the grid's "0" is off by rounding
