"""What the training loop tells an experiment tracker; dspike itself never imports one.

``harness.tracking.MLflowTracker`` implements this protocol; :class:`NullTracker` is the
default. Only rank 0 calls a tracker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["NullTracker", "Tracker"]


@runtime_checkable
class Tracker(Protocol):
    run_id: str | None
    """The run's id, or ``None``; the loop reads it for checkpoints and its result. A tracker
    that opens its run in the background makes reading it wait until the run is open."""

    def start(self, run_id: str | None) -> str | None:
        """Open a run (or reopen ``run_id`` when resuming), possibly in the background; return
        its id, or ``None`` (not known yet, or none)."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def finish(self, status: str) -> None:
        """Close the run: ``"FINISHED"``, ``"FAILED"`` or ``"KILLED"`` (interrupted)."""


class NullTracker:
    """Tracks nothing; keeps the run id it was started with (a resumed run's)."""

    run_id: str | None = None

    def start(self, run_id: str | None) -> str | None:
        self.run_id = run_id
        return run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        return None

    def finish(self, status: str) -> None:
        return None
