"""MACs per time step of the paper's networks (Table 3's op counts), by torch.utils.flop_counter.

    python benchmarks/report_macs.py
"""

from __future__ import annotations

import torch

from dspike.energy import count_macs
from dspike.models import PAPER_INPUT, build_model

CLASSES = {"toy_cnn": 10, "resnet18": 10, "resnet19": 10, "resnet34": 1000, "vgg16": 1000}


def main() -> None:
    print(f"{'model':10s} {'input':>12s} {'total MACs':>16s} {'conv1 MACs':>14s}")
    for name, classes in CLASSES.items():
        with torch.device("meta"):
            model = build_model(name, classes, mode="ann")
            macs = count_macs(model, torch.empty(1, *PAPER_INPUT[name]))
        shape = "x".join(map(str, PAPER_INPUT[name]))
        print(f"{name:10s} {shape:>12s} {sum(macs.values()):>16,d} {macs['conv1']:>14,d}")


if __name__ == "__main__":
    main()
