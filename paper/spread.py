"""Whether a table's rows differ by more than their seeds do (Table 1's note); pandas only, so
the report stage, which loads no torch, uses it too."""

from __future__ import annotations

import pandas as pd

__all__ = ["separation_note"]


def separation_note(table: pd.DataFrame) -> str:
    """Whether the rows' mean accuracies are further apart than their seeds' spread: the range
    of the means against the largest per-row standard deviation."""
    spread = table["test_acc"].max() - table["test_acc"].min()
    if table["n"].min() < 2:
        return (f"The rows span {spread:.2f} points; with one seed per row their seed-to-seed "
                "spread is not measured (studies.table1.seeds).")
    noise = table["test_acc_std"].max()
    verdict = "apart" if spread > noise else "NOT apart"
    return (f"The rows' means span {spread:.2f} points, the largest seed-to-seed std is "
            f"{noise:.2f} (n = {table['n'].min()}): the rows are {verdict} beyond their "
            "seeds' spread at this scale.")
