"""One SGD step of the spiking ResNet-18 with each neuron layer: dspike, SpikingJelly, snnTorch.

    python benchmarks/compare_frameworks.py            # T in {2,4,6} x batch in {32,64}
    python benchmarks/compare_frameworks.py --quick    # T=6, batch 32 (docs/performance.md's table)
        [--width 64] [--repeats 5] [--warmup 2] [--threads 0] [--variants ...]
        [--no-memory] [--malloc retain|default] [--profile] [--out benchmarks/out]

Same network for every variant: the paper's ResNet-18 (Sec. 5.1), its convolutions, tdBN and
graph (time folded into the batch, the first conv run once); only the neuron layer differs, all
with the dynamics of Eq. 1-2 (u = 0.25 u + c, V_th = 0.5, hard reset to 0):

* ``dspike-eager``, ``dspike-compiled``: :class:`dspike.neurons.LIF` with each backend
  (surrogate Dspike, Eq. 12);
* ``spikingjelly``: SpikingJelly's ``LIFNode(tau=4/3, decay_input=False)``, multi-step, with its
  built-in ``Sigmoid`` surrogate, which takes its native kernels (CPU: a custom op with a
  hand-written backward; CUDA: its own CUDA/Triton kernels); ``spikingjelly-dspike``: the same
  node with dspike's surrogate (``dspike.integrations``), which SpikingJelly runs through its
  autograd reference code;
* ``snntorch``: snnTorch's ``Leaky(beta=0.25, reset_mechanism="zero")`` looped over T (its
  reset is always detached), surrogate Dspike (``dspike.integrations``);
* ``ann``: the ANN twin (ReLU, plain BN, T=1), for the ratio SNN step / (T x ANN step);
* ``floor``: the SNN graph with every neuron layer an identity, and ``floor-no-tdbn``: with every
  tdBN an identity as well. They are no SNN (nothing spikes); they time what every variant
  shares (convolutions, pooling, adds, head, SGD; and tdBN), so no neuron layer in this graph
  can be faster than ``floor``, nor one with tdBN fused into it faster than ``floor-no-tdbn``.
  The summary line under each table says how much of a step a target leaves the neuron layer.

A step is forward + cross-entropy (``fwd``), backward (``bwd``) and the SGD update, timed one
after another with the variants interleaved, so load on a shared machine hits them alike; the
median of ``--repeats`` steps after ``--warmup`` is reported. Peak memory is measured in a fresh
process per variant (``VmHWM``; ``step RSS`` is the peak minus the RSS before the first
step); that process also times, for dspike's variants, the LIF's setup before the first step
(``LIF setup s``: one LIF call on a tiny input; for ``dspike-compiled`` loading its fused
kernels from the per-machine cache, or building them where it has none), times its first step
against its later ones (``1st-step excess s``), and counts a step's minor page faults
(``faults/step``, from the third step on). For ``dspike-compiled`` setup + excess is the
per-process overhead a pipeline stage pays with the kernels it finds; the summary line checks
it against issue 12's 3 s.
``--profile`` then prints, per variant, the ops one step spends most time in (``torch.profiler``
self time, with their share of the step), so what the variants share (convolutions) and what
their neuron layers cost can be read off.
Writes ``compare_frameworks.csv`` and ``compare_frameworks.png`` (step time against T) to
``--out``. ``--malloc retain`` (the default) keeps freed memory in the process as the training
stages do (:mod:`dspike.allocator`, in this process and every variant alike); ``default``
leaves glibc's behaviour. Needs ``pip install 'dspike[bench]'``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dspike.allocator import retain_freed_memory
from dspike.engine import OptimConfig, build_optimizer
from dspike.models import build_model
from dspike.neurons import LIF, lif
from dspike.norm import TdBatchNorm2d
from dspike.spec import NeuronSpec

VARIANTS = (
    "dspike-eager", "dspike-compiled", "spikingjelly", "snntorch", "ann", "floor", "floor-no-tdbn"
)
# What each of issue 27's savings buys: the default with spikes saved as floats, and with that
# and every tdBN keeping its input (what a step kept before, LIF kernels aside).
SAVINGS = ("dspike-compiled-floats", "dspike-compiled-keep")
OPTIONAL = ("spikingjelly-dspike", *SAVINGS, "dspike-compiled-recompute")
DSPIKE = ("dspike-eager", "dspike-compiled", *SAVINGS, "dspike-compiled-recompute")
LABELS = {
    "dspike-eager": "dspike LIF, eager",
    "dspike-compiled": "dspike LIF, compiled",
    "dspike-compiled-floats": "dspike compiled, spikes kept as floats",
    "dspike-compiled-keep": "dspike compiled, floats, tdBN keeps input",
    "dspike-compiled-recompute": "dspike compiled, neuron.recompute: true",
    "spikingjelly": "SpikingJelly LIFNode (Sigmoid SG, native)",
    "spikingjelly-dspike": "SpikingJelly LIFNode (Dspike SG)",
    "snntorch": "snnTorch Leaky, per step",
    "ann": "ANN twin (ReLU)",
    "floor": "floor: no neuron layer (tdBN kept)",
    "floor-no-tdbn": "floor: no neuron layer, no tdBN",
}
TARGET = 0.85  # issue 12: the default's step <= 0.85 x SpikingJelly's and snnTorch's
OVERHEAD_TARGET = 3.0  # issue 12: the compiled LIF's per-process overhead, warm cache, seconds
TAU, V_TH = NeuronSpec.tau, NeuronSpec.v_threshold  # the paper defaults every variant uses


class FoldedNeuron(nn.Module):
    """A foreign neuron over ``[T*B, ...]``: unfolds time, runs ``step_all``, folds it back."""

    def __init__(self, time_steps: int, step_all: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.time_steps = time_steps
        self.step_all = step_all

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.step_all(x.unflatten(0, (self.time_steps, -1))).flatten(0, 1)


def _spikingjelly(time_steps: int, dspike_surrogate: bool) -> nn.Module:
    from spikingjelly.activation_based import neuron, surrogate

    if dspike_surrogate:
        from dspike.integrations.spikingjelly import Dspike

        sg = Dspike(1.0)
    else:
        sg = surrogate.Sigmoid()
    # v <- v - (v - v_reset) / tau + x = 0.25 v + x for tau = 4/3 (tests/test_integrations.py).
    node = neuron.LIFNode(
        tau=1 / (1 - TAU), decay_input=False, v_threshold=V_TH, v_reset=0.0,
        surrogate_function=sg, step_mode="m",
    )

    def run(c: torch.Tensor) -> torch.Tensor:
        node.reset()
        return node(c)

    module = FoldedNeuron(time_steps, run)
    module.node = node
    return module


def _snntorch(time_steps: int) -> nn.Module:
    import snntorch

    from dspike.integrations.snntorch import Dspike

    leaky = snntorch.Leaky(beta=TAU, threshold=V_TH, spike_grad=Dspike(1.0), reset_mechanism="zero")

    def run(c: torch.Tensor) -> torch.Tensor:
        mem, out = leaky.reset_mem(), []
        for t in range(c.shape[0]):
            s, mem = leaky(c[t], mem)
            out.append(s)
        return torch.stack(out)

    module = FoldedNeuron(time_steps, run)
    module.leaky = leaky
    return module


def _swap_neurons(
    model: nn.Module, make: Callable[[], nn.Module], kinds: tuple[type, ...] = (LIF,)
) -> int:
    """Replace every module of ``kinds`` (default: dspike's LIF) by ``make()``; returns how
    many."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kinds):
                setattr(parent, name, make())
                swapped += 1
    return swapped


def build(variant: str, time_steps: int, width: int, device: torch.device) -> nn.Module:
    """The ResNet-18 of ``variant``; every SNN variant starts from the same weights."""
    torch.manual_seed(0)
    if variant == "ann":
        return build_model("resnet18", 10, "ann", time_steps, width=width).to(device).train()
    backend = "compiled" if variant.startswith("dspike-compiled") else "eager"
    spec = NeuronSpec(backend=backend, recompute=variant == "dspike-compiled-recompute")
    model = build_model("resnet18", 10, "snn", time_steps, width=width, spec=spec)
    if variant in SAVINGS:
        model.spikes_as_bytes = False
    if variant == "dspike-compiled-keep":
        for m in model.modules():
            if isinstance(m, TdBatchNorm2d):
                m.saves_output = False
    if variant == "spikingjelly" or variant == "spikingjelly-dspike":
        _swap_neurons(model, lambda: _spikingjelly(time_steps, variant.endswith("dspike")))
    elif variant == "snntorch":
        _swap_neurons(model, lambda: _snntorch(time_steps))
    elif variant == "floor":
        _swap_neurons(model, nn.Identity)
    elif variant == "floor-no-tdbn":
        _swap_neurons(model, nn.Identity, (LIF, TdBatchNorm2d))
    elif variant not in DSPIKE:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS + OPTIONAL}")
    return model.to(device).train()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_step(model, optimizer, x, y, device: torch.device) -> tuple[float, float, float]:
    """(forward + loss, backward, whole step) seconds of one SGD step."""
    _sync(device)
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    _sync(device)
    forward = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    _sync(device)
    backward = time.perf_counter()
    optimizer.step()
    _sync(device)
    end = time.perf_counter()
    return forward - start, backward - forward, end - start


