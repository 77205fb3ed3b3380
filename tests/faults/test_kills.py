"""Real stage processes killed with real signals: resume, refusal, fresh starts, nothing lost.

The reference is one uninterrupted run of stage ``slow`` (4 epochs); interrupted runs of the same
command must end byte-identical to it, and the outputs it wrote must survive every kill.
"""

from __future__ import annotations

import json
import re
import shutil
import signal

import pytest
from faults_support import (
    OUTPUTS,
    PARAMS,
    SLOW,
    make_workspace,
    malicious_pickle,
    one_line_error,
    snapshot,
    stage,
    start,
    train_argv,
    wait_for_line,
    write_params,
)

from harness.params import deep_merge

SLOW_PARAMS = deep_merge(PARAMS, SLOW)
CMD = train_argv("slow")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, template):
    root = make_workspace(tmp_path_factory.mktemp("kills"), template, SLOW_PARAMS)
    done = stage(root, *CMD)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def ws(reference, tmp_path):
    return shutil.copytree(reference, tmp_path / "ws", symlinks=True)


def _checkpoints(ws):
    return sorted((ws / "checkpoints" / "slow").glob("seed0-*/last.pt"))


def test_sigkill_then_sigterm_mid_epoch_resume_byte_identical(reference, ws):
    good = snapshot(ws, *OUTPUTS)
    first = start(ws, *CMD)
    wait_for_line(first, "epoch 1/4")
    first.kill()
    assert first.wait() == -signal.SIGKILL
    assert snapshot(ws, *OUTPUTS) == good and len(_checkpoints(ws)) == 1

    second = start(ws, *CMD)
    wait_for_line(second, "resuming")
    wait_for_line(second, "epoch 2/4")  # epoch 3 has begun: SIGTERM lands inside it
    second.send_signal(signal.SIGTERM)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 143 and "run the same command to resume" in err, err
    assert snapshot(ws, *OUTPUTS) == good

    third = stage(ws, *CMD)
    assert third.returncode == 0, third.stderr
    (resumed,) = re.findall(r"resuming \S+ at epoch (\d+), step (\d+)", third.stdout)
    assert int(resumed[1]) > 0, third.stdout  # mid-epoch: the SIGTERM checkpoint
    # Same weights, metrics rows and plots as the uninterrupted run, byte for byte.
    assert (ws / "models/slow.pt").read_bytes() == (reference / "models/slow.pt").read_bytes()
    assert (ws / "plots/slow.csv").read_text().splitlines()[0] == (
        reference / "plots/slow.csv").read_text().splitlines()[0]  # fmt: skip
    new, old = (json.loads((r / "metrics/slow.json").read_text()) for r in (ws, reference))
    assert (new["final_acc"], new["best_acc"]) == (old["final_acc"], old["best_acc"])
    assert not _checkpoints(ws)


def test_a_second_process_on_the_same_checkpoint_is_refused(ws):
    good = snapshot(ws, *OUTPUTS)
    first = start(ws, *CMD)
    wait_for_line(first, "epoch 1/4")
    first.send_signal(signal.SIGSTOP)  # holds its lock, trains nothing, until SIGCONT
    try:
        second = stage(ws, *CMD)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2
    one_line_error(second, "in use by another training process", f"pid {first.pid}")
    assert snapshot(ws, *OUTPUTS) == good
    first.communicate(timeout=180)
    assert first.returncode == 0


