"""MLflow tracker against a real sqlite store in a temporary directory."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from engine_support import one_thread, toy_config, toy_data

from dspike.engine import build_network, fit
from harness.tracking import MLflowTracker

TAGS = {
    "git_commit": "abc123",
    "git_dirty": "false",
    "params_hash": "0123456789ab",
    "stage": "toy_snn",
    "seed": "0",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module: creating a sqlite store's tables takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_run_holds_params_metrics_and_tags(store):
    from mlflow import MlflowClient

    train, test = toy_data()
    cfg = toy_config(epochs=2, surrogate="dspike_adaptive")
    tracker = MLflowTracker("smoke/toy", "toy_snn/seed0", TAGS, uri=store)
    with one_thread():
        result = fit(cfg, build_network(cfg), train, test, tracker=tracker)
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "toy_snn/seed0"
    assert client.get_experiment(run.info.experiment_id).name == "smoke/toy"
    assert {k: run.data.tags[k] for k in TAGS} == TAGS
    assert run.data.params["optim.lr"] == "0.1"
    assert run.data.params["surrogate.name"] == "dspike_adaptive"
    for key in (
        "train_loss",
        "train_acc",
        "test_acc",
        "lr",
        "temperature",
        "cos_sim_stay",
        "firing_rate",
        "firing_rate.act1",
        "epoch_seconds",
    ):
        history = client.get_metric_history(result.run_id, key)
        assert [m.step for m in history] == [1, 2], key
    b = [m.value for m in client.get_metric_history(result.run_id, "temperature")]
    assert b == [row["temperature"] for row in result.history]


def test_resume_continues_the_same_run(store):
    first = MLflowTracker("exp", "run/seed0", TAGS, uri=store)
    run_id = first.start(None)
    first.log_metrics({"test_acc": 10.0}, step=1)
    first.finish("KILLED")
    second = MLflowTracker("exp", "run/seed0", TAGS, uri=store)
    assert second.start(run_id) == run_id
    second.log_metrics({"test_acc": 20.0}, step=2)
    second.finish("FINISHED")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store)
    assert [m.value for m in client.get_metric_history(run_id, "test_acc")] == [10.0, 20.0]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_unusable_store_warns_and_training_goes_on(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    tracker = MLflowTracker("exp", "run", TAGS, uri=f"sqlite:///{blocker / 'mlflow.db'}")
    train, test = toy_data()
    cfg = toy_config(epochs=1)
    with pytest.warns(UserWarning, match="MLflow tracking .* is off"), one_thread():
        result = fit(cfg, build_network(cfg), train, test, tracker=tracker)
    assert result.run_id is None and len(result.history) == 1


def test_background_start_keeps_the_run_and_its_id_in_checkpoints(store, tmp_path):
    """``background=True`` (the training stage's): ``start`` returns before the run exists,
    yet the run gets every record in order, and the checkpoint and the result hold its id, so
    a resumed fit continues the same run."""
    from mlflow import MlflowClient

    from dspike.engine import load_checkpoint

    train, test = toy_data()
    path = tmp_path / "last.pt"
    ids = []
    cfg = toy_config(path, epochs=2)
    for _ in range(2):  # the second fit resumes the finished checkpoint: no epoch left to run
        tracker = MLflowTracker("bg", "toy_snn/seed0", TAGS, uri=store, background=True)
        with one_thread():
            ids.append(fit(cfg, build_network(cfg), train, test, tracker=tracker).run_id)
        assert not tracker.queue and load_checkpoint(path)["run_id"] == ids[-1]
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(ids[0])
    assert ids[0] == ids[1] and run.info.status == "FINISHED"
    assert run.data.params["optim.lr"] == "0.1"
    assert [m.step for m in client.get_metric_history(ids[0], "test_acc")] == [1, 2]


def test_background_start_of_an_unusable_store_warns_and_training_goes_on(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    uri = f"sqlite:///{blocker / 'mlflow.db'}"
    tracker = MLflowTracker("exp", "run", TAGS, uri=uri, background=True)
    train, test = toy_data()
    cfg = toy_config(epochs=1)
    with pytest.warns(UserWarning, match="MLflow tracking .* is off"), one_thread():
        result = fit(cfg, build_network(cfg), train, test, tracker=tracker)
    assert result.run_id is None and len(result.history) == 1


def test_a_fork_waits_for_a_background_start(tmp_path):
    """DataLoader workers are forked: a fork must not copy a half-done start (its thread may
    hold import locks). The store is held by a real ``BEGIN EXCLUSIVE`` of another process, so
    the start is still under way when this process forks; the fork returns only after it."""
    import os
    import subprocess
    import sys

    db = tmp_path / "mlflow.db"
    hold = ("import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(3)\n")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    tracker = MLflowTracker("exp", "run/seed0", TAGS, uri=f"sqlite:///{db}", background=True)
    tracker.start(None)
    assert tracker._opener is not None and tracker._opener.is_alive()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert not tracker._opener.is_alive()
    holder.wait(timeout=30)
    assert tracker.run_id is not None
    tracker.finish("FINISHED")


def test_under_dvc_the_store_and_pending_records_are_the_workspaces(tmp_path, monkeypatch):
    """In DVC's temporary copy of the workspace (``dvc exp run --temp``, queued experiments)
    the default store and ``.mlflow-pending/`` are the original workspace's (``DVC_ROOT``),
    never the copy's, which DVC deletes."""
    from harness.tracking import PENDING, tracking_uri

    root = tmp_path / "ws"
    copy = root / ".dvc" / "tmp" / "exps" / "tmpcopy"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(root))
    assert tracking_uri() == f"sqlite:///{root / 'mlflow.db'}"
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    tracker = MLflowTracker("exp", "run", TAGS, uri=f"sqlite:///{blocker / 'mlflow.db'}",
                            retry_s=0)  # fmt: skip
    with pytest.warns(UserWarning, match="MLflow tracking .* is off"):
        tracker.start(None)
        tracker.log_metrics({"acc": 1.0}, step=1)
        tracker.finish("FINISHED")
    assert len(list((root / PENDING).glob("*.json"))) == 1
    assert not (copy / PENDING).exists()
    monkeypatch.delenv("DVC_ROOT")
    assert tracking_uri() == f"sqlite:///{copy / 'mlflow.db'}"  # outside DVC: the cwd


def test_stages_opening_a_new_sqlite_store_at_once_leave_it_whole(tmp_path):
    """Four processes open one new sqlite store at the same moment (what two DVC jobs starting
    together do): each gets a working client and the store is fully migrated, where MLflow's
    concurrent schema migration used to fail with ``_alembic_tmp_experiments``."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = ("import sys, time; from harness.tracking import open_client; "
            "time.sleep(float(sys.argv[2]) - time.time()); "
            "open_client(sys.argv[1]).create_experiment(sys.argv[3])")  # fmt: skip
    start = time.time() + 8  # after every interpreter has imported MLflow
    procs = [subprocess.Popen([sys.executable, "-c", code, uri, repr(start), f"e{i}"],
                              stderr=subprocess.PIPE, text=True) for i in range(4)]  # fmt: skip
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    from mlflow import MlflowClient

    names = {e.name for e in MlflowClient(tracking_uri=uri).search_experiments()}
    assert {"e0", "e1", "e2", "e3"} <= names
