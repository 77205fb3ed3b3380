"""``tools.repro_jobs``: a real DVC project reproduced with stages side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.repro_jobs import LOG_DIR, pending_stages, run_jobs

# Each stage writes when it started and ended (wall clock), so overlap is visible.
STAMP = ("import json, sys, time; t = time.time(); time.sleep(1.5); "
         "json.dump([t, time.time()], open(sys.argv[1], 'w'))")  # fmt: skip


def _project(root: Path, fail: bool = False) -> dict[str, str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    py = f'{sys.executable} -c "{STAMP}"'
    stages = {
        "a": {"cmd": f"{py} a.json", "outs": ["a.json"]},
        "b": {"cmd": f"{py} b.json", "outs": ["b.json"]},
        "c": {"cmd": f"{py} c.json", "deps": ["a.json", "b.json"], "outs": ["c.json"]},
    }
    if fail:
        stages["b"]["cmd"] = f'{sys.executable} -c "import sys; print(\'b broke\'); sys.exit(3)"'
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    return env


def test_pending_stages_are_the_changed_and_everything_downstream():
    upstream = {"p": set(), "a": {"p"}, "b": {"p"}, "c": {"a"}, "d": set()}
    assert pending_stages(upstream, {"a"}) == {"a", "c"}
    assert pending_stages(upstream, {"p", "d"}) == set(upstream)
    assert pending_stages(upstream, set()) == set()


def test_independent_stages_run_side_by_side_and_dvc_records_every_one(tmp_path, capsys):
    env = _project(tmp_path)
    assert run_jobs(tmp_path, 2, env) == 0
    a, b, c = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "abc")
    assert a[0] < b[1] and b[0] < a[1]  # a and b overlapped
    assert c[0] >= max(a[1], b[1])  # c waited for both
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"a", "b", "c"}
    status = subprocess.run(["dvc", "status", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(status.stdout) == {}  # as a plain dvc repro leaves it
    assert {p.stem for p in (tmp_path / LOG_DIR).glob("*.log")} == {"a", "b", "c"}
    capsys.readouterr()
    assert run_jobs(tmp_path, 2, env) == 0
    assert "up to date" in capsys.readouterr().out  # nothing ran the second time


def test_a_failing_stage_stops_what_depends_on_it_and_shows_its_log(tmp_path, capsys):
    env = _project(tmp_path, fail=True)
    assert run_jobs(tmp_path, 2, env) != 0
    err = capsys.readouterr().err
    assert "b failed" in err and "b broke" in err
    assert (tmp_path / "a.json").is_file() and not (tmp_path / "c.json").exists()


def test_targets_limit_the_run_and_an_unknown_target_is_named(tmp_path):
    env = _project(tmp_path)
    assert run_jobs(tmp_path, 2, env, ["a"]) == 0
    assert (tmp_path / "a.json").is_file() and not (tmp_path / "b.json").exists()
    with pytest.raises(SystemExit, match="no stage 'nope'"):
        run_jobs(tmp_path, 2, env, ["nope"])