def test_checkpoints_of_other_code_or_config_are_not_resumed(ws):
    """Kill, change the code, rerun: a fresh start said in one line; a hostile and a truncated
    checkpoint are refused in one line naming the file; change a param, rerun: fresh again."""
    good = snapshot(ws, *OUTPUTS)
    run = start(ws, *CMD)
    wait_for_line(run, "epoch 1/4")
    run.kill()
    run.wait()
    with (ws / "dspike/engine/loop.py").open("a") as f:
        f.write("\n# a code change\n")

    run = start(ws, *CMD)
    lines = wait_for_line(run, "epoch 1/4")
    run.kill()
    run.wait()
    said = [line for line in lines if "not resumed" in line]
    assert len(said) == 1 and "other code" in said[0] and "starting afresh" in said[0], lines
    assert not any("resuming" in line for line in lines)
    (checkpoint,) = _checkpoints(ws)

    marker = ws / "PWNED"
    good_checkpoint = checkpoint.read_bytes()
    for blob in (malicious_pickle(marker), good_checkpoint[: len(good_checkpoint) // 3]):
        checkpoint.write_bytes(blob)
        refused = stage(ws, *CMD)
        assert refused.returncode == 2
        one_line_error(refused, str(checkpoint.relative_to(ws)))
        assert not marker.exists()
    checkpoint.write_bytes(good_checkpoint)

    params = deep_merge(SLOW_PARAMS, {"stages": {"slow": {"lr": 0.04}}})
    write_params(ws, params)
    fresh = stage(ws, *CMD)
    assert fresh.returncode == 0, fresh.stderr
    said = [line for line in fresh.stdout.splitlines() if "not resumed" in line]
    assert len(said) == 1 and "another config or data" in said[0], fresh.stdout
    assert "resuming" not in fresh.stdout and "epoch 1/4" in fresh.stdout
    assert snapshot(ws, *OUTPUTS) != good  # the new run's outputs replaced the old set


def test_sigint_checkpoints_mid_epoch_in_one_line_and_resumes_byte_identical(reference, ws):
    """Ctrl-C is SIGTERM's twin: a mid-epoch checkpoint, one line, exit status 130 (128 + 2)."""
    good = snapshot(ws, *OUTPUTS)
    run = start(ws, *CMD)
    wait_for_line(run, "epoch 1/4")  # epoch 2 has begun: SIGINT lands inside it
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert run.returncode == 130 and len(lines) == 1, err
    assert lines[0].startswith("stopped: SIGINT: interrupted at epoch 2, step "), err
    assert "run the same command to resume" in lines[0]
    assert snapshot(ws, *OUTPUTS) == good and len(_checkpoints(ws)) == 1

    resumed = stage(ws, *CMD)
    assert resumed.returncode == 0, resumed.stderr
    (at,) = re.findall(r"resuming \S+ at epoch (\d+), step (\d+)", resumed.stdout)
    assert int(at[1]) > 0, resumed.stdout  # mid-epoch: the SIGINT checkpoint
    assert (ws / "models/slow.pt").read_bytes() == (reference / "models/slow.pt").read_bytes()
    assert not _checkpoints(ws)


def test_params_edited_mid_run_end_it_without_outputs_and_putting_them_back_resumes(reference, ws):
    """``stages.slow.lr`` edited in params.yaml during epoch 2 (a real edit of the file while
    the stage process trains): the run, which trained at the old lr, writes no outputs and
    ends with one line naming the key, exit 1, its checkpoint kept; an edit of a key it does
    not read (another stage's, ``tracking``) is not named. With the value put back, the same
    command writes the outputs from the checkpoint without training again, byte-identical to
    the uninterrupted run."""
    good = snapshot(ws, *OUTPUTS)
    run = start(ws, *CMD)
    wait_for_line(run, "epoch 1/4")
    edited = deep_merge(SLOW_PARAMS, {"stages": {"slow": {"lr": 0.07}, "a": {"lr": 0.3}},
                                      "tracking": {"retry_s": 5}})  # fmt: skip
    write_params(ws, edited)
    _, err = run.communicate(timeout=180)
    assert run.returncode == 1, err
    line = one_line_error(err, "stages.slow.lr (0.05 -> 0.07)", "params.yaml changed")
    assert "stages.a" not in line and "tracking" not in line, line
    assert snapshot(ws, *OUTPUTS) == good and len(_checkpoints(ws)) == 1

    write_params(ws, SLOW_PARAMS)
    again = stage(ws, *CMD)
    assert again.returncode == 0, again.stderr
    assert "at epoch 5, step 0" in again.stdout, again.stdout  # all 4 epochs were kept
    assert "epoch 1/4" not in again.stdout
    assert (ws / "models/slow.pt").read_bytes() == (reference / "models/slow.pt").read_bytes()
    assert not _checkpoints(ws)
