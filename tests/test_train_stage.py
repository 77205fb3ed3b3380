"""The ``pipelines.train`` stage end to end on bundled MNIST: outputs, MLflow run, errors."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from engine_support import one_thread
from stage_support import stage_params, toy_stage

from dspike.engine import PLOT_COLUMNS
from harness.params import ParamsError, load_params, parse_params
from harness.train_config import build_config
from pipelines.prepare import prepare
from pipelines.train import main

PARAMS = stage_params(
    {
        "mnist_ann": toy_stage("ann", 1, 2, 0.1, "none"),
        "mnist_snn": toy_stage("snn", 4, 1, 0.05, "dspike"),
        "imagenet_snn": {"dataset": "imagenet", "model": "resnet34", "mode": "snn",
                         "time_steps": 6, "epochs": 1, "lr": 0.04, "surrogate": "dspike"},
        "mnist_scratch": toy_stage("snn", 4, 1, 0.05, "dspike_adaptive"),
        "mnist_tit": toy_stage("snn", 2, 1, 0.02, "dspike_adaptive"),
        "mnist_best": toy_stage("ann", 1, 3, 0.5, "none", select="best"),
        "bad_lr": toy_stage("snn", 4, 1, -0.1, "dspike"),
    }
)  # fmt: skip


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DSPIKE_EXPERIMENT_PREFIX", "smoke/")
    with one_thread():
        prepare(load_params(), "mnist", Path("data/manifests/mnist.json"))
        yield tmp_path


def _argv(stage: str, seed: int, *extra: str) -> list[str]:
    """The command line dvc.yaml gives a training stage: every input and output named."""
    dataset = PARAMS["stages"].get(stage, {}).get("dataset", "mnist")
    return [
        stage, "--seed", str(seed), "--manifest", f"data/manifests/{dataset}.json", *extra,
        "--model", f"models/{stage}/seed{seed}.pt",
        "--metrics", f"metrics/{stage}/seed{seed}.json",
        "--plots", f"plots/{stage}/seed{seed}.csv",
    ]  # fmt: skip


def _exit_message(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_ann_then_snn_from_it_writes_dvc_outputs_and_an_mlflow_run(workdir):
    main(_argv("mnist_ann", 0))
    main(_argv("mnist_snn", 0, "--init", "models/mnist_ann/seed0.pt"))
    metrics = json.loads((workdir / "metrics/mnist_snn/seed0.json").read_text())
    assert metrics["select"] == "final" and metrics["acc"] == metrics["final_acc"]
    assert metrics["final_acc"] > 30.0  # 10 classes; one SNN epoch after two ANN epochs
    assert (metrics["epochs"], metrics["time_steps"], metrics["temperature"]) == (1, 4, 1.0)
    rows = list(csv.DictReader((workdir / "plots/mnist_snn/seed0.csv").open()))
    assert tuple(rows[0]) == PLOT_COLUMNS and len(rows) == 1
    state = torch.load(workdir / "models/mnist_snn/seed0.pt", weights_only=True)
    params = load_params(workdir / "params.yaml")
    snn_cfg = build_config(params, "mnist_snn", 0, init="models/mnist_ann/seed0.pt")
    assert state.keys() == torch.load(snn_cfg.model.init, weights_only=True).keys()
    assert not any((workdir / "checkpoints").rglob("*.pt"))  # deleted once outputs exist

    from mlflow import MlflowClient

    client = MlflowClient()
    run = client.get_run(metrics["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "smoke/mnist"
    assert run.info.run_name == "mnist_snn/seed0" and run.info.status == "FINISHED"
    tags = run.data.tags
    assert (tags["stage"], tags["seed"], tags["params_hash"]) == (
        "mnist_snn",
        "0",
        metrics["params_hash"],
    )
    assert tags["mlflow.source.name"] == "pipelines.train"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert {"mlflow.source.git.commit", "mlflow.user", "git_dirty"} <= tags.keys()
    assert (tags["chain"], tags["scale"]) == ("mnist/seed0", "paper")
    assert run.data.params["model.init"] == "models/mnist_ann/seed0.pt"
    assert run.data.metrics["test_acc"] == pytest.approx(metrics["final_acc"])
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "mnist" in experiment.tags["mlflow.note.content"]
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "test"} and inputs["train"].name == "mnist/train"
    manifest = (workdir / "data/manifests/mnist.json").read_bytes()
    assert inputs["test"].digest == hashlib.sha256(manifest).hexdigest()[:12]
    assert json.loads(inputs["train"].profile)["samples"] == {"train": 2000, "test": 1000}
    # Artifacts beside the store (mlartifacts/), never inside the stage's working folder.
    assert run.info.artifact_uri.startswith((workdir / "mlartifacts").as_uri())
    listed = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"seed0.csv", "curves.png", "metrics", "weights"} <= listed
    weights = client.download_artifacts(run.info.run_id, "weights/seed0.pt", str(workdir))
    assert torch.load(weights, weights_only=True).keys() == state.keys()
    chain = client.search_runs([experiment.experiment_id], "tags.chain = 'mnist/seed0'")
    assert {r.info.run_name for r in chain} == {"mnist_ann/seed0", "mnist_snn/seed0"}


def test_imagenet_without_a_root_writes_skipped_outputs(workdir):
    main(_argv("imagenet_snn", 1))
    assert json.loads((workdir / "metrics/imagenet_snn/seed1.json").read_text())["skipped"]
    assert torch.load(workdir / "models/imagenet_snn/seed1.pt", weights_only=True) == {}
    assert (workdir / "plots/imagenet_snn/seed1.csv").read_text().strip() == ",".join(PLOT_COLUMNS)


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (_argv("bad_lr", 0), "stages.bad_lr.lr"),
        (_argv("mnist_scratch", 0, "--epsilon", "0"), "--epsilon"),
        (_argv("mnist_scratch", 0, "--epsilon", "0.1"), "ablation.epsilons"),  # = fdg.epsilon
        (_argv("mnist_snn", 7, "--init", "models/mnist_ann/seed7.pt"), "--init"),  # no ANN yet
        (_argv("no_such_stage", 0), "stages.no_such_stage"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(workdir, capsys, argv, key):
    assert key in _exit_message(capsys, argv)
    assert not [p for p in ("models", "metrics", "checkpoints") if (workdir / p).exists()]


def test_neuron_and_tdbn_sections_load_into_the_spec_and_bad_values_name_their_key():
    """params.yaml's ``neuron``/``tdbn`` become ``model.spec`` as they are; the network the
    config builds fires at that threshold with Dspike windowed there; a bad value is reported
    under its params key, before any work."""
    from dspike.engine import build_network

    params = parse_params(stage_params({"s": toy_stage("snn", 2, 1, 0.1, "dspike")},
                          neuron={"v_threshold": 0.8}, tdbn={"form": "init"}))  # fmt: skip
    spec = build_config(params, "s", 0).model.spec
    assert (spec.v_threshold, spec.form, spec.tau) == (0.8, "init", 0.25)
    lif = build_network(build_config(params, "s", 0)).act1
    assert lif.v_threshold == 0.8 and lif.surrogate.v_threshold == 0.8
    for section, key, value in [("neuron", "tau", 1.5), ("neuron", "backend", "jit"),
                                ("tdbn", "alpha", -1.0)]:  # fmt: skip
        bad = stage_params({"s": toy_stage("snn", 2, 1, 0.1, "dspike")}, **{section: {key: value}})
        with pytest.raises(ParamsError, match=f"^params.yaml: '{section}.{key}': "):
            parse_params(bad)


def test_select_best_ships_the_weights_of_the_epoch_it_reports(workdir):
    """``train.select: best``: the saved weights, evaluated on the test split, give ``acc``."""
    from dspike.data import make_loader
    from dspike.energy import measure_activity
    from dspike.engine import build_network, distributed
    from harness.train_data import build_datasets

    main(_argv("mnist_best", 0))
    metrics = json.loads((workdir / "metrics/mnist_best/seed0.json").read_text())
    assert metrics["select"] == "best" and metrics["acc"] == metrics["best_acc"]
    params = load_params(workdir / "params.yaml")
    config = build_config(params, "mnist_best", 0)
    net = build_network(config)
    net.load_state_dict(torch.load(workdir / "models/mnist_best/seed0.pt", weights_only=True))
    _, test = build_datasets(params, "mnist", distributed.DistInfo(0, 1, 0, torch.device("cpu")))
    report = measure_activity(net, make_loader(test, 32, False, workers=0), layers=[])
    assert 100.0 * float(report.correct) / float(report.samples) == metrics["acc"]
    rows = list(csv.DictReader((workdir / "plots/mnist_best/seed0.csv").open()))
    assert float(rows[metrics["best_epoch"] - 1]["test_acc"]) == metrics["acc"]


@pytest.mark.parametrize("inherit", [True, False])
def test_a_tit_round_starts_at_the_previous_rounds_final_temperature(workdir, inherit):
    """``dspike.inherit_temperature``: T=2 starts at the T=4 run's final b, else at ``b0``."""
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["dspike"]["inherit_temperature"] = inherit
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    main(_argv("mnist_scratch", 0))
    first = json.loads((workdir / "metrics/mnist_scratch/seed0.json").read_text())
    assert first["b0"] == 1.0 and first["temperature"] != 1.0  # Algorithm 1 moved b
    main(_argv("mnist_tit", 0, "--init", "models/mnist_scratch/seed0.pt",
               "--init-metrics", "metrics/mnist_scratch/seed0.json"))  # fmt: skip
    second = json.loads((workdir / "metrics/mnist_tit/seed0.json").read_text())
    assert second["b0"] == (first["temperature"] if inherit else 1.0)
