"""One SGD step of the spiking ResNet-18 (T=6) against T steps of its ANN twin (Sec. 5.1).

    python benchmarks/bench_train_step.py [--width 64] [--batch 32] [--time-steps 6]
        [--repeats 5] [--warmup 2] [--threads 0] [--backends eager,compiled]

A step is forward, cross-entropy, backward and SGD update (the engine's optimiser), batch 32 of
32x32 images. The figure of merit is SNN step / (T x ANN step): the multi-step design runs
stateless layers once on time folded into the batch, so the SNN should cost about T ANN steps
(target <= 1.15). One SNN is timed per LIF backend (``eager``, ``compiled``: fused
torch.compile kernels), all from the same initial weights. The compiled SNN's first step,
which compiles, is timed on its own (compile time = first step - median step) and kept out
of the medians, like every warmup step. The SNNs and the ANN are interleaved and the median
of each is taken, so load on a shared machine hits them alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters

from dspike.engine import OptimConfig, build_optimizer
from dspike.models import build_model
from dspike.neurons import check_backend


def _step_seconds(model, optimizer, x, y, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print the figures; return SNN step / (T x ANN step) per LIF backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time-steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--backends", default="eager,compiled", help="comma-separated LIF backends to time"
    )
    args = parser.parse_args(argv)
    backends = [check_backend(b.strip(), "--backends") for b in args.backends.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    runs = {}
    init = None
    for backend in backends:
        torch.manual_seed(0)
        model = build_model(
            "resnet18", 10, "snn", args.time_steps, width=args.width, lif_backend=backend
        )
        if init is None:
            init = model.state_dict()
        model.load_state_dict(init)
        model = model.to(device).train()
        runs[f"snn-{backend}"] = (model, build_optimizer(model, OptimConfig(lr=0.01)))
    model = build_model("resnet18", 10, "ann", args.time_steps, width=args.width).to(device)
    runs["ann"] = (model.train(), build_optimizer(model, OptimConfig(lr=0.01)))

    print(
        f"device {device}, threads {torch.get_num_threads()}, resnet18 width {args.width}, "
        f"batch {args.batch}, 32x32, T={args.time_steps}, median of {args.repeats} "
        f"after {args.warmup} warmup"
    )
    graphs = counters["stats"]["unique_graphs"]
    if "compiled" in backends:
        first_step = _step_seconds(*runs["snn-compiled"], x, y, device)
        first = counters["stats"]["unique_graphs"] - graphs

    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(args.warmup + args.repeats):
        for name, (model, optimizer) in runs.items():
            seconds = _step_seconds(model, optimizer, x, y, device)
            if i >= args.warmup:
                times[name].append(seconds)
    median = {name: statistics.median(t) for name, t in times.items()}
    ann = median["ann"]
    print(f"ANN step {ann * 1e3:.1f} ms")
    ratios = {}
    for backend in backends:
        snn = median[f"snn-{backend}"]
        ratios[backend] = snn / (args.time_steps * ann)
        print(
            f"SNN step, LIF {backend:<8} {snn * 1e3:8.1f} ms   "
            f"SNN / (T x ANN) = {ratios[backend]:.3f}   (target <= 1.15)"
        )
    if "compiled" in backends:
        later = counters["stats"]["unique_graphs"] - graphs - first
        print(
            f"compiled LIF: first step {first_step:.1f} s, i.e. about "
            f"{first_step - median['snn-compiled']:.1f} s of compiling {first} graphs; "
            f"{later} graphs compiled after it"
        )
    return ratios


if __name__ == "__main__":
    main()