def profile_step(
    model: nn.Module, optimizer, x, y, device: torch.device, top: int = 8
) -> list[tuple[str, float, float]]:
    """Where one SGD step goes: the ``top`` ops by self time (device time on a GPU), each as
    (name, seconds, share of the step's total self time), from ``torch.profiler``."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        timed_step(model, optimizer, x, y, device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    # The ops as the CPU launched them; on a GPU the kernels are listed once more on their own,
    # with the same device time (as torch's own table, which skips them).
    events = [
        (e.key, getattr(e, attr)) for e in prof.key_averages() if e.device_type == DeviceType.CPU
    ]
    total = sum(us for _, us in events) or 1.0
    events.sort(key=lambda e: e[1], reverse=True)
    return [(name, us / 1e6, us / total) for name, us in events[:top] if us > 0]


def print_profiles(
    variants: list[str], time_steps: int, batch: int, width: int, warmup: int,
    device: torch.device,
) -> None:
    """``profile_step`` of each variant after ``warmup`` steps (at least one, so that no first
    call's set-up is profiled), as one table each."""
    x, y = _batch(batch, device)
    for v in variants:
        model = build(v, time_steps, width, device)
        optimizer = build_optimizer(model, OptimConfig(lr=0.01))
        for _ in range(max(1, warmup)):
            timed_step(model, optimizer, x, y, device)
        print(f"\nwhere a step of {LABELS[v]} goes (T={time_steps}, batch {batch}; self time)")
        for name, seconds, share in profile_step(model, optimizer, x, y, device):
            print(f"  {name[:50]:50s} {seconds * 1e3:9.1f} ms {share:6.1%}")


def _batch(batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=g).to(device)
    return x, torch.randint(0, 10, (batch,), generator=g).to(device)


def time_variants(
    variants: list[str], time_steps: int, batch: int, width: int, repeats: int, warmup: int,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """Median fwd / bwd / step seconds per variant, interleaved in this process; on a GPU also
    ``step_mb``: the most a step allocated above what was allocated before it
    (``torch.cuda.max_memory_allocated``), the GPU's own measure of the step's memory."""
    x, y = _batch(batch, device)
    runs = {}
    for v in variants:
        model = build(v, time_steps, width, device)
        runs[v] = (model, build_optimizer(model, OptimConfig(lr=0.01)))
    samples: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    step_mb = dict.fromkeys(variants, 0.0)
    for i in range(warmup + repeats):
        for v, (model, optimizer) in runs.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                before = torch.cuda.memory_allocated(device)
            seconds = timed_step(model, optimizer, x, y, device)
            if device.type == "cuda":
                grown = (torch.cuda.max_memory_allocated(device) - before) / 2**20
                step_mb[v] = max(step_mb[v], grown)
            if i >= warmup:
                samples[v].append(seconds)
    medians = {
        v: {
            key: statistics.median(s[k] for s in samples[v])
            for k, key in enumerate(("fwd", "bwd", "step"))
        }
        for v in variants
    }
    if device.type == "cuda":
        for v in variants:
            medians[v]["step_mb"] = step_mb[v]
    return medians


def _status_mb(key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB, from /proc/self/status.

    Not ``ru_maxrss``: Linux carries that across ``execve``, so a process started by this
    (large) one would report the parent's size at fork as its own peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_memory(variant: str, time_steps: int, batch: int, width: int, steps: int) -> dict:
    """In this (fresh) process: peak RSS of ``steps`` SGD steps, the first step's excess, the
    minor page faults of a step after the first two (the median) and, for dspike's variants,
    the LIF's setup before the first step."""
    if steps < 3:
        raise ValueError(f"measure_memory: steps must be >= 3 (a step after two), got {steps}")
    device = torch.device("cpu")
    x, y = _batch(batch, device)
    record = {}
    if variant in ("dspike-eager", "dspike-compiled"):
        c = torch.zeros(time_steps, 2, requires_grad=True)
        start = time.perf_counter()
        lif(c, backend=variant.removeprefix("dspike-")).sum().backward()
        record["lif_setup_s"] = time.perf_counter() - start
    model = build(variant, time_steps, width, device)
    optimizer = build_optimizer(model, OptimConfig(lr=0.01))
    before = _status_mb("VmRSS")
    times, faults = [], []
    for _ in range(steps):
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        times.append(timed_step(model, optimizer, x, y, device)[2])
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
    peak = _status_mb("VmHWM")
    return {
        "peak_rss_mb": peak,
        "step_rss_mb": peak - before,
        "first_step_excess_s": times[0] - statistics.median(times[1:]),
        "faults_per_step": statistics.median(faults[2:]),
        **record,
    }


def memory_in_subprocess(variant: str, time_steps: int, batch: int, args) -> dict:
    cmd = [
        sys.executable, __file__, "--memory-of", variant, "--time-steps-one", str(time_steps),
        "--batch-one", str(batch), "--width", str(args.width), "--threads", str(args.threads),
        "--malloc", args.malloc,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}" if b else "-"


def report(rows: list[dict], time_steps: int, batch: int) -> None:
    """Print one (T, batch) table: times, ratios, cost over the floor, memory; then the targets."""
    by = {r["variant"]: r for r in rows if r["T"] == time_steps and r["batch"] == batch}
    st = by.get("snntorch", {}).get("step")
    sj = by.get("spikingjelly", {}).get("step")
    ann = by.get("ann", {}).get("step")
    floor = by.get("floor", {}).get("step")
    print(f"\nT={time_steps}, batch {batch}")
    print(
        f"{'neuron layer':<42} {'step s':>7} {'fwd s':>6} {'bwd s':>6} {'bwd/fwd':>7} "
        f"{'/snnTorch':>9} {'/SJ':>5} {'/(TxANN)':>8} {'-floor s':>8} {'peak MB':>8} "
        f"{'step MB':>8} {'1st-step excess s':>17} {'faults/step':>11} {'LIF setup s':>11}"
    )
    for v, r in by.items():
        tx_ann = "-" if v == "ann" or not ann else f"{r['step'] / (time_steps * ann):.2f}"
        over = "-" if v == "ann" or v.startswith("floor") or not floor else (
            f"{r['step'] - floor:.3f}")
        mem = [f"{r[k]:8.0f}" if k in r else f"{'-':>8}" for k in ("peak_rss_mb", "step_rss_mb")]
        excess = f"{r['first_step_excess_s']:17.1f}" if "first_step_excess_s" in r else f"{'-':>17}"
        faults = f"{r['faults_per_step']:11.0f}" if "faults_per_step" in r else f"{'-':>11}"
        setup = f"{r['lif_setup_s']:11.3f}" if "lif_setup_s" in r else f"{'-':>11}"
        print(
            f"{LABELS[v]:<42} {r['step']:7.3f} {r['fwd']:6.3f} {r['bwd']:6.3f} "
            f"{r['bwd'] / r['fwd']:7.2f} {_ratio(r['step'], st):>9} {_ratio(r['step'], sj):>5} "
            f"{tx_ann:>8} {over:>8} {mem[0]} {mem[1]} {excess} {faults} {setup}"
        )
    for line in target_lines(by):
        print(line)


def target_lines(by: dict[str, dict]) -> list[str]:
    """What issue 12's target (``TARGET`` x the faster of SpikingJelly and snnTorch) leaves a
    neuron layer in this graph, against the floors; empty without those variants."""
    others = [by[v]["step"] for v in ("spikingjelly", "snntorch") if v in by]
    if not others:
        return []
    target = TARGET * min(others)
    lines = [f"target: {TARGET} x the faster of SpikingJelly / snnTorch = {target:.3f} s"]
    for v in ("floor", "floor-no-tdbn"):
        if v in by:
            left = target - by[v]["step"]
            what = "the neuron layer" if v == "floor" else "the neuron layer with tdBN fused in"
            verdict = (
                f"leaves {left:.3f} s per step for {what}"
                if left > 0
                else f"is {-left:.3f} s over the target before any neuron layer"
            )
            lines.append(
                f"  {LABELS[v]}: {by[v]['step']:.3f} s ({by[v]['step'] / min(others):.2f} x); "
                + verdict
            )
    for v in ("dspike-eager", "dspike-compiled"):
        if v in by:
            verdict = "meets" if by[v]["step"] <= target else "misses"
            lines.append(f"  {LABELS[v]}: {by[v]['step']:.3f} s, {verdict} it")
    compiled = by.get("dspike-compiled", {})
    if "lif_setup_s" in compiled:
        # A negative excess (later steps slower than the first) is noise: it counts as 0.
        overhead = compiled["lif_setup_s"] + max(compiled["first_step_excess_s"], 0.0)
        verdict = "meets" if overhead <= OVERHEAD_TARGET else "misses"
        lines.append(
            f"per-process overhead of {LABELS['dspike-compiled']}: LIF setup "
            f"{compiled['lif_setup_s']:.3f} s + first-step excess "
            f"{compiled['first_step_excess_s']:.1f} s = {overhead:.1f} s, {verdict} the "
            f"{OVERHEAD_TARGET:g} s target"
        )
    return lines


def plot(rows: list[dict], path: Path) -> None:
    """Step time against T, one panel per batch size, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(5 * len(batches), 4), squeeze=False)
    for ax, batch in zip(axes[0], batches, strict=True):
        for v in dict.fromkeys(r["variant"] for r in rows):
            mine = [r for r in rows if r["variant"] == v and r["batch"] == batch]
            pts = sorted((r["T"], r["step"] * (r["T"] if v == "ann" else 1)) for r in mine)
            label = "T x " + LABELS[v] if v == "ann" else LABELS[v]
            ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        ax.set(xlabel="time steps T", ylabel="SGD step (s)", title=f"ResNet-18, batch {batch}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T=6, batch 32 only")
    parser.add_argument("--time-steps", default="2,4,6", help="comma-separated T values")
    parser.add_argument("--batches", default="32,64", help="comma-separated batch sizes")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-variant processes")
    parser.add_argument("--malloc", choices=("retain", "default"), default="retain",
                        help="retain: keep freed memory as the training stages do")
    parser.add_argument("--profile", action="store_true",
                        help="also print where one step of each variant goes (torch.profiler)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    parser.add_argument("--time-steps-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.malloc == "retain" and not retain_freed_memory():
        print("--malloc retain: not applied (not glibc, or glibc's own MALLOC_* / GLIBC_TUNABLES "
              "variables are set), so the allocator behaves as it finds itself")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_of:
        print(json.dumps(measure_memory(args.memory_of, args.time_steps_one, args.batch_one,
                                        args.width, steps=max(args.warmup, 2) + 2)))
        return []
    variants = [v.strip() for v in args.variants.split(",")]
    for v in variants:
        if v not in VARIANTS + OPTIONAL:
            parser.error(f"--variants: unknown {v!r}; expected some of {VARIANTS + OPTIONAL}")
    ts = [6] if args.quick else [int(t) for t in args.time_steps.split(",")]
    batches = [32] if args.quick else [int(b) for b in args.batches.split(",")]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}, "
        f"ResNet-18 width {args.width}, 32x32, median of {args.repeats} after {args.warmup} "
        f"warmup, malloc {args.malloc}"
    )
    rows = []
    for batch in batches:
        for t in ts:
            medians = time_variants(
                variants, t, batch, args.width, args.repeats, args.warmup, device
            )
            for v in variants:
                row = {"variant": v, "T": t, "batch": batch, "malloc": args.malloc, **medians[v]}
                if not args.no_memory and device.type == "cpu":
                    row.update(memory_in_subprocess(v, t, batch, args))
                rows.append(row)
            report(rows, t, batch)
            if args.profile:
                print_profiles(variants, t, batch, args.width, args.warmup, device)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "compare_frameworks.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "compare_frameworks.png")
    print(f"\nwrote compare_frameworks.csv and compare_frameworks.png to {args.out}")
    return rows


if __name__ == "__main__":
    main()
