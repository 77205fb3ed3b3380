"""DVC's own cost per stage, and how it grows as ``dvc.lock`` fills.

Every ``dvc repro`` of a stage reads the pipeline and ``dvc.lock``, checks the stage, runs its
command, then hashes and caches its outputs and rewrites ``dvc.lock``. Parsing and rewriting
the lock file dominates once it holds many stages: at smoke scale on this project's CPU a stage's
DVC overhead went from 1.3 s (5 stages locked) to 5.0 s (34 locked). :func:`measure_dvc` times
``dvc repro --force --single-item`` of a one-line probe stage added to a scratch copy of the
project's ``dvc.yaml`` and ``params.yaml`` (a git repository of its own), first with an empty
lock, then with a lock holding an entry for every stage (their real commands, dependencies,
parameters and outputs; placeholder hashes): DVC's cost per stage is ``dvc +
dvc_per_locked x (stages in dvc.lock)``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from harness.params import dvc_value

from .clock import Clock, run_seconds

__all__ = ["measure_dvc", "synthetic_lock"]

PROBE = "plan_probe"
_HASH = {"hash": "md5", "md5": "0" * 32, "size": 1}


def synthetic_lock(root: Path) -> dict[str, Any]:
    """A ``dvc.lock`` with an entry for every stage of ``root``'s pipeline (placeholder hashes)."""
    from dvc.repo import Repo

    params = yaml.safe_load((root / "params.yaml").read_text())
    stages: dict[str, Any] = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            keys = [k for d in stage.deps if hasattr(d, "params") for k in (d.params or [])]
            plain = [d for d in stage.deps if not hasattr(d, "params")]
            stages[stage.name] = {
                "cmd": stage.cmd,
                "deps": [{"path": d.def_path, **_HASH} for d in plain],
                "params": {"params.yaml": {k: dvc_value(params, k) for k in keys}},
                "outs": [{"path": o.def_path, **_HASH} for o in stage.outs],
            }
    return {"schema": "2.0", "stages": stages}


def _probe_seconds(scratch: Path, dvc: str, clock: Clock, runs: int = 1) -> float:
    """Seconds (on ``clock``) of ``dvc repro -f --single-item plan_probe`` (its command writes
    one file), the last of ``runs`` runs."""
    cmd = [dvc, "repro", "--force", "--single-item", PROBE]
    for _ in range(runs):
        seconds = run_seconds(cmd, scratch, None, clock)
    return seconds


def measure_dvc(root: Path, clock: Clock = "wall") -> dict[str, float]:
    """``dvc`` (a stage's DVC overhead with an empty lock) and ``dvc_per_locked``, on ``clock``."""
    dvc = str(Path(sys.executable).with_name("dvc"))
    lock = synthetic_lock(root)
    with tempfile.TemporaryDirectory(prefix="dspike-plan-dvc-") as tmp:
        scratch = Path(tmp)
        for name in ("params.yaml", ".dvcignore"):
            if (root / name).is_file():
                shutil.copy(root / name, scratch / name)
        pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
        pipeline["stages"][PROBE] = {
            "cmd": f"'{sys.executable}' -c \"open('probe.txt', 'w').write('1')\"",
            "deps": ["params.yaml"],
            "outs": ["probe.txt"],
        }
        (scratch / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
        subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
        subprocess.run([dvc, "init", "-q"], cwd=scratch, check=True)
        empty = _probe_seconds(scratch, dvc, clock, runs=2)  # the first warms the file cache
        (scratch / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
        full = _probe_seconds(scratch, dvc, clock)
    per_locked = max(0.0, (full - empty) / len(lock["stages"]))
    return {"dvc": empty, "dvc_per_locked": per_locked}
