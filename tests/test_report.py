"""The reporting path: one Markdown writer, and the tables stage's rows with their notes."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.params import REPO_ROOT, ParamsError, deep_merge, parse_params
from paper.markdown import markdown_table, write_table
from pipelines import tables

TREE = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
PARAMS = parse_params(TREE)


def test_markdown_table_formats_accuracies_and_carries_the_note(tmp_path: Path) -> None:
    df = pd.DataFrame({"run": ["a", "b"], "ours": [93.125, None], "ours_std": [0.5, None],
                       "paper": [94.25, 90.0], "diff": [-1.125, math.nan], "n": [2, 0],
                       "seconds": [1.23456, 2.0]})  # fmt: skip
    df.attrs["note"] = "A caveat that must reach the report."
    md = markdown_table(df)
    lines = md.splitlines()
    assert lines[0] == "| run | ours | paper | diff | n | seconds |"
    assert lines[2] == "| a | 93.12 ± 0.50 | 94.25 | -1.12 | 2 | 1.235 |"
    assert lines[3] == "| b |  | 90.00 |  | 0 | 2 |"
    assert lines[-1] == "A caveat that must reach the report."
    returned = write_table(df, tmp_path / "t", footer="_provenance_")
    assert returned == md  # what REPORT.md embeds: the table and its note
    assert (tmp_path / "t.md").read_text() == f"{md}\n_provenance_\n"
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.md"]  # no temporary left


def _inputs(tmp_path: Path) -> argparse.Namespace:
    folders = ("results", "metrics", "plots", "manifests")
    return argparse.Namespace(**{name: tmp_path / name for name in folders})


def test_table1_puts_the_papers_accuracy_beside_ours_with_its_note(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    (inputs.results / "table1").mkdir(parents=True)
    pd.DataFrame({"gradient": ["rectangular", "fdg", "fdg"], "eps": [math.nan, 0.1, 0.5],
                  "test_acc": [91.5, 89.0, 80.25], "final_train_loss": [0.3, 0.4, 0.6],
                  "epochs": [1, 1, 1], "seconds": [1.0, 2.0, 2.0]}).to_csv(
        inputs.results / "table1" / "table1.csv", index=False)  # fmt: skip
    reported = {"table1": {"rectangular": 94.9, "fdg": {0.1: 90.0, 0.5: None},
                           "note": "Per-eps accuracies are not in our copy."}}  # fmt: skip
    params = parse_params(deep_merge(TREE, {"studies": {"table1": {"epsilons": [0.1, 0.5]}}}))
    df = tables.table1(reported, params, inputs)
    assert list(df["paper"].iloc[:2]) == [94.9, 90.0] and pd.isna(df["paper"].iloc[2])
    assert list(df["diff"].iloc[:2]) == [91.5 - 94.9, 89.0 - 90.0]
    md = write_table(df, tmp_path / "table1")
    assert "94.9" in md and "90.0" in md
    assert md.rstrip().endswith("Per-eps accuracies are not in our copy.")


def test_table3_section_of_the_report_keeps_the_units_note(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    (inputs.results / "energy").mkdir(parents=True)
    pd.DataFrame([{"method": "SNN (ours, T=2)", "model": "resnet18", "time_steps": 2,
                   "acc": 93.1, "n_add": 71.2e6, "n_mult": 3.52e6, "stage": "t2"}]).to_csv(
        inputs.results / "energy" / "table3_ours.csv", index=False)  # fmt: skip
    reported = yaml.safe_load(tables.REPORTED.read_text())
    params = parse_params(deep_merge(TREE, {"energy": {"e_mac_pj": 4.6, "e_ac_pj": 0.9}}))
    md = write_table(tables.table3(reported, params, inputs), tmp_path / "table3")
    assert "| ours | SNN (ours, T=2) | resnet18 | 2 | 93.1 | 71.2M | 3.52M | 80.3 uJ |  |" in md
    assert "printed 1.03J" in md and "SI prefix" in md


def test_the_report_of_a_workspace_where_nothing_ran_names_what_is_missing(tmp_path, monkeypatch):
    """``python -m pipelines.tables`` by hand before (or while) the DAG runs: every table with
    its paper column, ours empty, each missing study output named; and its MLflow run (the
    plan measures this process as a report stage's start-up)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    out = tmp_path / "report"
    argv = ["--params", str(REPO_ROOT / "params.yaml"), "--out", str(out)]
    for name in ("metrics", "plots", "results", "manifests"):
        argv += [f"--{name}", str(tmp_path / name)]
    tables.main(argv)
    report = (out / "REPORT.md").read_text()
    missing = ["results/table1/table1.csv", "results/energy/table3_ours.csv",
               "plots/dvs_snn_t10/seed*.csv", "results/fig2/fig2.png"]  # fmt: skip
    for path in missing:
        assert f"Ours: not run yet ({tmp_path / path} is missing)." in report, path
    assert "![fig5](fig5.png)" in report and "![fig2]" not in report
    table1 = pd.read_csv(out / "tables" / "table1.csv")
    assert table1["paper"].iloc[0] == 94.9 and table1["ours"].isna().all()
    assert len(table1) == 1 + len(PARAMS.studies.table1.epsilons)  # as configured
    table4 = pd.read_csv(out / "tables" / "table4.csv")
    assert set(table4["note"].dropna()) == {"not run yet"}  # no metrics, so not "skipped"
    assert (out / "fig5.png").stat().st_size > 0
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    assert str(tmp_path / missing[0]) in run.data.tags["partial"].split("; ")


def test_the_report_counts_exactly_the_seeds_params_name(tmp_path: Path) -> None:
    """Seeds dropped from params.yaml leave their metrics behind; the report must not count
    them (it once globbed ``seed*.json``), and a seed named twice is an error."""
    inputs = _inputs(tmp_path)
    for seed, acc in ((0, 90.0), (1, 92.0), (7, 10.0)):  # seed 7: a run params no longer name
        path = inputs.metrics / "cifar10_snn_t6" / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'{{"final_acc": {acc}, "best_acc": {acc}}}')
    reported = yaml.safe_load(tables.REPORTED.read_text())
    for seeds, n, mean in (([0, 1], 2, 91.0), ([0], 1, 90.0), ([0, 1, 2], 2, 91.0)):
        params = parse_params(deep_merge(TREE, {"seeds": seeds}))
        t2 = tables.table2(reported, params, "final", inputs)["table2_cifar10"]
        row = t2[(t2["T"] == 6) & t2["ours"].notna()].iloc[0]
        assert (row["n"], row["ours"]) == (n, mean), seeds
    with pytest.raises(ParamsError, match="'seeds' names seed 0 more than once"):
        parse_params(deep_merge(TREE, {"seeds": [0, 0]}))
