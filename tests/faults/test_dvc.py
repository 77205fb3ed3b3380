"""Faults at the DVC level, in a minimal DVC project of two real stages.

``a`` trains (``pipelines.train``, as dvc.yaml runs it); ``use`` reads its model. DVC deletes a
stage's outputs before it runs the command, so after a failed rerun ``dvc checkout`` must bring
back every output of the last good run (they are all cached).
"""

from __future__ import annotations

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
