"""Measuring a device with the project's own code, on random inputs of each stage's shape, and
DVC's own cost per stage, on the clock a table counts in (:data:`tools.plan.rates.CLOCKS`).

* :func:`measure_key`: one step shape. For the engine's networks (``build_network`` from the
  stage's config): training steps as the loop takes them (forward, cross-entropy, backward, SGD),
  evaluation through ``measure_activity`` (plain, and with every layer's firing rate recorded
  as the energy stage does), one checkpoint write, Algorithm 1 (``update_temperature``) at the
  FDG batch. For the toy CNN of the studies (``make_toy``): ``train_toy``, ``evaluate`` and one
  FDG of the first layer (Eq. 10). The first ``warmup`` steps are timed apart: their excess over
  a steady step is paid once per process (``warmup_s``).
* :func:`measure_processes`: the fixed cost of one process of each kind, run for real on two
  bundled images in a temporary folder (imports, data, MLflow run and artifacts, outputs):
  ``pipelines.prepare``, ``pipelines.train`` (twice; the second is timed), ``pipelines.fig3``
  (a study whose own compute is a few curves) and ``pipelines.tables`` (the report of a
  workspace where nothing has run yet: its imports, every table, Fig. 5 and its MLflow run);
  and one CIFAR10-DVS recording simulated and turned into frames (``dspike.data``, in process).
* :func:`measure_dvc`: DVC's own cost per stage, and how it grows as ``dvc.lock`` fills. Every
  ``dvc repro`` of a stage reads the pipeline and ``dvc.lock``, checks the stage, runs its
  command, then hashes and caches its outputs and rewrites ``dvc.lock``; parsing and rewriting
  the lock dominates once it holds many stages (at smoke scale on this project's CPU: 1.3 s with
  5 stages locked, 5.0 s with 34). It times ``dvc repro --force --single-item`` of a one-line
  probe stage added to a scratch copy of the project, first with an empty lock, then with a lock
  holding an entry for every stage (:func:`synthetic_lock`: their real commands, dependencies,
  parameters and outputs; placeholder hashes): DVC's cost per stage is ``dvc + dvc_per_locked x
  (stages in dvc.lock)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from dspike.data import frame_options, materialize_bundled, prepare_dvs_frames
from dspike.data.transforms import mnist_transform
from dspike.energy import measure_activity
from dspike.engine import TrainConfig, build_network, build_optimizer, save_checkpoint
from dspike.fdg import FIRST_LAYER, fdg
from dspike.surrogate import Rectangular
from dspike.temperature import update_temperature
from harness.params import Params, deep_merge, dvc_value, read_params
from paper.toy_training import evaluate, make_toy, train_toy

from .rates import Clock, now, run_seconds
from .workload import StepKey

__all__ = [
    "measure_dvc",
    "measure_key",
    "measure_processes",
    "synthetic_lock",
]


def _timed(
    fn: Callable[[], Any], device: torch.device, clock: Clock, repeats: int = 1
) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` on ``clock``."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = now(clock)
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(now(clock) - start)
    return times


def _batch(key: StepKey, classes: int, device: torch.device):
    x = torch.randn(key.batch, *key.sample, device=device)
    return x, torch.randint(0, classes, (key.batch,), device=device)


def _alg1_seconds(
    model, config: TrainConfig, key: StepKey, device, clock: Clock, coords: int
) -> float:
    """One Algorithm 1 call: the FDG of the first layer, timed over ``coords`` of its weights and
    scaled to all (each weight costs the same two perturbed forwards), plus the autograd
    gradients of the candidate temperatures."""
    s = config.surrogate
    x, y = _batch(key, config.model.num_classes, device)
    numel = dict(model.named_parameters())[FIRST_LAYER].numel()
    picked = list(range(min(coords, numel)))
    fdg(model, FIRST_LAYER, x, y, s.fdg_epsilon, indices=picked[:2])  # warm-up
    part = _timed(
        lambda: fdg(model, FIRST_LAYER, x, y, s.fdg_epsilon, indices=picked), device, clock
    )
    reference = torch.randn_like(dict(model.named_parameters())[FIRST_LAYER])
    rest = _timed(
        lambda: update_temperature(
            model, x, y, s.temperature, delta=s.delta, eps=s.fdg_epsilon, reference=reference
        ),
        device,
        clock,
    )
    return part[0] * numel / len(picked) + rest[0]


def _steady(times: list[float], warmup: int, batch: int) -> tuple[float, float]:
    """(images/s of the steady steps, the warm-up steps' excess in seconds)."""
    steady = sum(times[warmup:]) / len(times[warmup:])
    return batch / steady, max(0.0, sum(times[:warmup]) - warmup * steady)


def _measure_net(key, units, config, device, clock, steps, warmup, coords) -> dict[str, Any]:
    config.model.init = ""  # random weights: the rates do not depend on them
    model = build_network(config).to(device)
    x, y = _batch(key, config.model.num_classes, device)
    entry: dict[str, Any] = {}
    if "alg1" in units:
        entry["alg1_s"] = _alg1_seconds(model, config, key, device, clock, coords)
    if not units & {"train", "eval", "activity", "checkpoint", "warmup"}:
        return entry
    optimizer = build_optimizer(model, config.optim)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if config.run.bf16 and device.type == "cuda"
        else contextlib.nullcontext()
    )

    def train_step() -> None:
        with autocast:
            loss = F.cross_entropy(model(x), y)
        loss.item()  # the loop reads the loss every step
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    entry["train_ips"], excess = _steady(
        _timed(train_step, device, clock, warmup + steps), warmup, key.batch
    )
    for name, layers in (("eval_ips", []), ("activity_ips", None)):
        with autocast:
            times = _timed(
                lambda layers=layers: measure_activity(model, [(x, y)], device, layers=layers),
                device,
                clock,
                warmup + steps,
            )
        entry[name], extra = _steady(times, warmup, key.batch)
        excess += extra if name == "eval_ips" else 0.0
    entry["warmup_s"] = excess
    with tempfile.TemporaryDirectory() as tmp:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        save_checkpoint(Path(tmp) / "warm.pt", state)
        entry["checkpoint_s"] = _timed(
            lambda: save_checkpoint(Path(tmp) / "c.pt", state), device, clock
        )[0]
    return entry


