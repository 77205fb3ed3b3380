"""The paper's networks: shapes, ANN/SNN twinning, Time Inheritance, broadcast first layer."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dspike import build_model
from dspike.models import PAPER_INPUT
from dspike.neurons import LIF, lif_reference

NUM_CLASSES = {"toy_cnn": 10, "resnet18": 10, "resnet19": 10, "resnet34": 1000, "vgg16": 1000}


@pytest.mark.parametrize("name", sorted(NUM_CLASSES))
@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_forward_backward_at_paper_input_size(name, mode):
    torch.manual_seed(0)
    # Full width at the paper's input size; T=2 keeps the 224x224 networks to seconds.
    model = build_model(name, NUM_CLASSES[name], mode=mode, time_steps=2)
    x = torch.randn(2, *PAPER_INPUT[name])
    out = model(x)
    assert out.shape == (2, NUM_CLASSES[name])
    loss = F.cross_entropy(out, torch.tensor([0, 1]))
    assert torch.isfinite(loss)
    loss.backward()
    assert model.conv1.weight.grad is not None
    assert torch.isfinite(model.conv1.weight.grad).all()


def _small(name="resnet18", **kw):
    kw.setdefault("width", 4)
    return build_model(name, 10, **kw)


@pytest.mark.parametrize("name", ["toy_cnn", "resnet18", "resnet19", "resnet34", "vgg16"])
def test_ann_state_dict_loads_into_snn(name):
    ann = _small(name, mode="ann", width=4 if name != "toy_cnn" else 6)
    snn = _small(name, mode="snn", time_steps=3, width=4 if name != "toy_cnn" else 6)
    assert list(ann.state_dict()) == list(snn.state_dict())
    snn.load_state_dict(ann.state_dict())  # strict
    for k, v in ann.state_dict().items():
        torch.testing.assert_close(snn.state_dict()[k], v)


def _lif_inputs(model, x):
    """Input current of every LIF, recorded by forward pre-hooks, as [T, B, ...]."""
    seen = []
    hooks = [
        m.register_forward_pre_hook(
            lambda mod, args: seen.append(args[0].unflatten(0, (mod.time_steps, -1)))
        )
        for m in model.modules()
        if isinstance(m, LIF)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def test_time_inheritance_first_steps_identical():
    torch.manual_seed(0)
    t6 = _small(mode="snn", time_steps=6)
    t6.train()
    t6(torch.randn(8, 3, 32, 32))  # give BN non-trivial running statistics
    t4 = _small(mode="snn", time_steps=4)
    t4.load_state_dict(t6.state_dict())
    t6.eval()
    t4.eval()
    x = torch.randn(3, 3, 32, 32)
    c6, c4 = _lif_inputs(t6, x), _lif_inputs(t4, x)
    assert len(c6) == len(c4) > 10
    for a, b in zip(c6, c4, strict=True):
        _, u6 = lif_reference(a)
        _, u4 = lif_reference(b)
        torch.testing.assert_close(u6[:4], u4, rtol=0, atol=0)


def test_set_time_steps_equals_fresh_model():
    torch.manual_seed(0)
    m = _small(mode="snn", time_steps=6).eval()
    fresh = _small(mode="snn", time_steps=4).eval()
    fresh.load_state_dict(m.state_dict())
    m.set_time_steps(4)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(m(x), fresh(x))


@pytest.mark.parametrize("train", [True, False])
def test_broadcast_first_layer_equals_repeated_input(train):
    torch.manual_seed(0)
    model = _small(mode="snn", time_steps=5).train(train)
    x = torch.randn(4, 3, 32, 32)
    frames = x.unsqueeze(1).expand(4, 5, 3, 32, 32)
    out_static = model(x)
    model.bn1.bn.reset_running_stats()
    model = model.train(train)
    out_frames = model(frames)
    torch.testing.assert_close(out_static, out_frames, rtol=1e-5, atol=1e-5)


def test_frames_input_needs_matching_time_steps():
    model = _small(mode="snn", time_steps=4)
    with pytest.raises(ValueError, match="3 frames but the model runs 4"):
        model(torch.randn(2, 3, 3, 32, 32))


def test_output_is_mean_over_time_of_last_layer():
    torch.manual_seed(0)
    model = _small("toy_cnn", mode="snn", time_steps=3, width=6).eval()
    x = torch.randn(2, 1, 28, 28)
    per_step = []
    model.fc.register_forward_hook(lambda m, a, out: per_step.append(out))
    out = model(x)
    torch.testing.assert_close(out, per_step[0].unflatten(0, (3, 2)).mean(0))


def test_sync_batchnorm_conversion_reaches_every_tdbn():
    model = nn.SyncBatchNorm.convert_sync_batchnorm(_small(mode="snn"))
    assert not any(type(m) is nn.BatchNorm2d for m in model.modules())
    assert any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        build_model("resnet50", 10)
    with pytest.raises(ValueError, match="time_steps"):
        build_model("resnet18", 10, time_steps=0)
    with pytest.raises(ValueError, match="mode"):
        build_model("resnet18", 10, mode="bnn")
