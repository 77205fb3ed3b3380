"""Training engine: config validation, learning on real bundled data, TIT init, Algorithm 1,
the best epoch's weights."""

from __future__ import annotations

import pytest
import torch
from engine_support import (
    FlipAfter,
    Flipped,
    assert_same_state,
    one_thread,
    replace,
    toy_config,
    toy_data,
)

from dspike.allocator import retain_freed_memory
from dspike.data import build_dataset, make_loader, materialize_bundled
from dspike.energy import measure_activity
from dspike.engine import (
    ConfigError,
    ModelConfig,
    TrainConfig,
    build_network,
    fit,
    load_checkpoint,
)
from dspike.engine.checkpoint import cpu_copy
from dspike.neurons import LIF, use_eager_if_short
from dspike.spec import NeuronSpec


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
    ],
)
def test_bad_config_names_the_key(group, values, key):
    with pytest.raises(ConfigError) as err:
        replace(toy_config(), group, **values).validate()
    assert err.value.key == key and str(err.value).startswith(key)


@pytest.mark.parametrize(
    ("values", "key"),
    [({"backend": "triton"}, "neuron.backend"), ({"tau": 1.5}, "neuron.tau"),
     ({"v_threshold": 0.0}, "neuron.v_threshold"), ({"form": "other"}, "tdbn.form")],
)  # fmt: skip
def test_bad_neuron_spec_names_the_params_key(values, key):
    with pytest.raises(ConfigError) as err:
        NeuronSpec(**values)
    assert err.value.key == key and str(err.value).startswith(key)


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    options = {"width": 3, "image_size": 8, "in_channels": 1}
    other = build_network(replace(toy_config(), "model", options=options))
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
    retain_freed_memory.cache_clear()
    result = fit(cfg, build_network(cfg), train, test)
    assert retain_freed_memory.cache_info().currsize == 1  # fit on the CPU retains freed memory
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


class Snapshots(FlipAfter):
    """:class:`FlipAfter` that also copies ``model``'s state when each epoch's metrics arrive
    (after that epoch's evaluation, before its checkpoint)."""

    def __init__(self, model: torch.nn.Module, data: Flipped, epoch: int) -> None:
        super().__init__(data, epoch)
        self.model, self.states = model, []

    def log_metrics(self, metrics, step: int) -> None:
        self.states.append(cpu_copy(self.model.state_dict()))
        super().log_metrics(metrics, step)


def _fit_best(cfg: TrainConfig, flip_after: int):
    """``fit`` on toy data whose training labels swap after epoch ``flip_after``."""
    train, test = toy_data()
    flipped, model = Flipped(train), build_network(cfg)
    snapshots = Snapshots(model, flipped, flip_after)
    return fit(cfg, model, flipped, test, tracker=snapshots), snapshots.states, test


def _test_acc(cfg: TrainConfig, state: dict[str, torch.Tensor], test) -> float:
    """Test accuracy (%) of a fresh network holding ``state``, measured as the loop does."""
    net = build_network(cfg)
    net.load_state_dict(state)
    loader = make_loader(test, cfg.data.batch_size, False, workers=0)
    report = measure_activity(net, loader, layers=[])
    return 100.0 * float(report.correct) / float(report.samples)


def test_select_best_keeps_the_weights_of_the_best_epoch(tmp_path):
    """The best epoch's copy, evaluated as the loop does, gives exactly ``best_acc``."""
    cfg = toy_config(tmp_path / "last.pt", epochs=4, select="best")
    result, states, test = _fit_best(cfg, flip_after=2)  # later epochs unlearn
    assert result.best_epoch <= 2 and result.final_acc < result.best_acc
    best = result.selected_state("best")
    assert best is result.best_state
    assert all(v.device.type == "cpu" for v in best.values())
    assert_same_state(best, states[result.best_epoch - 1])
    final = result.selected_state("final")
    assert final.keys() == best.keys()
    assert not all(torch.equal(best[k], final[k]) for k in best)
    assert _test_acc(cfg, best, test) == result.best_acc
    assert _test_acc(cfg, final, test) == result.final_acc
    assert_same_state(load_checkpoint(cfg.run.checkpoint)["best_state"], best)


def test_best_state_holds_the_best_epochs_buffers():
    """A tiny ResNet-19: the BN running statistics come from the best epoch too."""
    cfg = toy_config(epochs=3, select="best", lr=0.05)
    cfg = replace(cfg, "model", name="resnet19", options={"width": 2, "in_channels": 1})
    result, states, test = _fit_best(cfg, flip_after=1)
    assert any(k.endswith("running_mean") for k in result.best_state)
    assert_same_state(result.best_state, states[result.best_epoch - 1])
    assert _test_acc(cfg, result.best_state, test) == result.best_acc


def test_select_final_keeps_no_extra_weights(tmp_path):
    train, test = toy_data()
    cfg = toy_config(tmp_path / "last.pt")
    result = fit(cfg, build_network(cfg), train, test)
    assert result.best_state is None
    assert load_checkpoint(cfg.run.checkpoint)["best_state"] is None
    assert_same_state(result.selected_state("final"), result.model.state_dict())
    with pytest.raises(ValueError, match="final"):
        result.selected_state("best")
    with pytest.raises(ValueError, match="median"):
        result.selected_state("median")



def test_a_run_shorter_than_compile_min_steps_runs_the_eager_kernels():
    """2 epochs x 6 batches = 12 steps, below neuron.compile_min_steps: the compiled LIFs run
    eager (no kernel build for a run too short to repay it); at the threshold they stay."""
    spec = NeuronSpec(backend="compiled", compile_min_steps=13)
    config = replace(toy_config(epochs=2), "model", spec=spec)
    train, test = toy_data(n_train=96)
    model = build_network(config)
    fit(config, model, train, test)
    assert {m.backend for m in model.modules() if isinstance(m, LIF)} == {"eager"}
    other = build_network(config)
    assert not use_eager_if_short(other, 13, spec)
    assert {m.backend for m in other.modules() if isinstance(m, LIF)} == {"compiled"}
