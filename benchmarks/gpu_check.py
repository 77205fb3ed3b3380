"""The GPU check: one command when a GPU is lent (<= 8 min on one GPU), one summary table.

    python benchmarks/gpu_check.py            # on a GPU machine
    python benchmarks/gpu_check.py --dry      # CPU, tiny sizes: what CI runs so this never rots

1. ``equal``: the compiled LIF (AOTInductor: Triton kernels on a GPU) against the eager one,
   forward spikes and backward ``dL/dc``, in float32 and bfloat16 (Eq. 1-2, Dspike Eq. 12).
2. ``step``: one SGD step of the spiking ResNet-18 at T=6 for each neuron layer of
   ``benchmarks/compare_frameworks.py`` (dspike eager and compiled, SpikingJelly's LIFNode with
   its native CUDA/Triton kernels where it imports and with dspike's surrogate, which it runs
   through its PyTorch reference loop, snnTorch), the floor (the same graph with no neuron
   layer) and T x the ANN twin's step; on a GPU each with its step memory
   (``torch.cuda.max_memory_allocated`` above what was allocated before the step).
3. ``stage``: the real training stage ``pipelines.train cifar10_snn_t6`` at smoke scale with
   ``train.bf16: true`` (autocast) and ``neuron.backend: compiled``, in a fresh workspace.

Exit status 1 if a check fails. ``--dry`` runs every part on the CPU at tiny sizes in float32
(bf16 autocast applies on GPUs only; the stage then trains in float32 and says so).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_startup import _env, prepare_workspace
from compare_frameworks import LABELS, time_variants

from dspike.neurons import compiled_fallbacks, lif
from dspike.surrogate import Dspike
from harness.params import read_params

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Compiled vs eager: float32 sums in another order; bf16 rounds every intermediate as eager does
# (emulate_precision_casts), so spikes must be equal and gradients within a few bf16 ulps.
TOLERANCE = {"fp32": (1e-5, 1e-6), "bf16": (2e-2, 2e-2)}


def check_equal(device: torch.device, dtype_name: str, time_steps: int, neurons: int) -> tuple:
    """(status, detail) of compiled vs eager LIF on one random input."""
    dtype = DTYPES[dtype_name]
    g = torch.Generator().manual_seed(0)
    c = (torch.rand(time_steps, neurons, generator=g) * 1.4 - 0.2).to(device, dtype)
    up = torch.randn(time_steps, neurons, generator=g).to(device, dtype)
    out = {}
    for backend in ("eager", "compiled"):
        x = c.clone().requires_grad_()
        y = lif(x, 0.25, 0.5, Dspike(1.3), backend=backend)
        (grad,) = torch.autograd.grad(y, x, up)
        out[backend] = (y.detach(), grad)
    (y_e, g_e), (y_c, g_c) = out["eager"], out["compiled"]
    rtol, atol = TOLERANCE[dtype_name]
    spikes_equal = torch.equal(y_e, y_c)
    close = torch.allclose(g_c.float(), g_e.float(), rtol=rtol, atol=atol)
    err = (g_c.float() - g_e.float()).abs().max().item()
    rate = y_e.float().mean().item()
    fallbacks = compiled_fallbacks()  # compiled ran eager: nothing was compared
    ok = spikes_equal and close and 0 < rate < 1 and g_e.abs().sum() > 0 and not fallbacks
    same = "equal" if spikes_equal else "DIFFER"
    detail = f"spikes {same}, max |dgrad| {err:.2e}, firing rate {rate:.2f}"
    if fallbacks:
        detail += "; compiled ran the eager kernels: " + "; ".join(fallbacks)
    return ("PASS" if ok else "FAIL"), detail


def run_stage(device: torch.device, dry: bool, timeout: float) -> tuple:
    """(status, detail) of a bf16 smoke-scale training stage in a fresh workspace."""
    stage = "cifar10_snn_t6"
    with tempfile.TemporaryDirectory(prefix="dspike-gpucheck-") as tmp:
        ws = Path(tmp)
        prepare_workspace(ws)
        params = read_params(ws / "params.yaml")
        params["train"]["bf16"] = True
        params["neuron"]["backend"] = "compiled"
        if dry:
            params["neuron"]["backend"] = "eager"
            params["models"]["resnet18"]["width"] = 4
            params["train"].update(max_train_samples=32, max_test_samples=32, batch_size=16)
            params["stages"][stage]["time_steps"] = 2
        (ws / "params.yaml").write_text(yaml.safe_dump(params))
        argv = [stage, "--seed", "0", "--manifest", "data/manifests/cifar10.json",
                "--model", "m.pt", "--metrics", "m.json", "--plots", "p.csv"]  # fmt: skip
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "pipelines.train", *argv],
            cwd=ws, env=_env(ws), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        if out.returncode != 0:
            return "FAIL", f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"
        metrics = json.loads((ws / "m.json").read_text())
    acc, bf16 = metrics.get("final_acc"), device.type == "cuda"
    ok = acc is not None and math.isfinite(acc)
    backend = params["neuron"]["backend"]
    detail = (f"{'bf16 autocast' if bf16 else 'fp32 (bf16 is GPU-only)'}, LIF {backend}, "
              f"test acc {acc:.1f}%, {seconds:.0f} s")  # fmt: skip
    return ("PASS" if ok else "FAIL"), detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU, tiny sizes (CI)")
    parser.add_argument("--width", type=int, help="ResNet-18 width (default 64; dry 4)")
    parser.add_argument("--batch", type=int, help="batch size (default 64; dry 4)")
    args = parser.parse_args(argv)
    if args.dry:
        device = torch.device("cpu")
        width, batch, time_steps, repeats, warmup = args.width or 4, args.batch or 4, 2, 1, 1
        dtypes, neurons = ["fp32"], 1000
    else:
        if not torch.cuda.is_available():
            parser.error("no GPU: run with --dry for the CPU check")
        device = torch.device("cuda")
        width, batch, time_steps, repeats, warmup = args.width or 64, args.batch or 64, 6, 10, 3
        dtypes, neurons = ["fp32", "bf16"], 2_000_003  # odd N: a tail block in every kernel
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"gpu_check on {name}, torch {torch.__version__}{' (dry)' if args.dry else ''}")
    rows: list[tuple[str, str, str, str]] = []
    start = time.perf_counter()
    for dtype_name in dtypes:
        status, detail = check_equal(device, dtype_name, time_steps, neurons)
        rows.append(("equal", f"compiled vs eager LIF, {dtype_name}", status, detail))

    variants = ["dspike-eager", "dspike-compiled", "snntorch", "floor", "ann"]
    if importlib.util.find_spec("spikingjelly") is not None:
        # its native kernels, then its reference loop, which it runs for our surrogate
        variants[2:2] = ["spikingjelly", "spikingjelly-dspike"]
    else:
        rows.append(("step", LABELS["spikingjelly"], "SKIP", "spikingjelly not importable"))
    medians = time_variants(variants, time_steps, batch, width, repeats, warmup, device)
    ann_twin = medians.pop("ann")
    ann = ann_twin["step"] * time_steps
    memory = ""
    if "step_mb" in ann_twin:  # a GPU
        memory = f"; one ANN step's memory {ann_twin['step_mb']:.0f} MB"
    rows.append(("step", f"T x {LABELS['ann']}", "INFO", f"{ann * 1e3:.1f} ms{memory}"))
    for v, m in medians.items():
        detail = (f"{m['step'] * 1e3:.1f} ms (fwd {m['fwd'] * 1e3:.1f}, bwd {m['bwd'] * 1e3:.1f})"
                  f", {m['step'] / ann:.2f} x (T x ANN)")  # fmt: skip
        if "step_mb" in m:  # a GPU: torch.cuda.max_memory_allocated over the step
            detail += f", step memory {m['step_mb']:.0f} MB"
        rows.append(("step", LABELS[v], "INFO", detail))

    status, detail = run_stage(device, args.dry, timeout=300)
    rows.append(("stage", "pipelines.train cifar10_snn_t6, smoke scale", status, detail))

    print(f"\nResNet-18 width {width}, batch {batch}, T={time_steps}; "
          f"{time.perf_counter() - start:.0f} s in all")  # fmt: skip
    print(f"{'check':<7} {'what':<46} {'status':<6} result")
    for row in rows:
        print(f"{row[0]:<7} {row[1]:<46} {row[2]:<6} {row[3]}")
    failed = [r for r in rows if r[2] == "FAIL"]
    print("FAILED: " + "; ".join(r[1] for r in failed) if failed else "all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
