"""MLflow by its own conventions: one experiment per dataset, one run per stage and seed.

The store is ``MLFLOW_TRACKING_URI`` or ``sqlite:///<workspace>/mlflow.db`` (MLflow 3's own
default, so ``mlflow ui`` from the repository root shows it), or a team server (``http://...``).
The workspace (:func:`workspace`) is the DVC repository's root as DVC names it to the commands
it runs (``DVC_ROOT``), else the working directory: ``dvc exp run --temp`` and queued
experiments run in a temporary copy under ``.dvc/tmp/exps/``, and DVC then gives the original
root, so their records (and ``.mlflow-pending/``) reach the store plain ``dvc repro`` uses.

* Experiments are model-training experiments (tag ``mlflow.experimentKind``), so the UI opens
  on the runs table, with a description (``mlflow.note.content``). With a sqlite store their
  artifacts live in ``mlartifacts/`` beside ``mlflow.db``, valid as long as the store is.
* Runs carry MLflow's system tags (``mlflow.source.git.commit``, ``mlflow.source.name``,
  ``mlflow.source.type``, ``mlflow.user``) beside the project's (params hash, stage, seed, scale,
  the DVC stage and, under ``dvc exp run``, the DVC experiment), their datasets as run inputs
  (name, digest of the data manifest, source, split sizes, substitute label) and their outputs as
  artifacts.
* A store that cannot be opened or written never stops a stage: the tracker warns, keeps what
  it could not send and sends it when the store answers again, within a bounded time of failed
  calls (``tracking.retry_s``); what is left is sent by the next stage that finds the store
  back (:class:`MLflowTracker`). The stage's own files are written anyway. An unreachable
  server costs one retry per call, not MLflow's default of minutes. Telemetry is off.
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
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .params import Params, provenance

__all__ = [
    "EXPERIMENT_KIND",
    "STUDIES",
    "DatasetRecord",
    "MLflowTracker",
    "experiment_name",
    "log_stage_run",
    "replay_pending",
    "run_tags",
    "tracking_uri",
    "workspace",
]

_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
_BATCH = 100  # parameters per log_batch call (MLflow's limit)
RETRY_S = 60.0  # default seconds of failed calls a run tolerates (params: tracking.retry_s)
_FINAL_TRY_S = 30.0  # what finish() may still spend on a last try
PENDING = ".mlflow-pending"  # records a run could not send, under the workspace()
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
STUDIES = "The paper's Sec. 4 studies: Fig. 2 and Table 1 on the toy CNN (MNIST), Fig. 3's curves"
# MLflow tag -> the environment variable DVC sets for the command it runs.
DVC_ENV_TAGS = {
    "dvc_stage": "DVC_STAGE",
    "dvc_exp": "DVC_EXP_NAME",
    "dvc_exp_baseline": "DVC_EXP_BASELINE_REV",
}
_OPENERS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # background starts under way


def _join_openers() -> None:
    """Before this process forks (DataLoader workers, multiprocessing): let every background
    start finish, since a forked child would inherit the import locks its thread holds."""
    for thread in list(_OPENERS):
        if thread is not threading.current_thread():
            thread.join()


os.register_at_fork(before=_join_openers)


def workspace() -> Path:
    """Where the store and ``.mlflow-pending/`` live: ``DVC_ROOT`` (set by DVC for every stage
    command: the repository's root; for ``dvc exp run --temp`` and queued experiments, the
    original workspace, not DVC's temporary copy), else the working directory."""
    root = os.environ.get("DVC_ROOT")
    return Path(root) if root and Path(root).is_dir() else Path.cwd()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{workspace() / 'mlflow.db'}"


def experiment_name(name: str) -> str:
    """``name`` behind the ``DSPIKE_EXPERIMENT_PREFIX`` (``smoke/`` at smoke scale)."""
    return os.environ.get("DSPIKE_EXPERIMENT_PREFIX", "") + name


def run_tags(params: Params, source: str, **project: Any) -> dict[str, str]:
    """MLflow's system tags and the project's for a run of the stage module ``source``
    (its ``__file__``: ``pipelines/train.py`` gives ``mlflow.source.name = pipelines.train``)."""
    prov = provenance()
    tags = {
        "mlflow.source.git.commit": prov["git_commit"],
        "mlflow.source.name": f"pipelines.{Path(source).stem}",
        "mlflow.source.type": "LOCAL",
        "mlflow.user": _user(),
        "git_dirty": prov["git_dirty"],
        "scale": params.report.scale.split()[0].lower(),
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
    run's dataset inputs (at start) and artifacts (after the stage wrote its files).

    Outages: every record (params, metrics, the end status) is queued and sent in order; a call
    that fails leaves it queued and a later one tries again (spaced out: 2, 4, 8 ... s), so a
    store that comes back within the run gets everything. Failed calls may cost at most
    ``retry_s`` seconds in all; :meth:`finish` tries once more. What is still queued then goes to
    ``.mlflow-pending/`` (:data:`PENDING`) and reaches the store, tagged ``late_records``, when
    the next stage starts with the store back: no run stays ``RUNNING`` for want of its end.

    With ``background``, :meth:`start` returns at once and a thread imports MLflow and opens the
    run (seconds: MLflow imports pandas, the store checks its schema) while training starts;
    records queue until the run is open, and reading :attr:`run_id`, :meth:`log_artifacts` and
    :meth:`finish` wait for it, and so does a fork of the process. What reaches the store, and
    in which order, is the same.
    """

    def __init__(
        self,
        experiment: str,
        run_name: str,
        tags: Mapping[str, str],
        uri: str | None = None,
        inputs: Sequence[DatasetRecord] = (),
        description: str = "",
        retry_s: float = RETRY_S,
        background: bool = False,
    ) -> None:
        self.experiment, self.run_name, self.tags = experiment, run_name, dict(tags)
        self.inputs, self.description = list(inputs), description
        self.uri = uri or tracking_uri()
        self.retry_s = float(retry_s)
        self.client: Any = None
        self.background = background
        self._opener: threading.Thread | None = None
        self._run_id: str | None = None
        self.queue: list[dict[str, Any]] = []
        self.failed_s = 0.0
        self._down = False
        self._created = False
        self._failures = 0  # in a row
        self._next_try = 0.0  # monotonic time before which no call is tried

    @property
    def run_id(self) -> str | None:
        """The run's id (``None`` while the store is unreachable); waits for a background start."""
        self._wait_open()
        return self._run_id

    def start(self, run_id: str | None) -> str | None:
        """Open the run (reopen ``run_id``, if the store still has it) and send what earlier
        runs left pending; with ``background``, in a thread, returning ``None`` at once."""
        self._run_id = run_id
        if not self.background:
            self._start()
            return self._run_id
        self._opener = threading.Thread(target=self._start, name="mlflow-start", daemon=True)
        _OPENERS.add(self._opener)
        self._opener.start()
        return None

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [[k, str(v)[:_PARAM_CHARS]] for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.queue.append({"op": "params", "items": items[i : i + _BATCH]})
        if not self._opening():
            self._flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        items = [[k, float(v), now, step] for k, v in metrics.items()]
        self.queue.append({"op": "metrics", "items": items})
        if not self._opening():
            self._flush()

    def log_artifacts(self, files: Mapping[str, Path]) -> None:
        """Log each file (or folder) under the artifact folder its key names (``""``: top).

        Artifacts are not queued (they may be temporary files): during an outage they are
        skipped with a warning naming them."""
        self._wait_open()
        for folder, path in files.items():
            method = "log_artifacts" if Path(path).is_dir() else "log_artifact"
            if not Path(path).exists():
                continue
            if not self._flush() or not self._attempt(
                lambda m=method, p=path, f=folder: getattr(self.client, m)(
                    self._run_id, str(p), f or None
                )
            ):
                warnings.warn(f"MLflow: artifact {path} not logged (store unreachable)",
                              stacklevel=2)  # fmt: skip

    def finish(self, status: str) -> None:
        self._wait_open()
        self.queue.append({"op": "end", "status": status, "time": int(time.time() * 1000)})
        if self._down:  # one last try, whatever the budget and the spacing
            self.retry_s = max(self.retry_s, self.failed_s) + _FINAL_TRY_S
            self._next_try = 0.0
        if not self._flush() and self.queue:
            path = self._spool()
            warnings.warn(
                f"MLflow tracking at {self.uri} is off: {len(self.queue)} records of run "
                f"{self.run_name} kept in {path}; they are sent when a stage next starts with "
                "the store reachable",
                stacklevel=2,
            )

    # --- queue and outages ----------------------------------------------------------------

    def _start(self) -> None:
        self._attempt(self._open)
        if self.client is not None:
            replay_pending(self.client, self.uri)

    def _opening(self) -> bool:
        """Whether a background start is still under way (records then wait in the queue)."""
        return self._opener is not None and self._opener.is_alive()

    def _wait_open(self) -> None:
        if self._opening() and threading.current_thread() is not self._opener:
            self._opener.join()

    def _open(self) -> None:
        self.client = self.client or open_client(self.uri)
        if self._created:
            return
        if self._run_id is not None and self._resumable(self._run_id):
            self.client.update_run(self._run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                self._experiment_id(), run_name=self.run_name, tags=self.tags
            )
            self._run_id = run.info.run_id
            self._created = True
            self._log_inputs()
        self._created = True

    def _flush(self) -> bool:
        """Send the queue in order; False if the store could not take all of it."""
        if not self._created and not self._attempt(self._open):
            return False
        while self.queue:
            if not self._attempt(lambda: _send(self.client, self._run_id, self.queue[0])):
                return False
            self.queue.pop(0)
        return True

    def _attempt(self, call: Any) -> bool:
        """Run ``call``; a failure costs from the retry budget and warns once per outage.

        After ``k`` failures in a row no call is tried for ``min(2**k, 60)`` seconds (records
        keep queueing), so an outage costs a few tries, not one per record."""
        t0 = time.monotonic()
        if self.failed_s >= self.retry_s or t0 < self._next_try:
            return False
        try:
            call()
        except Exception as err:
            self.failed_s += time.monotonic() - t0
            self._failures += 1
            self._next_try = time.monotonic() + min(2.0**self._failures, 60.0)
            if self.client is not None and not self._created:
                self.client = None
            if not self._down:
                warnings.warn(
                    f"MLflow tracking at {self.uri} is off for now ({type(err).__name__}: "
                    f"{' '.join(str(err).split())[:300]}); records are kept and retried (at "
                    f"most {self.retry_s:.0f} s of failed calls); the stage's metrics/ and "
                    "plots/ files are written anyway",
                    stacklevel=3,
                )
            self._down = True
            return False
        self._down, self._failures = False, 0
        return True

    def _spool(self) -> Path:
        folder = workspace() / PENDING
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "uri": self.uri, "run_id": self._run_id if self._created else None,
            "experiment": self.experiment, "run_name": self.run_name, "tags": self.tags,
            "description": self.description, "queue": self.queue,
        }  # fmt: skip
        path = folder / f"{self._run_id or 'new'}-{os.getpid()}-{int(time.time())}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
        return path

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
        self.client.log_inputs(self._run_id, datasets=datasets)

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


def open_client(uri: str) -> Any:
    """An MLflow client of the store at ``uri``, the store created or migrated first. A sqlite
    store is opened under a file lock (in the temporary directory, named by the store's path,
    so that no workspace gets a new file): two stages that open a new store at once (two DVC
    jobs, ``dvc queue start -j 2``) would otherwise both run MLflow's schema migration and
    leave the file half-migrated (``table _alembic_tmp_experiments already exists``)."""
    from filelock import FileLock
    from mlflow import MlflowClient

    if urlparse(uri).scheme != "sqlite":
        return MlflowClient(tracking_uri=uri)
    db = str(Path(uri.removeprefix("sqlite:///")).resolve())
    name = hashlib.sha1(db.encode()).hexdigest()[:16]
    with FileLock(str(Path(tempfile.gettempdir()) / f"dspike-mlflow-{name}.lock")):
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # creates and migrates the store
    return client


def _send(client: Any, run_id: str, record: dict[str, Any]) -> None:
    """One queued record to the store."""
    from mlflow.entities import Metric, Param

    if record["op"] == "params":
        client.log_batch(run_id, params=[Param(k, v) for k, v in record["items"]])
    elif record["op"] == "metrics":
        client.log_batch(run_id, metrics=[Metric(*item) for item in record["items"]])
    elif record["op"] == "end":
        client.set_terminated(run_id, record["status"], end_time=record["time"])


def replay_pending(client: Any, uri: str) -> None:
    """Send the records that earlier runs left in :data:`PENDING` for ``uri`` (see
    :class:`MLflowTracker`); each run so completed gets the tag ``late_records``."""
    folder = workspace() / PENDING
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
            if record.get("uri") != uri:
                continue
            run_id = record["run_id"]
            if run_id is None:
                experiment = client.get_experiment_by_name(record["experiment"])
                if experiment is None:
                    experiment_id = client.create_experiment(
                        record["experiment"],
                        tags={**EXPERIMENT_KIND, "mlflow.note.content": record["description"]},
                    )
                else:
                    experiment_id = experiment.experiment_id
                run_id = client.create_run(
                    experiment_id, run_name=record["run_name"], tags=record["tags"]
                ).info.run_id
            for item in record["queue"]:
                _send(client, run_id, item)
            client.set_tag(run_id, "late_records", f"{len(record['queue'])} sent after an outage")
            path.unlink()
        except Exception as err:  # still unreachable, or a damaged file: keep it
            warnings.warn(f"MLflow: pending records {path} not sent yet ({err})", stacklevel=2)
            return


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
    tracker.start(None)
    tracker.log_params(params or {})
    if metrics:
        tracker.log_metrics(metrics, step=0)
    tracker.log_artifacts(artifacts or {})
    tracker.finish("FINISHED")
    return tracker.run_id
