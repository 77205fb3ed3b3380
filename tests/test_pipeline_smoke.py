"""The smoke DAG through real ``dvc repro`` and a real sqlite MLflow store (integration).

One workspace is built for the module, as ``nox -s smoke`` builds it: what a fresh clone of this
checkout holds, params overlaid, a git repository and DVC project of its own. Every stage type
runs once (data, studies, TIT chain, DVS, ImageNet on bundled Imagenette, Table 5 matrix, energy,
tables), at a size a little below ``params.smoke.yaml`` so CI stays within minutes. Every
subprocess runs with bytecode writing ON, as on a user's machine (CI sets
PYTHONDONTWRITEBYTECODE=1, which would hide a dependency on ``__pycache__``).

The tests share the workspace and run in file order (pytest-xdist ``--dist loadfile``); each
one that changes the workspace puts it back.
"""

from __future__ import annotations

import contextlib
import filecmp
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dvc_deps import declared_code_deps, dvcignored, has_code, uncovered

from harness.params import REPO_ROOT, deep_merge

pytestmark = pytest.mark.integration

CI_OVERLAY = {
    "ablation": {"datasets": ["cifar10"], "epsilons": [0.05], "seeds": [0]},
    "data": {"dvs": {"simulated_per_class": 10}},
    "train": {"max_train_samples": 500, "max_test_samples": 300},
    "stages": {"cifar10_ann": {"epochs": 3, "max_train_samples": 3000},
               "cifar10_snn_t6": {"max_train_samples": 1000},
               "cifar10_t2_scratch": {"max_train_samples": 500},
               "dvs_snn_t10": {"epochs": 2}},
    "studies": {"toy": {"train_size": 256}, "fig2": {"epochs": 2, "iterations": 2},
                "surrogates": {"epochs": 1, "iterations": 1, "epsilons": [0.1], "seeds": [0],
                               "test_size": 100}},
}  # fmt: skip
UP_TO_DATE = "Data and pipelines are up to date."


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _dvc(workspace: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return _run(["dvc", *args], workspace, env)


def _ran(stdout: str) -> set[str]:
    return {line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")}


def _stale(workspace: Path, env: dict) -> set[str]:
    status = _dvc(workspace, "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    return set(json.loads(status.stdout))


@contextlib.contextmanager
def _touched(path: Path) -> Iterator[None]:
    """``path`` with one comment line appended, restored byte for byte afterwards."""
    original = path.read_bytes()
    path.write_bytes(original + b"\n# touched by a test\n")
    try:
        yield
    finally:
        path.write_bytes(original)


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
        "DSPIKE_RECORD_IMPORTS": str(tmp / "imports"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode ON, as on a user's machine
    run = _run(
        [sys.executable, "-m", "tools.smoke", "--workspace", str(workspace),
         "--overlay", str(overlay)],
        REPO_ROOT, env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return workspace, env, run


def test_every_table_and_figure_exists_with_sane_values(smoke):
    ws, _, run = smoke
    assert "Smoke report" in run.stdout
    for fig in ("fig2/fig2", "fig3/fig3", "energy/fig4", "report/fig5"):
        assert (ws / "results" / f"{fig}.png").stat().st_size > 1000
    tables = ws / "results" / "report" / "tables"
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
    assert list(t5["run"]) == ["cifar10_snn_t6_eps0.05", "cifar10_snn_t6"]  # 0.1: the main runs
    assert list(t5["n"]) == [1, 2]
    t1 = pd.read_csv(tables / "table1.csv")
    assert t1["ours"].between(0, 100).all() and "rectangular" in set(t1["gradient"])
    fig5 = pd.read_csv(tables / "fig5.csv")
    assert (fig5["temperature"] > 0).all() and len(fig5) == 2 * 2  # 2 seeds x 2 epochs
    report = (ws / "results" / "report" / "REPORT.md").read_text()
    assert "**Scale: SMOKE" in report and "## table5" in report
    assert "Provenance: scale=SMOKE" in report and "git_commit=" in report
    assert "inferred from the paper's Table 3" in report and "printed 1.03J" in report
    subset = t2.loc[t2["ours"].notna(), "data"].iloc[0]
    assert "SUBSET: the 10,000 bundled CIFAR-10 images" in subset
    for link in ("../fig2/fig2.png", "../fig3/fig3.png", "../energy/fig4.png", "fig5.png",
                 "../surrogates/surrogates.png"):
        assert f"({link})" in report
    listed = yaml.safe_load((ws / "params.yaml").read_text())["studies"]["surrogates"]["list"]
    beyond = report[report.index("## Beyond the paper"):]
    assert all(f"| {c['framework']} |" in beyond for c in listed)
    assert len(pd.read_csv(ws / "results" / "surrogates" / "surrogates.csv")) == len(listed)
    assert "not run yet" not in report  # every output the report reads is where it looks


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
        assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
        for r in found:
            runs[r.info.run_name] = r
    expected = {f"{p.parent.name}/{p.stem}" for p in metrics_files}
    assert expected <= set(runs)
    for name in expected:
        run = runs[name]
        assert "test_acc" in run.data.metrics
        assert {"mlflow.source.git.commit", "params_hash", "stage", "dvc_stage", "chain"} <= set(
            run.data.tags
        )
        assert "dvc_exp" not in run.data.tags  # a plain dvc repro is no experiment
        if "snn" in name:
            assert "temperature" in run.data.metrics
        assert json.loads((ws / "metrics" / f"{name}.json").read_text())["final_acc"] >= 0
        if not json.loads((ws / "metrics" / f"{name}.json").read_text()).get("skipped"):
            listed = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert {"curves.png", "weights", "metrics"} <= listed, (name, listed)
    studies = {r.data.tags["stage"] for r in client.search_runs(
        [client.get_experiment_by_name("smoke/studies").experiment_id])}  # fmt: skip
    assert studies == {"fig2", "fig3", "table1", "surrogates"}
    (report,) = client.search_runs([client.get_experiment_by_name("smoke/report").experiment_id])
    listed = {a.path for a in client.list_artifacts(report.info.run_id, "report")}
    assert {"report/REPORT.md", "report/fig5.png", "report/tables"} <= listed
    assert report.data.tags["partial"] == "false"
    assert {a.path for a in client.list_artifacts(report.info.run_id)} >= {"fig2", "energy"}


def test_each_stage_loaded_only_files_in_its_deps(smoke):
    ws, env, _ = smoke
    stages = yaml.safe_load((ws / "dvc.yaml").read_text())["stages"]
    records = [json.loads(p.read_text()) for p in Path(env["DSPIKE_RECORD_IMPORTS"]).glob("*.json")]
    ignored = dvcignored(ws)
    assert {r["stage"].split("@")[0] for r in records} == set(stages)  # every stage reported
    for record in records:
        body = stages[record["stage"].split("@")[0]]
        declared = declared_code_deps(body.get("do", body))
        assert not [f for f in record["files"] if f.startswith("..")], record  # the copy's code
        files = {f for f in record["files"] if has_code(ws / f)}
        assert not uncovered(files, declared, ignored).get("not covered"), record["stage"]
        assert not uncovered(files, declared, ignored).get("dvcignored"), record["stage"]


def test_second_repro_is_a_no_op(smoke):
    ws, env, _ = smoke
    out = _dvc(ws, "repro", env=env)
    assert out.returncode == 0, out.stderr
    assert not _ran(out.stdout)
    assert _dvc(ws, "repro", "--dry", env=env).returncode == 0


def test_bytecode_caches_of_every_module_change_no_stage(smoke):
    ws, env, _ = smoke
    modules = [
        ".".join(p.relative_to(ws).with_suffix("").parts).removesuffix(".__init__")
        for package in ("dspike", "harness", "paper", "pipelines")
        for p in sorted((ws / package).rglob("*.py"))
    ]
    imported = _run([sys.executable, "-c", f"import {', '.join(modules)}"], ws, env)
    assert imported.returncode == 0, imported.stderr
    assert list((ws / "paper").glob("__pycache__/fig3.*.pyc"))  # written
    status = _dvc(ws, "status", env=env)
    assert status.returncode == 0 and UP_TO_DATE in status.stdout, status.stdout


def test_editing_a_module_invalidates_exactly_the_stages_that_import_it(smoke):
    ws, env, _ = smoke
    with _touched(ws / "paper" / "fig3.py"):
        assert _stale(ws, env) == {"fig3"}
    with _touched(ws / "paper" / "toy_training.py"):
        assert _stale(ws, env) == {"fig2", "table1", "surrogates"}
    with _touched(ws / "pipelines" / "train.py"):
        stale = _stale(ws, env)
    assert "snn_t6@cifar10-0" in stale and not {"fig2", "table1", "fig3", "surrogates"} & stale
    with _touched(ws / "dspike" / "integrations" / "snntorch.py"):
        assert UP_TO_DATE in _dvc(ws, "status", env=env).stdout  # .dvcignore: no stage uses it
    with _touched(ws / "dspike" / "neurons.py"):
        stale = _stale(ws, env)
    spiking = {"fig2", "table1", "surrogates", "energy", "ablation@cifar10-0.05-0",
               "dvs_snn_t10@0"}
    spiking |= {f"{s}@cifar10-{seed}" for s in ("snn_t6", "tit_t4", "tit_t2") for seed in (0, 1)}
    assert spiking <= stale
    assert not {s for s in stale if s.startswith(("fig3", "prepare"))}, stale
    assert UP_TO_DATE in _dvc(ws, "status", env=env).stdout  # restored byte for byte


def test_push_then_pull_into_a_fresh_clone_restores_every_output(smoke, tmp_path):
    ws, env, _ = smoke
    remote = tmp_path / "remote"
    assert _dvc(ws, "remote", "add", "--local", "-d", "store", str(remote), env=env).returncode == 0
    pushed = _dvc(ws, "push", env=env)
    assert pushed.returncode == 0, pushed.stderr
    clone = tmp_path / "clone"
    assert _run(["git", "clone", "-q", str(ws), str(clone)], tmp_path, env).returncode == 0
    assert not list(clone.glob("models/*/*.pt"))  # git has DVC's .gitignore files, no data
    _dvc(clone, "remote", "add", "--local", "-d", "store", str(remote), env=env)
    pulled = _dvc(clone, "pull", env=env)
    assert pulled.returncode == 0, pulled.stderr
    status = _dvc(clone, "status", env=env)
    assert status.returncode == 0 and UP_TO_DATE in status.stdout, status.stdout
    for folder in ("models", "metrics", "plots", "results", "data/manifests"):
        compared = filecmp.dircmp(ws / folder, clone / folder)
        assert not (compared.left_only or compared.right_only or compared.diff_files), folder


def test_exp_run_reruns_exactly_the_stages_that_read_the_param(smoke):
    ws, env, _ = smoke
    ran = _dvc(ws, "exp", "run", "-S", "stages.cifar10_t2_scratch.lr=0.02", env=env)
    try:
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert _ran(ran.stdout) == {"cifar10_t2_scratch@0", "cifar10_t2_scratch@1", "tables"}
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
        experiment = client.get_experiment_by_name("smoke/cifar10")
        runs = client.search_runs([experiment.experiment_id], "tags.stage = 'cifar10_t2_scratch'")
        names = {r.data.tags.get("dvc_exp") for r in runs} - {None}
        assert len(names) == 1, names  # both seeds' runs name the same DVC experiment
        shown = _dvc(ws, "exp", "show", "--json", env=env)
        assert names.pop() in shown.stdout
    finally:
        subprocess.run(["git", "reset", "-q", "--hard"], cwd=ws, check=True)
        _dvc(ws, "checkout", "--force", env=env)


def _train(ws: Path, env: dict, stage: str, *args: str, params: Path | None = None) -> Path:
    """Run training stage ``stage`` (seed 0) as dvc.yaml would, its outputs under broken/;
    returns the folder."""
    out = ws / "broken" / stage
    cmd = [sys.executable, "-m", "pipelines.train", stage, "--seed", "0", *args,
           "--manifest", "data/manifests/cifar10.json", "--model", f"{out}/seed0.pt",
           "--metrics", f"{out}/seed0.json", "--plots", f"{out}/seed0.csv"]  # fmt: skip
    if params is not None:
        cmd += ["--params", str(params)]
    done = _run(cmd, ws, env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_the_mechanisms_show_and_their_checks_fail_when_one_is_broken(smoke):
    """At CI's size the CIFAR-10 chain of both seeds shows every relation of paper.mechanisms
    (ANN-to-SNN transfer, TIT's weights and temperature, Algorithm 1 moving b); then each
    mechanism is broken on purpose, in real stage runs, and its check fails: the SNN T=6
    started from an untrained network with a fixed temperature (no transfer, no Algorithm 1), a
    TIT round started from an untrained network without its parent's metrics (no weights, no
    temperature)."""
    import torch

    from dspike.engine.factory import build_network
    from harness.params import load_params
    from harness.train_config import config_and_keys
    from paper import mechanisms as mech

    ws, env, _ = smoke
    checks = mech.dag_checks(ws / "metrics", ws / "plots", [0, 1])
    assert len(checks) == 2 * 6, checks
    assert all(c.holds for c in checks), [c for c in checks if not c.holds]

    env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{ws.parent / 'broken.db'}"}
    (ws / "broken").mkdir(exist_ok=True)
    params = load_params(ws / "params.yaml")
    config, _ = config_and_keys(params, "cifar10_ann", 0, init="", temperature=None)
    torch.manual_seed(0)
    fresh = ws / "broken" / "untrained.pt"  # ANN and SNN twins share their state_dict keys
    torch.save(build_network(config).state_dict(), fresh)

    def real(name: str) -> mech.Run:
        return mech.load_run(ws / "metrics" / name / "seed0.json",
                             ws / "plots" / name / "seed0.csv")

    def broken(folder: Path) -> mech.Run:
        return mech.load_run(folder / "seed0.json", folder / "seed0.csv", f"broken {folder.name}")

    fixed = yaml.safe_load((ws / "params.yaml").read_text())
    fixed["stages"]["cifar10_snn_t6"]["surrogate"] = "dspike"  # Algorithm 1 off
    fixed_params = ws / "broken" / "params.yaml"
    fixed_params.write_text(yaml.safe_dump(fixed, sort_keys=False))
    snn = broken(_train(ws, env, "cifar10_snn_t6", "--init", str(fresh), params=fixed_params))
    assert not mech.transfer(real("cifar10_ann"), snn).holds, snn
    assert not mech.algorithm1([snn]).holds, snn
    assert mech.algorithm1([real("cifar10_snn_t6")]).holds  # the same check on the real run

    b0 = params.dspike.b0  # a TIT round without its parent's metrics starts at b0
    pairs = [(p, c) for p, c in itertools.pairwise(mech.CHAIN)
             if real(p).metrics["temperature"] != b0]  # fmt: skip
    assert pairs, "Algorithm 1 left every parent of a TIT round at b0: nothing to tell apart"
    parent, child = pairs[0]
    tit = broken(_train(ws, env, child, "--init", str(fresh)))
    assert not mech.weights(real(parent), tit).holds, tit
    assert not mech.temperature(real(parent), tit).holds, tit
