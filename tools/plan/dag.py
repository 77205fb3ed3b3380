"""The DVC pipeline as the plan sees it: each stage's command and upstream stages, and which
stages ``dvc repro`` still has to run.

A stage has to run when DVC finds it changed (``stage.changed()``: a dependency, parameter,
command or output differs from ``dvc.lock``, or an output is missing) or when any stage upstream
of it has to run: its inputs will be rewritten (DVC skips a downstream stage only if the rerun
upstream wrote identical outputs, which the plan does not assume). Frozen stages never run.
``dvc repro --dry`` is not used: on a fresh clone it stops at the first missing input.

Independent chains: what can run at once on separate devices of one workspace.

Every training stage (and the energy stage) belongs to one dataset and seed (``cifar10/seed0``).
Two kinds of stage are shared between those and run once, outside the chains:

* **before**: a stage of no dataset/seed whose downstream stages (the fan-in ones below set
  aside) span two or more of them, e.g. ``prepare@cifar10`` under every CIFAR-10 seed;
* **after** (fan-in): a stage of no dataset/seed whose upstream stages span two or more, e.g.
  ``tables``.

What remains splits into connected components; each is a chain, named by its dataset/seed.
Components of no dataset/seed (the toy studies with their MNIST manifest) are merged into one
chain. ``dvc repro <targets>`` (a chain's last stages) runs a chain: DVC reproduces upstream, and
the before stages, already run, are up to date by then. Chains share no stage, so DVC's per-path
read/write locks never collide; :func:`tools.plan.report.chain_script` writes the commands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "Chain",
    "Dag",
    "Split",
    "assign",
    "downstream",
    "load_dag",
    "locked_stages",
    "split_chains",
    "upstream",
]


@dataclass(frozen=True)
class Dag:
    """``cmds``: stage (addressing, ``ann@cifar10-0``) -> command, in dvc.yaml order;
    ``deps``: stage -> the stages whose outputs it reads; ``changed``: stages DVC finds changed;
    ``frozen``: frozen stages; ``locked``: stages recorded in dvc.lock."""

    cmds: dict[str, str]
    deps: dict[str, frozenset[str]]
    changed: frozenset[str]
    frozen: frozenset[str] = frozenset()
    locked: frozenset[str] = frozenset()  # the stages dvc.lock holds

    def locked_before(self, order: list[str]) -> list[int]:
        """For each stage of ``order`` (run one after another): how many stages dvc.lock holds
        when it runs."""
        held, counts = set(self.locked), []
        for stage in order:
            counts.append(len(held))
            held.add(stage)
        return counts

    def to_run(self) -> list[str]:
        """Changed stages and everything downstream of them, in dvc.yaml order."""
        todo = downstream(self.deps, self.changed) | set(self.changed)
        return [s for s in self.cmds if s in todo and s not in self.frozen]


def upstream(deps: Mapping[str, Iterable[str]], stages: Iterable[str]) -> set[str]:
    """Every stage ``stages`` depend on, directly or not (not ``stages`` themselves)."""
    seen: set[str] = set()
    todo = [d for s in stages for d in deps.get(s, ())]
    while todo:
        stage = todo.pop()
        if stage not in seen:
            seen.add(stage)
            todo.extend(deps.get(stage, ()))
    return seen


def downstream(deps: Mapping[str, Iterable[str]], stages: Iterable[str]) -> set[str]:
    """Every stage that depends on ``stages``, directly or not (not ``stages`` themselves)."""
    users: dict[str, set[str]] = {}
    for stage, ups in deps.items():
        for up in ups:
            users.setdefault(up, set()).add(stage)
    return upstream(users, stages)


def locked_stages(root: Path) -> set[str]:
    """The stages ``dvc.lock`` at ``root`` holds."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return set()
    return set((yaml.safe_load(lock.read_text()) or {}).get("stages") or {})


