"""benchmarks/gpu_check.py in its CPU dry mode: every part runs, so the GPU check cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.integration
@pytest.mark.compile
def test_gpu_check_dry_passes_on_cpu():
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    row = re.compile(r"^(?:equal|step|stage)\s+(?P<what>.+?)\s+(?P<status>[A-Z]{4})\s", re.M)
    rows = {m["what"]: m["status"] for m in row.finditer(out.stdout)}
    assert rows["compiled vs eager LIF, fp32"] == "PASS"
    assert rows["pipelines.train cifar10_snn_t6, smoke scale"] == "PASS"
    for label in ("dspike LIF, eager", "dspike LIF, compiled", "snnTorch Leaky, per step",
                  "T x ANN twin (ReLU)", "SpikingJelly LIFNode (Sigmoid SG, native)"):
        assert rows[label] == "INFO"
    assert "all checks passed" in out.stdout
