"""Relations the paper's mechanisms imply, checked on a DAG's training records.

Accuracies near chance cannot tell a working pipeline from a broken one; these relations can:

* ``transfer`` (Sec. 5.2, the SNN initialised from the ANN): the SNN's first epoch and its
  last are at least ``margin`` points above chance, as is the ANN it starts from; an SNN
  whose ANN weights did not arrive starts at chance.
* ``weights`` (Time Inheritance Training, Sec. 4.4): a TIT round's first epoch is above chance
  by ``margin`` and at most ``tolerance`` points below its parent's final accuracy; a round
  that started from fresh weights is back at chance.
* ``temperature`` (Sec. 4.4, ``dspike.inherit_temperature``): a TIT round's Dspike temperature
  starts (``b0``) exactly where its parent's ended.
* ``algorithm1`` (Algorithm 1): a run with the adaptive temperature moved b at least once.

Each check returns a :class:`Check` that says what it compared. pandas and json only: the
report stage, which loads no torch, lists them under "Mechanisms at this scale".
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = [
    "MARGIN",
    "TOLERANCE",
    "Check",
    "Run",
    "algorithm1",
    "dag_checks",
    "load_run",
    "temperature",
    "transfer",
    "weights",
]

MARGIN = 7.0  # points above chance that a run carrying the mechanism's weights reaches
TOLERANCE = 10.0  # points a TIT round's first epoch may fall below its parent's final


@dataclass(frozen=True)
class Run:
    """One training run's records: its metrics JSON and its per-epoch rows (plots CSV)."""

    name: str
    metrics: dict
    epochs: pd.DataFrame

    @property
    def first_acc(self) -> float:
        return float(self.epochs["test_acc"].iloc[0])

    @property
    def final_acc(self) -> float:
        return float(self.metrics["final_acc"])


@dataclass(frozen=True)
class Check:
    relation: str
    run: str
    holds: bool
    detail: str


def load_run(metrics: Path, plots: Path, name: str | None = None) -> Run:
    """The run whose metrics JSON and plots CSV are at ``metrics`` and ``plots``."""
    return Run(name or metrics.parent.name, json.loads(metrics.read_text()), pd.read_csv(plots))


def _chance(classes: int) -> float:
    return 100.0 / classes


def transfer(ann: Run, snn: Run, classes: int = 10, margin: float = MARGIN) -> Check:
    """The ANN, and the SNN initialised from it at its first and last epoch, clear chance by
    ``margin`` points."""
    floor = _chance(classes) + margin
    values = {"ANN": ann.final_acc, "SNN epoch 1": snn.first_acc, "SNN final": snn.final_acc}
    low = [k for k, v in values.items() if v < floor]
    shown = ", ".join(f"{k} {v:.1f}%" for k, v in values.items())
    return Check("transfer", snn.name, not low, f"{shown}; each must reach {floor:.1f}%"
                 + (f" ({', '.join(low)} did not)" if low else ""))  # fmt: skip


def weights(
    parent: Run, child: Run, classes: int = 10, margin: float = MARGIN,
    tolerance: float = TOLERANCE,
) -> Check:  # fmt: skip
    """A TIT round's first epoch: above chance by ``margin``, within ``tolerance`` points below
    its parent's final accuracy."""
    floor = max(_chance(classes) + margin, parent.final_acc - tolerance)
    holds = child.first_acc >= floor
    return Check("weights", child.name, holds,
                 f"epoch 1 {child.first_acc:.1f}% vs parent {parent.name} final "
                 f"{parent.final_acc:.1f}%; must reach {floor:.1f}%")  # fmt: skip


def temperature(parent: Run, child: Run) -> Check:
    """The child's Dspike temperature starts where the parent's ended."""
    start, end = child.metrics.get("b0"), parent.metrics.get("temperature")
    holds = start is not None and end is not None and float(start) == float(end)
    return Check("temperature", child.name, holds,
                 f"b0 {start} vs parent {parent.name} final b {end}")  # fmt: skip


def algorithm1(runs: list[Run]) -> Check:
    """At least one of ``runs`` (adaptive Dspike) ended an epoch at another b than its b0."""
    moved = [r.name for r in runs
             if r.metrics.get("b0") is not None
             and (r.epochs["temperature"] != float(r.metrics["b0"])).any()]  # fmt: skip
    names = ", ".join(r.name for r in runs)
    return Check("algorithm1", names, bool(moved),
                 f"b moved in {len(moved)} of {len(runs)} adaptive runs")  # fmt: skip


# The CIFAR-10 chain of dvc.yaml (real bundled images): ANN -> SNN T=6 -> TIT T=4 -> TIT T=2.
ANN, CHAIN = "cifar10_ann", ("cifar10_snn_t6", "cifar10_tit_t4", "cifar10_tit_t2")


def dag_checks(
    metrics: Path, plots: Path, seeds: list[int], inherit_temperature: bool = True
) -> list[Check]:
    """Every relation on the CIFAR-10 chain of each of ``seeds`` whose runs are all there
    (``metrics/<run>/seed<S>.json``, ``plots/<run>/seed<S>.csv``)."""
    checks = []
    for seed in seeds:
        paths = {name: (metrics / name / f"seed{seed}.json", plots / name / f"seed{seed}.csv")
                 for name in (ANN, *CHAIN)}  # fmt: skip
        if not all(m.is_file() and p.is_file() for m, p in paths.values()):
            continue
        runs = {name: load_run(m, p, f"{name} seed{seed}") for name, (m, p) in paths.items()}
        checks.append(transfer(runs[ANN], runs[CHAIN[0]]))
        for parent, child in itertools.pairwise(CHAIN):
            checks.append(weights(runs[parent], runs[child]))
            if inherit_temperature:
                checks.append(temperature(runs[parent], runs[child]))
        checks.append(algorithm1([runs[name] for name in CHAIN]))
    return checks