def load_dag(root: Path, everything: bool = False) -> Dag:
    """Read the DVC project at ``root``; ``everything``: treat every stage as changed (what
    ``dvc repro --force`` runs)."""
    from dvc.repo import Repo

    # stage addressing (``ann@cifar10-0``) is relative to the working directory: as at the root
    with contextlib.chdir(root), Repo(".") as repo:
        index = repo.index
        graph = index.graph  # an edge goes from a stage to a stage it depends on
        stages = [s for s in index.stages if getattr(s, "cmd", None)]
        cmds = {s.addressing: s.cmd for s in stages}
        deps = {
            s.addressing: frozenset(d.addressing for d in graph.successors(s) if d.cmd)
            for s in stages
        }
        frozen = frozenset(s.addressing for s in stages if s.frozen)
        if everything:
            changed = frozenset(cmds)
        else:
            with repo.lock:
                changed = frozenset(s.addressing for s in stages if s.changed())
    return Dag(cmds, deps, changed, frozen, frozenset(locked_stages(root)) & frozenset(cmds))


@dataclass(frozen=True)
class Chain:
    """``stages`` in dvc.yaml order; ``targets``: those no other stage of the chain reads."""

    name: str
    stages: tuple[str, ...]
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    before: tuple[str, ...]
    chains: tuple[Chain, ...]
    after: tuple[str, ...]


def _targets(stages: list[str], deps: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    used = {d for s in stages for d in deps.get(s, ())}
    return tuple(s for s in stages if s not in used)


def _components(stages: list[str], deps: Mapping[str, frozenset[str]]) -> list[list[str]]:
    """Connected components (edges in either direction) of ``stages``, each in input order."""
    parent = {s: s for s in stages}

    def find(s: str) -> str:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for stage in stages:
        for dep in deps.get(stage, ()):
            if dep in parent:
                parent[find(stage)] = find(dep)
    groups: dict[str, list[str]] = {}
    for stage in stages:
        groups.setdefault(find(stage), []).append(stage)
    return list(groups.values())


def split_chains(
    order: list[str], deps: Mapping[str, frozenset[str]], keys: Mapping[str, str | None]
) -> Split:
    """Split the stages to run (``order``, dvc.yaml order) into before / chains / after.

    ``deps``: every stage's upstream stages (the whole DAG); ``keys``: a stage's dataset/seed
    (``cifar10/seed0``) or ``None``.
    """

    def spanned(stages: set[str]) -> set[str]:
        return {k for s in stages if (k := keys.get(s))}

    after = [s for s in order if keys.get(s) is None and len(spanned(upstream(deps, [s]))) >= 2]
    fan_in = set(after)
    inner = {s: frozenset(d for d in ups if d not in fan_in) for s, ups in deps.items()}
    inner = {s: ups for s, ups in inner.items() if s not in fan_in}
    before = [
        s
        for s in order
        if s not in fan_in and keys.get(s) is None and len(spanned(downstream(inner, [s]))) >= 2
    ]
    shared = fan_in | set(before)
    rest = [s for s in order if s not in shared]
    chains, loose = [], []
    for group in _components(rest, deps):
        names = sorted(spanned(set(group)))
        if names:
            chains.append(Chain("+".join(names), tuple(group), _targets(group, deps)))
        else:
            loose.extend(group)
    if loose:
        loose.sort(key=order.index)
        targets = _targets(loose, deps)
        chains.append(Chain("+".join(targets), tuple(loose), targets))
    return Split(tuple(before), tuple(chains), tuple(after))


def assign(chains: list[Chain], cost: Mapping[str, float], slots: int) -> list[list[Chain]]:
    """Chains on ``slots`` devices (or device sets): costliest first, each to the least loaded
    slot; a slot runs its chains one after another."""
    loads = [0.0] * max(1, slots)
    plan: list[list[Chain]] = [[] for _ in loads]
    for chain in sorted(chains, key=lambda c: -cost[c.name]):
        slot = loads.index(min(loads))
        plan[slot].append(chain)
        loads[slot] += cost[chain.name]
    return [p for p in plan if p]
