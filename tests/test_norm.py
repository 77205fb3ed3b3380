"""tdBN (Eq. 4-5) against the formula written out by hand; SyncBatchNorm conversion."""

import pytest
import torch
from torch import nn

from dspike.norm import TdBatchNorm2d


def _by_hand(x, weight, bias, scale, mean=None, var=None, eps=1e-5):
    if mean is None:
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
    xhat = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + eps)
    return weight[None, :, None, None] * scale * xhat + bias[None, :, None, None]


def _module(alpha=0.8, vth=0.5, form="scale"):
    torch.manual_seed(0)
    m = TdBatchNorm2d(3, alpha=alpha, v_threshold=vth, form=form).double()
    with torch.no_grad():
        m.bn.weight.uniform_(0.5, 1.5)
        m.bn.bias.uniform_(-0.2, 0.2)
    return m


def test_train_mode_normalises_over_time_and_batch():
    m = _module()
    t, b = 4, 2
    x = torch.randn(t * b, 3, 5, 5, dtype=torch.float64) * 3 + 1
    out = m(x)
    expected = _by_hand(x, m.bn.weight, m.bn.bias, 0.8 * 0.5)
    torch.testing.assert_close(out, expected)
    # Running statistics follow BatchNorm's rule (unbiased variance, momentum 0.1).
    torch.testing.assert_close(m.bn.running_mean, 0.1 * x.mean(dim=(0, 2, 3)))
    assert int(m.bn.num_batches_tracked) == 1


def test_eval_mode_uses_running_statistics():
    m = _module()
    m(torch.randn(8, 3, 4, 4, dtype=torch.float64))
    m.eval()
    x = torch.randn(6, 3, 4, 4, dtype=torch.float64)
    expected = _by_hand(x, m.bn.weight, m.bn.bias, 0.4, m.bn.running_mean, m.bn.running_var)
    torch.testing.assert_close(m(x), expected)


def test_init_form_starts_as_scale_form():
    x = torch.randn(8, 3, 4, 4)
    scale_form = TdBatchNorm2d(3, alpha=1.0, v_threshold=0.5, form="scale")
    init_form = TdBatchNorm2d(3, alpha=1.0, v_threshold=0.5, form="init")
    torch.testing.assert_close(init_form(x), scale_form(x))
    assert init_form.bn.weight.detach().tolist() == [0.5] * 3
    assert set(init_form.state_dict()) == set(scale_form.state_dict())


@pytest.mark.parametrize("training", [True, False])
def test_sync_batchnorm_conversion_keeps_the_maths(training):
    m = _module(alpha=0.7)
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    m.train(training)
    reference = _module(alpha=0.7).train(training)(x)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(_module(alpha=0.7)).train(training)
    assert isinstance(converted.bn, nn.SyncBatchNorm)
    torch.testing.assert_close(converted(x), reference)


def test_bad_form():
    with pytest.raises(ValueError, match="form"):
        TdBatchNorm2d(3, form="other")


def test_per_copy_statistics_normalises_each_stacked_copy_alone():
    """The batched FDG's hook: k copies stacked as [time, copy, sample] behave as k passes."""
    t, k, n = 2, 3, 4
    copies = [torch.randn(t * n, 3, 4, 4, dtype=torch.float64) * (i + 1) + i for i in range(k)]
    stacked = torch.stack([c.unflatten(0, (t, n)) for c in copies], 1).flatten(0, 2)
    m = _module()
    buffers = [b.clone() for b in m.buffers()]
    with m.per_copy_statistics(k, n):
        out = m(stacked).unflatten(0, (t, k, n))
    for i, c in enumerate(copies):
        expected = _by_hand(c, m.bn.weight, m.bn.bias, 0.8 * 0.5)
        torch.testing.assert_close(out[:, i].flatten(0, 1), expected)
    assert all(torch.equal(a, b) for a, b in zip(buffers, m.buffers(), strict=True))
    torch.testing.assert_close(m(copies[0]), _by_hand(copies[0], m.bn.weight, m.bn.bias, 0.4))
