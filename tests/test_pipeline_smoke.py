"""The smoke DAG through real ``dvc repro`` and a real sqlite MLflow store (integration).

One workspace is built for the module: every stage type runs once (data, studies, TIT chain,
DVS, ImageNet on bundled Imagenette, Table 5 matrix, energy, tables), at a size a little below
``params.smoke.yaml`` so CI stays within minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.params import REPO_ROOT, deep_merge

pytestmark = pytest.mark.integration

CI_OVERLAY = {
    "ablation": {"datasets": ["cifar10"], "epsilons": [0.05, 0.1], "seeds": [0]},
    "train": {"max_train_samples": 96, "max_test_samples": 64},
    "stages": {"cifar10_ann": {"epochs": 1}, "dvs_snn_t10": {"epochs": 2}},
    "studies": {"toy": {"train_size": 256}, "fig2": {"epochs": 2, "iterations": 2}},
}


def _dvc(workspace: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["dvc", *args], cwd=workspace, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smoke")
    overlay = tmp / "params.ci.yaml"
    smoke_params = yaml.safe_load((REPO_ROOT / "params.smoke.yaml").read_text())
    overlay.write_text(yaml.safe_dump(deep_merge(smoke_params, CI_OVERLAY)))
    workspace = tmp / "ws"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "DSPIKE_EXPERIMENT_PREFIX": "smoke/",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.smoke", "--workspace", str(workspace),
         "--overlay", str(overlay)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return workspace, env, run


def test_every_table_and_figure_exists_with_sane_values(smoke):
    ws, _, run = smoke
    assert "Smoke report" in run.stdout
    for fig in ("studies/fig2", "studies/fig3", "fig4", "fig5"):
        assert (ws / "results" / f"{fig}.png").stat().st_size > 1000
    tables = ws / "results" / "tables"
    t2 = pd.read_csv(tables / "table2_cifar10.csv")
    ours = t2.dropna(subset=["ours"])
    assert set(ours["T"]) == {2, 4, 6}
    assert ours["ours"].between(0, 100).all()
    assert (ours["n"] == 2).all() and ours["ours_std"].notna().all()  # two seeds -> std
    assert {"paper", "diff"} <= set(t2.columns)
    t100 = pd.read_csv(tables / "table2_cifar100.csv").dropna(subset=["ours"])
    assert t100["data"].str.contains("SUBSTITUTE").all()
    dvs = pd.read_csv(tables / "table2_cifar10dvs.csv").dropna(subset=["ours"])
    assert dvs["data"].str.contains("SIMULATED").all()
    t3 = pd.read_csv(tables / "table3.csv")
    energies = t3.loc[t3["Source"] == "ours", "Energy"]
    assert len(energies) == 2
    assert energies.str.fullmatch(r"[0-9.]+(e[-+]?[0-9]+)? (J|mJ|uJ|nJ|pJ)").all()
    assert (energies.str.split().str[0].astype(float) > 0).all()
    t4 = pd.read_csv(tables / "table4.csv").dropna(subset=["ours"])
    assert len(t4) == 2 and t4["ours"].between(0, 100).all()
    t5 = pd.read_csv(tables / "table5.csv")
    assert list(t5["eps"]) == [0.05, 0.1] and t5["ours"].between(0, 100).all()
    t1 = pd.read_csv(tables / "table1.csv")
    assert t1["ours"].between(0, 100).all() and "rectangular" in set(t1["gradient"])
    fig5 = pd.read_csv(tables / "fig5.csv")
    assert (fig5["temperature"] > 0).all() and len(fig5) == 2 * 2  # 2 seeds x 2 epochs
    report = (ws / "results" / "REPORT.md").read_text()
    assert "**Scale: SMOKE" in report and "## table5" in report
    assert "Provenance: scale=SMOKE" in report and "git_commit=" in report


def test_mlflow_holds_one_run_per_training_stage(smoke):
    ws, env, _ = smoke
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    metrics_files = sorted((ws / "metrics").glob("*/seed*.json"))
    runs = {}
    for exp in client.search_experiments():
        found = client.search_runs([exp.experiment_id])
        if exp.name == "Default":  # every MLflow store has it; nothing may log there
            assert not found, [r.info.run_name for r in found]
            continue
        assert exp.name.startswith("smoke/")
        for r in found:
            runs[r.info.run_name] = r
    expected = {f"{p.parent.name}/{p.stem}" for p in metrics_files}
    assert expected <= set(runs)
    for name in expected:
        run = runs[name]
        assert "test_acc" in run.data.metrics
        assert {"git_commit", "params_hash", "stage"} <= set(run.data.tags)
        if "snn" in name:
            assert "temperature" in run.data.metrics
        assert json.loads((ws / "metrics" / f"{name}.json").read_text())["final_acc"] >= 0


def test_second_repro_is_a_no_op(smoke):
    ws, env, _ = smoke
    out = _dvc(ws, "repro", env=env)
    assert out.returncode == 0, out.stderr
    assert "Running stage" not in out.stdout
    assert "didn't change" in out.stdout or "up to date" in out.stdout.lower()


def test_changing_one_param_touches_only_the_stages_that_read_it(smoke):
    ws, env, _ = smoke
    params_path = ws / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["studies"]["fig3"]["temperatures"] = [1.0, 3.0]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        status = _dvc(ws, "status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        assert set(json.loads(status.stdout)) == {"fig3"}
        rerun = _dvc(ws, "repro", env=env)
        assert rerun.returncode == 0, rerun.stderr
        ran = {line.split("'")[1] for line in rerun.stdout.splitlines() if "Running stage" in line}
        assert ran == {"fig3", "tables"}
    finally:
        params_path.write_text(original)
