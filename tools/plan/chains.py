"""Independent chains: what can run at once on separate devices of one workspace.

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

from collections.abc import Mapping
from dataclasses import dataclass

from .dag import downstream, upstream

__all__ = ["Chain", "Split", "assign", "split_chains"]


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
