"""Op counts, firing rates and energy (Sec. 5.4, Table 3, Fig. 4) against hand-worked numbers."""

import pandas as pd
import pytest
import torch
from torch import nn

from dspike import build_model
from dspike.energy import count_macs, energy, measure_activity, op_counts
from dspike.neurons import LIF
from dspike.spec import NeuronSpec
from paper.energy_report import (
    format_count,
    format_energy,
    table3_rows,
    write_firing_rates,
)
from paper.markdown import write_table


class TwoLayerSNN(nn.Module):
    """conv1 (1x1, copies the pixel into 2 channels) -> LIF -> fc -> LIF -> fc2.

    With tau = 0 and weights of 1 a pixel of 1.0 is exactly one spike per channel, so the
    frames plant the spike pattern; ``fc`` has zero weights, so ``fc2`` never gets a spike.
    """

    def __init__(self, time_steps: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 1, bias=False)
        self.lif1 = LIF(NeuronSpec(tau=0.0), time_steps=time_steps)
        self.fc = nn.Linear(8, 3, bias=False)
        self.lif2 = LIF(NeuronSpec(tau=0.0), time_steps=time_steps)
        self.fc2 = nn.Linear(3, 4, bias=False)
        nn.init.ones_(self.conv1.weight)
        nn.init.zeros_(self.fc.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, 1, 2, 2] frames
        steps = x.shape[1]
        s = self.lif1(self.conv1(x.transpose(0, 1).flatten(0, 1))).flatten(1)
        return self.fc2(self.lif2(self.fc(s))).unflatten(0, (steps, -1)).mean(0)


# sample 0: 2 then 1 active pixels; sample 1: none then 4. Each pixel spikes in 2 channels.
FRAMES = torch.tensor([[[1, 0, 0, 1], [1, 0, 0, 0]],
                       [[0, 0, 0, 0], [1, 1, 1, 1]]], dtype=torch.float32).view(2, 2, 1, 2, 2)


def test_two_layer_snn_counts_equal_hand_worked_numbers():
    model = TwoLayerSNN(time_steps=2)
    macs = count_macs(model, FRAMES)
    # per sample and step: conv1 1*2*(2*2) = 8, fc 8*3 = 24, fc2 3*4 = 12
    assert macs == {"conv1": 8, "fc": 24, "fc2": 12}
    loader = [(FRAMES[:1], torch.tensor([0])), (FRAMES[1:], torch.tensor([3]))]
    act = measure_activity(model, loader)
    spikes = 2 * (2 + 1 + 0 + 4)  # 14 spikes over 2 samples x 2 steps x 8 neurons
    assert act.samples == 2
    assert act.firing_rates == {"lif1": spikes / 32, "lif2": 0.0}
    assert act.input_rates["fc"] == spikes / 32 and act.input_rates["fc2"] == 0.0
    assert act.inputs["fc"].binary
    ops = op_counts(macs, act.input_rates, time_steps=2)
    assert ops.n_mult == 8 * 2  # the encoding layer multiplies at every step
    assert ops.n_add == spikes * 3 / 2  # each spike adds into fc's 3 outputs; per sample
    assert ops.adds_by_layer["fc2"] == 0.0  # no input spikes, no additions
    ann = op_counts(macs)
    assert ann.n_add == ann.n_mult == 8 + 24 + 12


def test_silent_layer_costs_nothing_and_missing_rates_are_an_error():
    macs = {"conv1": 10, "a": 100, "b": 50}
    ops = op_counts(macs, {"a": 0.0, "b": 0.5}, time_steps=4)
    assert ops.adds_by_layer["a"] == 0.0 and ops.n_add == 100 and ops.n_mult == 40
    with pytest.raises(KeyError, match="b"):
        op_counts(macs, {"a": 0.1}, time_steps=4)


@pytest.mark.parametrize(
    ("n_mult", "n_add", "joules"),
    [(187e6, 187e6, 1.03e-3), (3.52e6, 71.2e6, 80.3e-6),  # ANN (ours), SNN (ours, T=2)
     (2285e6, 2285e6, 12.6e-3), (8.80e6, 142e6, 168e-6), (6.8e6, 360e6, 355e-6)],
)
def test_energy_reproduces_paper_table3_from_its_op_counts(n_mult, n_add, joules):
    assert energy(n_mult, n_add) == pytest.approx(joules, rel=3e-3)


