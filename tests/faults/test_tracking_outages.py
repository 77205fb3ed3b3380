"""MLflow outages: a sqlite store locked by another process, a team server stopped mid-run.

Nothing is mocked: the lock is a real ``BEGIN EXCLUSIVE`` held by another process (MLflow waits
20 s on a busy store, then fails), the server a real ``mlflow server`` stopped with SIGTERM and
started again on the same store. No record is lost and no run is left ``RUNNING``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import warnings

import pytest
from faults_support import free_port, mlflow_server, stop_server

from harness.tracking import PENDING, MLflowTracker

pytestmark = pytest.mark.integration

HOLD = (
    "import sqlite3, sys, time\n"
    "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "db.execute('BEGIN EXCLUSIVE')\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def _history(client, run_id: str, key: str = "test_acc") -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_a_long_sqlite_lock_delays_records_but_loses_none(template, tmp_path):
    from mlflow import MlflowClient

    db = shutil.copy(template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{db}"
    tracker = MLflowTracker("faults/lock", "run/seed0", {"stage": "lock"}, uri=uri, retry_s=120)
    run_id = tracker.start(None)
    tracker.log_params({"lr": 0.1})
    tracker.log_metrics({"test_acc": 10.0}, step=1)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "24"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    t0 = time.monotonic()
    with pytest.warns(UserWarning, match="is off for now"):
        tracker.log_metrics({"test_acc": 20.0}, step=2)  # MLflow gives up after 20 s
    assert tracker.queue and time.monotonic() - t0 >= 15
    tracker.log_metrics({"test_acc": 30.0}, step=3)  # waits for the lock, then sends both
    tracker.finish("FINISHED")
    holder.wait(timeout=60)
    assert not tracker.queue
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["lr"] == "0.1"
    assert _history(client, run_id) == [(1, 10.0), (2, 20.0), (3, 30.0)]


def test_a_server_stopped_mid_run_gets_every_record_back(template, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = mlflow_server(tmp_path, port, template)
    try:
        tracker = MLflowTracker("faults/server", "run/seed0", {"stage": "s"}, uri=uri, retry_s=10)
        run_id = tracker.start(None)
        tracker.log_params({"lr": 0.1})
        tracker.log_metrics({"test_acc": 10.0}, step=1)
    finally:
        stop_server(server)
    t0 = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracker.log_metrics({"test_acc": 20.0}, step=2)
        tracker.finish("FINISHED")
    outage = time.monotonic() - t0
    assert outage < 10 + 30 + 5  # retry_s, then one last try of at most 30 s
    (pending,) = (tmp_path / PENDING).glob("*.json")
    assert any(str(pending.name) in str(w.message) for w in caught)

    server = mlflow_server(tmp_path, port, template)  # the same store, back
    try:
        MLflowTracker("faults/server", "next/seed0", {"stage": "next"}, uri=uri).start(None)
        client = MlflowClient(tracking_uri=uri)
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert _history(client, run_id) == [(1, 10.0), (2, 20.0)]
        assert run.data.tags["late_records"].startswith("2 sent")
        assert not list((tmp_path / PENDING).glob("*.json"))
    finally:
        stop_server(server)


def test_an_unreachable_server_costs_a_bounded_time(tmp_path, monkeypatch):
    """Nothing listens on the port: the stage-side tracker gives up within its budget, and the
    records wait in .mlflow-pending/ with the run to create."""
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracker = MLflowTracker("faults/none", "run/seed0", {}, uri=uri, retry_s=5)
        assert tracker.start(None) is None
        for step in range(1, 4):
            tracker.log_metrics({"test_acc": float(step)}, step=step)
        tracker.finish("FINISHED")
    assert time.monotonic() - t0 < 5 + 30 + 10
    (pending,) = (tmp_path / PENDING).glob("*.json")
    assert '"run_id": null' in pending.read_text()
