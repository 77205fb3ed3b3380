"""What a training step of the spiking ResNet-18 keeps for backward, and its live peak.

    python benchmarks/saved_memory.py [--time-steps 6] [--batch 32] [--width 64]
        [--variants dspike-compiled,dspike-compiled-floats,dspike-compiled-keep,...]

Same networks as ``benchmarks/compare_frameworks.py`` (its ``build``), each variant in a fresh
process. Per variant:

* ``saved MB``: the distinct storages autograd keeps once the forward has run (spikes kept as
  bytes counted as bytes; a recomputed block's insides not at all): what issue 27's savings
  cut;
* ``live peak MB``: the most memory in use (glibc's ``mallinfo2``: allocated heap chunks and
  mmapped blocks, sampled every millisecond) during the third SGD step, with the model,
  gradients and momentum; ``heap MB``: what the allocator held then, freed chunks included.
  The step's resident memory (``compare_frameworks.py``'s ``step MB``) follows the heap, not
  the live bytes: the difference is freed memory the allocator keeps (``--malloc retain``) but
  cannot reuse for the sizes asked next.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import compare_frameworks as cf

import dspike.models.base as base
from dspike.allocator import retain_freed_memory
from dspike.saved_spikes import _Bytes, _ByteSaver

DEFAULT = ",".join(("dspike-compiled", *cf.SAVINGS, "dspike-compiled-recompute", "ann"))


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        .split()
    ]


def _heap() -> tuple[float, float]:
    """(in use, held) MB of glibc's allocator."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20, (info.arena + info.hblkhd) / 2**20


def saved_mb(model: nn.Module, x: torch.Tensor) -> float:
    """MB of the distinct storages the forward of ``model`` leaves for backward (parameters
    excluded), spikes packed as the model packs them."""
    saver, storages = _ByteSaver(), {}
    as_bytes = getattr(model, "spikes_as_bytes", False)

    def pack(t: torch.Tensor):
        packed = saver.pack(t) if as_bytes else t
        kept = packed.root if isinstance(packed, _Bytes) else packed
        if not isinstance(t, nn.Parameter):
            storages[kept.untyped_storage().data_ptr()] = kept.untyped_storage().nbytes()
        return packed

    # The model's own hooks would hide the tensors from ours: ours pack as they do.
    with (
        contextlib.ExitStack() as stack,
        torch.autograd.graph.saved_tensors_hooks(pack, saver.unpack),
    ):
        stack.callback(setattr, base, "spikes_saved_as_bytes", base.spikes_saved_as_bytes)
        base.spikes_saved_as_bytes = contextlib.nullcontext
        model(x)
    return sum(storages.values()) / 2**20


def live_peak(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(live peak, heap then) MB during the third SGD step of ``model``."""
    optimizer = cf.build_optimizer(model, cf.OptimConfig(lr=0.01))
    peak = [0.0, 0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            used, held = _heap()
            if used > peak[0]:
                peak[:] = [used, held]
            time.sleep(0.001)

    for step in range(3):
        if step == 2:
            sampler = threading.Thread(target=sample)
            sampler.start()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    stop.set()
    sampler.join()
    return peak[0], peak[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--variants", default=DEFAULT)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = ["--time-steps", str(args.time_steps), "--batch", str(args.batch)]
    shape += ["--width", str(args.width)]
    if args.one:
        retain_freed_memory()
        device = torch.device("cpu")
        x, y = cf._batch(args.batch, device)
        model = cf.build(args.one, args.time_steps, args.width, device)
        peak, held = live_peak(model, x, y)
        print(json.dumps([saved_mb(model, x), peak, held]))
        return
    print(f"T={args.time_steps}, batch {args.batch}, width {args.width}, torch {torch.__version__}")
    print(f"{'variant':<44} {'saved MB':>9} {'live peak MB':>12} {'heap MB':>8}")
    for v in args.variants.split(","):
        cmd = [sys.executable, __file__, "--one", v, *shape]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        saved, peak, held = json.loads(out.strip().splitlines()[-1])
        print(f"{cf.LABELS[v]:<44} {saved:9.0f} {peak:12.0f} {held:8.0f}")


if __name__ == "__main__":
    main()
