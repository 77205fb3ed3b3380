"""Fig. 4 (firing rate per LIF layer) and Table 3 (ops and energy) as files (Sec. 5.4).

Needs pandas and matplotlib (the ``pipeline`` extra). The paper's reported rows are passed in
(the pipeline reads them from its reference file); nothing here hard-codes a paper number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dspike.energy import E_AC, E_MAC, energy
from dspike.io import atomic_write_text, pyplot, save_figure

__all__ = [
    "TABLE3_COLUMNS",
    "TABLE3_NOTE",
    "format_count",
    "format_energy",
    "table3_rows",
    "write_firing_rates",
]

TABLE3_COLUMNS = ["Source", "Method", "Model", "T", "Acc.", "#Add", "#Mult", "Energy",
                  "Energy (as printed)"]
TABLE3_NOTE = (
    "Energy = 4.6 pJ x #Mult + 0.9 pJ x #Add per image (45 nm CMOS, Sec. 5.4). This formula is "
    "inferred from the paper's Table 3, and it conflicts with the paper's sentence that a MAC "
    "costs 4.6 pJ: the table's ANN rows count every MAC as one #Mult and one #Add "
    "(#Add = #Mult), i.e. 5.5 pJ per ANN MAC, and only that reproduces its energies. The "
    "paper's Table 3 also prints these values with units one SI prefix too large (J for mJ, "
    "mJ for uJ): e.g. 187M x (4.6 + 0.9) pJ = 1.03 mJ, printed 1.03J. 'Energy' recomputes "
    "every row from its op counts; 'Energy (as printed)' is the paper's text."
)


def format_count(n: float) -> str:
    """Op count with three significant digits and an SI suffix, as Table 3 prints it."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.3g}"


def format_energy(joules: float) -> str:
    """Energy with three significant digits and the right SI prefix (J, mJ, uJ, nJ, pJ)."""
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ")):
        if abs(joules) >= scale:
            return f"{joules / scale:.3g} {unit}"
    return f"{joules / 1e-12:.3g} pJ"


def write_firing_rates(df: pd.DataFrame, out_dir: str | Path, stem: str = "firing_rates"
                       ) -> tuple[Path, Path]:
    """Write Fig. 4: ``<stem>.csv`` and a bar chart ``<stem>.png`` of firing rate per LIF layer.

    ``df`` is :meth:`ActivityReport.firing_rate_frame` (columns index, layer, firing_rate).
    The paper's y-axis reads "activation sparsity" but plots the fraction of neurons firing
    per time step; we label it as a firing rate.
    """
    plt = pyplot()

    out = Path(out_dir)
    csv_path, png_path = out / f"{stem}.csv", out / f"{stem}.png"
    atomic_write_text(csv_path, df.to_csv(index=False))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(df["index"], df["firing_rate"], color="tab:blue")
    ax.set_xlabel("LIF layer index")
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.set_xticks(list(df["index"]))
    ax.set_ylim(0, max(0.05, float(df["firing_rate"].max()) * 1.15) if len(df) else 1)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, png_path)
    return csv_path, png_path


def _row(source: str, r: Mapping[str, Any], e_mac: float, e_ac: float) -> dict[str, Any]:
    acc = r.get("acc")
    return {
        "Source": source,
        "Method": r["method"],
        "Model": r["model"],
        "T": r.get("time_steps"),
        "Acc.": None if acc is None else round(float(acc), 2),
        "#Add": format_count(r["n_add"]),
        "#Mult": format_count(r["n_mult"]),
        "Energy": format_energy(energy(r["n_mult"], r["n_add"], e_mac, e_ac)),
        "Energy (as printed)": r.get("energy_printed", ""),
    }


def table3_rows(
    reported: Sequence[Mapping[str, Any]],
    ours: Sequence[Mapping[str, Any]],
    e_mac: float = E_MAC,
    e_ac: float = E_AC,
) -> pd.DataFrame:
    """Table 3: the paper's rows, then ours, with energy recomputed in correct units.

    The formula and units caveat is the frame's ``attrs["note"]``, which
    :func:`paper.markdown.write_table` prints under the table (and so into REPORT.md).

    Each row is a mapping with ``method``, ``model``, ``n_add``, ``n_mult`` and optionally
    ``acc`` (%, None for N/A), ``time_steps`` and ``energy_printed`` (the paper's text).
    """
    rows = [_row("paper", r, e_mac, e_ac) for r in reported]
    rows += [_row("ours", r, e_mac, e_ac) for r in ours]
    df = pd.DataFrame(rows, columns=TABLE3_COLUMNS, dtype=object)
    df.attrs["note"] = TABLE3_NOTE
    return df
