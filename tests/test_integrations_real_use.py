"""Dspike in SpikingJelly and snnTorch under real use: compiled training while b changes, b
saved with the model, the window at the neuron's threshold, each framework's firing
convention, and the GPU path SpikingJelly leaves (dspike.integrations.base)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import snntorch as snn
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer
from spikingjelly.activation_based import neuron as sj_neuron
from spikingjelly.activation_based import surrogate as sj_surrogate
from test_integrations import _spikes_and_grad, leaky_steps
from torch import nn

from dspike.integrations import snntorch as st_dspike
from dspike.integrations import spikingjelly as sj_dspike
from dspike.neurons import lif_reference
from dspike.surrogate import Dspike, dspike_grad
from dspike.temperature import dspike_surrogates, set_temperature

T = 3


class STNet(nn.Module):
    """Two snnTorch Leaky layers sharing one surrogate, looped over T steps."""

    def __init__(self, b: float = 1.0, threshold: float = 0.5) -> None:
        super().__init__()
        sg = st_dspike.Dspike(b)
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 4)
        self.lif1 = snn.Leaky(beta=0.5, threshold=threshold, spike_grad=sg)
        self.lif2 = snn.Leaky(beta=0.5, threshold=threshold, spike_grad=sg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m1, m2, out = self.lif1.reset_mem(), self.lif2.reset_mem(), 0
        for _ in range(T):
            s1, m1 = self.lif1(self.fc1(x), m1)
            s2, m2 = self.lif2(self.fc2(s1), m2)
            out = out + s2 + 0.1 * m2
        return out


class SJNet(nn.Module):
    """Two SpikingJelly LIF layers, multi-step, one surrogate each."""

    def __init__(self, b: float = 1.0, threshold: float = 0.5) -> None:
        super().__init__()
        self.net = nn.Sequential(
            layer.Linear(6, 8), sj_neuron.LIFNode(v_threshold=threshold,
                                                  surrogate_function=sj_dspike.Dspike(b)),
            layer.Linear(8, 4), sj_neuron.LIFNode(v_threshold=threshold,
                                                  surrogate_function=sj_dspike.Dspike(b)),
        )  # fmt: skip
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self)
        return self.net(x.unsqueeze(0).repeat(T, 1, 1)).mean(0)


def _model(kind: str, b: float = 1.0, threshold: float = 0.5) -> nn.Module:
    torch.manual_seed(0)
    return (STNet if kind == "snntorch" else SJNet)(b, threshold).double()


def _grads(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad()
    (model(x) * torch.linspace(-1, 1, 4, dtype=x.dtype)).sum().backward()
    return [p.grad.clone() for p in model.parameters()]


def _inputs() -> torch.Tensor:
    return torch.rand(16, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3


# --- 1. torch.compile while Algorithm 1 changes b ------------------------------------------------


@pytest.fixture
def fresh_dynamo():
    """Compiled tests start and end with dynamo's caches empty, even when one fails."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.usefixtures("fresh_dynamo")
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize("kind", ["snntorch", "spikingjelly"])
def test_compiled_training_follows_temperature_changes(kind: str, backend: str) -> None:
    """One surrogate used at several layers and steps, b changed between compiled calls (snnTorch
    crashed here: lift_tracked_freevar_to_input); the gradients equal eager at every b."""
    model, x = _model(kind), _inputs()
    compiled = torch.compile(model, backend=backend)
    for b in (1.0, 2.2, 0.6):
        set_temperature(model, b)
        got = _grads(compiled, x)
        want = _grads(model, x)
        assert any(g.abs().sum() > 0 for g in want)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


# --- 2. b travels with state_dict and checkpoints ------------------------------------------------


@pytest.mark.parametrize("kind", ["snntorch", "spikingjelly"])
def test_temperature_saved_and_loaded_with_the_model(kind: str, tmp_path: Path) -> None:
    model, x = _model(kind, b=1.0), _inputs()
    set_temperature(model, 2.2)  # as Algorithm 1 leaves it
    torch.save(model.state_dict(), tmp_path / "model.pt")
    assert [k for k in model.state_dict() if k.endswith(".b")]

    fresh = _model(kind, b=1.0)
    fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert [s.temperature for s in dspike_surrogates(fresh)] == [2.2] * len(
        dspike_surrogates(model)
    )
    for g, w in zip(_grads(fresh, x), _grads(model, x), strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["snntorch", "spikingjelly"])
