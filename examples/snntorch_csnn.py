"""Adaptive Dspike (Li et al., NeurIPS 2021) in an snnTorch CSNN, on bundled MNIST.

Trains one convolutional SNN twice, same seed, same batches, same epochs: with
``dspike.integrations.snntorch.Dspike`` as ``spike_grad``, whose temperature b Algorithm 1
updates at the start of each epoch (``AdaptiveTemperature``: FDG of the first conv, Eq. 10,
then b +- 0.2), and with snnTorch's default surrogate (``spike_grad=None``: arctan, alpha 2).
Prints b per epoch and both test accuracies. Data: the 2,000 / 1,000 real MNIST digits bundled
with dspike, written to a temporary folder (nothing is downloaded).

    python examples/snntorch_csnn.py [--epochs 5] [--train-size 2000] [--test-size 1000]

The neurons fire at ``threshold=0.5``, the paper's V_th, so Dspike's window (Eq. 12,
``|u - V_th| <= 0.5``) is the paper's ``0 <= u <= 1``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn

from dspike.data import build_dataset, materialize_bundled
from dspike.integrations import AdaptiveTemperature
from dspike.integrations.snntorch import Dspike


class CSNN(nn.Module):
    """(stride-2 conv, Leaky) x 2, linear readout; the image at every step, output averaged."""

    def __init__(self, sg: nn.Module | None, time_steps: int, c: int = 8) -> None:
        super().__init__()
        self.time_steps = time_steps
        self.conv1 = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.lif1 = snn.Leaky(beta=0.5, threshold=0.5, spike_grad=sg)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.lif2 = snn.Leaky(beta=0.5, threshold=0.5, spike_grad=sg)
        self.fc = nn.Linear(2 * c * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cur1 = self.conv1(x)  # the same input current at every step
        mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
        out = []
        for _ in range(self.time_steps):
            spk1, mem1 = self.lif1(cur1, mem1)
            spk2, mem2 = self.lif2(self.conv2(spk1), mem2)
            out.append(self.fc(spk2.flatten(1)))
        return torch.stack(out).mean(0)


def mnist(root: str, train: bool, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` digits drawn at random (the bundled training digits are sorted by class)."""
    data = build_dataset("mnist", root, train=train)
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:size]
    items = [data[i] for i in pick.tolist()]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    model.eval()
    correct = sum(int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
                  for i in range(0, len(x), batch))
    return 100.0 * correct / len(x)


def train(name: str, sg: nn.Module | None, args: argparse.Namespace,
          data: tuple[torch.Tensor, ...]) -> float:
    x, y, x_test, y_test = data
    torch.manual_seed(args.seed)
    model = CSNN(sg, args.time_steps)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    adapt = AdaptiveTemperature(model) if isinstance(sg, Dspike) else None
    order = torch.Generator().manual_seed(args.seed)  # the same batches in both runs
    picks = torch.Generator().manual_seed(args.seed + 1)  # Algorithm 1's minibatches
    for epoch in range(1, args.epochs + 1):
        note = ""
        if adapt is not None:
            pick = torch.randperm(len(x), generator=picks)[: args.fdg_batch]
            u = adapt.step(x[pick], y[pick])
            sims = ", ".join(f"{b:.2f}: {s:.3f}" for b, s in sorted(u.similarities.items()))
            note = f"b {u.previous:.2f} -> {u.temperature:.2f} (cos sim with FDG: {sims})  "
        model.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=order).split(args.batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        acc = accuracy(model, x_test, y_test, 256)
        print(f"{name:7s} epoch {epoch}/{args.epochs}  {note}train loss {total / len(x):.3f}  "
              f"test accuracy {acc:.1f}%", flush=True)
    return acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--fdg-batch", type=int, default=32, help="minibatch of Algorithm 1's FDG")
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=None, help="default: a temporary folder")
    p.add_argument("--threads", type=int, default=1, help="small tensors: more threads cost more")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = str(materialize_bundled("mnist", args.data_root or tmp))
        data = (*mnist(root, True, args.train_size), *mnist(root, False, args.test_size))
    dspike = Dspike(1.0)
    runs = {"dspike": (dspike, "dspike.integrations.snntorch.Dspike"),
            "default": (None, "snntorch.surrogate.atan() (snnTorch's default)")}
    accs = {name: train(name, sg, args, data) for name, (sg, _) in runs.items()}
    for name, (_, label) in runs.items():
        print(f"final {name:7s} {label}: test accuracy {accs[name]:.1f}%")
    print(f"final b = {dspike.temperature:.2f}; "
          f"{args.epochs} epochs x 2 runs in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
