"""Faults at the DVC level, in a minimal DVC project of two real stages.

``a`` trains (``pipelines.train``, as dvc.yaml runs it); ``use`` reads its model. DVC deletes a
stage's outputs before it runs the command, so after a failed rerun ``dvc checkout`` must bring
back every output of the last good run (they are all cached).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from faults_support import (
    OUTPUTS,
    PARAMS,
    SLOW,
    env,
    make_workspace,
    one_line_error,
    snapshot,
    train_argv,
    write_params,
)

from harness.params import deep_merge

pytestmark = pytest.mark.integration

DVC = [sys.executable, "-m", "dvc"]


def _dvc_yaml() -> dict:
    train = " ".join([sys.executable, "-m", "pipelines.train", *train_argv("a")[1:]])
    use = (f"{sys.executable} -c \"import hashlib, pathlib; pathlib.Path('results').mkdir(); "
           "pathlib.Path('results/use.txt').write_text("
           "hashlib.sha256(open('models/a.pt', 'rb').read()).hexdigest())\"")  # fmt: skip
    return {
        "stages": {
            "a": {
                "cmd": train,
                "deps": ["data/manifests/mnist.json", "pipelines/train.py"],
                "params": ["stages.a", "train", "seeds"],
                "outs": ["models/a.pt"],
                "metrics": ["metrics/a.json"],
                "plots": ["plots/a.csv"],
            },
            "use": {"cmd": use, "deps": ["models/a.pt"], "outs": ["results/use.txt"]},
        }
    }


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*DVC, *args], cwd=root, env=env(root, DVC_NO_ANALYTICS="1"),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory, template):
    root = make_workspace(tmp_path_factory.mktemp("dvc"), template, deep_merge(PARAMS, SLOW))
    (root / "dvc.yaml").write_text(yaml.safe_dump(_dvc_yaml(), sort_keys=False))
    dvc(root, "init", "--no-scm", "-q")
    dvc(root, "repro", "-q")
    return root


@pytest.fixture
def ws(project, tmp_path):
    return shutil.copytree(project, tmp_path / "ws", symlinks=True)


@pytest.mark.parametrize(
    ("change", "culprit"),
    [
        ({"stages": {"a": {"lr": "0.1"}}}, "stages.a.lr"),
        ({"seeds": []}, "'seeds'"),
        ({"stages": {"a": {"epoch": 3}}}, "stages.a.epoch"),
    ],
    ids=["lr_string", "empty_seeds", "unknown_key"],
)
def test_failed_rerun_loses_nothing_after_dvc_checkout(ws, change, culprit):
    good = snapshot(ws, *OUTPUTS, "results")
    write_params(ws, deep_merge(deep_merge(PARAMS, SLOW), change))
    failed = dvc(ws, "repro", check=False)
    assert failed.returncode != 0
    stage_errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert len(stage_errors) == 1 and culprit in stage_errors[0], failed.stderr
    dvc(ws, "checkout", "-f")
    assert snapshot(ws, *OUTPUTS, "results") == good


def test_forced_rerun_with_identical_weights_leaves_downstream_up_to_date(ws):
    before = (ws / "models/a.pt").read_bytes()
    dvc(ws, "repro", "-f", "-s", "a")
    assert (ws / "models/a.pt").read_bytes() == before
    status = dvc(ws, "status", "use")
    assert "up to date" in status.stdout, status.stdout


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], _children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        try:
            todo += _children(child)
        except OSError:  # it exited meanwhile
            continue
    return found


def _lock_holder(dvc: subprocess.Popen, checkpoints: Path, timeout: float = 180) -> int:
    """The training process under ``dvc repro`` once it holds its run's lock.

    DVC runs the stage through ``$SHELL -c``; dash (``/bin/sh``, used when ``SHELL`` is unset)
    forks rather than execs, so the process whose command line names ``pipelines.train`` may be
    the shell. The holder is the descendant whose pid RunLock wrote into the lock file, which it
    does only after ``flock`` succeeded (stopping it earlier would hold nothing).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert dvc.poll() is None, f"dvc repro exited ({dvc.returncode}) before training locked"
        holders = set()
        for lock in checkpoints.glob("seed0-*/lock"):
            try:
                holders.add(int(lock.read_text().strip() or 0))
            except FileNotFoundError:
                continue
        try:
            found = holders & set(_descendants(dvc.pid))
        except OSError:  # dvc exited meanwhile: the next poll says so
            found = set()
        if found:
            return found.pop()
        time.sleep(0.2)
    raise AssertionError("no training process under dvc took its run's lock")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_killing_only_dvc_then_rerunning_does_not_train_twice(ws):
    """kill -9 of ``dvc repro`` leaves its training process running; a second ``dvc repro``
    must not train the same checkpoint beside it."""
    write_params(ws, deep_merge(deep_merge(PARAMS, SLOW), {"stages": {"a": {"epochs": 3}}}))
    log = ws.parent / "first-repro.log"  # shown if dvc exits before training locked
    with open(log, "w") as out:
        run_env = env(ws, DVC_NO_ANALYTICS="1")
        first = subprocess.Popen([*DVC, "repro", "-s", "a"], cwd=ws, env=run_env, stdout=out,
                                 stderr=subprocess.STDOUT)  # fmt: skip
    try:
        orphan = _lock_holder(first, ws / "checkpoints" / "a")
    except AssertionError as err:
        raise AssertionError(f"{err}\n{log.read_text()[-3000:]}") from None
    first.kill()
    first.wait()
    os.kill(orphan, signal.SIGSTOP)  # alive, holding its lock, while the rerun starts
    try:
        second = dvc(ws, "repro", "-s", "a", check=False)
    finally:
        os.kill(orphan, signal.SIGCONT)
    assert second.returncode != 0
    lines = [line for line in second.stderr.splitlines() if line.startswith("error: ")]
    one_line_error("\n".join(lines), "in use by another training process", f"pid {orphan}")
    deadline = time.monotonic() + 180
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.5)
    dvc(ws, "repro", "-s", "a")  # once it is gone, the stage runs


