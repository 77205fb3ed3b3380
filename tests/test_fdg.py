"""Finite-difference gradients (Eq. 10): batched vs naive, ANN agreement, bad input."""

from __future__ import annotations

import pytest
import torch

from dspike.fdg import cosine_similarity, fdg, surrogate_gradient
from dspike.models import build_model


def _batch(shape: tuple[int, ...], classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g, dtype=torch.float64) * 2
    return x, torch.randint(0, classes, (shape[0],), generator=g)


def _model(name: str, mode: str, **kw):
    torch.manual_seed(0)
    return build_model(name, 10, mode=mode, **kw).double()


CASES = {
    "toy_snn": (("toy_cnn", "snn"), {"time_steps": 3}, (6, 1, 28, 28)),
    "toy_ann": (("toy_cnn", "ann"), {}, (6, 1, 28, 28)),
    "resnet_snn_bn": (("resnet18", "snn"), {"width": 2, "time_steps": 2}, (3, 3, 8, 8)),
    "resnet_ann_bn": (("resnet18", "ann"), {"width": 2}, (3, 3, 8, 8)),
    "resnet_snn_frames": (("resnet18", "snn"), {"width": 2, "time_steps": 2}, (3, 2, 3, 8, 8)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_equals_naive(case: str) -> None:
    (name, mode), kw, shape = CASES[case]
    model = _model(name, mode, **kw).train()
    x, y = _batch(shape)
    buffers = [b.clone() for b in model.buffers()]
    # Every 3rd weight of the ResNets (all output channels, 36 copies in chunks of 5) keeps it fast.
    idx = None if name == "toy_cnn" else range(0, model.conv1.weight.numel(), 3)
    batched = fdg(model, None, x, y, eps=0.1, chunk_size=5, indices=idx)
    naive = fdg(model, None, x, y, eps=0.1, batched=False, indices=idx)
    assert batched.shape == model.conv1.weight.shape
    assert batched.abs().max() > 0
    torch.testing.assert_close(batched, naive, rtol=1e-6, atol=1e-10)
    # Train-mode batch statistics, running statistics untouched, the model's mode restored.
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    assert model.training


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_batched_equals_naive_other_first_layers(padding_mode: str) -> None:
    """A grouped conv with bias, or a non-zero padding, takes the generic (vmap) response path."""
    model = _model("resnet18", "snn", width=2, time_steps=2, in_channels=2)
    model.conv1 = torch.nn.Conv2d(2, 2, 3, padding=1, groups=2, padding_mode=padding_mode,
                                  dtype=torch.float64)
    x, y = _batch((3, 2, 8, 8))
    torch.testing.assert_close(fdg(model, None, x, y, 0.1, chunk_size=4),
                               fdg(model, None, x, y, 0.1, batched=False), rtol=1e-6, atol=1e-10)


def test_eval_mode_uses_running_statistics() -> None:
    model = _model("resnet18", "snn", width=2, time_steps=2)
    x, y = _batch((3, 3, 8, 8))
    with torch.no_grad():
        model.train()(x)  # move the running statistics away from their initial values
    model.eval()
    kw = {"bn_mode": "eval", "indices": range(0, 54, 3)}
    batched = fdg(model, None, x, y, 0.1, **kw)
    torch.testing.assert_close(batched, fdg(model, None, x, y, 0.1, batched=False, **kw),
                               rtol=1e-6, atol=1e-10)
    assert not torch.equal(batched, fdg(model, None, x, y, 0.1, indices=kw["indices"]))
    assert not model.training


def test_ann_fdg_matches_autograd() -> None:
    """Experiment I: in an ANN the FDG at eps 1e-3 points where the gradient does."""
    torch.manual_seed(0)
    model = build_model("toy_cnn", 10, mode="ann")
    x, y = _batch((16, 1, 28, 28))
    x = x.float()
    grad = surrogate_gradient(model, None, x, y)
    assert cosine_similarity(grad, fdg(model, None, x, y, eps=1e-3)) > 0.99


def test_surrogate_gradient_is_autograd_and_leaves_grad_alone() -> None:
    model = _model("resnet18", "snn", width=2, time_steps=2).train()
    x, y = _batch((3, 3, 8, 8))
    grad = surrogate_gradient(model, "stages.0.0.conv1.weight", x, y)
    assert model.conv1.weight.grad is None
    torch.nn.functional.cross_entropy(model(x), y).backward()
    torch.testing.assert_close(grad, model.stages[0][0].conv1.weight.grad)


def test_other_parameter_and_indices() -> None:
    """Any parameter works (coordinate by coordinate); ``indices`` selects coordinates."""
    model = _model("toy_cnn", "ann")
    x, y = _batch((4, 1, 28, 28))
    idx = [0, 7, 100, 2000]
    got = fdg(model, "fc.weight", x, y, 1e-4, indices=idx)
    grad = surrogate_gradient(model, "fc.weight", x, y)
    torch.testing.assert_close(got.flatten()[idx], grad.flatten()[idx], rtol=1e-5, atol=1e-9)
    assert got.count_nonzero() <= len(idx)


def test_cosine_similarity() -> None:
    a = torch.tensor([1.0, 0.0, 1.0])
    assert cosine_similarity(a, 2 * a) == pytest.approx(1.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(a, torch.tensor([0.0, 1.0, 0.0])) == 0.0
    assert cosine_similarity(a, torch.zeros(3)) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": -0.1}, "eps"),
        ({"param_name": "nope.weight"}, "param_name"),
        ({"inputs": torch.zeros(0, 1, 28, 28), "targets": torch.zeros(0, dtype=torch.long)},
         "inputs"),
        ({"targets": torch.zeros(3, dtype=torch.long)}, "targets"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"indices": [54]}, "indices"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, word: str) -> None:
    model = build_model("toy_cnn", 10)
    args = {"param_name": None, "inputs": torch.rand(2, 1, 28, 28),
            "targets": torch.tensor([1, 2]), "eps": 0.1, **kwargs}
    with pytest.raises(ValueError, match=word):
        fdg(model, **args)
