"""The DVC pipeline as the plan sees it: each stage's command and upstream stages, and which
stages ``dvc repro`` still has to run.

A stage has to run when DVC finds it changed (``stage.changed()``: a dependency, parameter,
command or output differs from ``dvc.lock``, or an output is missing) or when any stage upstream
of it has to run: its inputs will be rewritten (DVC skips a downstream stage only if the rerun
upstream wrote identical outputs, which the plan does not assume). Frozen stages never run.
``dvc repro --dry`` is not used: on a fresh clone it stops at the first missing input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["Dag", "downstream", "load_dag", "locked_stages", "upstream"]


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
