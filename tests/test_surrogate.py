"""Surrogate gradients against their primitives (float64 central differences), Lemma 4.1."""

import math

import pytest
import torch

from dspike.surrogate import (
    Dspike,
    FunctionalSurrogate,
    Rectangular,
    Triangular,
    build_surrogate,
    spike,
)

SURROGATES = [
    Rectangular(),
    Rectangular(width=0.5),
    Triangular(),
    Triangular(gamma=2.0, v_threshold=0.3),
    Dspike(0.3),
    Dspike(1.0),
    Dspike(5.0),
]


def _grid() -> torch.Tensor:
    v = torch.linspace(-1.2, 1.2, 1201, dtype=torch.float64)
    # Stay away from kinks (where a one-sided derivative differs) by more than the step.
    kinks = torch.tensor([-0.5, 0.5, -0.25, 0.25, -0.3, 0.3, 0.0, -1.0, 1.0], dtype=torch.float64)
    return v[(v[:, None] - kinks).abs().min(1).values > 1e-4]


@pytest.mark.parametrize("sg", SURROGATES, ids=repr)
def test_grad_is_derivative_of_primitive(sg):
    v, h = _grid(), 1e-6
    numeric = (sg.primitive(v + h) - sg.primitive(v - h)) / (2 * h)
    torch.testing.assert_close(sg.grad(v), numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sg", SURROGATES, ids=repr)
def test_primitive_goes_from_0_to_1(sg):
    # Every surrogate integrates to one unit of spike across its window.
    v = torch.tensor([-5.0, 5.0], dtype=torch.float64)
    ends = sg.primitive(v) / (sg.gamma * sg.v_threshold if isinstance(sg, Triangular) else 1)
    torch.testing.assert_close(ends, torch.tensor([0.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("b", [0.05, 0.5, 1.0, 3.0, 10.0, 40.0])
def test_dspike_grad_integrates_to_one(b):
    v = torch.linspace(-0.5, 0.5, 200_001, dtype=torch.float64)
    integral = torch.trapezoid(Dspike(b).grad(v), v)
    assert math.isclose(float(integral), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("v_th", [0.2, 1.0, 3.0])
@pytest.mark.parametrize("b", [0.5, 2.0, 8.0])
def test_dspike_window_scales_with_the_threshold(b, v_th):
    """At V_th != 0.5 Dspike is the paper's curve stretched by 2 V_th about the threshold:
    window |v| <= V_th (u in [0, 2 V_th]), primitive(2 V_th x) = Dspike_0.5(x), and the
    gradient scaled by 1 / (2 V_th); it still integrates to one."""
    x = torch.linspace(-1.0, 1.0, 2001, dtype=torch.float64)  # v at the paper's V_th = 0.5
    paper, scaled = Dspike(b), Dspike(b, v_threshold=v_th)
    k = 2.0 * v_th
    torch.testing.assert_close(scaled.primitive(k * x), paper.primitive(x), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(k * scaled.grad(k * x), paper.grad(x), rtol=1e-12, atol=1e-14)
    v = k * x
    assert scaled.grad(v)[v.abs() > v_th].eq(0).all()
    assert scaled.grad(v)[v.abs() < v_th].gt(0).all()
    window = torch.linspace(-v_th, v_th, 200_001, dtype=torch.float64)
    assert math.isclose(float(torch.trapezoid(scaled.grad(window), window)), 1.0, rel_tol=1e-6)


def test_lif_and_model_give_dspike_their_threshold():
    """A network at V_th = 1 trains with Dspike's window at 1: gradient at u = 1.8 (v = 0.8)."""
    from dspike import build_model
    from dspike.neurons import LIF
    from dspike.spec import NeuronSpec

    spec = NeuronSpec(v_threshold=1.0)
    lif = LIF(spec)
    assert lif.surrogate.v_threshold == 1.0
    model = build_model("toy_cnn", 10, spec=spec)
    assert model.act1.surrogate.v_threshold == 1.0
    v = torch.tensor([0.8], dtype=torch.float64)
    assert float(lif.surrogate.grad(v)) > 0 and float(Dspike(1.0).grad(v)) == 0
    with pytest.raises(ValueError, match="window"):
        LIF(spec, surrogate=Dspike(1.0))


def test_lemma_4_1_limits():
    x = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    v = x - 0.5
    # b -> 0+: Dspike(x) -> x (the rectangular surrogate's primitive).
    torch.testing.assert_close(Dspike(1e-4).primitive(v), x, atol=1e-8, rtol=0)
    # b -> inf: a step at x = 0.5 (value 0.5 at the centre).
    sharp = Dspike(1e4).primitive(v)
    expected = torch.where(x > 0.5, 1.0, 0.0).to(torch.float64)
    expected[x == 0.5] = 0.5
    mask = (x - 0.5).abs() > 1e-3
    torch.testing.assert_close(sharp[mask], expected[mask], atol=1e-8, rtol=0)
    assert float(sharp[x == 0.5]) == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_dspike_temperature_must_be_positive(bad):
    with pytest.raises(ValueError, match="temperature"):
        Dspike(bad)
    sg = Dspike(1.0)
    with pytest.raises(ValueError, match="temperature"):
        sg.temperature = bad
    assert sg.temperature == 1.0


@pytest.mark.parametrize("sg", SURROGATES, ids=repr)
def test_spike_forward_is_step_and_backward_is_grad(sg):
    v = torch.linspace(-1, 1, 41, dtype=torch.float64).requires_grad_()
    y = spike(v, sg)
    assert set(y.tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(y, (v > 0).to(torch.float64))
    upstream = torch.randn_like(v)
    (g,) = torch.autograd.grad(y, v, upstream)
    torch.testing.assert_close(g, upstream * sg.grad(v.detach()), rtol=0, atol=0)


def test_build_surrogate_by_name():
    assert isinstance(build_surrogate("dspike", temperature=2.0), Dspike)
    with pytest.raises(ValueError, match="unknown surrogate 'sigmoid'"):
        build_surrogate("sigmoid")


@pytest.mark.parametrize("sg", SURROGATES, ids=repr)
def test_functional_form_takes_tensor_parameters(sg):
    """The compiled LIF calls the same formula with its parameters as 0-d tensors."""
    assert isinstance(sg, FunctionalSurrogate)
    v = _grid()
    params = [torch.tensor(p, dtype=torch.float64) for p in sg.grad_params()]
    torch.testing.assert_close(sg.grad_function(v, *params), sg.grad(v), rtol=1e-14, atol=1e-14)
