"""Table 1: the toy SNN trained with the FDG as the first layer's gradient, per eps (Sec. 4.2).

One run with the rectangular surrogate gradient (a = 1) and one per eps with the first layer's
gradient replaced by its FDG (the FC layer keeps its exact gradient), all from the same
initialisation and data order; test accuracy after ``epochs`` epochs.

Outputs in ``out_dir``: ``table1.csv`` and ``table1.md`` (with the paper's numbers beside ours
where ``reported`` gives them).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from torch.utils.data import Dataset

from ..io import atomic_path, atomic_write_text
from ..surrogate import Rectangular
from .toy_training import evaluate, load_split, make_toy, sample_shape, train_toy

__all__ = ["main", "markdown", "run"]


def run(
    train_data: Dataset,
    test_data: Dataset,
    out_dir: str | Path,
    *,
    epochs: int = 10,
    epsilons: Sequence[float] = (0.001, 0.01, 0.05, 0.1, 0.2, 0.5),
    batch_size: int = 128,
    lr: float = 0.01,
    time_steps: int = 4,
    num_classes: int = 10,
    seed: int = 0,
    reported: Mapping[str | float, float] | None = None,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """Train the rectangular-SG run and one FDG run per eps; write CSV and Markdown."""
    runs: list[tuple[str, float]] = [("rectangular", math.nan)]
    runs += [("fdg", float(eps)) for eps in epsilons]
    rows = []
    for gradient, eps in runs:
        model = make_toy("snn", Rectangular(1.0), time_steps, sample_shape(train_data),
                         num_classes, seed)
        start = time.perf_counter()
        history = train_toy(model, train_data, epochs, batch_size=batch_size, lr=lr, seed=seed,
                            gradient="autograd" if gradient == "rectangular" else "fdg",
                            eps=0.1 if math.isnan(eps) else eps, chunk_size=chunk_size)
        rows.append({"gradient": gradient, "eps": eps, "test_acc": evaluate(model, test_data),
                     "final_train_loss": history["loss"].iloc[-1], "epochs": epochs,
                     "seconds": time.perf_counter() - start})
    table = pd.DataFrame(rows)
    out = Path(out_dir)
    with atomic_path(out / "table1.csv") as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_text(out / "table1.md", markdown(table, reported))
    return table


def markdown(table: pd.DataFrame, reported: Mapping[str | float, float] | None = None) -> str:
    """Table 1 in Markdown; ``reported`` maps "rectangular" or an eps to the paper's accuracy."""
    paper = {_key(k): float(v) for k, v in (reported or {}).items()}
    lines = ["| Gradient | ε | Test acc. % (ours) | Test acc. % (paper) | Difference |",
             "|---|---|---|---|---|"]
    for row in table.itertuples():
        key = _key(row.gradient if row.gradient == "rectangular" else row.eps)
        name = "Rectangular SG (a = 1)" if row.gradient == "rectangular" else "FDG"
        eps = "—" if math.isnan(row.eps) else f"{row.eps:g}"
        ref = paper.get(key)
        cells = ("—", "—") if ref is None else (f"{ref:.1f}", f"{row.test_acc - ref:+.1f}")
        lines.append(f"| {name} | {eps} | {row.test_acc:.1f} | {cells[0]} | {cells[1]} |")
    fdg_rows = table[table["gradient"] == "fdg"]
    if len(fdg_rows):
        best = fdg_rows.loc[fdg_rows["test_acc"].idxmax()]
        lines.append(f"\nBest FDG ε here: {best['eps']:g} ({best['test_acc']:.1f}%), "
                     f"{int(table['epochs'].iloc[0])} epochs.")
    return "\n".join(lines) + "\n"


def _key(value: str | float) -> str | float:
    """``"rectangular"`` stays; anything else is an eps, compared as a float."""
    return value if value == "rectangular" else float(value)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(prog="python -m dspike.studies.table1", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-root", required=True, help="root that dspike.data reads")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--train-size", type=int, default=0, help="0 = the whole training split")
    p.add_argument("--test-size", type=int, default=0, help="0 = the whole test split")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--epsilons", type=float, nargs="+",
                   default=[0.001, 0.01, 0.05, 0.1, 0.2, 0.5])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    train = load_split(a.dataset, a.data_root, True, a.train_size, a.seed)
    test = load_split(a.dataset, a.data_root, False, a.test_size, a.seed)
    table = run(train, test, a.out, epochs=a.epochs, epsilons=a.epsilons,
                batch_size=a.batch_size, lr=a.lr, time_steps=a.time_steps, seed=a.seed)
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
