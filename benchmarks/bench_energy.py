"""Cost of counting (Sec. 5.4): an evaluation pass alone vs :func:`measure_activity`.

The issue's bound: counting over a whole test set costs no more than one extra evaluation
pass, i.e. ``measure_activity`` (which also yields accuracy) takes <= 2x a plain pass.
Runs a narrow spiking ResNet-18 over random images whose BN statistics are calibrated so
that spikes reach every layer (an untrained net in eval mode otherwise falls silent).

    python benchmarks/bench_energy.py [--images 256] [--width 16] [--time-steps 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from dspike import build_model
from dspike.energy import count_macs, measure_activity, op_counts


def calibrate(model: nn.Module, x: torch.Tensor) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
            m.reset_running_stats()
    with torch.no_grad():
        model.train()(x)
    model.eval()


def eval_pass(model: nn.Module, loader: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
    return correct / sum(len(y) for _, y in loader)


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds of each function, run interleaved so that load from other
    processes hits all of them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--time-steps", type=int, default=2)
    p.add_argument("--repeats", type=int, default=9)
    a = p.parse_args()
    torch.manual_seed(0)
    model = build_model("resnet18", 10, mode="snn", time_steps=a.time_steps, width=a.width)
    x = torch.randn(a.images, 3, 32, 32)
    y = torch.randint(0, 10, (a.images,))
    calibrate(model, x[: a.batch])
    loader = [(x[i : i + a.batch], y[i : i + a.batch]) for i in range(0, a.images, a.batch)]

    eval_pass(model, loader[:1])  # warm-up
    measure_activity(model, loader[:1])
    t = timed({"eval": lambda: eval_pass(model, loader),
               "count": lambda: measure_activity(model, loader),
               "macs": lambda: count_macs(model, x[:1])}, a.repeats)
    t_eval, t_count, t_macs = t["eval"], t["count"], t["macs"]

    act = measure_activity(model, loader)
    ops = op_counts(count_macs(model, x[:1]), act.input_rates, a.time_steps)
    print(f"spiking ResNet-18 width={a.width} T={a.time_steps}, {a.images} images, "
          f"batch {a.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"timings: best of {a.repeats}, interleaved")
    print(f"eval pass alone           {t_eval:8.3f} s")
    print(f"measure_activity pass     {t_count:8.3f} s  (eval + all counters, one pass)")
    print(f"count_macs (1 image)      {t_macs:8.3f} s")
    print(f"ratio counting/eval       {t_count / t_eval:8.3f}  (bound: <= 2.0)")
    print(f"mean LIF firing rate      {statistics.mean(act.firing_rates.values()):8.3f}")
    print(f"#Add {ops.n_add / 1e6:.2f}M  #Mult {ops.n_mult / 1e6:.3f}M per image")


if __name__ == "__main__":
    main()
