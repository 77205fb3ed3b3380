"""``dvc repro`` with independent stages run side by side (``tools.smoke --jobs N``).

DVC runs one stage at a time. A smoke stage spends most of its few seconds importing torch and
starting up, on one core, so a 2-core machine idles half the time. This runs the same DAG with
up to ``jobs`` stages at once, each as ``dvc --wait-for-lock repro --single-item <stage>``: DVC
itself checks the stage, runs its command, saves its outputs and writes ``dvc.lock``, under
its repository lock (released while the command runs, which is what lets a second stage run),
so ``dvc.lock``, the run cache and ``dvc status`` end as a plain ``dvc repro`` leaves them.

Which stages: every stage ``dvc status`` reports changed, and every stage downstream of one
(its inputs change once the upstream one has run; DVC skips it if they come out the same), in
dependency order, the one with the most stages waiting on it first. Each stage's output goes to
``<workspace>/.repro-logs/<stage>.log``; the console gets one line per stage started and done.
A stage that fails stops new ones from starting (as ``dvc repro`` does); the others finish,
then its log's end is printed and the exit status is its status. Ctrl-C reaches every running
stage (they share the terminal's process group), each checkpoints as it does under ``dvc
repro``; this waits for them and exits 130.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["LOG_DIR", "pending_stages", "run_jobs"]

LOG_DIR = ".repro-logs"


def _graph(workspace: Path) -> tuple[dict[str, set[str]], set[str]]:
    """Each stage's upstream stages, and the stages ``dvc status`` reports changed."""
    from dvc.repo import Repo  # DVC's own index: the DAG exactly as dvc repro sees it

    with contextlib.chdir(workspace), Repo(".") as repo:  # names as dvc repro there gives them
        graph = repo.index.graph  # edges: a stage -> a stage whose output it reads
        upstream = {s.addressing: {d.addressing for d in graph.successors(s)} for s in graph}
        changed = set(repo.status())
    return upstream, changed


def _reachable(edges: Mapping[str, set[str]], start: set[str] | list[str]) -> set[str]:
    """``start`` and every stage reached from it along ``edges``."""
    found, stack = set(), list(start)
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(edges[name])
    return found


def pending_stages(upstream: Mapping[str, set[str]], changed: set[str]) -> set[str]:
    """``changed`` and every stage downstream of one."""
    downstream: dict[str, set[str]] = {name: set() for name in upstream}
    for name, ups in upstream.items():
        for up in ups:
            downstream[up].add(name)
    return _reachable(downstream, changed)


def _waiting_on(name: str, upstream: Mapping[str, set[str]], todo: set[str]) -> int:
    """How many stages of ``todo`` are downstream of ``name`` (its priority)."""
    return len(pending_stages({s: upstream[s] & todo for s in todo}, {name})) - 1


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def _with_upstream(upstream: Mapping[str, set[str]], targets: list[str]) -> set[str]:
    """``targets`` and every stage they read from, directly or not."""
    unknown = [t for t in targets if t not in upstream]
    if unknown:
        raise SystemExit(f"error: no stage {', '.join(map(repr, unknown))} in dvc.yaml "
                         f"(stages: {', '.join(sorted(upstream))})")  # fmt: skip
    return _reachable(upstream, targets)


def run_jobs(
    workspace: Path, jobs: int, env: Mapping[str, str], targets: list[str] | None = None
) -> int:
    """Reproduce the DVC project at ``workspace`` (only ``targets`` and what they read from, if
    given) with up to ``jobs`` stages at once; the exit status of the first stage that failed,
    130 after Ctrl-C, else 0."""
    upstream, changed = _graph(workspace)
    todo = pending_stages(upstream, changed)
    if targets:
        todo &= _with_upstream(upstream, targets)
    if not todo:
        print("Data and pipelines are up to date.")
        return 0
    logs = workspace / LOG_DIR
    logs.mkdir(exist_ok=True)
    priority = {name: _waiting_on(name, upstream, todo) for name in todo}
    stage_env = dict(env)
    if jobs > 1:  # one core per stage, or they fight over the cores
        stage_env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    done: set[str] = set()
    failed: list[tuple[str, int]] = []
    _say(f"{len(todo)} stages to run, {jobs} at a time; each one's output: {logs}/<stage>.log")
    try:
        while todo - done:
            ready = sorted(
                (n for n in todo - done - set(running) if not (upstream[n] & todo) - done),
                key=lambda n: (-priority[n], n),
            )
            while ready and len(running) < jobs and not failed:
                name = ready.pop(0)
                log = open(logs / f"{name}.log", "w")
                cmd = [sys.executable, "-m", "dvc",  # this environment's DVC, whatever PATH says
                       "--wait-for-lock", "repro", "--single-item", name]
                proc = subprocess.Popen(cmd, cwd=workspace, env=stage_env, stdout=log,
                                        stderr=subprocess.STDOUT)  # fmt: skip
                log.close()
                running[name] = (proc, time.monotonic())
                _say(f"start {name}")
            if not running:
                break  # a stage failed and nothing runs any more
            time.sleep(0.2)
            for name, (proc, started) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[name]
                took = time.monotonic() - started
                if proc.returncode:
                    failed.append((name, proc.returncode))
                    _say(f"FAILED {name} (exit {proc.returncode}, {took:.0f} s)")
                else:
                    done.add(name)
                    _say(f"done  {name} ({took:.0f} s)")
    except KeyboardInterrupt:
        for proc, _ in running.values():
            proc.wait()
        print("stopped: Ctrl-C; every running stage checkpointed or stopped; run again to go on",
              file=sys.stderr)  # fmt: skip
        return 130
    for name, status in failed:
        tail = (logs / f"{name}.log").read_text(errors="replace").splitlines()[-30:]
        print(f"\n--- {name} failed (exit {status}); the end of {logs / name}.log:",
              file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
    return failed[0][1] if failed else 0


def default_jobs() -> int:
    """One stage per core, at most 4 (more contend for memory bandwidth at smoke scale)."""
    return max(1, min(4, len(os.sched_getaffinity(0))))
