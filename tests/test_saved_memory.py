"""What a training step keeps for backward (issue 27): spikes as bytes, tdBN and LIF sharing one
tensor, a residual LIF keeping its summands; and the gradients unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dspike.models import build_model
from dspike.models.resnet import BasicBlock
from dspike.neurons import LIF, lif_reference
from dspike.norm import TdBatchNorm2d
from dspike.saved_spikes import _ByteSaver, mark_spikes, spikes_saved_as_bytes
from dspike.spec import NeuronSpec

T, B = 3, 2


class _ReferenceLIF(nn.Module):
    """The LIF as :func:`lif_reference` (plain autograd over T), on folded input."""

    def __init__(self, time_steps: int) -> None:
        super().__init__()
        self.time_steps = time_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lif_reference(x.unflatten(0, (self.time_steps, -1)))[0].flatten(0, 1)


def _reference(model: nn.Module) -> nn.Module:
    """``model`` with every LIF :func:`lif_reference` and every tdBN keeping its input."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LIF):
                setattr(parent, name, _ReferenceLIF(child.time_steps))
            elif isinstance(child, TdBatchNorm2d):
                child.saves_output = False
    return model


def _randomise_norms(model: nn.Module, seed: int = 1) -> None:
    """Affine parameters away from their (1, 0) start, so recovering x_hat does some work."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g, dtype=m.weight.dtype) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g, dtype=m.bias.dtype) * 0.2)


def _grads(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    out = model(x)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    params = [p for p in model.parameters()]
    return (out, *torch.autograd.grad((out * weights).sum(), [x, *params]))


@pytest.mark.parametrize("backend", ["eager", "compiled"])
def test_resnet_gradients_equal_the_float64_reference(backend):
    """The whole ResNet-18 (residual blocks, downsampling shortcuts, broadcast first layer):
    output and every gradient equal the float64 reference's (plain-autograd LIF, tdBN keeping
    its input, no spikes as bytes)."""
    torch.manual_seed(0)
    spec = NeuronSpec(backend=backend)
    model = build_model("resnet18", 10, "snn", T, width=4, spec=spec).double().train()
    _randomise_norms(model)
    reference = _reference(build_model("resnet18", 10, "snn", T, width=4, spec=spec).double())
    reference.load_state_dict(model.state_dict())
    x = torch.randn(B, 3, 32, 32, dtype=torch.float64)
    got, want = _grads(model, x), _grads(reference.train(), x)
    assert got[0].abs().sum() > 0 and all(g.abs().sum() > 0 for g in want[1:3])
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def _saved_bytes(run) -> int:
    """Bytes of the distinct storages autograd keeps while ``run()`` runs under the library's
    hooks (spikes as bytes)."""
    saver, storages = _ByteSaver(), {}

    def pack(x):
        packed = saver.pack(x)
        kept = packed.root if hasattr(packed, "root") else packed
        if not isinstance(x, nn.Parameter) and x.numel() > 64:  # activations, not weights
            storages[kept.untyped_storage().data_ptr()] = kept.untyped_storage().nbytes()
        return packed

    with torch.autograd.graph.saved_tensors_hooks(pack, saver.unpack):
        out = run()
    out.sum().backward()
    return sum(storages.values())


def _spikes(shape) -> torch.Tensor:
    return (torch.rand(shape) > 0.7).float().requires_grad_()


def test_a_conv_tdbn_lif_conv_chain_keeps_five_bytes_a_value():
    """conv -> tdBN -> LIF -> conv keeps the first conv's input, tdBN's output (which the LIF
    shares) and the spikes as bytes: 4 + 1 bytes a value after the input (it was 4 + 4 + 4)."""
    torch.manual_seed(0)
    n, c, hw = T * B, 8, 8
    spec = NeuronSpec(backend="eager")
    chain = nn.Sequential(
        nn.Conv2d(c, c, 3, padding=1, bias=False),
        TdBatchNorm2d.from_spec(c, spec, saves_output=True),
        LIF(spec, time_steps=T),
        nn.Conv2d(c, c, 3, padding=1, bias=False),
    )
    x = torch.randn(n, c, hw, hw, requires_grad=True)
    values = n * c * hw * hw
    assert _saved_bytes(lambda: chain(x)) == 4 * values + 4 * values + 1 * values


def test_a_residual_block_keeps_ten_bytes_a_value():
    """A basic block on spikes keeps its input and the inner spikes as bytes and the two tdBN
    outputs, which the LIFs share (the second LIF keeps its two summands): 1 + 4 + 1 + 4 bytes
    a value (it was 6 x 4)."""
    torch.manual_seed(0)
    net = build_model("resnet18", 10, "snn", T, width=8, spec=NeuronSpec(backend="eager"))
    block = net.stages[0][0]
    assert isinstance(block, BasicBlock) and isinstance(block.shortcut, nn.Identity)
    x = mark_spikes(_spikes((T * B, 8, 8, 8)))
    values = x.numel()
    assert _saved_bytes(lambda: block(x)) == (1 + 4 + 1 + 4) * values


def test_spikes_round_trip_exactly_and_modified_ones_are_not_packed():
    """Packed spikes come back as they were, views included; spikes changed in place after
    they were marked are no longer known to be 0/1 and are saved as they are."""
    saver = _ByteSaver()
    s = mark_spikes(_spikes((4, 6)))
    view = s.t()[1:]
    packed = saver.pack(view)
    assert packed.root.dtype == torch.uint8
    torch.testing.assert_close(saver.unpack(packed), view, rtol=0, atol=0)
    assert saver.pack(s[2]).root is packed.root  # one copy per spike tensor
    with torch.no_grad():
        s.mul_(2)
    assert saver.pack(s) is s


def test_a_norm_whose_output_cannot_give_back_its_input_keeps_its_input():
    """A channel with gamma = 0 (x_hat is not in the output): the norm keeps its input and
    the gradients are F.batch_norm's."""
    torch.manual_seed(0)
    keeping = TdBatchNorm2d(3, saves_output=True).double()
    plain = TdBatchNorm2d(3).double()
    with torch.no_grad():
        for m in (keeping, plain):
            m.bn.weight.copy_(torch.tensor([1.0, 0.0, 2.0]))
            m.bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    x = torch.randn(6, 3, 4, 4, dtype=torch.float64)
    got, want = (_grads(m, x) for m in (keeping, plain))
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    x = torch.randn(6, 3, 4, 4, requires_grad=True)
    with spikes_saved_as_bytes():
        assert _saved_bytes(lambda: keeping.float()(x)) == 4 * x.numel()  # x, not y


