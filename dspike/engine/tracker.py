"""What the training loop tells an experiment tracker; dspike itself never imports one.

``pipelines.tracking.MLflowTracker`` implements this protocol; :class:`NullTracker` is the
default. Only rank 0 calls a tracker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["NullTracker", "Tracker"]


@runtime_checkable
class Tracker(Protocol):
    def start(self, run_id: str | None) -> str | None:
        """Open a run (or reopen ``run_id`` when resuming); return its id, or ``None``."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def finish(self, status: str) -> None:
        """Close the run: ``"FINISHED"``, ``"FAILED"`` or ``"KILLED"`` (interrupted)."""


class NullTracker:
    """Tracks nothing."""

    def start(self, run_id: str | None) -> str | None:
        return run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        return None

    def finish(self, status: str) -> None:
        return None
