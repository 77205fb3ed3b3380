"""Markdown tables: the one renderer and the one writer of every table the project prints.

A table is a DataFrame. A caveat that must travel with it (Table 3's units and formula, the
best eps of Table 1) is its ``attrs["note"]``: :func:`markdown_table` prints it under the table,
so wherever the table goes (``<name>.md``, REPORT.md) the note goes too. Accuracy columns
``ours`` and ``paper`` print with two decimals, as ``mean ± std`` where a ``<col>_std`` column
stands beside them; ``diff`` with two decimals; other floats with four significant digits;
missing values as blanks. :func:`write_table` writes the CSV and the Markdown atomically
(:mod:`dspike.io`).

Needs pandas (the ``pipeline`` extra).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dspike.io import atomic_write_text

__all__ = ["markdown_table", "write_table"]

ACCURACY_COLUMNS = ("ours", "paper")


def _fmt(x: object) -> str:
    return "" if x is None or pd.isna(x) else f"{x:.2f}"


def markdown_table(df: pd.DataFrame) -> str:
    """``df`` as a GitHub table, followed by ``df.attrs["note"]`` when it has one."""
    note = df.attrs.get("note")
    df = df.copy()
    for col in ACCURACY_COLUMNS:
        if col not in df:
            continue
        std = df.pop(f"{col}_std") if f"{col}_std" in df else [None] * len(df)
        df[col] = [
            _fmt(m) + (f" ± {_fmt(s)}" if s is not None and not pd.isna(s) else "")
            for m, s in zip(df[col], std, strict=True)
        ]
    if "diff" in df:
        df["diff"] = [_fmt(d) for d in df["diff"]]
    df = df.astype(object).where(df.notna(), "")
    df = df.map(lambda v: f"{v:.4g}" if isinstance(v, float) else v)
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    text = "\n".join([head, rule, *body]) + "\n"
    return f"{text}\n{note}\n" if note else text


def write_table(df: pd.DataFrame, stem: str | Path, footer: str = "") -> str:
    """Write ``<stem>.csv`` (the frame as is) and ``<stem>.md`` (:func:`markdown_table`, then
    ``footer`` as a paragraph of its own), each atomically; return the table's Markdown, note
    included and footer left out (what a report embeds)."""
    stem = Path(stem)
    atomic_write_text(stem.with_name(f"{stem.name}.csv"), df.to_csv(index=False))
    text = markdown_table(df)
    atomic_write_text(stem.with_name(f"{stem.name}.md"), f"{text}\n{footer}\n" if footer else text)
    return text
