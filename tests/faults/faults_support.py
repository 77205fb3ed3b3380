"""Workspaces for the fault catalogue: a copy of the project's code, tiny params, real stages.

A workspace is a folder holding copies of ``dspike/`` and ``pipelines/`` (so a test may change
the code, as a user would), ``data/bundled`` (linked), a ``params.yaml`` of tiny bundled-MNIST
stages and an MLflow sqlite store copied from a template (creating one costs seconds). Stages run
as real processes (``python -m pipelines.<stage>``) in it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from stage_support import stage_params, toy_stage  # noqa: E402

PARAMS = stage_params(
    {
        "a": toy_stage("ann", 1, 2, 0.1, "none"),
        "b": toy_stage("snn", 2, 1, 0.05, "dspike", select="best"),
        "slow": toy_stage("snn", 4, 4, 0.05, "dspike"),
    },
    seeds=[0],
    train={"max_train_samples": 96, "max_test_samples": 64, "batch_size": 32},
    tracking={"log_weights": False},
)
SLOW = {"train": {"max_train_samples": 480, "max_test_samples": 64}}  # ~1 s per epoch


def mlflow_template(base: Path) -> Path:
    """An empty MLflow sqlite store, made once for all test processes under ``base``."""
    db = base / "mlflow-template.db"
    with open(base / "mlflow-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not db.is_file():
            from mlflow import MlflowClient

            part = base / "mlflow-template.part.db"
            MlflowClient(tracking_uri=f"sqlite:///{part}").search_experiments()
            os.replace(part, db)
    return db


def make_workspace(root: Path, template: Path, params: dict | None = None) -> Path:
    """A workspace in ``root`` with the MNIST manifest prepared; returns ``root``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("dspike", "harness", "paper", "pipelines"):
        shutil.copytree(REPO / package, root / package, ignore=ignore)
    (root / "data").mkdir()
    (root / "data" / "bundled").symlink_to(REPO / "data" / "bundled")
    write_params(root, params or PARAMS)
    shutil.copy(template, root / "mlflow.db")
    done = stage(root, "prepare", "mnist", "--out", "data/manifests/mnist.json")
    assert done.returncode == 0, done.stderr
    return root


def write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def env(root: Path, **extra: str) -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")  # the workspace's code; users write .pyc
    out = {k: v for k, v in os.environ.items() if k not in drop}
    out.update(OMP_NUM_THREADS="1", MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
               DSPIKE_EXPERIMENT_PREFIX="faults/", **extra)  # fmt: skip
    return out


def train_argv(name: str, seed: int = 0, *extra: str) -> list[str]:
    """The command line dvc.yaml would give training stage ``name``."""
    return [
        "train", name, "--seed", str(seed), "--manifest", "data/manifests/mnist.json", *extra,
        "--model", f"models/{name}.pt", "--metrics", f"metrics/{name}.json",
        "--plots", f"plots/{name}.csv",
    ]  # fmt: skip


def stage_cmd(module: str, *args: str, prefix: tuple[str, ...] = ()) -> list[str]:
    return [*prefix, sys.executable, "-m", f"pipelines.{module}", *args]


def stage(root: Path, module: str, *args: str, prefix: tuple[str, ...] = (),
          timeout: float = 240, **extra_env: str) -> subprocess.CompletedProcess:  # fmt: skip
    """Run ``python -m pipelines.<module> args`` in the workspace; wait for it."""
    return subprocess.run(
        stage_cmd(module, *args, prefix=prefix), cwd=root, env=env(root, **extra_env),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def start(root: Path, module: str, *args: str, **extra_env: str) -> subprocess.Popen:
    """Start a stage without waiting (stdout line-buffered, to watch its epochs)."""
    return subprocess.Popen(
        stage_cmd(module, *args), cwd=root, env=env(root, PYTHONUNBUFFERED="1", **extra_env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 180) -> list[str]:
    """Read ``proc``'s stdout up to a line containing ``text``; the lines read."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    proc.kill()
    raise AssertionError(f"no line with {text!r}: {lines}; stderr: {proc.stderr.read()[-2000:]}")


def one_line_error(done: subprocess.CompletedProcess | str, *names: str) -> str:
    """The stage's stderr is exactly one ``error:`` line naming each of ``names``."""
    err = done if isinstance(done, str) else done.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


def snapshot(root: Path, *folders: str) -> dict[str, str]:
    """sha256 of every file under ``folders``: compare before and after a fault."""
    out = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


OUTPUTS = ("models", "metrics", "plots")


def malicious_pickle(marker: Path) -> bytes:
    """A pickle that, if unpickled, writes ``marker`` (its ``__reduce__`` calls ``open``)."""
    import pickle

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (eval, (f"open({str(marker)!r}, 'w').write('pwned')",))

    return pickle.dumps({"data": Payload()}, protocol=2)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_server(folder: Path, port: int, template: Path) -> subprocess.Popen:
    """A real ``mlflow server`` on 127.0.0.1:``port`` over ``folder/server.db`` (made from the
    template if new); returns once it answers /health."""
    import urllib.request

    db = folder / "server.db"
    if not db.exists():
        shutil.copy(template, db)
    log = (folder / "server.log").open("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination",
         str(folder / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise AssertionError((folder / "server.log").read_text()[-3000:])
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group (uvicorn runs workers), then wait."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
