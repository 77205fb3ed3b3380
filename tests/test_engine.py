"""Training engine: config validation, learning on real bundled data, TIT init, Algorithm 1."""

from __future__ import annotations

import pytest
import torch
from engine_support import one_thread, replace, toy_config, toy_data

from dspike.data import build_dataset, materialize_bundled
from dspike.engine import (
    ConfigError,
    ModelConfig,
    TrainConfig,
    build_network,
    fit,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.mark.parametrize(
    ("group", "values", "key"),
    [
        ("model", {"name": "resnet99"}, "model.name"),
        ("surrogate", {"name": "sigmoid"}, "surrogate.name"),
        ("surrogate", {"name": "fdg"}, "surrogate.name"),
        ("surrogate", {"name": "none"}, "surrogate.name"),  # an SNN needs a surrogate
        ("model", {"time_steps": 0}, "model.time_steps"),
        ("optim", {"lr": -0.1}, "optim.lr"),
        ("optim", {"lr": float("nan")}, "optim.lr"),
        ("run", {"epochs": -1}, "run.epochs"),
        ("surrogate", {"fdg_epsilon": 0.0}, "surrogate.fdg_epsilon"),
        ("surrogate", {"temperature": -1.0}, "surrogate.temperature"),
        ("optim", {"schedule": "step"}, "optim.schedule"),
        ("run", {"select": "median"}, "run.select"),
        ("model", {"init": "/no/such/file.pt"}, "model.init"),
        ("model", {"lif_backend": "triton"}, "model.lif_backend"),
    ],
)
def test_bad_config_names_the_key(group, values, key):
    with pytest.raises(ConfigError) as err:
        replace(toy_config(), group, **values).validate()
    assert err.value.key == key and str(err.value).startswith(key)


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    arch = {"width": 3, "image_size": 8, "in_channels": 1}
    other = build_network(replace(toy_config(), "model", arch=arch))
    torch.save(other.state_dict(), tmp_path / "other.pt")
    with pytest.raises(ConfigError, match=r"model\.init") as err:
        build_network(replace(toy_config(), "model", init=str(tmp_path / "other.pt")))
    assert "size mismatch" in str(err.value)


def test_tit_t4_starts_from_the_t6_weights(tmp_path):
    """Sec. 4.4: the T=4 network is the T=6 network's parameters with fewer steps."""
    t6 = build_network(replace(toy_config(), "model", time_steps=6))
    with torch.no_grad():
        t6.conv1.weight.add_(1.0)  # differs from any fresh initialisation
    torch.save(t6.state_dict(), tmp_path / "t6.pt")
    cfg = replace(toy_config(), "model", time_steps=4, init=str(tmp_path / "t6.pt"))
    t4 = build_network(cfg)
    assert t4.time_steps == 4
    for key, value in t6.state_dict().items():
        assert torch.equal(t4.state_dict()[key], value), key


def test_snn_learns_bundled_mnist_well_above_chance(tmp_path):
    """A toy SNN (T=4, Sec. 4.2) on real MNIST digits: 10 classes, chance is 10%."""
    root = materialize_bundled("mnist", tmp_path / "data")
    pick = torch.randperm(1000, generator=torch.Generator().manual_seed(0)).tolist()
    train = torch.utils.data.Subset(build_dataset("mnist", root, True), pick[:640])
    test = torch.utils.data.Subset(build_dataset("mnist", root, False), pick[:320])
    cfg = TrainConfig(
        model=ModelConfig(name="toy_cnn", time_steps=4, num_classes=10),
        **{g: getattr(toy_config(), g) for g in ("surrogate", "optim", "data", "run")},
    )
    cfg = replace(replace(cfg, "data", batch_size=32), "optim", lr=0.05)
    result = fit(cfg, build_network(cfg), train, test)
    assert result.final_acc > 50.0, result.history
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert 0.0 < result.history[-1]["firing_rate"] < 1.0


def test_ann_trains_and_reports_no_temperature():
    train, test = toy_data()
    cfg = toy_config(mode="ann", surrogate="none", time_steps=1)
    result = fit(cfg, build_network(cfg), train, test)
    assert result.temperature is None and result.history[-1]["firing_rate"] is None
    assert result.best_acc >= result.final_acc > 60.0


def test_algorithm1_runs_every_epoch(monkeypatch):
    """Algorithm 1 at the start of each epoch; its b is the temperature of every Dspike."""
    import dspike.engine.loop as loop
    from dspike.temperature import dspike_surrogates, update_temperature

    calls = []
    real = update_temperature

    def spy(model, inputs, targets, b, **kw):
        calls.append((b, inputs.shape[0]))
        return real(model, inputs, targets, b, **kw)

    monkeypatch.setattr(loop, "update_temperature", spy)
    train, test = toy_data()
    cfg = toy_config(surrogate="dspike_adaptive", epochs=3)
    result = fit(cfg, build_network(cfg), train, test)
    assert len(calls) == 3 and all(n == cfg.surrogate.fdg_batch_size for _, n in calls)
    rows = result.history
    assert [b for b, _ in calls][1:] == [row["temperature"] for row in rows][:-1]
    for row in rows:
        sims = [row[f"cos_sim_{k}"] for k in ("down", "stay", "up")]
        assert sum(s is not None for s in sims) >= 2
        assert row["temperature"] > 0
    temperatures = {s.temperature for s in dspike_surrogates(result.model)}
    assert temperatures == {rows[-1]["temperature"]}


def test_bf16_on_cpu_warns_and_trains_in_float32():
    train, test = toy_data()
    cfg = toy_config(epochs=1, bf16=True)
    with pytest.warns(UserWarning, match="bf16"):
        result = fit(cfg, build_network(cfg), train, test)
    assert next(result.model.parameters()).dtype == torch.float32
