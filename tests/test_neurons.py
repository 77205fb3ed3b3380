"""LIF (Eq. 1-2) against hand-computed sequences and its autograd reference."""

import pytest
import torch

from dspike.neurons import LIF, lif, lif_reference
from dspike.surrogate import Dspike, Rectangular, Triangular


def test_lif_matches_hand_computed_sequence_with_reset():
    tau, vth = 0.5, 0.6
    c = torch.tensor([0.4, 0.5, 0.2, 0.7, 0.0])
    # u_pre: 0.4 -> 0.2+0.5=0.7 (fire, reset to 0) -> 0.2 -> 0.1+0.7=0.8 (fire) -> 0.0
    expected = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])
    y = lif(c[:, None], tau, vth, Rectangular())[:, 0]
    torch.testing.assert_close(y, expected)
    _, u = lif_reference(c[:, None], tau, vth, Rectangular())
    torch.testing.assert_close(u[:, 0], torch.tensor([0.4, 0.0, 0.2, 0.0, 0.0]))


def test_threshold_is_strict():
    y = lif(torch.tensor([[0.5], [0.5000001]]), tau=0.0, v_threshold=0.5)
    assert y.flatten().tolist() == [0.0, 1.0]


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("sg", [Rectangular(), Triangular(), Dspike(0.7), Dspike(3.0)], ids=repr)
def test_fused_backward_equals_autograd_reference(sg, detach_reset):
    torch.manual_seed(0)
    c = (torch.randn(7, 3, 11, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
    y = lif(c, 0.3, 0.45, sg, detach_reset)
    y_ref, _ = lif_reference(c, 0.3, 0.45, sg, detach_reset)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    up = torch.randn_like(y)
    (g,) = torch.autograd.grad(y, c, up)
    (g_ref,) = torch.autograd.grad(y_ref, c, up)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


def test_reset_gradient_is_used_unless_detached():
    c = torch.tensor([[0.7], [0.3]], dtype=torch.float64, requires_grad=True)
    sg = Rectangular(width=2.0)
    g_attached = torch.autograd.grad(lif(c, 0.5, 0.5, sg)[1].sum(), c)[0]
    g_detached = torch.autograd.grad(lif(c, 0.5, 0.5, sg, True)[1].sum(), c)[0]
    assert not torch.equal(g_attached, g_detached)


def test_module_folded_layout_equals_time_major():
    torch.manual_seed(1)
    x = torch.randn(4, 2, 3, 5, 5)
    plain = LIF(tau=0.4)(x)
    folded = LIF(tau=0.4, time_steps=4)(x.flatten(0, 1))
    torch.testing.assert_close(folded, plain.flatten(0, 1))


def test_no_state_survives_between_calls():
    m = LIF()
    x = torch.rand(3, 2, 8)
    torch.testing.assert_close(m(x), m(x))


def test_firing_rate_recording():
    m = LIF(tau=0.0, v_threshold=0.5)
    m.record_rate = True
    m(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert m.firing_rate == pytest.approx(3 / 4)
    m.reset_rate()
    assert m.firing_rate == 0.0


def test_firing_rate_exact_beyond_half_precision_range():
    """70,000 spikes in float16 overflow a float16 sum (max 65504); the count must stay exact."""
    m = LIF(tau=0.0, v_threshold=0.5)
    m.record_rate = True
    x = torch.ones(1, 70_000, dtype=torch.float16)
    m(x)
    m(torch.zeros(1, 70_000, dtype=torch.float16))
    assert m.spike_count == 70_000.0
    assert m.firing_rate == pytest.approx(0.5)


def test_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        LIF(tau=1.5)