class _Digits(Dataset):
    """Random 28x28 greyscale images through torchvision MNIST's item path (PIL image, then
    the project's MNIST transform): the per-image loading cost of the real dataset."""

    def __init__(self, n: int) -> None:
        self.images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
        self.transform = mnist_transform()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i].numpy(), mode="L")), i % 10


def _measure_toy(
    key: StepKey, units: set[str], clock: Clock, steps: int, warmup: int
) -> dict[str, Any]:
    """The toy studies' own functions on random digits (CPU, as the studies run)."""
    surrogate = Rectangular(1.0) if key.mode == "snn" else None
    model = make_toy(key.mode, surrogate, key.time_steps, key.sample)  # type: ignore[arg-type]
    data = _Digits(key.batch * steps)
    cpu = torch.device("cpu")
    first = _timed(
        lambda: train_toy(model, _Digits(key.batch * warmup), 1, batch_size=key.batch), cpu, clock
    )[0]
    rest = _timed(lambda: train_toy(model, data, 1, batch_size=key.batch), cpu, clock)[0]
    entry = {"train_ips": len(data) / rest, "warmup_s": max(0.0, first - rest / steps * warmup)}
    if "eval" in units:
        entry["eval_ips"] = len(data) / _timed(lambda: evaluate(model, data), cpu, clock)[0]
    if "fdg" in units:
        x, y = next(iter(DataLoader(data, batch_size=key.batch)))
        fdg(model, FIRST_LAYER, x, y, 0.1)  # warm-up
        times = _timed(lambda: fdg(model, FIRST_LAYER, x, y, 0.1), cpu, clock, 3)
        entry["fdg_s"] = sum(times) / len(times)
    return entry