def test_ctrl_c_under_dvc_keeps_the_epoch_and_the_orphaned_checkpoint_goes_when_its_run_is_done(
    ws,
):
    """Ctrl-C (SIGINT to ``dvc repro``'s process group) mid-epoch: the stage checkpoints, says so
    in one line and exits 130. A plain ``dvc repro`` then restores the outputs from DVC's run
    cache without running the stage, so the checkpoint folder is left behind; the next training
    run that completes removes it (its run's outputs are in place), and nothing else."""
    write_params(ws, deep_merge(deep_merge(PARAMS, SLOW), {"stages": {"a": {"epochs": 3}}}))
    dvc(ws, "repro", "-s", "a")  # the run DVC's run cache keeps
    good = snapshot(ws, *OUTPUTS)
    checkpoints = ws / "checkpoints" / "a"
    log = ws.parent / "interrupted-repro.log"
    with open(log, "w") as out:
        first = subprocess.Popen([*DVC, "repro", "-f", "-s", "a"], cwd=ws,
                                 env=env(ws, DVC_NO_ANALYTICS="1", SHELL="/bin/bash"),
                                 stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    _lock_holder(first, checkpoints)
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("seed0-*/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.05)  # epoch 1 is done: epochs 2 and 3 are under way
    os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    assert first.wait(timeout=120) != 0
    said = log.read_text()
    stopped = [line for line in said.splitlines() if line.startswith("stopped: ")]
    assert len(stopped) == 1 and "SIGINT" in stopped[0] and "Traceback" not in said, said
    # DVC runs the command through $SHELL and reports the shell's status: bash passes on the
    # stage's 130; dash (/bin/sh, DVC's choice where SHELL is unset) got the SIGINT too and dies
    # of it once the stage has checkpointed, so DVC says -2 there
    assert "exited with 130" in said, said
    (orphan,) = checkpoints.glob("seed0-*")
    assert (orphan / "last.pt").is_file()

    restored = dvc(ws, "repro", "-s", "a")
    assert "is cached - skipping run" in restored.stdout, restored.stdout  # DVC's run cache
    assert snapshot(ws, *OUTPUTS) == good and orphan.is_dir()
    other = checkpoints.parent / "c" / "seed0-0123456789ab"  # another run's, not done: kept
    other.mkdir(parents=True)
    (other / "key.json").write_text(json.dumps(
        {"params_hash": "x", "code": "y", "metrics": str(ws / "metrics/a.json")}))  # fmt: skip

    train_b = [sys.executable, "-m", "pipelines.train", *train_argv("b")[1:]]
    done = subprocess.run(train_b, cwd=ws, env=env(ws), capture_output=True, text=True,
                          timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not orphan.exists() and other.is_dir()
    assert f"checkpoint {orphan.relative_to(ws)}: its run's outputs" in done.stdout, done.stdout


def _git_project(ws: Path) -> dict[str, str]:
    """``ws`` as a git repository with its code, params, pipeline and manifest committed (DVC
    experiments need a commit); the environment for DVC there, MLflow at its default store."""
    (ws / ".gitignore").write_text("mlflow.db\nmlartifacts/\n.mlflow-pending/\ncheckpoints/\n"
                                   "__pycache__/\n*.pyc\n")  # fmt: skip
    run_env = {k: v for k, v in env(ws, DVC_NO_ANALYTICS="1").items()
               if k != "MLFLOW_TRACKING_URI"}  # fmt: skip
    run_env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t")  # fmt: skip
    # DVC's queue workers start `dvc` by name: this interpreter's
    run_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{run_env.get('PATH', '')}"
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        subprocess.run(cmd, cwd=ws, env=run_env, check=True, capture_output=True)
    return run_env


def test_queued_experiments_on_two_workers_log_to_the_workspace_store(ws):
    """``dvc exp run --queue`` twice, then ``dvc queue start -j 2``: each experiment runs in a
    temporary copy under .dvc/tmp/exps/, yet its MLflow run reaches the workspace's own
    ``mlflow.db`` (the store plain ``dvc repro`` uses, MLFLOW_TRACKING_URI unset), tagged with
    the experiment's name, so ``dvc exp show`` and MLflow list the same experiments."""
    shutil.rmtree(ws / ".dvc")  # the project was made without git: make it again with it
    (ws / "dvc.lock").unlink(missing_ok=True)
    for folder in (*OUTPUTS, "results"):  # DVC's outputs, never git's
        shutil.rmtree(ws / folder, ignore_errors=True)
    run_env = _git_project(ws)

    def dvc_git(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*DVC, *args], cwd=ws, env=run_env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done

    dvc_git("init", "-q")
    dvc_git("repro")
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "dvc"]):
        subprocess.run(cmd, cwd=ws, env=run_env, check=True, capture_output=True)
    store = f"sqlite:///{ws / 'mlflow.db'}"
    from mlflow import MlflowClient

    before = {r.info.run_id for r in MlflowClient(store).search_runs(
        [e.experiment_id for e in MlflowClient(store).search_experiments()])}  # fmt: skip
    for lr in ("0.07", "0.08"):
        dvc_git("exp", "run", "--queue", "-S", f"stages.a.lr={lr}", "a")
    try:
        dvc_git("queue", "start", "-j", "2")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = dvc_git("queue", "status").stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(2)
    finally:
        dvc_git("queue", "stop", "--kill", check=False)  # the idle workers (and any task left)
    assert "Success" in status and "Failed" not in status, status
    shown = json.loads(dvc_git("exp", "show", "--json").stdout)
    names = set()
    for commit in shown:
        for exp in commit.get("experiments") or []:
            names.add(exp["name"])
    assert len(names) == 2, shown

    client = MlflowClient(store)
    runs = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
            if r.info.run_id not in before]  # fmt: skip
    assert {r.data.tags.get("dvc_exp") for r in runs} == names, [r.data.tags for r in runs]
    assert {r.data.params["optim.lr"] for r in runs} == {"0.07", "0.08"}
    assert all(r.info.status == "FINISHED" for r in runs)
    assert not list((ws / ".dvc" / "tmp").rglob("mlflow.db"))


