"""Algorithm 1: the temperature moves toward a planted optimum, stays > 0, updates every Dspike."""

from __future__ import annotations

import pytest
import torch

from dspike.fdg import surrogate_gradient
from dspike.models import build_model
from dspike.surrogate import Dspike, Rectangular
from dspike.temperature import dspike_surrogates, set_temperature, update_temperature


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("toy_cnn", 10, time_steps=3, surrogate=Dspike(1.0), image_size=10).double()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(8, 1, 10, 10, generator=g, dtype=torch.float64) * 2
    return model, x, torch.randint(0, 10, (8,), generator=g)


@pytest.mark.parametrize("start", [1.0, 3.4])
def test_moves_to_planted_temperature_and_stays(start: float) -> None:
    """The target is the Dspike gradient at b* = 2.2, so the best b is known to be 2.2."""
    model, x, y = _setup()
    set_temperature(model, 2.2)
    planted = surrogate_gradient(model, None, x, y)
    path = [start]
    for _ in range(9):
        step = update_temperature(model, x, y, path[-1], reference=planted)
        assert step.previous == path[-1]
        assert step.similarities[step.temperature] == max(step.similarities.values())
        path.append(step.temperature)
    n = round(abs(2.2 - start) / 0.2)
    sign = 1 if start < 2.2 else -1
    expected = [round(start + sign * 0.2 * i, 12) for i in range(n + 1)]
    assert path == expected + [2.2] * (len(path) - len(expected))
    assert step.similarities[2.2] == pytest.approx(1.0)
    assert all(s.temperature == 2.2 for s in dspike_surrogates(model))


def test_fdg_reference_every_candidate_scored() -> None:
    model, x, y = _setup()
    step = update_temperature(model, x, y, 1.0, eps=0.1)
    assert sorted(step.similarities) == [0.8, 1.0, 1.2]
    assert all(-1.0 <= s <= 1.0 for s in step.similarities.values())
    assert step.temperature == max(step.similarities, key=step.similarities.get)
    assert model.act1.surrogate.temperature == step.temperature


def test_temperature_stays_positive() -> None:
    model, x, y = _setup()
    step = update_temperature(model, x, y, 0.1, delta=0.2, reference=torch.ones(6, 1, 3, 3))
    assert sorted(step.similarities) == [0.1, 0.3]


def test_sets_every_dspike_instance() -> None:
    model, x, y = _setup()
    model.act1.surrogate = Dspike(5.0)  # a second, distinct instance
    extra = torch.nn.ModuleList([type(model.act1)(surrogate=Dspike(7.0))])
    model.extra = extra
    assert len(dspike_surrogates(model)) == 2
    step = update_temperature(model, x, y, 1.0)
    assert {s.temperature for s in dspike_surrogates(model)} == {step.temperature}


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"temperature": 0.0}, "temperature"), ({"delta": -0.2}, "delta")],
)
def test_bad_input(kwargs: dict, word: str) -> None:
    model, x, y = _setup()
    with pytest.raises(ValueError, match=word):
        update_temperature(model, x, y, **{"temperature": 1.0, **kwargs})


def test_model_without_dspike() -> None:
    model = build_model("toy_cnn", 10, surrogate=Rectangular())
    with pytest.raises(ValueError, match="Dspike"):
        update_temperature(model, torch.rand(2, 1, 28, 28), torch.tensor([0, 1]), 1.0)
