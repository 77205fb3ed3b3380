"""MLflow by its own conventions: one experiment per dataset, one run per stage and seed.

The store is ``MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db`` (MLflow 3's own default,
so ``mlflow ui`` from the repository root shows it), or a team server (``http://...``).

* Experiments are model-training experiments (tag ``mlflow.experimentKind``), so the UI opens
  on the runs table, with a description (``mlflow.note.content``). With a sqlite store their
  artifacts live in ``mlartifacts/`` beside ``mlflow.db``, valid as long as the store is.
* Runs carry MLflow's system tags (``mlflow.source.git.commit``, ``mlflow.source.name``,
  ``mlflow.source.type``, ``mlflow.user``) beside the project's (params hash, stage, seed, scale,
  the DVC stage and, under ``dvc exp run``, the DVC experiment), their datasets as run inputs
  (name, digest of the data manifest, source, split sizes, substitute label) and their outputs as
  artifacts.
* A store that cannot be opened or written never stops a stage: the tracker warns once and turns
  itself off; the stage's own files are written anyway. An unreachable server is given up after
  a few seconds, not MLflow's default of minutes of retries. Telemetry is off.
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")

import getpass
import hashlib
import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .params import get, provenance

__all__ = [
    "EXPERIMENT_KIND",
    "STUDIES",
    "DatasetRecord",
    "MLflowTracker",
    "experiment_name",
    "log_stage_run",
    "run_tags",
    "tracking_uri",
]

_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
_BATCH = 100  # parameters per log_batch call (MLflow's limit)
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
STUDIES = "The paper's Sec. 4 studies: Fig. 2 and Table 1 on the toy CNN (MNIST), Fig. 3's curves"
# MLflow tag -> the environment variable DVC sets for the command it runs.
DVC_ENV_TAGS = {
    "dvc_stage": "DVC_STAGE",
    "dvc_exp": "DVC_EXP_NAME",
    "dvc_exp_baseline": "DVC_EXP_BASELINE_REV",
}


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def experiment_name(name: str) -> str:
    """``name`` behind the ``DSPIKE_EXPERIMENT_PREFIX`` (``smoke/`` at smoke scale)."""
    return os.environ.get("DSPIKE_EXPERIMENT_PREFIX", "") + name


def run_tags(params: dict, source: str, **project: Any) -> dict[str, str]:
    """MLflow's system tags and the project's for a run of the stage module ``source``
    (its ``__file__``: ``pipelines/train.py`` gives ``mlflow.source.name = pipelines.train``)."""
    prov = provenance()
    tags = {
        "mlflow.source.git.commit": prov["git_commit"],
        "mlflow.source.name": f"pipelines.{Path(source).stem}",
        "mlflow.source.type": "LOCAL",
        "mlflow.user": _user(),
        "git_dirty": prov["git_dirty"],
        "scale": str(get(params, "report.scale", "paper")).split()[0].lower(),
        **{k: str(v) for k, v in project.items()},
    }
    for tag, var in DVC_ENV_TAGS.items():
        if os.environ.get(var):
            tags[tag] = os.environ[var]
    return tags


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class DatasetRecord:
    """What a run saw: one dataset split, as its DVC manifest (``data/manifests/*.json``) says.

    Named ``<dataset>/<split>``, with the substitute label's head (``[SUBSTITUTE]``,
    ``[SIMULATED]``) where the smoke scale uses one; the profile holds both splits' sizes.
    """

    name: str
    digest: str
    source: str
    profile: dict[str, Any]
    context: str

    @classmethod
    def from_manifest(cls, path: str | Path, context: str) -> DatasetRecord:
        """``context``: ``"train"`` or ``"test"``; digest = sha256 of the manifest file."""
        blob = Path(path).read_bytes()
        manifest = json.loads(blob)
        label = manifest.get("substitute") or ""
        name = f"{manifest['name']}/{context}" + (f" [{label.split(':')[0]}]" if label else "")
        profile = {"samples": manifest.get("samples"), "data_source": manifest.get("source")}
        if label:
            profile["substitute"] = label
        return cls(
            name=name,
            digest=hashlib.sha256(blob).hexdigest()[:12],
            source=str(manifest.get("root", "")),
            profile=profile,
            context=context,
        )


class MLflowTracker:
    """Implements :class:`dspike.engine.Tracker` with ``mlflow.MlflowClient``; also logs the
    run's dataset inputs (at start) and artifacts (after the stage wrote its files)."""

    def __init__(
        self,
        experiment: str,
        run_name: str,
        tags: Mapping[str, str],
        uri: str | None = None,
        inputs: Sequence[DatasetRecord] = (),
        description: str = "",
    ) -> None:
        self.experiment, self.run_name, self.tags = experiment, run_name, dict(tags)
        self.inputs, self.description = list(inputs), description
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
                self._log_inputs()
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

    def log_artifacts(self, files: Mapping[str, Path]) -> None:
        """Log each file (or folder) under the artifact folder its key names (``""``: top)."""
        for folder, path in files.items():
            if Path(path).is_dir():
                self._call("log_artifacts", self.run_id, str(path), folder or None)
            elif Path(path).is_file():
                self._call("log_artifact", self.run_id, str(path), folder or None)

    def finish(self, status: str) -> None:
        self._call("set_terminated", self.run_id, status)

    def _log_inputs(self) -> None:
        if not self.inputs:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        datasets = [
            DatasetInput(
                Dataset(
                    name=d.name,
                    digest=d.digest,
                    source_type="local",
                    source=json.dumps({"uri": d.source}),
                    profile=json.dumps(d.profile),
                ),
                tags=[InputTag("mlflow.data.context", d.context)],
            )
            for d in self.inputs
        ]
        self.client.log_inputs(self.run_id, datasets=datasets)

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return self.client.create_experiment(
                    self.experiment,
                    artifact_location=self._artifact_location(),
                    tags={**EXPERIMENT_KIND, "mlflow.note.content": self.description},
                )
            except MlflowException:  # another stage created it meanwhile
                found = self.client.get_experiment_by_name(self.experiment)
        for key, value in EXPERIMENT_KIND.items():  # made by an older version, or by hand
            if found.tags.get(key) != value:
                self.client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id

    def _artifact_location(self) -> str | None:
        """``mlartifacts/<experiment>`` beside a sqlite store; a server chooses its own."""
        parsed = urlparse(self.uri)
        if parsed.scheme != "sqlite":
            return None
        db = Path(self.uri.removeprefix("sqlite:///")).resolve()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.experiment)
        return (db.parent / "mlartifacts" / safe).as_uri()

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


def log_stage_run(
    experiment: str,
    run_name: str,
    tags: Mapping[str, str],
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    artifacts: Mapping[str, Path] | None = None,
    inputs: Sequence[DatasetRecord] = (),
    description: str = "",
) -> str | None:
    """One finished run for a stage that does not train (studies, energy, tables)."""
    tracker = MLflowTracker(experiment, run_name, tags, inputs=inputs, description=description)
    if tracker.start(None) is None:
        return None
    tracker.log_params(params or {})
    if metrics:
        tracker.log_metrics(metrics, step=0)
    tracker.log_artifacts(artifacts or {})
    tracker.finish("FINISHED")
    return tracker.run_id
