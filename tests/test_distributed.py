"""DDP through torchrun: 2 CPU processes (gloo) train one model; only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from engine_support import assert_same_state

TESTS = Path(__file__).resolve().parent

_WORKER = """
import json, os, sys, torch
from engine_support import replace, toy_config, toy_data
from dspike.engine import NullTracker, build_network, fit
from dspike.engine.distributed import teardown

rank, out = int(os.environ["RANK"]), sys.argv[1]

class Recorder(NullTracker):
    def log_metrics(self, metrics, step):
        with open(f"{out}/tracked-rank{rank}.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\\n")

cfg = toy_config(f"{out}/ck/last.pt", epochs=2, surrogate="dspike_adaptive")
cfg = replace(cfg, "data", batch_size=32)  # 16 per process
cfg = replace(cfg, "run", select="best")
train, test = toy_data()
result = fit(cfg, build_network(cfg), train, test, tracker=Recorder())
torch.save({"model": result.model.state_dict(), "history": result.history,
            "best": result.best_state}, f"{out}/rank{rank}.pt")
teardown()
"""


def test_two_processes_average_gradients_and_rank0_alone_writes(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(script), str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # Each process saw different samples: equal weights mean the gradients were averaged.
    assert_same_state(ranks[0]["model"], ranks[1]["model"])
    assert ranks[0]["history"] == ranks[1]["history"]  # same b (broadcast), same metrics
    assert [row["epoch"] for row in ranks[0]["history"]] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["last.pt"]
    # Every rank keeps the best epoch's weights; rank 0's checkpoint holds the same.
    assert_same_state(ranks[0]["best"], ranks[1]["best"])
    checkpoint = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)
    assert_same_state(checkpoint["best_state"], ranks[0]["best"])
    assert not (tmp_path / "tracked-rank1.jsonl").exists()
    tracked = [json.loads(line) for line in (tmp_path / "tracked-rank0.jsonl").open()]
    assert [t["step"] for t in tracked] == [1, 2]
    assert [t["temperature"] for t in tracked] == [r["temperature"] for r in ranks[0]["history"]]
