"""A team MLflow server: a real ``mlflow server`` on 127.0.0.1, stages logging to it over HTTP.

The server has its own sqlite backend and artifact store; the test talks to it only through
``MlflowClient``. Nothing is mocked. An unreachable server costs seconds and stops nothing.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml
from engine_support import one_thread
from PIL import Image
from stage_support import stage_params, toy_stage

from harness.params import load_params
from harness.train_config import build_config
from pipelines import fig3
from pipelines.prepare import prepare
from pipelines.train import main as train_main

pytestmark = pytest.mark.integration

PARAMS = stage_params(
    {
        "mnist_ann": toy_stage("ann", 1, 1, 0.1, "none"),
        "mnist_snn": toy_stage("snn", 2, 1, 0.05, "dspike_adaptive"),
    },
    train={"max_train_samples": 160, "max_test_samples": 96},
    studies={"fig3": {"temperatures": [1.0, 4.0]}},
    report={"scale": "SMOKE (test)"},
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    port = _free_port()
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}",
         "--artifacts-destination", str(tmp / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not start:\n{(tmp / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSPIKE_EXPERIMENT_PREFIX", "team/")
    with one_thread():
        prepare(load_params(), "mnist", Path("data/manifests/mnist.json"))
        yield tmp_path


def _train(stage: str, *extra: str) -> None:
    train_main([
        stage, "--seed", "0", "--manifest", "data/manifests/mnist.json", *extra,
        "--model", f"models/{stage}.pt", "--metrics", f"metrics/{stage}.json",
        "--plots", f"plots/{stage}.csv",
    ])  # fmt: skip


def test_stages_log_params_inputs_and_artifacts_to_a_team_server(server, workdir, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    _train("mnist_ann")
    _train("mnist_snn", "--init", "models/mnist_ann.pt")
    fig3.main(["--out", "results/fig3"])
    client = MlflowClient(tracking_uri=server)

    experiment = client.get_experiment_by_name("team/mnist")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    run_id = json.loads((workdir / "metrics/mnist_snn.json").read_text())["mlflow_run_id"]
    run = client.get_run(run_id)
    assert run.info.experiment_id == experiment.experiment_id
    tags = run.data.tags
    assert tags["mlflow.source.name"] == "pipelines.train" and tags["scale"] == "smoke"
    assert {"mlflow.source.git.commit", "mlflow.source.type", "mlflow.user"} <= tags.keys()
    assert run.data.params["surrogate.name"] == "dspike_adaptive"
    assert "temperature" in run.data.metrics
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"mnist/train", "mnist/test"}

    # Artifacts, downloaded from the server: the CSV parses, the PNG opens, the weights load.
    listed = {a.path for a in client.list_artifacts(run_id)}
    assert {"mnist_snn.csv", "curves.png", "metrics", "weights"} <= listed
    down = Path(client.download_artifacts(run_id, "", str(workdir / "down")))
    rows = list(csv.DictReader((down / "mnist_snn.csv").open()))
    assert len(rows) == 1 and float(rows[0]["test_acc"]) >= 0
    with Image.open(down / "curves.png") as png:
        png.verify()
    net_cfg = build_config(load_params(), "mnist_snn", 0, init="models/mnist_ann.pt")
    from dspike.engine import build_network

    build_network(net_cfg).load_state_dict(
        torch.load(down / "weights" / "mnist_snn.pt", weights_only=True)
    )

    chain = client.search_runs([experiment.experiment_id], "tags.chain = 'mnist/seed0'")
    assert {r.info.run_name for r in chain} == {"mnist_ann/seed0", "mnist_snn/seed0"}

    studies = client.get_experiment_by_name("team/studies")
    assert studies.tags["mlflow.experimentKind"] == "custom_model_development"
    (study,) = client.search_runs([studies.experiment_id], "tags.stage = 'fig3'")
    assert {a.path for a in client.list_artifacts(study.info.run_id)} == {"fig3.csv", "fig3.png"}
    assert study.data.params["studies.fig3.temperatures"] == "[1.0, 4.0]"


def test_an_unreachable_server_costs_seconds_and_stops_nothing(workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
    start = time.monotonic()
    with pytest.warns(UserWarning, match="MLflow tracking .* is off"):
        _train("mnist_ann")
    assert time.monotonic() - start < 60
    metrics = json.loads((workdir / "metrics/mnist_ann.json").read_text())
    assert metrics["mlflow_run_id"] is None and metrics["final_acc"] >= 0
    assert (workdir / "models/mnist_ann.pt").is_file()
