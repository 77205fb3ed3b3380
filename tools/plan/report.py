"""The plan as a whole (stages to run, their estimates, the chains) and its printout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.params import load_params

from .dag import Dag, Split, assign, load_dag, split_chains
from .rates import FIXED, Estimate, Throughput, estimate
from .workload import Workload, workload

__all__ = ["Plan", "build_plan", "chain_script", "print_plan", "stage_table"]

# What DVC 3.67's `dvc repro` locks (dvc/repo/__init__.py lock_repo, dvc/stage/decorators.py,
# dvc/rwlock.py, dvc/lock.py): the whole workspace (.dvc/tmp/lock) while it reads the pipeline
# and records a stage in dvc.lock, released while a stage's command runs; and per path, read
# locks on a running stage's deps and write locks on its outs.
HOW_TO_RUN = """\
How DVC runs these at once: each `dvc repro` holds the workspace lock except while a stage's
command runs, and locks that stage's outputs for writing. Chains share no stage, so they never
wait on each other's outputs; --wait-for-lock makes each wait for the workspace lock (without
it, a `dvc repro` that finds the lock taken for over 3 s fails, even after running its stage,
which then stays out of dvc.lock). A stage in two `dvc repro` at once fails the second ("is
busy"): hence the shared first stages run before the chains. On several nodes, run each line
on its own node in this same workspace on a shared filesystem."""


@dataclass(frozen=True)
class Plan:
    root: Path
    dag: Dag
    order: list[str]  # the stages to run, dvc.yaml order
    works: dict[str, Workload]  # every stage of the DAG
    estimates: dict[str, Estimate]  # the stages to run
    split: Split
    table: Throughput

    def seconds(self, stages: tuple[str, ...] | list[str]) -> float:
        """Estimated wall seconds of ``stages`` one after another (missing ones count 0)."""
        return sum(self.estimates[s].seconds or 0.0 for s in stages)

    @property
    def missing(self) -> list[str]:
        return [s for s in self.order if self.estimates[s].seconds is None]


def build_plan(root: Path, table: Throughput, everything: bool = False) -> Plan:
    """The plan of the DVC project at ``root`` (its ``params.yaml``) on ``table``'s device."""
    dag = load_dag(root, everything)
    params = load_params(root / "params.yaml")
    works = {s: workload(s, cmd, params) for s, cmd in dag.cmds.items()}
    order = dag.to_run()
    locked = dag.locked_before(order)
    estimates = {s: estimate(works[s], table, n) for s, n in zip(order, locked, strict=True)}
    split = split_chains(order, dag.deps, {s: w.chain for s, w in works.items()})
    return Plan(root, dag, order, works, estimates, split, table)


def stage_table(plan: Plan) -> pd.DataFrame:
    """One row per stage to run: what it computes and its estimate."""
    rows = []
    for stage in plan.order:
        w, e = plan.works[stage], plan.estimates[stage]
        rows.append(
            {
                "stage": stage,
                "dataset": w.dataset or "-",
                "model": w.model or "-",
                "T": w.time_steps or "-",
                "train imgs": w.train_images or "-",
                "test imgs": w.test_images or "-",
                "epochs": w.epochs or "-",
                "batch": w.batch or "-",
                "steps": w.steps or "-",
                "devices": w.processes,
                "est. s": "?" if e.seconds is None else f"{e.seconds:.1f}",
                "device-h": "?" if e.device_hours is None else f"{e.device_hours:.3g}",
                "notes": w.note,
            }
        )
    return pd.DataFrame(rows)


def _repro(targets: tuple[str, ...], wait: bool = True) -> str:
    return ("dvc --wait-for-lock repro " if wait else "dvc repro ") + " ".join(targets)


def chain_script(plan: Plan, gpus: int | None = None) -> tuple[list[str], float]:
    """Shell lines that run the remaining stages on ``gpus`` devices (default: one device, or
    device set, per chain), and the estimated wall seconds of the whole run."""
    split = plan.split
    need = max((plan.works[s].processes for c in split.chains for s in c.stages), default=1)
    slots = len(split.chains) if gpus is None else max(1, gpus // need)
    seconds = {c.name: plan.seconds(c.stages) for c in split.chains}
    known = all(plan.estimates[s].seconds is not None for c in split.chains for s in c.stages)
    cost = seconds if known else {c.name: float(len(c.stages)) for c in split.chains}
    lines, longest = [], 0.0
    if split.before:
        lines += [
            f"# 1. shared first stages, once ({plan.seconds(split.before):.0f} s):",
            _repro(split.before, wait=False),
        ]
    if split.chains:
        lines.append(f"# 2. {len(split.chains)} chains on {slots} device set(s) at once:")
        for i, group in enumerate(assign(list(split.chains), cost, slots)):
            devices = ",".join(str(d) for d in range(i * need, (i + 1) * need))
            load = sum(seconds[c.name] for c in group)
            longest = max(longest, load)
            body = " && ".join(_repro(c.targets) for c in group)
            body = f"sh -c '{body}'" if len(group) > 1 else body
            names = ", ".join(c.name for c in group)
            lines.append(f"CUDA_VISIBLE_DEVICES={devices} {body} &   # {names}: {load:.0f} s")
        lines.append("wait")
    if split.after:
        lines += [
            f"# 3. shared last stages, once ({plan.seconds(split.after):.0f} s):",
            _repro(split.after, wait=False),
        ]
    return lines, plan.seconds(split.before) + longest + plan.seconds(split.after)


def print_plan(plan: Plan, gpus: int | None = None) -> None:
    """The whole plan on stdout."""
    table = plan.table
    print(f"Compute plan of {plan.root} (params.yaml, dvc.yaml) on {table.device} ({table.kind})")
    if table.clock == "cpu":
        print("Times are CPU seconds (--clock cpu), not wall seconds.")
    print(f"{len(plan.order)} of {len(plan.dag.cmds)} stages to run\n")
    if not plan.order:
        print("Nothing to run: every stage is up to date.")
        return
    with pd.option_context("display.max_rows", None, "display.width", 250):
        print(stage_table(plan).to_string(index=False))
    known = [plan.estimates[s] for s in plan.order if plan.estimates[s].seconds is not None]
    device_h = sum(e.device_hours or 0.0 for e in known)
    serial = plan.seconds(plan.order)
    print(
        f"\nTotal: {device_h:.4g} device-hours ({serial / 3600:.4g} h one stage after another)"
        f" for {len(known)} of {len(plan.order)} stages"
    )
    unmeasured = [f for f in FIXED if f not in table.fixed]
    if plan.missing or unmeasured:
        print(
            f"Not measured on this device: {len(plan.missing)} stages' step shapes"
            f"{'; ' + ', '.join(unmeasured) + ' (counted as 0)' if unmeasured else ''}."
            f" Measure them: python -m tools.plan measure --device {table.kind}"
            " (or give images/s: --ips MODEL:T=IMAGES_PER_S)"
        )
    lines, total = chain_script(plan, gpus)
    print("\nIndependent chains (per dataset and seed):")
    for chain in plan.split.chains:
        print(f"  {chain.name}: {len(chain.stages)} stages, {plan.seconds(chain.stages):.0f} s")
    print("\n" + "\n".join(lines))
    print(f"\nEstimated wall time run this way: {total:.0f} s ({total / 3600:.3g} h)")
    print(HOW_TO_RUN)