def test_resnet_macs_match_table3_and_snn_counts_per_step():
    with torch.device("meta"):  # shapes only: the counter needs no arithmetic
        x = torch.empty(1, 3, 32, 32)
        ann = count_macs(build_model("resnet18", 10, mode="ann"), x)
        snn_model = build_model("resnet18", 10, mode="snn", time_steps=2)
        snn = count_macs(snn_model, x.expand(3, -1, -1, -1))
        res19 = count_macs(build_model("resnet19", 10, mode="ann"), x)
    assert snn == ann  # per sample and step, whatever the batch and T
    assert ann["conv1"] == 3 * 64 * 9 * 32 * 32  # 1.77M; x T=2 is the paper's #Mult
    assert sum(ann.values()) == 187_372_544  # paper: 187M
    assert sum(res19.values()) == 2_285_245_440  # paper: 2285M


def calibrated_resnet18(x: torch.Tensor) -> nn.Module:
    """A narrow spiking ResNet-18 whose BN statistics come from ``x``, so spikes reach the end."""
    model = build_model("resnet18", 10, mode="snn", time_steps=2, width=8)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
            m.reset_running_stats()
    with torch.no_grad():
        model.train()(x)
    return model


def test_measure_activity_on_spiking_resnet18_restores_model_state():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    model = calibrated_resnet18(x)
    loader = [(x[:4], torch.randint(0, 10, (4,))), (x[4:], torch.randint(0, 10, (4,)))]
    model.bn1.eval()  # a frozen BN inside a training model stays frozen
    act = measure_activity(model, loader)
    assert len(act.firing_rates) == 3 + 8 * 2  # stem + two LIFs per basic block
    assert all(0.0 < r < 1.0 for r in act.firing_rates.values())
    assert act.accuracy is not None and act.samples == 8
    # a conv fed straight by a LIF sees exactly that LIF's spikes
    assert act.input_rates["stem.1"] == pytest.approx(act.firing_rates["stem.0"])
    assert act.inputs["stem.1"].binary and act.inputs["stages.0.0.conv1"].binary
    assert not act.inputs["stages.1.0.shortcut.1"].binary  # average-pooled spikes
    assert not act.inputs["head"].binary
    assert not act.inputs["conv1"].binary
    assert model.training and model.stem[1].training and not model.bn1.training
    assert all(not m._forward_pre_hooks for m in model.modules())
    assert all(not m.record_rate for m in model.modules() if isinstance(m, LIF))


def test_report_files_and_table3_units(tmp_path):
    rates = pd.DataFrame({"index": [1, 2], "layer": ["a", "b"], "firing_rate": [0.2, 0.1]})
    csv_path, png_path = write_firing_rates(rates, tmp_path)
    assert pd.read_csv(csv_path).equals(rates)
    assert png_path.read_bytes()[:4] == b"\x89PNG"
    reported = [{"method": "ANN", "model": "Res-18", "acc": 95.46, "n_add": 187e6,
                 "n_mult": 187e6, "energy_printed": "1.03J"}]
    ours = [{"method": "SNN (ours)", "model": "Res-18", "acc": 93.1, "time_steps": 2,
             "n_add": 71.2e6, "n_mult": 3.52e6}]
    df = table3_rows(reported, ours)
    assert df["Energy"].tolist() == ["1.03 mJ", "80.3 uJ"]
    assert df["#Mult"].tolist() == ["187M", "3.52M"]
    assert df["Source"].tolist() == ["paper", "ours"]
    write_table(df, tmp_path / "table3")
    md = tmp_path / "table3.md"
    assert "1.03J" in md.read_text() and "SI prefix" in md.read_text()
    assert format_count(5120) == "5.12K" and format_energy(2.0) == "2 J"


def test_input_counts_are_exact_for_graded_and_negative_inputs():
    model = nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 1))
    act = measure_activity(model, [torch.tensor([[0.0, -2.0, 0.5, 1.0], [0.0, 0.0, 1.0, 1.0]])])
    first = act.inputs["0"]
    assert (first.nonzero, first.numel, first.binary) == (5, 8, False)
    act = measure_activity(model, [torch.tensor([[0.0, 1.0, 0.0, 1.0]])])
    assert act.inputs["0"].binary and act.inputs["0"].nonzero == 2 and act.accuracy is None
