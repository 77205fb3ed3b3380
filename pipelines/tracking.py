"""MLflow behind :class:`dspike.engine.Tracker`: one experiment per dataset, one run per stage+seed.

The store is ``MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db`` (MLflow 3's own default,
so ``mlflow ui`` from the repository root shows it). MLflow's telemetry is switched off before
MLflow is imported. A store that cannot be opened or written never stops a training run: the
tracker warns once and turns itself off; the stage's metrics JSON and CSV are written anyway.
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MLflowTracker", "tracking_uri"]

_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
_BATCH = 100  # parameters per log_batch call (MLflow's limit)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


class MLflowTracker:
    """Implements :class:`dspike.engine.Tracker` with ``mlflow.MlflowClient``."""

    def __init__(
        self, experiment: str, run_name: str, tags: Mapping[str, str], uri: str | None = None
    ) -> None:
        self.experiment, self.run_name, self.tags = experiment, run_name, dict(tags)
        self.uri = uri or tracking_uri()
        self.client: Any = None
        self.run_id: str | None = None

    def start(self, run_id: str | None) -> str | None:
        self.run_id = run_id
        try:
            from mlflow import MlflowClient

            self.client = MlflowClient(tracking_uri=self.uri)
            if run_id is not None and self._resumable(run_id):
                self.client.update_run(run_id, status="RUNNING")
            else:
                run = self.client.create_run(
                    self._experiment_id(), run_name=self.run_name, tags=self.tags
                )
                self.run_id = run.info.run_id
        except Exception as err:
            self._off(err)
        return self.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:_PARAM_CHARS]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self._call("log_batch", self.run_id, params=items[i : i + _BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self._call("log_batch", self.run_id, metrics=items)

    def finish(self, status: str) -> None:
        self._call("set_terminated", self.run_id, status)

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.experiment)
        except MlflowException:  # another stage created it meanwhile
            return self.client.get_experiment_by_name(self.experiment).experiment_id

    def _resumable(self, run_id: str) -> bool:
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except Exception:
            return False

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self.client is None or self.run_id is None:
            return
        try:
            getattr(self.client, method)(*args, **kwargs)
        except Exception as err:
            self._off(err)

    def _off(self, err: Exception) -> None:
        warnings.warn(
            f"MLflow tracking at {self.uri} is off for this run ({type(err).__name__}: {err}); "
            "metrics are still written to the stage's metrics/ and plots/ files",
            stacklevel=3,
        )
        self.client = None
