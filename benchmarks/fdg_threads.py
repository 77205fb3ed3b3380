"""One toy-study FDG call (Eq. 10, the toy SNN of Sec. 4.2 at batch 64) at 1 and 2 torch threads.

    python benchmarks/fdg_threads.py [--calls 8] [--rounds 2]

Each thread count runs in its own process, alternating, ``--rounds`` times; prints the seconds
of every call and the medians. On this project's 2-core machine, shared with other jobs
(load average 3), the 2-thread calls ran 4x slower than the 1-thread ones, and their wall time
follows the load: why ``benchmarks/plan_accuracy.py --clock cpu`` runs at one thread. (Not
measured on a quiet machine.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CALLS = r"""
import json, sys, time, torch
from dspike.fdg import FIRST_LAYER, fdg
from paper.toy_training import make_toy
from dspike.surrogate import Rectangular
torch.manual_seed(0)
model = make_toy("snn", Rectangular(1.0), 4, (1, 28, 28))
x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
fdg(model, FIRST_LAYER, x, y, 0.1)
times = []
for _ in range(int(sys.argv[1])):
    start = time.perf_counter()
    fdg(model, FIRST_LAYER, x, y, 0.1)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for threads in (1, 2):
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            out = subprocess.run([sys.executable, "-c", _CALLS, str(args.calls)], cwd=root,
                                 env=env, capture_output=True, text=True, check=True).stdout
            times[threads] += json.loads(out.splitlines()[-1])  # fmt: skip
    print(f"load average at start: {load}")
    for threads, ts in times.items():
        shown = " ".join(f"{t:.2f}" for t in ts)
        print(f"{threads} thread(s): median {statistics.median(ts):.3f} s  [{shown}]")
    print(f"2 threads / 1 thread: {statistics.median(times[2]) / statistics.median(times[1]):.2f}")


if __name__ == "__main__":
    main()
