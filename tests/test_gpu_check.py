"""benchmarks/gpu_check.py in its CPU dry mode: every part runs, so the GPU check cannot rot."""

from __future__ import annotations

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
    table = out.stdout[out.stdout.index("check "):]
    assert "equal   compiled vs eager LIF, fp32" in table and "PASS" in table
    for label in ("dspike LIF, eager", "dspike LIF, compiled", "snnTorch Leaky", "T x ANN"):
        assert label in table
    assert "stage   pipelines.train cifar10_snn_t6, smoke scale     PASS" in table
    assert "all checks passed" in out.stdout
