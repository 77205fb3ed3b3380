"""The clock a throughput table counts in.

``wall``: elapsed seconds (``time.perf_counter``), what a user waits for. ``cpu``: CPU seconds,
user + system time of this process (all its threads) and of its children once they have been
waited for (``os.times``). On a machine shared with other jobs the wall time of a stage follows
the load of the minute, while its CPU time at one thread per process does not; so the plan's
model (counts x per-unit costs) can be checked on a busy machine with ``cpu`` tables
(``benchmarks/plan_accuracy.py --clock cpu``). On a quiet machine, one thread, the two agree.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Literal, get_args

__all__ = ["CLOCKS", "Clock", "now", "run_seconds", "run_timed"]

Clock = Literal["wall", "cpu"]
CLOCKS: tuple[str, ...] = get_args(Clock)


def now(clock: Clock) -> float:
    """The current reading of ``clock`` in seconds (only differences are meaningful)."""
    if clock == "cpu":
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system
    return time.perf_counter()


def run_timed(
    cmd: list[str], cwd: Path | None, env: dict[str, str] | None, clock: Clock
) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``cmd`` to its end (output captured); its seconds on ``clock`` and the result."""
    start = now(clock)
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return now(clock) - start, done


def run_seconds(
    cmd: list[str], cwd: Path | None, env: dict[str, str] | None, clock: Clock
) -> float:
    """Seconds on ``clock`` of ``cmd`` run to its end; a failure exits naming the command, with
    the end of its output."""
    seconds, done = run_timed(cmd, cwd, env, clock)
    if done.returncode:
        raise SystemExit(
            f"error: {' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return seconds
