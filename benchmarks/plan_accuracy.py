"""The compute plan's estimates against measured stages, at smoke scale (``tools.plan``).

Builds a smoke workspace (``tools.smoke``: this checkout, ``params.smoke.yaml`` overlaid),
measures this machine's start-up and DVC figures (``python -m tools.plan measure``), then
for every stage in DAG order measures its step shapes (``measure --stages STAGE --shapes-only``)
and runs it alone (``dvc repro STAGE --single-item``), timing it (``--stages``: only those,
after what they need): on a shared machine whose load changes by the minute, a stage's rates
are measured just before it runs. Prints estimated vs actual seconds per stage (Markdown), with
the load average when the stage started. About 25 min for the whole DAG on a 2-core CPU.

``--clock cpu`` counts CPU seconds instead of wall seconds (:data:`tools.plan.rates.CLOCKS`), both
in the measurements and in the runs (``dvc repro`` and everything under it), every process at
one thread (``OMP_NUM_THREADS=1``): on a machine shared with other jobs, a stage's wall time
follows the load of the minute (two threads contending with other processes run some ops 3-5x
slower), its CPU time at one thread much less. It checks the plan's model on a busy machine.

``--force`` times the picked stages even if they are up to date (``dvc repro -f``), after
whatever they need that is not: one stage checked again in a workspace where the DAG has run.

    python benchmarks/plan_accuracy.py [--workspace /tmp/planws] [--stages GLOB ...] [--force]
                                       [--clock wall|cpu] [--json OUT]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from pathlib import Path

from harness.params import REPO_ROOT
from tools.plan.dag import load_dag, upstream
from tools.plan.rates import CLOCKS, Throughput, device_name, run_seconds, table_path
from tools.plan.report import build_plan
from tools.smoke import prepare_workspace, smoke_env


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/planws"))
    parser.add_argument("--stages", nargs="+", default=["*"], help="stages to time (glob)")
    parser.add_argument("--json", type=Path, help="write every row (and the table) here")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="wall or CPU seconds")
    parser.add_argument("--force", action="store_true", help="time picked stages up to date too")
    args = parser.parse_args()
    ws = prepare_workspace(args.workspace.resolve(), REPO_ROOT / "params.smoke.yaml")
    env = smoke_env()
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{ws.parent / (ws.name + '-mlflow.db')}"
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    dvc, py = str(bin_dir / "dvc"), sys.executable
    if args.clock == "cpu":
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    measure = [py, "-m", "tools.plan", "measure", "--device", "cpu", "--clock", args.clock]
    measure += ["--all"] if args.force else []  # measure stages that are up to date too
    run_seconds(
        [py, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"], ws, env, "wall"
    )
    dag = load_dag(ws)
    candidates = [s for s in dag.cmds if s not in dag.frozen] if args.force else dag.to_run()
    picked = [s for s in candidates if any(fnmatch.fnmatchcase(s, p) for p in args.stages)]
    needed = set(picked) | (upstream(dag.deps, picked) & set(dag.to_run()))
    order = [s for s in dag.cmds if s in needed]
    path = table_path(ws, device_name("cpu"), args.clock)
    fixed = run_seconds([*measure, "--fixed-only"], ws, env, "wall")
    print(f"start-up and DVC figures: {fixed:.0f} s")
    unit = "CPU s" if args.clock == "cpu" else "s"
    print(f"\n| stage | kind | estimated {unit} | ran {unit} | ratio | load avg (1/5/15 min) |")
    print("|---|---|---|---|---|---|", flush=True)
    rows = []
    for stage in order:
        if stage in picked:
            run_seconds([*measure, "--stages", stage, "--shapes-only"], ws, env, "wall")
            plan = build_plan(ws, Throughput.load(path, "", "cpu"), everything=True)
        load = _load()
        force = ["-f"] if args.force and stage in picked else []
        ran = run_seconds([dvc, "repro", *force, stage, "--single-item"], ws, env, args.clock)
        if stage not in picked:
            continue
        est, kind = plan.estimates[stage].seconds or float("nan"), plan.works[stage].kind
        print(
            f"| {stage} | {kind} | {est:.1f} | {ran:.1f} | {est / ran:.2f} | {load} |", flush=True
        )
        rows.append(
            {
                "stage": stage,
                "kind": kind,
                "estimated_s": est,
                "actual_s": ran,
                "load": load,
                "parts": plan.estimates[stage].parts,
            }
        )
    total_est, total = sum(r["estimated_s"] for r in rows), sum(r["actual_s"] for r in rows)
    within = sum(abs(r["estimated_s"] / r["actual_s"] - 1) <= 0.25 for r in rows)
    print(
        f"\ntotal: estimated {total_est:.0f} {unit}, ran {total:.0f} {unit}"
        f" ({total_est / total:.2f}); {within} of {len(rows)} stages within 25%"
    )
    if args.json:
        table = json.loads(path.read_text())
        args.json.write_text(json.dumps({"table": table, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
