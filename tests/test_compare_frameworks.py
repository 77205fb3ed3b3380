"""benchmarks/compare_frameworks.py at toy size: every variant builds and steps, the floors are
the same graph without its neuron layers (and tdBN), and the target line says what it says."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dspike.neurons import LIF
from dspike.norm import TdBatchNorm2d

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "compare_frameworks.py"


@pytest.fixture(scope="module")
def cf():
    spec = importlib.util.spec_from_file_location("compare_frameworks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_floors_are_the_snn_graph_without_neurons_and_tdbn(cf):
    cpu = torch.device("cpu")
    snn, floor, bare = (cf.build(v, 2, 4, cpu) for v in ("dspike-eager", "floor", "floor-no-tdbn"))
    assert _count(snn, LIF) == 19 and _count(snn, TdBatchNorm2d) == 22
    assert (_count(floor, LIF), _count(floor, TdBatchNorm2d)) == (0, 22)
    assert (_count(bare, LIF), _count(bare, TdBatchNorm2d)) == (0, 0)
    for model in (floor, bare):  # same convolutions, same weights, same batch through them
        assert _count(model, nn.Conv2d) == _count(snn, nn.Conv2d)
        assert torch.equal(model.conv1.weight, snn.conv1.weight)
    x = torch.randn(3, 3, 32, 32)
    seen: list[int] = []
    hook = bare.stages[-1].register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    assert bare(x).shape == (3, 10)
    hook.remove()
    assert seen == [2 * 3]  # time still folded into the batch: T x B samples per conv


def test_target_lines_say_what_the_target_leaves_the_neuron_layer(cf):
    by = {
        "spikingjelly": {"step": 4.0},
        "snntorch": {"step": 5.0},
        "floor": {"step": 3.0},
        "floor-no-tdbn": {"step": 2.9},
        "dspike-eager": {"step": 3.5},
        "dspike-compiled": {"step": 3.3},
    }
    lines = cf.target_lines(by)
    assert lines[0] == "target: 0.85 x the faster of SpikingJelly / snnTorch = 3.400 s"
    assert "3.000 s (0.75 x); leaves 0.400 s per step for the neuron layer" in lines[1]
    assert "2.900 s (0.72 x); leaves 0.500 s" in lines[2]
    assert lines[3].endswith("3.500 s, misses it") and lines[4].endswith("3.300 s, meets it")
    assert cf.target_lines({"floor": {"step": 1.0}}) == []
    over = cf.target_lines({"spikingjelly": {"step": 4.0}, "floor": {"step": 3.5}})
    assert over[1].endswith("3.500 s (0.88 x); is 0.100 s over the target before any neuron layer")
    by["dspike-compiled"] |= {"lif_setup_s": 0.02, "first_step_excess_s": 1.2}
    assert cf.target_lines(by)[-1] == (
        "per-process overhead of dspike LIF, compiled: LIF setup 0.020 s + first-step excess "
        "1.2 s = 1.2 s, meets the 3 s target"
    )
    by["dspike-compiled"]["first_step_excess_s"] = 3.5
    assert cf.target_lines(by)[-1].endswith("= 3.5 s, misses the 3 s target")
    by["dspike-compiled"]["first_step_excess_s"] = -1.0
    assert cf.target_lines(by)[-1].endswith("-1.0 s = 0.0 s, meets the 3 s target")


@pytest.mark.integration
def test_cli_times_every_variant_and_writes_csv_and_plot(tmp_path):
    variants = "dspike-eager,spikingjelly,snntorch,ann,floor,floor-no-tdbn"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--time-steps", "2", "--batches", "2", "--width", "4",
         "--repeats", "1", "--warmup", "0", "--variants", variants, "--no-memory",
         "--profile", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    with open(tmp_path / "compare_frameworks.csv") as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(variants.split(","))
    assert {r["malloc"] for r in rows.values()} == {"retain"}
    assert all(float(r["step"]) > 0 for r in rows.values())
    assert (tmp_path / "compare_frameworks.png").stat().st_size > 0
    assert "target: 0.85 x the faster of SpikingJelly / snnTorch" in out.stdout
    assert "leaves" in out.stdout and "dspike LIF, eager:" in out.stdout
    assert out.stdout.count("where a step of") == len(variants.split(","))
    assert "aten::convolution_backward" in out.stdout


def test_profile_says_where_a_step_goes(cf):
    model = cf.build("dspike-eager", 2, 4, torch.device("cpu"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = cf._batch(2, torch.device("cpu"))
    top = cf.profile_step(model, optimizer, x, y, torch.device("cpu"), top=1000)
    names = [name for name, _, _ in top]
    assert "aten::convolution_backward" in names and "_LIFFunctionBackward" in names
    shares = [share for _, _, share in top]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0)  # every op with self time, so the whole step


def test_memory_record_of_a_variant(cf):
    with pytest.raises(ValueError, match="steps must be >= 3"):
        cf.measure_memory("floor", 2, 2, 4, steps=2)
    record = cf.measure_memory("floor", 2, 2, 4, steps=4)
    assert record["peak_rss_mb"] >= record["step_rss_mb"] >= 0
    assert record["faults_per_step"] >= 0 and isinstance(record["first_step_excess_s"], float)
    assert "lif_setup_s" not in record  # no dspike LIF in the floor
    record = cf.measure_memory("dspike-eager", 2, 2, 4, steps=3)
    assert 0 < record["lif_setup_s"] < 60  # one LIF call on 12 neurons
