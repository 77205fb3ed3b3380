"""The surrogates study (beyond the paper): every framework's surrogate through its own package,
the threshold matched, Fig. 2's measure reproduced, the table's rows from params.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import snntorch as snn
import torch
import yaml
from spikingjelly.activation_based import neuron as sj_neuron
from stage_support import BASE_PARAMS, run_mnist_study, stage_params
from test_studies import _blobs

from dspike.surrogate import Dspike, Rectangular
from paper import fig2, surrogates
from paper.surrogates import SurrogateChoice, build, finite
from paper.toy_training import ToySettings

REPO = Path(__file__).resolve().parents[1]
LISTED = [SurrogateChoice(c["framework"], c["name"], c.get("options", {}))
          for c in BASE_PARAMS["studies"]["surrogates"]["list"]]  # fmt: skip
FOREIGN = [c for c in LISTED if c.framework != "dspike"]


def _neuron_grad(choice: SurrogateChoice, x: torch.Tensor) -> torch.Tensor:
    """d spike / d x of the framework's own neuron at threshold 1.0, one step from rest."""
    x = x.clone().requires_grad_()
    if choice.framework == "spikingjelly":
        from spikingjelly.activation_based import surrogate as sj

        node = sj_neuron.IFNode(v_threshold=1.0, surrogate_function=getattr(sj, choice.name)())
        spikes = node(x)
    else:
        fn = getattr(snn.surrogate, choice.name)()
        node = snn.Leaky(beta=0.5, threshold=1.0, spike_grad=fn, reset_mechanism="zero")
        spikes, _ = node(x, torch.zeros_like(x))
    (grad,) = torch.autograd.grad(spikes.sum(), x)
    return grad


@pytest.mark.parametrize("choice", FOREIGN, ids=lambda c: c.key)
def test_foreign_surrogate_is_its_frameworks_own_gradient(choice: SurrogateChoice) -> None:
    """Through the framework's own neuron (float64): at V_th = 1 ours is its gradient of u - 1;
    at V_th = 0.5 it is that neuron fed 2u (the threshold matching): 2 g(2u - 1)."""
    u = torch.linspace(-1.0, 3.0, 801, dtype=torch.float64)
    theirs = _neuron_grad(choice, u)
    assert theirs.abs().sum() > 0
    torch.testing.assert_close(build(choice, v_threshold=1.0).grad(u - 1.0), theirs,
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    half = u / 2  # a network at V_th = 0.5 whose potential is u / 2
    matched = build(choice, v_threshold=0.5).grad(half - 0.5)
    torch.testing.assert_close(matched, _neuron_grad(choice, 2 * half) * 2, rtol=1e-12, atol=1e-12)


def test_finiteness_finds_snntorch_sigmoid_overflow() -> None:
    """snnTorch's sigmoid (slope 25) returns NaN once slope * |x| passes ~88 (its issue #427)."""
    sig = build(SurrogateChoice("snntorch", "sigmoid"))
    assert not finite(sig, 1e4, torch.float32) and finite(sig, 1.0, torch.float32)
    for ours in (Dspike(4.0), Rectangular(1.0), build(SurrogateChoice("snntorch", "atan"))):
        assert finite(ours, 1e4, torch.float32) and finite(ours, 1e4, torch.bfloat16)


def test_rectangular_row_reproduces_fig2(tmp_path: Path) -> None:
    """The study's cos-sim of the rectangular SG equals the Fig. 2 study's, same settings."""
    toy = ToySettings(batch_size=32, lr=0.05, time_steps=2, num_classes=3, seed=0)
    data = _blobs(64)
    curves = fig2.run(data, tmp_path / "fig2", epochs=2, iterations=2, epsilons=(0.1, 0.01),
                      modes=("snn",), toy=toy)  # fmt: skip
    choices = [SurrogateChoice("dspike", "rectangular"), SurrogateChoice("dspike", "dspike",
                                                                         {"temperature": 2.0})]
    table = surrogates.run(data, _blobs(30, seed=1), tmp_path / "s", choices, epochs=2,
                           iterations=2, epsilons=(0.1, 0.01), seeds=(0,), toy=toy)  # fmt: skip
    for eps in (0.1, 0.01):
        want = curves.loc[curves["eps"] == eps, "cos_mean"].mean()
        assert table.loc[0, f"cos_eps_{eps:g}"] == pytest.approx(want, rel=1e-12)
    assert table.loc[1, f"cos_eps_{0.1:g}"] != table.loc[0, f"cos_eps_{0.1:g}"]
    iters = pd.read_csv(tmp_path / "s" / "surrogates_iterations.csv")
    assert len(iters) == 2 * 2 * 2 * 2  # surrogates x epochs x iterations x eps
    for name in ("surrogates.csv", "surrogates.md", "surrogates.png"):
        assert (tmp_path / "s" / name).stat().st_size > 0


def test_adaptive_dspike_moves_b(tmp_path: Path) -> None:
    toy = ToySettings(batch_size=32, lr=0.05, time_steps=2, num_classes=3)
    table = surrogates.run(_blobs(64), _blobs(30, seed=1), tmp_path,
                           [SurrogateChoice("dspike", "dspike-adaptive")], epochs=3, iterations=1,
                           epsilons=(0.1,), seeds=(0, 1), delta=0.5, toy=toy)  # fmt: skip
    assert table.loc[0, "n_seeds"] == 2 and table.loc[0, "final_b"] != 1.0


STUDY = {
    "seeds": [0],
    "studies": {"toy": {"train_size": 64, "batch_size": 32, "lr": 0.05, "time_steps": 2},
                "surrogates": {"epochs": 1, "iterations": 1, "epsilons": [0.1], "seeds": [0],
                               "test_size": 50}},
}  # fmt: skip


@pytest.mark.integration
def test_stage_rows_are_the_params_list(tmp_path: Path, monkeypatch) -> None:
    """``python -m pipelines.surrogates`` on bundled MNIST: one row per entry of params.yaml's
    ``studies.surrogates.list``, in order (the real list, all 23)."""
    from pipelines.surrogates import main

    out = run_mnist_study(main, tmp_path, STUDY, "results/s", monkeypatch)
    table = pd.read_csv(out / "surrogates.csv")
    assert list(zip(table["framework"], table["surrogate"], strict=True)) == [
        (c.framework, c.label) for c in LISTED
    ]
    assert len(LISTED) == 23 and table["acc_mean"].notna().all()
    assert "Closest to the FDG" in (out / "surrogates.md").read_text()


def test_missing_framework_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(stage_params({}, **STUDY)))
    code = ("import sys; sys.modules['snntorch'] = None; sys.modules['snntorch.surrogate'] = None\n"
            "from pipelines.surrogates import main; main(['--out', 'o', '--manifest', 'm.json'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "error: the surrogates study needs snntorch for its snntorch rows: "
        "pip install 'dspike[snntorch]' (or dspike[pipeline], which has both)"
    ]
    assert not (tmp_path / "o").exists()
