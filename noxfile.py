"""Developer and CI entry points: ``nox -s tests`` (CI), ``nox -s smoke`` (the whole DAG, small).

Sessions that need torch share one environment, ``.nox/dspike-env`` (torch + torchvision
are 5.5 GB): it is built once and reinstalled only when pyproject.toml changes. pip, not uv:
uv ignores the pinned local torch wheels. ``lint`` gets its own small environment.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).parent
SHARED_ENV = ROOT / ".nox" / "dspike-env"
PYTHON = str(SHARED_ENV / "bin" / "python")
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PYTHONHASHSEED": "0",
}


def _shared_env(session: nox.Session) -> dict[str, str]:
    """Create (or reuse) the shared torch environment; return the env to run commands in.

    Commands must be started as ``PYTHON`` (the env's interpreter by full path): nox resolves
    a bare ``python`` on its own PATH, not on the ``env`` it is given, and would pick up
    whatever interpreter CI's machine has first.
    """
    stamp = SHARED_ENV / ".pyproject.sha256"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    python = Path(PYTHON)
    if not python.exists():
        session.run(sys.executable, "-m", "venv", str(SHARED_ENV), external=True)
    if not stamp.exists() or stamp.read_text() != wanted:
        session.run(str(python), "-m", "pip", "install", "-q", "--upgrade", "pip", external=True)
        session.run(
            str(python), "-m", "pip", "install", "-q", "-e", f"{ROOT}[test,bench]", external=True
        )
        stamp.write_text(wanted)
    bin_dir = str(SHARED_ENV / "bin")
    return {
        **QUIET_ENV,
        "VIRTUAL_ENV": str(SHARED_ENV),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Unit tests and the smoke-DAG integration test (what CI runs)."""
    # pytest-xdist runs 2 workers on 2 cores: one thread each, or they fight for the cores.
    env = {**_shared_env(session), "OMP_NUM_THREADS": "1"}
    args = session.posargs or ["-q", "-n", "2", "--dist", "loadfile", "--durations=15"]
    session.run(PYTHON, "-m", "pytest", *args, env=env, external=True)


@nox.session(venv_backend="none")
def smoke(session: nox.Session) -> None:
    """The whole DVC pipeline at smoke scale on bundled real data, in ``.smoke/``."""
    env = _shared_env(session)
    session.run(PYTHON, "-m", "tools.smoke", *session.posargs, env=env, external=True)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Speed benchmarks (``benchmarks/``): the comparison with SpikingJelly and snnTorch, then
    every ``bench_*.py``; figures go to docs/performance.md. ``nox -s bench -- SCRIPT [ARGS]``
    runs one.
    """
    env = _shared_env(session)
    if session.posargs:
        session.run(PYTHON, *session.posargs, env=env, external=True)
        return
    scripts = [ROOT / "benchmarks" / "compare_frameworks.py"]
    scripts += sorted((ROOT / "benchmarks").glob("bench_*.py"))
    for script in scripts:
        session.run(PYTHON, str(script), env=env, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")
