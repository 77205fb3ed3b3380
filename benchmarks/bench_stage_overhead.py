"""What one DVC stage costs beyond its own work, split into its parts.

    python benchmarks/bench_stage_overhead.py [--repeats 3] [--workspace DIR]

Builds a smoke workspace (``tools.smoke``: a git + DVC project, params.yaml overlaid by
params.smoke.yaml) whose ``ann@cifar100-0`` stage trains one epoch on 64 images, then times,
interleaved, ``--repeats`` times each (medians):

* ``interpreter``: ``python -c pass``;
* ``imports``: ``python -c "import pipelines.train"`` (torch, torchvision, the project; a
  training stage imports MLflow in a background thread, timed on its own as ``mlflow``);
* ``stage command``: the stage's command as dvc.yaml gives it, run directly; minus its own
  training time (``seconds`` of its metrics) this is its fixed cost: imports, data, model,
  the MLflow run, writing outputs;
* ``dvc repro -f -s``: the same stage through DVC; minus the command, DVC's own bookkeeping
  before and after it (reading dvc.yaml and dvc.lock, hashing deps and outputs, the run
  cache, writing dvc.lock), which grows with the number of stages in dvc.lock;
* ``dvc status``: DVC's check of the whole project, which every ``dvc repro`` does first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.smoke import prepare_workspace, smoke_env  # noqa: E402

STAGE, PARAMS_KEY = "ann@cifar100-0", "cifar100_ann"
OVERLAY = {"stages": {PARAMS_KEY: {"epochs": 1, "max_train_samples": 64,
                                   "max_test_samples": 64}}}  # fmt: skip


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _command(workspace: Path, stage: str) -> list[str]:
    """``stage``'s command as DVC resolves it from dvc.yaml and params.yaml."""
    from dvc.repo import Repo

    with contextlib.chdir(workspace), Repo(".") as repo:
        (resolved,) = repo.stage.collect(stage)
        return shlex.split(resolved.cmd)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workspace", type=Path)
    args = parser.parse_args(argv)
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="stage-overhead-"))
    from harness.params import deep_merge

    overlay = workspace.parent / f"{workspace.name}.overlay.yaml"
    smoke = yaml.safe_load((ROOT / "params.smoke.yaml").read_text())
    overlay.write_text(yaml.safe_dump(deep_merge(smoke, OVERLAY)))
    prepare_workspace(workspace, overlay)
    env = {**smoke_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # fmt: skip
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    subprocess.run(["dvc", "repro", STAGE], cwd=workspace, env=env, check=True,
                   capture_output=True)  # fmt: skip
    stage_cmd = _command(workspace, STAGE)
    metrics = workspace / "metrics" / PARAMS_KEY / "seed0.json"
    python = sys.executable
    probes = {
        "interpreter": [python, "-c", "pass"],
        "imports": [python, "-c", "import pipelines.train"],
        "mlflow": [python, "-c", "import mlflow"],
        "stage command": stage_cmd,
        "dvc repro -f -s": ["dvc", "repro", "-f", "-s", STAGE],
        "dvc status": ["dvc", "status"],
    }
    times: dict[str, list[float]] = {k: [] for k in probes}
    trained: list[float] = []
    for _ in range(args.repeats):
        for name, cmd in probes.items():
            times[name].append(_timed(cmd, workspace, env))
            if name == "stage command":
                trained.append(json.loads(metrics.read_text())["seconds"])
    med = {k: statistics.median(v) for k, v in times.items()}
    med["stage training"] = statistics.median(trained)
    med["stage fixed"] = med["stage command"] - med["stage training"]
    med["dvc bookkeeping"] = med["dvc repro -f -s"] - med["stage command"]
    stages = len(yaml.safe_load((workspace / "dvc.lock").read_text())["stages"])
    print(f"{STAGE}, one epoch on 64 images; medians of {args.repeats}; dvc.lock: {stages} "
          f"stages; OMP_NUM_THREADS={env['OMP_NUM_THREADS']}")  # fmt: skip
    for name in ("interpreter", "imports", "mlflow", "stage command", "stage training",
                 "stage fixed", "dvc repro -f -s", "dvc bookkeeping", "dvc status"):  # fmt: skip
        print(f"  {name:<18} {med[name]:6.2f} s")
    return med


if __name__ == "__main__":
    main()
