"""A full file system under a real stage: one ``error:`` line, nothing lost, a rerun resumes.

The file system is real: a small tmpfs mounted, in a mount namespace of its own
(``unshare --mount``, so nothing outside the test sees it), over the workspace's checkpoint or
output folder, then filled by another writer while the stage trains, as a shared disk fills.
A driver script runs inside the namespace (stage, fill, free, rerun) and reports what it saw.
Without ``unshare`` and ``mount`` rights (root or user namespaces) the tests skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from faults_support import (
    OUTPUTS,
    PARAMS,
    SLOW,
    make_workspace,
    one_line_error,
    snapshot,
)

from harness.params import deep_merge

DRIVER = r"""
import json, os, signal, subprocess, sys, torch
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from faults_support import OUTPUTS, snapshot, stage, start, wait_for_line, train_argv

ws, folder, name, keep = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5:]
saved = {p: (folder / p).read_bytes() for p in keep}  # files the mount hides: put them back
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], check=True)
for p, blob in saved.items():
    (folder / p).parent.mkdir(parents=True, exist_ok=True)
    (folder / p).write_bytes(blob)

run = start(ws, *train_argv(name))
wait_for_line(run, "epoch 1/")  # epoch 1's checkpoint is written; stop, then fill the disk
run.send_signal(signal.SIGSTOP)
filler = folder / "filler"
try:
    with open(filler, "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()
except OSError:
    pass
run.send_signal(signal.SIGCONT)
_, err = run.communicate(timeout=240)
kept = sorted(str(p.relative_to(ws)) for p in (ws / "checkpoints").rglob("last.pt"))
epochs = [torch.load(ws / p, weights_only=True)["epoch"] for p in kept]
left = sorted(str(p.relative_to(ws)) for p in folder.rglob("*") if ".tmp" in p.name)
filler.unlink()
outputs = snapshot(ws, *OUTPUTS)  # after the failed run, before the rerun
again = stage(ws, *train_argv(name))
print(json.dumps({"rc": run.returncode, "err": err, "kept": kept, "epochs": epochs,
                  "temporaries": left, "outputs": outputs, "again_rc": again.returncode,
                  "again_out": again.stdout, "again_err": again.stderr}))
"""


def _can_mount(tmp_path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = ["unshare", "--mount", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
             str(tmp_path)]  # fmt: skip
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.fixture
def mountable(tmp_path):
    if not _can_mount(tmp_path):
        pytest.skip("no rights to mount a tmpfs in a mount namespace (unshare --mount)")


def _drive(ws, folder: str, name: str, *keep: str) -> dict:
    tests = str(Path(__file__).resolve().parent)  # faults_support, for the driver
    cmd = ["unshare", "--mount", sys.executable, "-c", DRIVER, tests, str(ws), str(ws / folder),
           name, *keep]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_checkpoint_folder_on_a_full_disk(mountable, tmp_path, template):
    """The epoch-2 checkpoint finds no room: one line naming the file system and the space
    the checkpoint needs, exit 1; epoch 1's checkpoint kept; after freeing space the same
    command resumes from it and finishes."""
    ws = make_workspace(tmp_path / "ws", template, deep_merge(PARAMS, SLOW))
    (ws / "checkpoints").mkdir()
    seen = _drive(ws, "checkpoints", "slow")
    assert seen["rc"] == 1, seen["err"]
    line = one_line_error(
        seen["err"],
        "no space left on device",
        "last.pt",
        f"the file system at {ws / 'checkpoints'} has",
        "it needs about",
    )
    assert "kB" in line or "MB" in line, line
    assert seen["epochs"] == [1] and seen["temporaries"] == [], seen
    assert seen["again_rc"] == 0, seen["again_err"]
    assert "at epoch 2, step 0" in seen["again_out"], seen["again_out"]  # after epoch 1
    assert (ws / "models/slow.pt").is_file()
    assert not list((ws / "checkpoints").rglob("last.pt"))


def test_output_folder_on_a_full_disk(mountable, ws):
    """The model output finds no room at the end: one line naming the output's file system,
    exit 1; the previous outputs intact, the final checkpoint kept; after freeing space the
    same command resumes at the end and writes the outputs."""
    good = snapshot(ws, *OUTPUTS)
    seen = _drive(ws, "models", "a", "a.pt")
    assert seen["rc"] == 1, seen["err"]
    one_line_error(seen["err"], "no space left on device", "models/a.pt",
                   f"the file system at {ws / 'models'} has", "it needs about")  # fmt: skip
    assert seen["epochs"] == [2] and seen["temporaries"] == [], seen
    assert seen["again_rc"] == 0, seen["again_err"]
    assert seen["outputs"] == good  # the failed run changed no output
    assert "at epoch 3, step 0" in seen["again_out"], seen["again_out"]  # after epoch 2 of 2