def test_params_edited_during_dvc_repro_are_not_recorded_and_putting_them_back_resumes(ws):
    """The issue's case: ``stages.a.lr`` edited in params.yaml during epoch 2 of ``dvc repro``.
    The stage fails naming the key, so dvc.lock keeps the last good run and ``dvc status``
    says the stage changed; with the value put back, ``dvc repro`` resumes the kept checkpoint
    (no epoch trained again) and records what the run used."""
    start_params = deep_merge(deep_merge(PARAMS, SLOW), {"stages": {"a": {"epochs": 3}}})
    write_params(ws, start_params)
    lock_before = (ws / "dvc.lock").read_text()
    checkpoints = ws / "checkpoints" / "a"
    log = ws.parent / "edited-repro.log"
    with open(log, "w") as out:
        first = subprocess.Popen([*DVC, "repro", "-s", "a"], cwd=ws,
                                 env=env(ws, DVC_NO_ANALYTICS="1", SHELL="/bin/bash"),
                                 stdout=out,
                                 stderr=subprocess.STDOUT)  # fmt: skip
    _lock_holder(first, checkpoints)
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("seed0-*/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.05)  # epoch 1 is done
    write_params(ws, deep_merge(start_params, {"stages": {"a": {"lr": 0.07}}}))
    assert first.wait(timeout=180) != 0, log.read_text()
    errors = [line for line in log.read_text().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "stages.a.lr (0.1 -> 0.07)" in errors[0], log.read_text()
    assert (ws / "dvc.lock").read_text() == lock_before
    assert "up to date" not in dvc(ws, "status", "a").stdout

    write_params(ws, start_params)
    again = dvc(ws, "repro", "-s", "a")
    assert "at epoch 4, step 0" in again.stdout and "epoch 1/3" not in again.stdout, again.stdout
    locked = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]["a"]["params"]
    assert locked["params.yaml"]["stages.a"]["lr"] == 0.1
    assert locked["params.yaml"]["stages.a"]["epochs"] == 3
    assert "up to date" in dvc(ws, "status", "a").stdout