def test_temperature_stays_exact_through_dtype_casts(kind: str) -> None:
    model = _model(kind, b=2.2).to(torch.bfloat16)
    assert {s.temperature for s in dspike_surrogates(model)} == {2.2}  # bf16 would be 2.203125
    assert all(s.b.dtype == torch.float64 for s in dspike_surrogates(model))
    copied = copy.deepcopy(model)
    set_temperature(copied, 3.0)
    assert {s.temperature for s in dspike_surrogates(model)} == {2.2}


# --- 3. the window is the neuron's threshold -----------------------------------------------------


def _currents(scale: float, shape: tuple[int, ...] = (3, 40)) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    c = (torch.rand(4, *shape, generator=g, dtype=torch.float64) * 1.4 - 0.2) * scale
    return c.requires_grad_()


@pytest.mark.parametrize("kind", ["snntorch", "spikingjelly"])
def test_window_follows_the_neurons_default_threshold(kind: str) -> None:
    """At both frameworks' default threshold 1.0, ``Dspike()`` is dspike's LIF at V_th = 1.0:
    the gradient is non-zero for u in [0, 0.5) and (1.5, 2], where a window at 0.5 cut it."""
    b, c = 1.7, _currents(2.0)
    if kind == "snntorch":
        node = snn.Leaky(beta=0.25, spike_grad=st_dspike.Dspike(b), reset_mechanism="zero")

        def theirs(x: torch.Tensor) -> torch.Tensor:
            return leaky_steps(node, x)

        detach = True
    else:
        node = sj_neuron.IFNode(surrogate_function=sj_dspike.Dspike(b), step_mode="m")

        def theirs(x: torch.Tensor) -> torch.Tensor:
            node.reset()
            return node(x)

        detach = False
    tau = 0.25 if kind == "snntorch" else 1.0
    s_ours, g_ours = _spikes_and_grad(
        lambda x: lif_reference(x, tau, 1.0, Dspike(b, v_threshold=1.0), detach)[0], c
    )
    s_theirs, g_theirs = _spikes_and_grad(theirs, c)
    assert torch.equal(s_theirs, s_ours)
    torch.testing.assert_close(g_theirs, g_ours, rtol=1e-12, atol=1e-14)
    # the gradient where a window at 0.5 would have cut it: u_pre in [0, 0.5) at t = 0
    first = (c[0] >= 0) & (c[0] < 0.5)
    assert first.any() and (g_theirs[0][first] != 0).all()
    assert "v_threshold=neuron's (1)" in repr(node)


