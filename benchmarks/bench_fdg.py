"""FDG of the first layer (Eq. 10): batched vs the naive coordinate loop, on CPU or GPU.

    python benchmarks/bench_fdg.py --model toy_cnn                 # batch 128, T=4, 54 weights
    python benchmarks/bench_fdg.py --model resnet18 --coords 16    # batch 32, T=6, 16 of 1,728

Prints both times, their ratio, the largest difference of the values, and the batched cost
per perturbed copy against one ordinary forward pass on the batch (and against the part of
it after conv1, which the batched path shares). ``--coords N`` evaluates N coordinates
spread over the weight (2N copies) and extrapolates to all of them: ResNet-18's 3,456 copies
take hours on a CPU.
"""

from __future__ import annotations

import argparse
import time

import torch

from dspike.fdg import fdg
from dspike.models import PAPER_INPUT, build_model

DEFAULTS = {"toy_cnn": (128, 4), "resnet18": (32, 6)}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="toy_cnn", choices=sorted(DEFAULTS))
    p.add_argument("--batch", type=int)
    p.add_argument("--time-steps", type=int)
    p.add_argument("--width", type=int, help="ResNet width (64 = the paper's)")
    p.add_argument("--coords", type=int, default=0, help="0 = every weight of conv1")
    p.add_argument("--chunk-size", type=int)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch.set_num_threads")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    batch, steps = a.batch or DEFAULTS[a.model][0], a.time_steps or DEFAULTS[a.model][1]
    kw = {"width": a.width} if a.width else {}
    torch.manual_seed(0)
    model = build_model(a.model, 10, time_steps=steps, **kw).to(a.device).train()
    x = torch.randn(batch, *PAPER_INPUT[a.model], device=a.device)
    y = torch.randint(0, 10, (batch,), device=a.device)
    n = model.conv1.weight.numel()
    coords = torch.linspace(0, n - 1, a.coords).long().tolist() if a.coords else None
    copies = 2 * (a.coords or n)

    def batched():
        return fdg(model, None, x, y, a.eps, chunk_size=a.chunk_size, indices=coords)

    def naive():
        return fdg(model, None, x, y, a.eps, batched=False, indices=coords)

    with torch.no_grad():
        folded, static = model.fold_input(x)
        c = model.conv1(folded)
        t_fwd = best_of(lambda: model(x), a.repeats + 2)
        t_rest = best_of(lambda: model.forward_from_first(c, static, steps), a.repeats + 2)
    fast, slow = batched(), naive()  # warm-up and values
    t_batched = best_of(batched, a.repeats)
    t_naive = best_of(naive, max(1, a.repeats - 1))
    diff = (fast - slow).abs().max().item()
    scale = slow.abs().max().item()
    print(f"{a.model}: batch {batch}, T={steps}, conv1 {n} weights, {copies} perturbed copies"
          f"{'' if not a.coords else f' (of {2 * n})'}, eps {a.eps}, {a.device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"  naive    {t_naive:9.3f} s   ({t_naive / copies * 1e3:8.2f} ms per copy)")
    print(f"  batched  {t_batched:9.3f} s   ({t_batched / copies * 1e3:8.2f} ms per copy)")
    print(f"  speed-up {t_naive / t_batched:9.2f} x")
    print(f"  max |batched - naive| = {diff:.3g} (max |FDG| = {scale:.3g})")
    print(f"  one forward pass on the batch {t_fwd * 1e3:.2f} ms, "
          f"after conv1 {t_rest * 1e3:.2f} ms")
    print(f"  batched / (copies x forward)          = {t_batched / (copies * t_fwd):.3f}")
    print(f"  batched / (copies x forward w/o conv1) = {t_batched / (copies * t_rest):.3f}")
    if a.coords:
        print(f"  extrapolated to all {2 * n} copies: batched {t_batched / copies * 2 * n:.0f} s, "
              f"naive {t_naive / copies * 2 * n:.0f} s")


if __name__ == "__main__":
    main()
