"""Stage ``tables``: Tables 1-5, Fig. 5 and ``REPORT.md``, the paper's numbers beside ours.

    python -m pipelines.tables --metrics DIR --plots DIR --results DIR --manifests DIR --out DIR

reads each training run's ``<metrics>/<run>/seed<S>.json`` for exactly the seeds params.yaml
names (``seeds``; ``seeds_imagenet`` for ImageNet, ``ablation.seeds`` for Table 5's other eps:
files of seeds dropped since are not counted), the DVS runs' per-epoch
``<plots>/dvs_snn_t10/seed<S>.csv``, the studies' and energy outputs under ``--results``
(``table1/``, ``fig2/``, ``fig3/``, ``energy/``, ``surrogates/``) and the data manifests; writes
``<out>/REPORT.md``, ``<out>/tables/*.{csv,md}`` and ``<out>/fig5.png``.

Run by hand while the DAG is still running (with an ``--out`` of its own: DVC owns
``results/report``), it reports what exists: a training run without metrics counts n = 0 with
"not run yet", a study whose output is missing leaves its rows empty with a note that names the
missing file, a missing figure is named in place of its image, and Fig. 5 without CIFAR10-DVS
runs is an empty plot that says so. Its MLflow run carries the tag ``partial``: the missing
study outputs, or ``false``.

Every row carries the paper's reported value (``paper/reported.yaml``), ours as
mean ± std over the seeds that ran (n), and the difference. Results on substitute data (the
bundled CIFAR-100 stand-in, simulated CIFAR10-DVS) are labelled as such in the table itself.
Every table is written by :func:`paper.markdown.write_table`, and REPORT.md embeds what it
returns, so a table's note (Table 3's units and formula, Table 1's reference note) is in both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import yaml

import paper
from dspike.data import DATASETS
from dspike.io import atomic_write_text, pyplot, save_figure
from harness.cli import stage_main
from harness.params import Params, params_hash, provenance
from harness.tracking import experiment_name, log_stage_run, run_tags
from paper.energy_report import table3_rows
from paper.markdown import write_table
from paper.mechanisms import dag_checks
from paper.spread import separation_note

# the paper's reported numbers, shown beside ours (never in place of a run)
REPORTED = Path(paper.__file__).with_name("reported.yaml")
# what the studies and the energy stage write under --results
TABLE1_CSV, TABLE3_CSV = Path("table1/table1.csv"), Path("energy/table3_ours.csv")
SURROGATES = Path("surrogates")
FIGURES = (Path("fig2/fig2.png"), Path("fig3/fig3.png"), Path("energy/fig4.png"))


def _seed_files(folder: Path, seeds: Iterable[int], suffix: str) -> list[Path]:
    """``folder/seed<S><suffix>`` of each of ``seeds`` that exists: exactly the outputs the
    current params name, never a glob (a seed dropped from params.yaml leaves its files behind,
    and they must not count)."""
    return [p for p in (folder / f"seed{s}{suffix}" for s in seeds) if p.is_file()]


def load_runs(metrics: Path, run: str, select: str, seeds: Iterable[int]) -> list[dict]:
    """Metrics JSON of each of ``seeds`` of ``run`` (under ``metrics``) that was not skipped."""
    out = []
    for path in _seed_files(metrics / run, seeds, ".json"):
        m = json.loads(path.read_text())
        if not m.get("skipped"):
            m["acc"] = m["best_acc" if select == "best" else "final_acc"]
            out.append(m)
    return out


def skip_reason(metrics: Path, run: str, seeds: Iterable[int]) -> str | None:
    """Why ``run`` did not train (the metrics of one of ``seeds`` say ``skipped``), or None."""
    for path in _seed_files(metrics / run, seeds, ".json"):
        m = json.loads(path.read_text())
        if m.get("skipped"):
            return str(m.get("reason") or "skipped")
    return None


def summarise(metrics: Path, run: str, select: str, seeds: Iterable[int]) -> dict:
    """ours (mean), std (None when n < 2), n for one run name over ``seeds``."""
    accs = [m["acc"] for m in load_runs(metrics, run, select, seeds)]
    return {
        "ours": statistics.fmean(accs) if accs else None,
        "ours_std": statistics.stdev(accs) if len(accs) > 1 else None,
        "n": len(accs),
    }


def substitute_note(manifests: Path, dataset: str) -> str:
    """'' for the real dataset, else what the results were measured on instead: the label of
    the bundled stand-in (the registry's ``substitute``) that the data manifest records."""
    path = manifests / f"{dataset}.json"
    if not path.is_file():
        return ""
    return json.loads(path.read_text()).get("substitute") or ""


def _with_diff(df: pd.DataFrame, reported: str = "paper") -> pd.DataFrame:
    df["diff"] = df["ours"] - df[reported]
    return df


def table2(
    reported: dict, params: Params, select: str, inputs: argparse.Namespace
) -> dict[str, pd.DataFrame]:
    tables = {}
    for key, rows in reported["table2"].items():
        out = []
        for row in rows:
            ours = (
                summarise(inputs.metrics, row["stage"], select, params.seeds)
                if "stage" in row else {}
            )  # fmt: skip
            dataset = key if key in DATASETS else "cifar10"
            out.append(
                {
                    "method": row["method"],
                    "type": row["type"],
                    "arch": row["arch"],
                    "T": row["T"],
                    "paper": row["acc"],
                    "paper_std": row.get("std"),
                    **{"ours": None, "ours_std": None, "n": 0, **ours},
                    "data": substitute_note(inputs.manifests, dataset) if "stage" in row else "",
                }
            )
        tables[f"table2_{key}"] = _with_diff(pd.DataFrame(out))
    return tables


def _not_run(path: Path) -> str:
    return f"Ours: not run yet ({path} is missing)."


def table1(reported: dict, params: Params, inputs: argparse.Namespace) -> pd.DataFrame:
    """Table 1 study's accuracies beside the paper's; the reference file's note under it."""
    path = inputs.results / TABLE1_CSV
    rep = reported["table1"]
    notes = [rep["note"]] if rep.get("note") else []
    if path.is_file():
        ours = pd.read_csv(path)
        if "n" in ours:
            notes.insert(0, separation_note(ours))
    else:
        eps = list(params.studies.table1.epsilons)
        ours = pd.DataFrame({"gradient": ["rectangular"] + ["fdg"] * len(eps),
                             "eps": [None, *eps], "test_acc": None})  # fmt: skip
        notes.append(_not_run(path))
    paper = [
        rep["rectangular"] if g == "rectangular" else rep["fdg"].get(e)
        for g, e in zip(ours["gradient"], ours["eps"], strict=True)
    ]
    df = _with_diff(ours.assign(paper=paper).rename(columns={"test_acc": "ours"}))
    if notes:
        df.attrs["note"] = " ".join(notes)
    return df


def table3(reported: dict, params: Params, inputs: argparse.Namespace) -> pd.DataFrame:
    """Paper rows then ours, energy recomputed from op counts in correct units (Sec. 5.4)."""
    path = inputs.results / TABLE3_CSV
    ours = pd.read_csv(path).to_dict("records") if path.is_file() else []
    paper = [
        {
            "method": r["method"],
            "model": r["model"],
            "acc": r["acc"],
            "n_add": r["adds_m"] * 1e6,
            "n_mult": r["mults_m"] * 1e6,
            "energy_printed": r["energy_printed"],
        }
        for r in reported["table3"]
    ]
    pj = 1e-12
    e_mac, e_ac = params.energy.e_mac_pj * pj, params.energy.e_ac_pj * pj
    df = table3_rows(paper, ours, e_mac, e_ac)
    if not path.is_file():
        df.attrs["note"] = f"{df.attrs['note']} {_not_run(path)}"
    return df


def table4(
    reported: dict, params: Params, select: str, inputs: argparse.Namespace
) -> pd.DataFrame:
    rows, seeds = [], params.seeds_imagenet
    for row in reported["table4"]:
        ours = summarise(inputs.metrics, row["stage"], select, seeds) if "stage" in row else {}
        note = ""
        if "stage" in row and not ours.get("n"):
            reason = skip_reason(inputs.metrics, row["stage"], seeds)
            note = f"not run ({reason})" if reason else "not run yet"
        rows.append(
            {
                **{k: row[k] for k in ("method", "type", "arch", "T")},
                "paper": row["acc"],
                **{"ours": None, "ours_std": None, "n": 0, **ours},
                "note": note,
                "data": substitute_note(inputs.manifests, "imagenet") if "stage" in row else "",
            }
        )
    return _with_diff(pd.DataFrame(rows))


def table5(reported: dict, params: Params, select: str, inputs: argparse.Namespace
           ) -> pd.DataFrame:  # fmt: skip
    """Table 5: the T=6 runs at each eps; the row at ``fdg.epsilon`` is the main runs."""
    main_eps = params.fdg.epsilon
    rows = []
    for dataset in params.ablation.datasets:
        for eps in sorted({*params.ablation.epsilons, main_eps}):
            paper = reported["table5"].get(dataset, {}).get(eps)
            run = f"{dataset}_snn_t6" if eps == main_eps else f"{dataset}_snn_t6_eps{eps}"
            seeds = params.seeds if eps == main_eps else params.ablation.seeds
            rows.append(
                {
                    "dataset": dataset,
                    "eps": eps,
                    "run": run,
                    "paper": paper,
                    **summarise(inputs.metrics, run, select, seeds),
                    "data": substitute_note(inputs.manifests, dataset),
                }
            )
    return _with_diff(pd.DataFrame(rows))


def fig5(plots: Path, out: Path, seeds: Iterable[int]) -> pd.DataFrame:
    """Temperature b per epoch on CIFAR10-DVS, one line per seed of ``seeds`` (Sec. 5.6)."""
    plt = pyplot()

    runs = plots / "dvs_snn_t10"
    curves = {p.stem: pd.read_csv(p) for p in _seed_files(runs, seeds, ".csv")}
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for seed, df in curves.items():
        ax.plot(df["epoch"], df["temperature"], marker="o", ms=3, label=seed)
    ax.set_xlabel("epoch")
    ax.set_ylabel("temperature b")
    ax.set_title("Fig. 5: Dspike temperature on CIFAR10-DVS")
    if curves:
        ax.legend()
    else:
        ax.text(0.5, 0.5, f"no run yet ({runs}/seed*.csv)", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    save_figure(fig, out, dpi=120)
    if not curves:
        empty = pd.DataFrame(columns=["epoch", "temperature", "seed"])
        empty.attrs["note"] = _not_run(runs / "seed*.csv")
        return empty
    return pd.concat([df.assign(seed=s) for s, df in curves.items()], ignore_index=True)


def beyond_the_paper(folder: Path, out: Path) -> list[str]:
    """REPORT.md's last section: the surrogates study's table (with its note) and figure."""
    table, figure = folder / "surrogates.md", folder / "surrogates.png"
    sections = [
        "## Beyond the paper: how close is each framework's surrogate gradient to the FDG?\n",
        "Fig. 2's measure (cosine similarity of the first layer's gradient with the FDG, Eq. 10, "
        "in the first iterations of each epoch) and Table 1's protocol (toy CNN on MNIST) for "
        "dspike's, SpikingJelly's and snnTorch's surrogates at their defaults, the threshold "
        "matched (`paper/surrogates.py`); `finite_*`: the gradient stays finite for "
        "potentials up to `studies.surrogates.finite_limit`. The FDG is itself an estimate "
        "that depends on eps.\n",
    ]
    if not table.is_file():
        return [*sections, _not_run(table) + "\n"]
    rel = os.path.relpath(figure, out)
    return [*sections, table.read_text(), f"![surrogates]({rel})\n"]


def mechanisms(params: Params, metrics: Path, plots: Path) -> list[str]:
    """REPORT.md's section on the relations the paper's mechanisms imply
    (:mod:`paper.mechanisms`), checked on the CIFAR-10 chain of every seed."""
    checks = dag_checks(metrics, plots, list(params.seeds), params.dspike.inherit_temperature)
    head = ["## Mechanisms at this scale\n",
            "Relations that a broken ANN-to-SNN transfer, Time Inheritance Training or Algorithm "
            "1 would break (`paper/mechanisms.py`), on the CIFAR-10 chain of each "
            "seed.\n"]  # fmt: skip
    if not checks:
        return [*head, "Not run yet: no seed has the whole CIFAR-10 chain.\n"]
    rows = ["| relation | run | holds | what was compared |", "|---|---|---|---|"]
    rows += [f"| {c.relation} | {c.run} | {'yes' if c.holds else '**NO**'} | {c.detail} |"
             for c in checks]  # fmt: skip
    return [*head, "\n".join(rows) + "\n"]


def _run(params: Params, args: argparse.Namespace) -> None:
    reported = yaml.safe_load(REPORTED.read_text())
    select = str(params.train.select)
    tables = {"table1": table1(reported, params, args), **table2(reported, params, select, args)}
    tables["table3"] = table3(reported, params, args)
    tables["table4"] = table4(reported, params, select, args)
    tables["table5"] = table5(reported, params, select, args)
    tables["fig5"] = fig5(args.plots, args.out / "fig5.png", params.seeds)
    prov = provenance()
    prov["params_hash"] = params_hash(dataclasses.replace(params, file=""))
    scale = params.report.scale
    line = f"scale={scale}; " + ", ".join(f"{k}={v}" for k, v in prov.items())
    sections = [
        "# Dspike reproduction report\n",
        f"**Scale: {scale}.**\n",
        f"Provenance: {line}\n",
        f"Accuracies select the **{select}** epoch of each run (train.select); "
        "`ours` is mean ± std over n seeds, `diff` = ours - paper.\n",
    ]
    for name, df in tables.items():  # each table's note (Table 3's units) goes with it
        sections += [f"## {name}\n", write_table(df, args.out / "tables" / name, f"_{line}_")]
    figures = [args.results / f for f in FIGURES]
    for figure in [*figures, args.out / "fig5.png"]:
        if figure.is_file():
            sections.append(f"![{figure.stem}]({os.path.relpath(figure, args.out)})\n")
        else:
            sections.append(f"{figure.stem}: {_not_run(figure)}\n")
    sections += mechanisms(params, args.metrics, args.plots)
    sections += beyond_the_paper(args.results / SURROGATES, args.out)
    report = args.out / "REPORT.md"
    atomic_write_text(report, "\n".join(sections))
    print(f"report: {report.resolve()}")
    # One run per pipeline execution: the report, every table and every figure, laid out as in
    # results/ so REPORT.md's links resolve in the run's artifact view too.
    names = ("fig2", "fig3", "table1", "energy", "surrogates")
    studies = {name: args.results / name for name in names}
    outputs = [args.results / TABLE1_CSV, args.results / TABLE3_CSV, *figures,
               args.results / SURROGATES / "surrogates.md"]
    missing = [str(path) for path in outputs if not path.is_file()]
    if tables["fig5"].empty:
        missing.append(str(args.plots / "dvs_snn_t10" / "seed*.csv"))
    partial = "; ".join(missing) or "false"
    log_stage_run(
        experiment_name("report"), "report",
        run_tags(params, __file__, stage="tables", select=select, partial=partial),
        params={"train.select": select, "seeds": list(params.seeds), "report.scale": scale},
        artifacts={args.out.name: args.out, **studies},
        description="REPORT.md of each pipeline execution: the paper's tables and figures, "
        "the paper's numbers beside ours",
    )  # fmt: skip


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=Path, required=True, help="input: metrics/ of the runs")
    parser.add_argument("--plots", type=Path, required=True, help="input: plots/ of the runs")
    parser.add_argument(
        "--results", type=Path, required=True,
        help="input: table1/, fig2/, fig3/, energy/, surrogates/ dirs",
    )
    parser.add_argument("--manifests", type=Path, required=True, help="input: data manifests dir")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def main(argv: list[str] | None = None) -> None:
    stage_main(_run, __doc__.splitlines()[0], argv, _arguments)


if __name__ == "__main__":
    main()
