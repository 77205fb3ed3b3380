"""The estimate of one stage: the sum of its terms, each a count times a device's seconds per unit,
plus DVC's own cost (``dvc + dvc_per_locked x`` the stages dvc.lock holds by then)::

    train stage:  startup + warmup + epochs x (train_images / train_ips + test_images / eval_ips
                  + checkpoint [+ Algorithm 1 call])

Under torchrun with P processes the image and Algorithm 1 counts are divided by P (ideal
scaling: an assumption, not measured) and the stage holds P devices: its device-hours are P x
its wall time.
"""

from __future__ import annotations

from dataclasses import dataclass

from .throughput import Throughput
from .workload import StepKey, Workload

__all__ = ["Estimate", "estimate"]


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
