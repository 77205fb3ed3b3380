"""Checkpoints: atomic and safe files, RNG states, and resumed runs equal to uninterrupted ones."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
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
from torch.utils.data import Dataset

from dspike.engine import (
    CheckpointError,
    NonFiniteLossError,
    NullTracker,
    StopSignal,
    TrainingInterrupted,
    build_network,
    fit,
    load_checkpoint,
    save_checkpoint,
)
from dspike.engine.checkpoint import get_rng_state, set_rng_state

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


class Tripwire(Dataset):
    """``base``, sending ``signal.SIGTERM`` to this process on the ``at``-th sample read."""

    def __init__(self, base: Dataset, at: int | None = None) -> None:
        self.base, self.at, self.reads = base, at, 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        self.reads += 1
        if self.reads == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.base[i]


class CrashAfter(NullTracker):
    """Raises when epoch ``epoch``'s metrics arrive: a crash before that epoch's checkpoint."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def log_metrics(self, metrics, step: int) -> None:
        if step == self.epoch:
            raise RuntimeError("simulated crash")


def _reference(tmp_path: Path, cfg_kw: dict):
    cfg = toy_config(tmp_path / "reference" / "last.pt", **cfg_kw)
    train, test = toy_data()
    return fit(cfg, build_network(cfg), train, test)


def _same_run(a, b) -> None:
    assert_same_state(a.model.state_dict(), b.model.state_dict())
    assert a.history == b.history


def test_save_is_atomic_and_load_is_weights_only(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, {"epoch": 3, "model": {"w": torch.ones(2)}, "history": [{"a": 1.0}]})
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and torch.equal(state["model"]["w"], torch.ones(2))
    assert load_checkpoint(tmp_path / "none.pt") is None
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="not a dspike training checkpoint"):
        load_checkpoint(path)


def test_rng_state_round_trip(tmp_path):
    save_checkpoint(tmp_path / "rng.pt", {"rng": get_rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])


def test_stop_signal_turns_sigterm_into_a_flag():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("surrogate", ["dspike", "dspike_adaptive"])
def test_sigterm_mid_epoch_then_resume_equals_uninterrupted(tmp_path, surrogate):
    kw = {"epochs": 3, "surrogate": surrogate}
    reference = _reference(tmp_path, kw)
    cfg = toy_config(tmp_path / "run" / "last.pt", **kw)
    train, test = toy_data()
    # 96 samples per epoch, 16 per step (and Algorithm 1's minibatch at each epoch's start):
    # read number 96 + 40 of training falls in epoch 2, step 3.
    fdg_reads = cfg.surrogate.fdg_batch_size if surrogate == "dspike_adaptive" else 0
    with pytest.raises(TrainingInterrupted, match="epoch 2, step 3"):
        fit(cfg, build_network(cfg), Tripwire(train, at=96 + 40 + 2 * fdg_reads), test)
    state = load_checkpoint(cfg.run.checkpoint)
    assert (state["epoch"], state["step"]) == (1, 3)
    _same_run(fit(cfg, build_network(cfg), train, test), reference)


def test_crash_then_resume_from_last_epoch_equals_uninterrupted(tmp_path):
    reference = _reference(tmp_path, {"epochs": 3})
    cfg = toy_config(tmp_path / "run" / "last.pt", epochs=3)
    train, test = toy_data()
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(cfg, build_network(cfg), train, test, tracker=CrashAfter(epoch=2))
    assert load_checkpoint(cfg.run.checkpoint)["epoch"] == 1
    _same_run(fit(cfg, build_network(cfg), train, test), reference)


