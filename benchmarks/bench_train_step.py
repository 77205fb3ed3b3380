"""One SGD step of the spiking ResNet-18 (T=6) against T steps of its ANN twin (Sec. 5.1).

    python benchmarks/bench_train_step.py [--width 64] [--batch 32] [--time-steps 6] [--repeats 5]

A step is forward, cross-entropy, backward and SGD update (the engine's optimiser), batch 32 of
32x32 images. The figure of merit is SNN step / (T x ANN step): the multi-step design runs
stateless layers once on time folded into the batch, so the SNN should cost about T ANN steps
(target <= 1.15). SNN and ANN steps are interleaved and the median of each is taken, so load on
a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from dspike.engine import OptimConfig, build_optimizer
from dspike.models import build_model


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


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time-steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    runs = {}
    for mode in ("snn", "ann"):
        model = build_model("resnet18", 10, mode, args.time_steps, width=args.width).to(device)
        runs[mode] = (model.train(), build_optimizer(model, OptimConfig(lr=0.01)))
    times: dict[str, list[float]] = {"snn": [], "ann": []}
    for i in range(args.warmup + args.repeats):
        for mode, (model, optimizer) in runs.items():
            seconds = _step_seconds(model, optimizer, x, y, device)
            if i >= args.warmup:
                times[mode].append(seconds)
    snn, ann = statistics.median(times["snn"]), statistics.median(times["ann"])
    ratio = snn / (args.time_steps * ann)
    print(
        f"device {device}, threads {torch.get_num_threads()}, resnet18 width {args.width}, "
        f"batch {args.batch}, 32x32, T={args.time_steps}, median of {args.repeats}"
    )
    print(f"ANN step {ann * 1e3:.1f} ms   SNN step {snn * 1e3:.1f} ms")
    print(f"SNN step / (T x ANN step) = {ratio:.3f}   (target <= 1.15)")
    return ratio


if __name__ == "__main__":
    main()