def measure_key(
    key: StepKey,
    units: set[str],
    config: TrainConfig | None,
    device: torch.device,
    *,
    steps: int = 3,
    warmup: int = 1,
    coords: int = 256,
    clock: Clock = "wall",
) -> dict[str, Any]:
    """The table entry of ``key`` for ``units`` (see :mod:`tools.plan.rates`), timed
    on ``clock`` (:data:`tools.plan.rates.CLOCKS`)."""
    if key.model == "toy_cnn":
        entry = _measure_toy(key, units, clock, steps, warmup)
    else:
        assert config is not None
        entry = _measure_net(key, units, config, device, clock, steps, warmup, coords)
    return {
        **entry,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _dvs_recording_seconds(params: Params, tmp: Path, clock: Clock) -> float:
    """One CIFAR10-DVS recording simulated (bundled data) and turned into frames: the slope
    between 1 and 3 recordings per class after a first run of 1 (what a run of the stage pays
    once is not in it)."""
    options = frame_options(dataclasses.asdict(params.data.dvs))
    seconds = []
    for run, per_class in enumerate((1, 1, 3)):
        start = now(clock)
        materialize_bundled("cifar10dvs", tmp / f"dvs{run}", n_per_class=per_class)
        prepare_dvs_frames(tmp / f"dvs{run}", tmp / f"frames{run}", **options)
        seconds.append(now(clock) - start)
    return max(0.0, seconds[2] - seconds[1]) / (10 * 2)


def measure_processes(
    root: Path, params: Params, run: str, kind: str, clock: Clock = "wall"
) -> dict[str, float]:
    """Seconds (on ``clock``) of one process of each kind (``startup:<kind>``) and of one DVS
    recording (``dvs_recording``); ``run``: the params stage the training process runs."""
    env = {**os.environ, "DSPIKE_EXPERIMENT_PREFIX": "plan-measure/"}
    if kind == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    dataset = params.stage(run).dataset
    scratch = root / "plans"  # inside the workspace, as a stage's paths must be; git/DVC-ignored
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="measure-", dir=scratch) as name:
        tmp = Path(name)
        overlay = {
            "data": {
                "source": "bundled",
                "root": str(tmp / "raw"),
                "download": False,
                "workers": 0,
                "prepared": str(tmp / "prepared"),
            },
            "train": {
                "max_train_samples": 2,
                "max_test_samples": 2,
                "checkpoint_dir": str(tmp / "checkpoints"),
            },
            "stages": {run: {"epochs": 1}},
        }
        tree = read_params(params.file)  # the file, with the overlay below
        (tmp / "params.yaml").write_text(yaml.safe_dump(deep_merge(tree, overlay)))
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        py, p = sys.executable, ["--params", str(tmp / "params.yaml")]
        manifest = tmp / "manifest.json"
        out = {
            "startup:prepare": run_seconds(
                [py, "-m", "pipelines.prepare", dataset, "--out", str(manifest), *p],
                root,
                env,
                clock,
            )
        }
        train = [
            py,
            "-m",
            "pipelines.train",
            run,
            "--seed",
            "0",
            "--manifest",
            str(manifest),
            "--model",
            str(tmp / "model.pt"),
            "--metrics",
            str(tmp / "metrics.json"),
            "--plots",
            str(tmp / "plots.csv"),
            *p,
        ]
        # the first run creates the store and warms the file cache
        run_seconds(train, root, env, clock)
        out["startup:train"] = run_seconds(train, root, env, clock)
        study = [py, "-m", "pipelines.fig3", "--out", str(tmp / "fig3"), *p]
        out["startup:study"] = run_seconds(study, root, env, clock)
        report = [py, "-m", "pipelines.tables", "--out", str(tmp / "report"), *p]
        for name in ("metrics", "plots", "results", "manifests"):  # nothing has run there yet
            report += [f"--{name}", str(tmp / "none" / name)]
        out["startup:report"] = run_seconds(report, root, env, clock)
        out["dvs_recording"] = _dvs_recording_seconds(params, tmp, clock)
    return out


PROBE = "plan_probe"
_HASH = {"hash": "md5", "md5": "0" * 32, "size": 1}


def synthetic_lock(root: Path) -> dict[str, Any]:
    """A ``dvc.lock`` with an entry for every stage of ``root``'s pipeline (placeholder hashes)."""
    from dvc.repo import Repo

    params = read_params(root / "params.yaml")
    stages: dict[str, Any] = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            keys = [k for d in stage.deps if hasattr(d, "params") for k in (d.params or [])]
            plain = [d for d in stage.deps if not hasattr(d, "params")]
            stages[stage.name] = {
                "cmd": stage.cmd,
                "deps": [{"path": d.def_path, **_HASH} for d in plain],
                "params": {"params.yaml": {k: dvc_value(params, k) for k in keys}},
                "outs": [{"path": o.def_path, **_HASH} for o in stage.outs],
            }
    return {"schema": "2.0", "stages": stages}


def _probe_seconds(scratch: Path, dvc: str, clock: Clock, runs: int = 1) -> float:
    """Seconds (on ``clock``) of ``dvc repro -f --single-item plan_probe`` (its command writes
    one file), the last of ``runs`` runs."""
    cmd = [dvc, "repro", "--force", "--single-item", PROBE]
    for _ in range(runs):
        seconds = run_seconds(cmd, scratch, None, clock)
    return seconds


def measure_dvc(root: Path, clock: Clock = "wall") -> dict[str, float]:
    """``dvc`` (a stage's DVC overhead with an empty lock) and ``dvc_per_locked``, on ``clock``."""
    dvc = str(Path(sys.executable).with_name("dvc"))
    lock = synthetic_lock(root)
    with tempfile.TemporaryDirectory(prefix="dspike-plan-dvc-") as tmp:
        scratch = Path(tmp)
        for name in ("params.yaml", ".dvcignore"):
            if (root / name).is_file():
                shutil.copy(root / name, scratch / name)
        pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
        pipeline["stages"][PROBE] = {
            "cmd": f"'{sys.executable}' -c \"open('probe.txt', 'w').write('1')\"",
            "deps": ["params.yaml"],
            "outs": ["probe.txt"],
        }
        (scratch / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
        subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
        subprocess.run([dvc, "init", "-q"], cwd=scratch, check=True)
        empty = _probe_seconds(scratch, dvc, clock, runs=2)  # the first warms the file cache
        (scratch / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
        full = _probe_seconds(scratch, dvc, clock)
    per_locked = max(0.0, (full - empty) / len(lock["stages"]))
    return {"dvc": empty, "dvc_per_locked": per_locked}
