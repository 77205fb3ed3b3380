"""Dspike in SpikingJelly and snnTorch (dspike.integrations): the surrogate equals ours in
float64 through each framework's neurons, FDG (Eq. 10) and Algorithm 1 work on their models,
the examples learn, and neither framework is needed to import dspike."""

from __future__ import annotations

import copy
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import snntorch as snn
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

from dspike.fdg import fdg, first_layer, surrogate_gradient
from dspike.integrations import AdaptiveTemperature
from dspike.integrations import snntorch as st_dspike
from dspike.integrations import spikingjelly as sj_dspike
from dspike.neurons import LIF, lif_reference
from dspike.surrogate import Dspike, spike
from dspike.temperature import dspike_surrogates, set_temperature, update_temperature

REPO = Path(__file__).resolve().parents[1]
T = 4


def _currents(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Input currents [T, ...] that put u_pre inside and outside Eq. (12)'s window."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, *shape, generator=g, dtype=torch.float64) * 1.4 - 0.2).requires_grad_()


def _spikes_and_grad(run, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    spikes = run(c)
    weights = torch.linspace(-1.0, 1.0, spikes.numel(), dtype=torch.float64).view_as(spikes)
    (grad,) = torch.autograd.grad((spikes * weights).sum(), c)
    return spikes.detach(), grad


def leaky_steps(leaky: snn.Leaky, x: torch.Tensor) -> torch.Tensor:
    """An snnTorch Leaky from rest over the steps of ``x`` [T, ...]: its spikes [T, ...]."""
    mem, out = leaky.reset_mem(), []
    for t in range(x.shape[0]):
        s, mem = leaky(x[t], mem)
        out.append(s)
    return torch.stack(out)


def _assert_same(ours, theirs, c: torch.Tensor) -> None:
    s_ours, g_ours = _spikes_and_grad(ours, c)
    s_theirs, g_theirs = _spikes_and_grad(theirs, c)
    assert s_theirs.dtype == torch.float64
    assert 0 < s_ours.mean() < 1  # some neurons fire, some do not
    assert torch.equal(s_ours, s_theirs)
    assert (g_ours == 0).any() and (g_ours != 0).any()  # the window cuts some gradients off
    torch.testing.assert_close(g_theirs, g_ours, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("b", [0.5, 1.0, 4.0])
def test_surrogates_equal_ours_on_their_own(b: float) -> None:
    v = torch.linspace(-1.0, 1.0, 401, dtype=torch.float64)
    ours = _spikes_and_grad(lambda x: spike(x, Dspike(b)), v.clone().requires_grad_())
    for theirs in (sj_dspike.Dspike(b, v_threshold=0.5), st_dspike.Dspike(b, v_threshold=0.5)):
        got = _spikes_and_grad(theirs, v.clone().requires_grad_())
        assert torch.equal(got[0], ours[0])
        torch.testing.assert_close(got[1], ours[1], rtol=1e-15, atol=0)
    # SpikingJelly's primitive mode is Eq. (12) itself.
    relaxed = sj_dspike.Dspike(b, spiking=False, v_threshold=0.5)
    torch.testing.assert_close(relaxed(v), Dspike(b).primitive(v), rtol=0, atol=0)


def test_spikingjelly_builtin_dspike_has_the_same_backward() -> None:
    """SpikingJelly's own DSpike (fixed alpha) matches ours off v = 0 (it fires at v >= 0)."""
    from spikingjelly.activation_based.model.spike_dhs import DSpike

    v = torch.linspace(-1.0, 1.0, 400, dtype=torch.float64)
    theirs = _spikes_and_grad(DSpike(alpha=3.0), v.clone().requires_grad_())
    ours = _spikes_and_grad(sj_dspike.Dspike(3.0, v_threshold=0.5), v.clone().requires_grad_())
    assert torch.equal(theirs[0], ours[0])
    torch.testing.assert_close(theirs[1], ours[1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("kind", ["IFNode", "LIFNode"])
def test_spikingjelly_neurons_equal_dspike_lif(kind: str, detach_reset: bool) -> None:
    """IFNode is Eq. 1-2 with tau = 1; LIFNode(tau=4/3, decay_input=False) with tau = 0.25."""
    b, c = 1.7, _currents((3, 50))
    opts = {"v_threshold": 0.5, "v_reset": 0.0, "detach_reset": detach_reset, "step_mode": "m"}
    if kind == "LIFNode":
        node = sj_neuron.LIFNode(tau=4 / 3, decay_input=False, **opts,
                                 surrogate_function=sj_dspike.Dspike(b))
        tau = 0.25
    else:
        node = sj_neuron.IFNode(**opts, surrogate_function=sj_dspike.Dspike(b))
        tau = 1.0

    def theirs(x: torch.Tensor) -> torch.Tensor:
        node.reset()
        return node(x)

    def ours(x: torch.Tensor) -> torch.Tensor:
        return lif_reference(x, tau, 0.5, Dspike(b), detach_reset)[0]

    _assert_same(ours, theirs, c)


def test_snntorch_leaky_equals_dspike_lif() -> None:
    """Leaky(reset "zero") is Eq. 1-2 with tau = beta and a detached reset."""
    b, c = 1.7, _currents((3, 50))
    leaky = snn.Leaky(beta=0.25, threshold=0.5, spike_grad=st_dspike.Dspike(b),
                      reset_mechanism="zero")

    def ours(x: torch.Tensor) -> torch.Tensor:
        return lif_reference(x, 0.25, 0.5, Dspike(b), detach_reset=True)[0]

    _assert_same(ours, lambda x: leaky_steps(leaky, x), c)


def test_snntorch_synaptic_equals_its_recurrence_with_our_spike() -> None:
    b, c, thr = 2.5, _currents((3, 50), seed=1), 0.5
    neuron = snn.Synaptic(alpha=0.5, beta=0.25, threshold=thr, spike_grad=st_dspike.Dspike(b))

    def theirs(x: torch.Tensor) -> torch.Tensor:
        syn, mem = neuron.reset_mem()
        out = []
        for t in range(x.shape[0]):
            s, syn, mem = neuron(x[t], syn, mem)
            out.append(s)
        return torch.stack(out)

    def ours(x: torch.Tensor) -> torch.Tensor:
        syn = mem = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            reset = spike(mem - thr, Dspike(b)).detach()  # snnTorch: reset by subtraction
            syn = 0.5 * syn + x[t]
            mem = 0.25 * mem + syn - reset * thr
            out.append(spike(mem - thr, Dspike(b)))
        return torch.stack(out)

    _assert_same(ours, theirs, c)


# --- FDG and Algorithm 1 on the frameworks' own models ------------------------------------------


class SJNet(nn.Module):
    """A SpikingJelly CSNN: static image repeated over T, output averaged over T."""

    def __init__(self, sg: nn.Module) -> None:
        super().__init__()
        self.net = nn.Sequential(
            layer.Conv2d(1, 3, 3, padding=1, bias=False), layer.BatchNorm2d(3),
            sj_neuron.LIFNode(v_threshold=0.5, surrogate_function=sg),
            layer.AvgPool2d(2), layer.Flatten(), layer.Linear(3 * 4 * 4, 10),
        )  # fmt: skip
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(0).repeat(T, 1, 1, 1, 1)).mean(0)


class STNet(nn.Module):
    """An snnTorch CSNN in the tutorials' style: state set up in forward, loop over T."""

    def __init__(self, sg: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.lif = snn.Leaky(beta=0.5, threshold=0.5, spike_grad=sg)
        self.fc = nn.Linear(3 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cur, mem, out = F.avg_pool2d(self.conv(x), 2), self.lif.reset_mem(), []
        for _ in range(T):
            s, mem = self.lif(cur, mem)
            out.append(self.fc(s.flatten(1)))
        return torch.stack(out).mean(0)


def _model(kind: str, b: float = 1.0) -> nn.Module:
    torch.manual_seed(0)
    if kind == "spikingjelly":
        return SJNet(sj_dspike.Dspike(b)).double()
    return STNet(st_dspike.Dspike(b)).double()


def _batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64) * 2, torch.arange(n) % 10


def test_fdg_on_spikingjelly_model_equals_naive_loop() -> None:
    model, (x, y) = _model("spikingjelly"), _batch()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))  # SpikingJelly keeps v between calls
    functional.reset_net(model)
    buffers = [b.clone() for b in model.buffers()]
    assert first_layer(model) == "net.0.weight"
    got = fdg(model, None, x, y, eps=0.1)

    ref, eps = copy.deepcopy(model), 0.1
    flat = ref.net[0].weight.detach().view(-1)
    loop = torch.empty_like(flat)
    for i in range(flat.numel()):
        losses = []
        for sign in (1.0, -1.0):
            w = flat[i].item()
            flat[i] = w + sign * eps
            functional.reset_net(ref)
            with torch.no_grad():
                losses.append(F.cross_entropy(ref(x), y))  # train mode: batch statistics
            flat[i] = w
        loop[i] = (losses[0] - losses[1]) / (2 * eps)
    assert loop.abs().max() > 0
    torch.testing.assert_close(got.flatten(), loop, rtol=1e-9, atol=1e-12)
    # Running statistics untouched, neuron state reset, train mode kept.
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    assert model.net[2].v == 0.0 and model.training


@pytest.mark.parametrize("kind", ["spikingjelly", "snntorch"])
def test_surrogate_gradient_is_their_autograd(kind: str) -> None:
    model, (x, y) = _model(kind, 1.3), _batch()
    state = copy.deepcopy(model.state_dict())  # BN statistics; neuron state is not in it
    got = surrogate_gradient(model, None, x, y)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    functional.reset_net(model)
    F.cross_entropy(model(x), y).backward()
    torch.testing.assert_close(got, dict(model.named_parameters())[first_layer(model)].grad)


@pytest.mark.parametrize("kind", ["spikingjelly", "snntorch"])
@pytest.mark.parametrize("start", [1.0, 3.4])
def test_temperature_moves_to_planted_optimum(kind: str, start: float) -> None:
    """The target is the Dspike gradient at b* = 2.2, so Algorithm 1 must walk there and stay."""
    model, (x, y) = _model(kind), _batch()
    set_temperature(model, 2.2)
    planted = surrogate_gradient(model, None, x, y)
    path = [start]
    for _ in range(9):
        step = update_temperature(model, x, y, path[-1], reference=planted)
        path.append(step.temperature)
    n = round(abs(2.2 - start) / 0.2)
    sign = 1 if start < 2.2 else -1
    expected = [round(start + sign * 0.2 * i, 12) for i in range(n + 1)]
    assert path == expected + [2.2] * (len(path) - len(expected))
    assert step.similarities[2.2] == pytest.approx(1.0)
    assert [s.temperature for s in dspike_surrogates(model)] == [2.2]


def test_adaptive_temperature_sets_every_surrogate_of_a_mixed_model() -> None:
    """Ours, SpikingJelly's and snnTorch's Dspike in one model all get Algorithm 1's b."""
    model, (x, y) = _model("snntorch", 1.0), _batch()
    model.extra = nn.ModuleList([sj_neuron.IFNode(surrogate_function=sj_dspike.Dspike(5.0))])
    model.ours = nn.ModuleList([LIF(surrogate=Dspike(7.0))])
    adapt = AdaptiveTemperature(model)
    update = adapt.step(x, y)
    assert sorted(update.similarities) == [0.8, 1.0, 1.2]
    assert update.temperature == max(update.similarities, key=update.similarities.get)
    assert adapt.history == [update] and adapt.temperature == update.temperature
    assert {s.temperature for s in dspike_surrogates(model)} == {update.temperature}
    assert len(dspike_surrogates(model)) == 3
    with pytest.raises(ValueError, match="Dspike"):
        AdaptiveTemperature(STNet(snn.surrogate.atan()))


def test_first_layer_is_the_first_conv_or_linear() -> None:
    assert first_layer(_model("snntorch")) == "conv.weight"
    assert first_layer(nn.Linear(3, 2)) == "weight"
    with pytest.raises(ValueError, match="param_name"):
        first_layer(nn.Sequential(nn.BatchNorm1d(3)))


def test_temperature_is_settable_and_checked() -> None:
    for sg in (sj_dspike.Dspike(1.0, v_threshold=0.5), st_dspike.Dspike(1.0, v_threshold=0.5)):
        sg.temperature = 2.5
        assert sg.b.item() == 2.5 and sg.b.dtype == torch.float64
        with pytest.raises(ValueError, match="temperature"):
            sg.temperature = 0.0
    assert "temperature=2.5" in repr(sg)


# --- optional dependencies --------------------------------------------------------------------


def test_import_dspike_needs_neither_framework() -> None:
    code = (
        "import sys, dspike, dspike.integrations, dspike.fdg, dspike.temperature\n"
        "dspike.integrations.AdaptiveTemperature\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('spikingjelly', 'snntorch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["spikingjelly", "snntorch"])
def test_missing_framework_names_the_extra(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail
    for key in [k for k in sys.modules if k.startswith(f"{name}.")]:
        monkeypatch.setitem(sys.modules, key, None)
    monkeypatch.delitem(sys.modules, f"dspike.integrations.{name}")
    with pytest.raises(ImportError, match=re.escape(f"pip install 'dspike[{name}]'")):
        importlib.import_module(f"dspike.integrations.{name}")


# --- the examples ---------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("name", ["spikingjelly_csnn", "snntorch_csnn"])
def test_example_learns(name: str, tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "examples" / f"{name}.py"), "--epochs", "1",
           "--train-size", "600", "--test-size", "300", "--data-root", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    assert re.search(r"^dspike +epoch 1/1 +b 1\.00 -> (0\.80|1\.00|1\.20) ", out, re.M), out
    accs = dict(re.findall(r"^final (dspike|default) .*: test accuracy ([\d.]+)%$", out, re.M))
    assert set(accs) == {"dspike", "default"}, out
    assert float(accs["dspike"]) > 40.0 and float(accs["default"]) > 40.0, out  # chance: 10%