def test_per_neuron_and_learnt_thresholds_in_snntorch() -> None:
    """One step of Leaky from rest: spike = H(x - thr_i), d spike / d x_i = Dspike'(x_i - thr_i)
    at each neuron's own threshold; a learnt threshold gets minus that."""
    b = 2.0
    thr = torch.tensor([0.3, 0.5, 1.0, 2.0], dtype=torch.float64)
    x = (torch.rand(64, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
         * 4 * thr).requires_grad_()  # fmt: skip
    for learn in (False, True):
        sg = st_dspike.Dspike(b)
        node = snn.Leaky(beta=0.5, threshold=thr.clone(), learn_threshold=learn, spike_grad=sg,
                         reset_mechanism="zero").double()  # fmt: skip
        spk, _ = node(x, node.reset_mem())
        assert torch.equal(spk, (x > thr).double())
        inputs = (x, node.threshold) if learn else (x,)
        grads = torch.autograd.grad(spk.sum(), inputs)
        want = dspike_grad(x.detach() - thr, b, thr)
        assert (want == 0).any() and (want != 0).any()
        torch.testing.assert_close(grads[0], want, rtol=1e-12, atol=0)
        if learn:
            torch.testing.assert_close(grads[1], -want.sum(0), rtol=1e-12, atol=1e-12)
            assert "learnt (4,)" in repr(node)


@pytest.mark.parametrize("kind", ["snntorch", "spikingjelly"])
def test_threshold_mismatch_and_ambiguity_are_errors(kind: str) -> None:
    x = torch.rand(2, 3)
    if kind == "snntorch":

        def make(sg: nn.Module, threshold: float) -> nn.Module:
            return snn.Leaky(beta=0.5, threshold=threshold, spike_grad=sg)

        def call(n: nn.Module) -> torch.Tensor:
            return n(x, n.reset_mem())[0]

        cls = st_dspike.Dspike
    else:

        def make(sg: nn.Module, threshold: float) -> nn.Module:
            return sj_neuron.IFNode(v_threshold=threshold, surrogate_function=sg)

        def call(n: nn.Module) -> torch.Tensor:
            n.reset()
            return n(x)

        cls = sj_dspike.Dspike
    mismatch = r"v_threshold=0\.5\) serves a neuron whose threshold is 1:"
    with pytest.raises(ValueError, match=mismatch):
        call(make(cls(1.0, v_threshold=0.5), 1.0))
    call(make(cls(1.0, v_threshold=1.0), 1.0))  # agreeing: fine
    shared = cls(1.0)
    a, c = make(shared, 0.5), make(shared, 1.0)
    with pytest.raises(ValueError, match=r"thresholds are 0\.5, 1: give each neuron its own"):
        call(a)
    same = cls(1.0)
    call(make(same, 0.7)), call(make(same, 0.7))  # shared at one threshold: fine
    assert c is not None
    with pytest.raises(ValueError, match=r"pass it, e\.g\. Dspike"):
        cls(1.0)(torch.zeros(3))  # in no neuron, no v_threshold


# --- 4. each framework's firing convention -------------------------------------------------


def test_spikingjelly_fires_at_threshold_as_its_own_surrogates_do() -> None:
    for sg in (sj_dspike.Dspike(), sj_surrogate.Sigmoid()):
        node = sj_neuron.IFNode(surrogate_function=sg)
        assert node(torch.tensor([1.0])).item() == 1.0  # v >= V_th = 1.0 fires
        node.reset()
        assert node(torch.tensor([0.999])).item() == 0.0


def test_snntorch_fires_above_threshold_as_its_own_surrogates_do() -> None:
    for sg in (st_dspike.Dspike(), snn.surrogate.atan()):
        node = snn.Leaky(beta=0.5, spike_grad=sg)
        assert node(torch.tensor([1.0]), node.reset_mem())[0].item() == 0.0  # v > V_th fires
        assert node(torch.tensor([1.001]), node.reset_mem())[0].item() == 1.0


# --- 5. SpikingJelly's fused GPU kernels --------------------------------------------------------


def test_spikingjelly_warns_once_when_it_leaves_its_gpu_kernels() -> None:
    """On the CPU nothing is lost (its built-in surrogates run the same reference loop); on a GPU
    the first call says once that the PyTorch loop runs instead of its CUDA/Triton kernels."""
    sj_dspike._warned.clear()
    node = sj_neuron.LIFNode(surrogate_function=sj_dspike.Dspike(), step_mode="m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        node(torch.rand(T, 2, 3))  # CPU: no warning
    sg = node.surrogate_function
    with pytest.warns(UserWarning, match="on cuda: SpikingJelly runs its CUDA/Triton"):
        sg._check(torch.device("cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sj_dspike.Dspike(v_threshold=1.0)._check(torch.device("cuda"))  # once per process
    sj_dspike._warned.clear()


@pytest.mark.usefixtures("fresh_dynamo")
def test_gradient_of_a_compiled_sj_model_still_matches_its_loss() -> None:
    """Sanity of the whole chain: a compiled SpikingJelly step moves the loss like eager."""
    model, x = _model("spikingjelly"), _inputs()
    y = torch.arange(16) % 4
    eager = copy.deepcopy(model)
    compiled = torch.compile(model, backend="aot_eager")
    for net in (compiled, eager):
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    for p, q in zip(model.parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_thresholds_the_window_cannot_follow_are_named() -> None:
    """A SpikingJelly tensor threshold is laid out by its neuron class (MPBNLIFNode views (C,) as
    (1, C, 1, 1)); a module without the framework's threshold attribute names itself."""
    node = sj_neuron.IFNode(surrogate_function=sj_dspike.Dspike())
    node.v_threshold = torch.tensor([0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"IFNode whose v_threshold is a tensor of shape \(3,\)"):
        node(torch.rand(2, 3))

    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sg = st_dspike.Dspike()

    with pytest.raises(ValueError, match=r"Custom has no 'threshold': pass it"):
        Custom().sg(torch.zeros(3))