def test_sigterm_then_resume_ships_the_same_best_weights(tmp_path):
    """The best epoch (before the stop) reaches the resumed run through the checkpoint."""
    cfg_kw = {"epochs": 4, "select": "best"}
    train, test = toy_data()
    flipped = Flipped(train)  # labels swap after epoch 2: epochs 3 and 4 unlearn
    cfg = toy_config(tmp_path / "reference" / "last.pt", **cfg_kw)
    reference = fit(cfg, build_network(cfg), flipped, test, tracker=FlipAfter(flipped, 2))
    assert reference.best_epoch <= 2 and reference.best_state is not None
    cfg = toy_config(tmp_path / "run" / "last.pt", **cfg_kw)
    flipped = Flipped(train)
    with pytest.raises(TrainingInterrupted, match="epoch 3, step 3"):
        fit(cfg, build_network(cfg), Tripwire(flipped, at=2 * 96 + 40), test,
            tracker=FlipAfter(flipped, 2))  # fmt: skip
    state = load_checkpoint(cfg.run.checkpoint)
    assert (state["epoch"], state["step"], state["best_epoch"]) == (2, 3, reference.best_epoch)
    resumed = fit(cfg, build_network(cfg), Flipped(train, on=True), test)
    _same_run(resumed, reference)
    assert (resumed.best_acc, resumed.best_epoch) == (reference.best_acc, reference.best_epoch)
    assert_same_state(resumed.best_state, reference.best_state)


def test_select_best_does_not_resume_a_checkpoint_without_best_weights(tmp_path):
    cfg = toy_config(tmp_path / "last.pt", epochs=2)
    train, test = toy_data()
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(cfg, build_network(cfg), train, test, tracker=CrashAfter(epoch=2))
    best = replace(cfg, "run", select="best")
    with pytest.raises(CheckpointError, match="no best epoch's weights"):
        fit(best, build_network(best), train, test)


_KILLED_RUN = """
import sys, time, torch
from engine_support import toy_config, toy_data
from dspike.engine import NullTracker, build_network, fit

class Slow(NullTracker):  # leaves time for the test to kill this process mid-run
    def log_metrics(self, metrics, step):
        time.sleep(0.3)

cfg = toy_config(sys.argv[1], epochs=4)
train, test = toy_data()
result = fit(cfg, build_network(cfg), train, test, tracker=Slow())
torch.save({"model": result.model.state_dict(), "history": result.history}, sys.argv[2])
"""


def test_sigkill_then_same_command_resumes_bit_identical(tmp_path):
    reference = _reference(tmp_path, {"epochs": 4})
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_KILLED_RUN))
    ckpt, out = tmp_path / "run" / "last.pt", tmp_path / "out.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)}
    command = [sys.executable, str(script), str(ckpt), str(out)]
    proc = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and not out.exists()
    assert 1 <= load_checkpoint(ckpt)["epoch"] < 4
    subprocess.run(command, env=env, check=True, timeout=120)
    resumed = torch.load(out, weights_only=True)
    assert_same_state(resumed["model"], reference.model.state_dict())
    assert resumed["history"] == reference.history


class Poisoned(Dataset):
    """``base`` whose inputs turn to NaN once ``on`` is set."""

    def __init__(self, base: Dataset) -> None:
        self.base, self.on = base, False

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return (torch.full_like(x, float("nan")) if self.on else x), y


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_checkpoint(tmp_path):
    train, test = toy_data()
    poisoned = Poisoned(train)

    class PoisonAfterFirstEpoch(NullTracker):
        def log_metrics(self, metrics, step):
            poisoned.on = True

    cfg = toy_config(tmp_path / "last.pt", mode="ann", surrogate="none", time_steps=1)
    with pytest.raises(NonFiniteLossError, match="epoch 2, step 1"):
        fit(cfg, build_network(cfg), poisoned, test, tracker=PoisonAfterFirstEpoch())
    state = load_checkpoint(cfg.run.checkpoint)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_checkpoint_of_another_architecture_is_not_resumed(tmp_path):
    cfg = toy_config(tmp_path / "last.pt", epochs=1)
    train, test = toy_data()
    fit(cfg, build_network(cfg), train, test)
    wider = replace(cfg, "model", options={**cfg.model.options, "width": 5})
    with pytest.raises(CheckpointError, match="was written for"):
        fit(wider, build_network(wider), train, test)
