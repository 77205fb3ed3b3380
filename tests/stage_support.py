"""params.yaml for stage tests: the repository's, with the small bundled-MNIST settings every
training-stage test shares on top."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from harness.params import REPO_ROOT, deep_merge, load_params

SMALL: dict[str, Any] = {
    "neuron": {"tau": 0.25, "v_threshold": 0.5, "detach_reset": False, "backend": "eager"},
    "tdbn": {"alpha": 1.0, "alpha_residual": 0.7071067811865476, "form": "scale"},
    "dspike": {"b0": 1.0, "delta_b": 0.2, "inherit_temperature": True},
    "fdg": {"epsilon": 0.1, "batch_size": 8},
    "data": {"source": "bundled", "download": False, "root": "data/raw", "prepared": "prep",
             "workers": 0, "imagenet": {"root": ""}, "dvs": {"size": 48, "max_roll": 5}},
    "models": {"toy_cnn": {"width": 6}},
    "train": {"momentum": 0.9, "weight_decay": 1e-4, "nesterov": False, "schedule": "cosine",
              "batch_size": 32, "bf16": False, "select": "final", "max_train_samples": 320,
              "max_test_samples": 160, "checkpoint_dir": "checkpoints"},
}  # fmt: skip
BASE_PARAMS = deep_merge(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()), SMALL)


def toy_stage(mode: str, time_steps: int, epochs: int, lr: float, surrogate: str, **extra: Any
              ) -> dict[str, Any]:  # fmt: skip
    """``stages.<name>`` of a toy-CNN run on MNIST."""
    return {"dataset": "mnist", "model": "toy_cnn", "mode": mode, "time_steps": time_steps,
            "epochs": epochs, "lr": lr, "surrogate": surrogate, **extra}  # fmt: skip


def stage_params(stages: dict[str, dict[str, Any]], **overlay: Any) -> dict[str, Any]:
    """:data:`BASE_PARAMS` with ``stages`` and ``overlay`` (merged key by key) on top."""
    return deep_merge(copy.deepcopy(BASE_PARAMS), {"stages": stages, **overlay})


def run_mnist_study(main, workspace: Path, overlay: dict[str, Any], out: str, monkeypatch) -> Path:
    """A study stage's ``main`` on bundled MNIST, run in ``workspace`` with its own MLflow store:
    params from ``overlay``, MNIST prepared first; returns the ``out`` folder."""
    from engine_support import one_thread

    from pipelines.prepare import prepare

    (workspace / "params.yaml").write_text(yaml.safe_dump(stage_params({}, **overlay)))
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace / 'mlflow.db'}")
    with one_thread():
        prepare(load_params(), "mnist", Path("data/manifests/mnist.json"))
        main(["--out", out, "--manifest", "data/manifests/mnist.json"])
    return workspace / out