def test_recompute_keeps_block_inputs_only_with_the_same_gradients_and_statistics():
    """``neuron.recompute``: a residual block keeps only its input and runs again in backward;
    the gradients, the BN running statistics and the firing-rate counts are those without."""
    torch.manual_seed(0)
    models = {}
    for recompute in (False, True):
        spec = NeuronSpec(backend="eager", recompute=recompute)
        models[recompute] = build_model("resnet18", 10, "snn", T, width=4, spec=spec).double()
    _randomise_norms(models[False])
    models[True].load_state_dict(models[False].state_dict())
    x = torch.randn(B, 3, 32, 32, dtype=torch.float64)
    for m in models.values():
        for lif in m.modules():
            if isinstance(lif, LIF):
                lif.record_rate = True
    got, want = _grads(models[True], x), _grads(models[False], x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(models[True].state_dict(), models[False].state_dict())
    rates = [[m.spike_count for m in n.modules() if isinstance(m, LIF)] for n in models.values()]
    assert rates[0] == rates[1] and sum(rates[0]) > 0

    spikes = mark_spikes(_spikes((T * B, 4, 16, 16)))
    kept = {r: _saved_bytes(lambda m=m: m.float().stages(spikes)) for r, m in models.items()}
    assert 0 < kept[True] < 0.25 * kept[False]  # the residual stages: their blocks' inputs
