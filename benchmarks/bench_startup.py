"""Stage start-up: from a stage's process start to its first training step (or its work).

    python benchmarks/bench_startup.py [--repeats 3] [--workspace DIR] [--against TREE]

Builds a workspace as the smoke run does (params.yaml overlaid by params.smoke.yaml, the
bundled CIFAR-10 manifest prepared), then starts real stage processes there, each as its own
``python`` process, the clock started just before the process is:

* training stages (``cifar10_ann``; ``cifar10_t2_scratch``, a T=2 SNN): ``first forward`` is
  when any module first runs (imports, data, model and the MLflow run are ready; target
  <= 4 s), ``first step`` when the first optimiser step begins (the first batch's forward and
  backward done; an adaptive-Dspike stage runs Algorithm 1's FDG before it);
* the figure stage ``fig3`` and the report stage ``tables``: ``ready`` is when the stage module
  is imported (target <= 3 s), ``done`` when it exits; in this workspace only ``fig3`` has
  run, so ``tables`` writes the report of what exists (the rest "not run yet") and logs it; a
  tree older than that report stops at its first missing input (printed), after ``ready``.

The first row, ``floor``, is no stage: a process that imports torch and builds one SGD
optimizer, which imports torch._dynamo (``torch.optim.Optimizer.add_param_group`` is wrapped
by ``torch._disable_dynamo``, and ``Optimizer.step`` imports it too, whatever else a stage
imports). No training stage can reach its
first forward before it.

``--against TREE`` times another source tree too (for example ``git worktree add /tmp/before
HEAD~1``), in its own workspace, interleaved with this one (each repeat of each stage runs in
both before the next), so that both see the same load; rows are then labelled ``this`` and
``against``.

Also printed: which heavy packages each stage had loaded when it started work (torch,
torchvision, torch._dynamo, mlflow, pandas, matplotlib). Every stage logs to MLflow, to a sqlite
store in the workspace, as the smoke run does. Medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "torch._dynamo", "mlflow", "pandas", "matplotlib")
TARGETS = {"train": 4.0, "report": 3.0}

# Run inside the stage's process: reports times (seconds since the parent started it) on
# stdout as one JSON line per event, then lets the stage run (or stops it at its first step).
_PROBE = r"""
import json, os, sys, time
T0 = float(os.environ["STARTUP_T0"])
HEAVY = {heavy!r}

def emit(event, **kw):
    loaded = [m for m in HEAVY if m in sys.modules]
    record = {{"event": event, "t": time.time() - T0, "loaded": loaded, **kw}}
    print("STARTUP " + json.dumps(record), flush=True)

module, argv, kind = sys.argv[1], sys.argv[2:], os.environ["STARTUP_KIND"]
if kind == "floor":
    import torch
    emit("import torch")
    torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    emit("optimizer")
    sys.exit(0)
if kind == "train":
    import torch
    from torch.nn.modules.module import register_module_forward_pre_hook
    from torch.optim.optimizer import register_optimizer_step_pre_hook
    seen = []
    def first_forward(mod, args):
        if not seen:
            seen.append(1)
            emit("first forward")
    def first_step(opt, args, kwargs):
        emit("first step")
        os._exit(0)
    register_module_forward_pre_hook(first_forward)
    register_optimizer_step_pre_hook(first_step)
