"""A device's rates (its throughput table) and a stage's seconds estimated from them.

One JSON file per device, ``plans/throughput-<device>.json`` at the project root (``<device>``:
the GPU's name from torch, or the CPU's model name, as a file-name slug), measured (``python -m
tools.plan measure``) or given by hand::

    {"device": "AMD EPYC", "kind": "cpu", "clock": "wall",
     "fixed": {"startup:train": 14.4, "startup:prepare": 8.3, "startup:study": 12.0,
               "startup:report": 11.2, "dvs_recording": 0.05, "dvc": 1.3,
               "dvc_per_locked": 0.09},
     "entries": {"resnet18 snn T=6 width=8 in=3x32x32 batch=32 eager fp32":
                 {"train_ips": 105.8, "eval_ips": 448.2, "activity_ips": 300.1,
                  "checkpoint_s": 0.01, "warmup_s": 0.08, "threads": 2, ...},
                 "resnet18 snn T=6 width=8 in=3x32x32 batch=4 eager fp32": {"alg1_s": 6.4}}}

``fixed`` holds per-device seconds: one process start-up per kind, one CIFAR10-DVS recording
prepared, and DVC's own cost per stage (``dvc`` + ``dvc_per_locked`` x the stages in dvc.lock,
:func:`tools.plan.measure.measure_dvc`). A hand-given figure (``--ips resnet18:6=850``, images/s
per model and T) serves training, evaluation and activity passes of that model and T
(evaluation at the training rate: an upper bound, it skips the backward); it says nothing of
Algorithm 1. ``clock`` says what every figure counts (:data:`CLOCKS`, below).

:func:`estimate`: one stage's seconds, the sum of its terms, each a count times a device's
seconds per unit, plus DVC's own cost (``dvc + dvc_per_locked x`` the stages dvc.lock holds by
then)::

    train stage:  startup + warmup + epochs x (train_images / train_ips + test_images / eval_ips
                  + checkpoint [+ Algorithm 1 call])

Under torchrun with P processes the image and Algorithm 1 counts are divided by P (ideal
scaling: an assumption, not measured) and the stage holds P devices: its device-hours are P x
its wall time.

The clock (:data:`CLOCKS`): ``wall`` is elapsed seconds (``time.perf_counter``), what a user
waits for; ``cpu`` is CPU seconds, user + system time of this process (all its threads) and of
its children once waited for (``os.times``). On a machine shared with other jobs the wall time
of a stage follows the load of the minute, while its CPU time at one thread per process does
not, so the plan's model can be checked on a busy machine with ``cpu`` tables
(``benchmarks/plan_accuracy.py --clock cpu``). On a quiet machine, one thread, the two agree.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from .workload import StepKey, Term, Workload

__all__ = [
    "CLOCKS",
    "FIXED",
    "Clock",
    "Estimate",
    "Throughput",
    "device_name",
    "estimate",
    "now",
    "parse_given",
    "run_seconds",
    "run_timed",
    "table_path",
]


FIXED = ("startup:train", "startup:prepare", "startup:study", "startup:report", "dvs_recording",
         "dvc", "dvc_per_locked")  # fmt: skip
PER_IMAGE = {"train": "train_ips", "eval": "eval_ips", "activity": "activity_ips"}


@dataclass
class Throughput:
    """One device's table (see the module docstring)."""

    device: str
    kind: str
    fixed: dict[str, float] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    given: dict[tuple[str, int], float] = field(default_factory=dict)  # (model, T) -> images/s
    clock: Clock = "wall"

    def seconds(self, term: Term) -> float | None:
        """Seconds of one unit of ``term``, or ``None`` where neither measured nor given."""
        if term.key is None:
            return self.fixed.get(term.unit)
        entry = self.entries.get(term.key.label, {})
        if term.unit in PER_IMAGE:
            ips = entry.get(PER_IMAGE[term.unit])
            ips = ips or self.given.get((term.key.model, term.key.time_steps))
            return None if not ips else 1.0 / ips
        value = entry.get(f"{term.unit}_s")
        if value is None and term.unit in ("checkpoint", "warmup") and self.given:
            return 0.0  # small next to the images; not part of a hand-given figure
        return value

    @classmethod
    def load(cls, path: Path, device: str, kind: str) -> Throughput:
        """The table at ``path``, or an empty one for ``device``; ``ValueError`` if unreadable."""
        if not path.is_file():
            return cls(device, kind)
        try:
            data = json.loads(path.read_text())
            fixed, entries, clock = dict(data["fixed"]), dict(data["entries"]), data.get("clock")
            table = cls(data["device"], data["kind"], fixed, entries, clock=clock or "wall")
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a throughput table ({err!r})") from None
        if table.clock not in CLOCKS:
            raise ValueError(f"{path}: clock must be one of {CLOCKS}, got {table.clock!r}")
        return table

    def save(self, path: Path) -> None:
        data = {
            "device": self.device,
            "kind": self.kind,
            "clock": self.clock,
            "fixed": self.fixed,
            "entries": dict(sorted(self.entries.items())),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n")


def device_name(kind: str) -> str:
    """The GPU's name (``cuda``) or the CPU's model name (``cpu``)."""
    if kind == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def table_path(root: Path, device: str, clock: Clock = "wall") -> Path:
    """``<root>/plans/throughput-<slug of device>.json`` (``...-cpu-clock.json`` for ``cpu``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")
    return root / "plans" / f"throughput-{slug}{'-cpu-clock' if clock == 'cpu' else ''}.json"


def parse_given(values: list[str]) -> dict[tuple[str, int], float]:
    """``["resnet18:6=850", "resnet18:1=4000"]`` -> {("resnet18", 6): 850.0, ...} (T=1: ANN)."""
    out: dict[tuple[str, int], float] = {}
    for value in values:
        match = re.fullmatch(r"([a-z0-9_]+):T?(\d+)=([0-9.eE+]+)", value.strip())
        if not match or float(match.group(3)) <= 0:
            raise ValueError(f"--ips {value!r}: expected MODEL:T=IMAGES_PER_S, e.g. resnet18:6=850")
        out[(match.group(1), int(match.group(2)))] = float(match.group(3))
    return out


@dataclass(frozen=True)
class Estimate:
    """``seconds``: wall time (``None`` while a step shape's rate is missing); ``parts``: seconds
    per unit; ``missing``: the step shapes whose rates are missing. A per-device figure not
    measured yet (start-up, DVC) counts as 0."""

    seconds: float | None
    device_hours: float | None
    parts: dict[str, float]
    missing: tuple[StepKey, ...] = ()


def estimate(work: Workload, table: Throughput, locked: int = 0) -> Estimate:
    """``work`` on the device ``table`` describes, when dvc.lock holds ``locked`` stages."""
    parts = {"dvc": table.fixed.get("dvc", 0.0) + table.fixed.get("dvc_per_locked", 0.0) * locked}
    missing: list[StepKey] = []
    for term in work.terms:
        each = table.seconds(term)
        if each is None and term.key is None:
            each = 0.0  # a per-device figure not measured yet: the report says so
        if each is None:
            missing.append(term.key)
        elif term.count:
            unit = term.unit.split(":")[0]
            parts[unit] = parts.get(unit, 0.0) + term.count * each
    if missing:
        return Estimate(None, None, parts, tuple(dict.fromkeys(missing)))
    seconds = sum(parts.values())
    return Estimate(seconds, seconds * work.processes / 3600, parts)


Clock = Literal["wall", "cpu"]
CLOCKS: tuple[str, ...] = get_args(Clock)


def now(clock: Clock) -> float:
    """The current reading of ``clock`` in seconds (only differences are meaningful)."""
    if clock == "cpu":
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system
    return time.perf_counter()


def run_timed(
    cmd: list[str], cwd: Path | None, env: dict[str, str] | None, clock: Clock
) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``cmd`` to its end (output captured); its seconds on ``clock`` and the result."""
    start = now(clock)
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return now(clock) - start, done


def run_seconds(
    cmd: list[str], cwd: Path | None, env: dict[str, str] | None, clock: Clock
) -> float:
    """Seconds on ``clock`` of ``cmd`` run to its end; a failure exits naming the command, with
    the end of its output."""
    seconds, done = run_timed(cmd, cwd, env, clock)
    if done.returncode:
        raise SystemExit(
            f"error: {' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return seconds