import importlib
stage = importlib.import_module(module)
emit("ready")
stage.main(argv)
emit("done")
"""


def prepare_workspace(workspace: Path, root: Path = ROOT) -> None:
    """params.yaml = params.yaml + params.smoke.yaml (of ``root``); the CIFAR-10 manifest
    prepared."""
    from harness.params import read_params

    merged = read_params(root / "params.yaml", root / "params.smoke.yaml")
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "params.yaml").write_text(yaml.safe_dump(merged))
    subprocess.run(
        [sys.executable, "-m", "pipelines.prepare", "cifar10", "--out",
         "data/manifests/cifar10.json"],
        cwd=workspace, env=_env(workspace, root), check=True, capture_output=True,
    )  # fmt: skip


def _env(workspace: Path, root: Path = ROOT) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1", "DSPIKE_EXPERIMENT_PREFIX": "startup/",
            "MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}"}  # fmt: skip


def run_stage(workspace: Path, kind: str, module: str, argv: list[str], root: Path = ROOT) -> dict:
    """One stage process of the source tree ``root``; its events as
    {event: (seconds, loaded heavy packages)}."""
    env = {**_env(workspace, root), "STARTUP_KIND": kind, "STARTUP_T0": repr(time.time())}
    probe = _PROBE.format(heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", probe, module, *argv],
        cwd=workspace, env=env, capture_output=True, text=True,
    )
    events = {}
    for line in out.stdout.splitlines():
        if line.startswith("STARTUP "):
            e = json.loads(line.removeprefix("STARTUP "))
            events[e["event"]] = (e["t"], e["loaded"])
    if out.returncode != 0 and kind == "report" and "ready" in events:
        # ready is the start-up; the stage's work needs inputs this workspace may not have
        events["stopped: " + out.stderr.strip().splitlines()[-1][:60]] = (0.0, [])
    elif out.returncode != 0 or not events:
        raise RuntimeError(f"{module} {' '.join(argv)} failed:\n{out.stderr[-3000:]}")
    return events


def stages() -> list[tuple[str, str, str, list[str]]]:
    """(label, kind, module, argv) of each stage timed."""
    out = [("floor", "floor", "", [])]
    for stage in ("cifar10_ann", "cifar10_t2_scratch"):
        argv = [stage, "--seed", "0", "--manifest", "data/manifests/cifar10.json",
                "--model", f"models/{stage}/seed0.pt", "--metrics", f"metrics/{stage}/seed0.json",
                "--plots", f"plots/{stage}/seed0.csv"]  # fmt: skip
        out.append((stage, "train", "pipelines.train", argv))
    out.append(("fig3", "report", "pipelines.fig3", ["--out", "results/fig3"]))
    out.append(("tables", "report", "pipelines.tables", [
        "--metrics", "metrics", "--plots", "plots", "--results", "results",
        "--manifests", "data/manifests", "--out", "results/report"]))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workspace", type=Path, help="default: a temporary folder")
    parser.add_argument("--against", type=Path, help="another source tree, timed interleaved")
    args = parser.parse_args(argv)
    roots = {"this": ROOT}
    if args.against is not None:
        roots["against"] = args.against.resolve()
    with tempfile.TemporaryDirectory(prefix="dspike-startup-") as tmp:
        workspace = (args.workspace or Path(tmp)).resolve()
        spaces = {tree: workspace / tree if len(roots) > 1 else workspace for tree in roots}
        for tree, root in roots.items():
            prepare_workspace(spaces[tree], root)
        print(f"stage start-up, median of {args.repeats}, MLflow on (sqlite), in {workspace}")
        print(f"{'stage':<20} {'tree':<8} {'event':<14} {'s':>6} {'target':>7}  loaded then")
        results: dict[str, dict[str, float]] = {}
        for label, kind, module, stage_argv in stages():
            runs: dict[str, list[dict]] = {tree: [] for tree in roots}
            for _ in range(args.repeats):
                for tree, root in roots.items():
                    runs[tree].append(run_stage(spaces[tree], kind, module, stage_argv, root))
            for tree in roots:
                key = label if tree == "this" else f"{label}@{tree}"
                results[key] = _report(label, tree, kind, runs[tree])
    return results


def _report(label: str, tree: str, kind: str, runs: list[dict]) -> dict[str, float]:
    """Print the median of each event over ``runs``; return them."""
    out = {}
    for event in runs[0]:
        if event.startswith("stopped"):
            print(f"{label:<20} {tree:<8} {event}")
            continue
        t = statistics.median(r[event][0] for r in runs if event in r)
        out[event] = t
        gate = kind in TARGETS and event == ("first forward" if kind == "train" else "ready")
        target = f"{TARGETS[kind]:.0f} s" if gate else ""
        flag = (" OK" if t <= TARGETS[kind] else " OVER") if gate else ""
        loaded = ", ".join(runs[0][event][1])
        print(f"{label:<20} {tree:<8} {event:<14} {t:6.2f} {target:>7}{flag:<5} {loaded}")
    return out


if __name__ == "__main__":
    main()
