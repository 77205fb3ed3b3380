"""docs/extending.md stays true: the rules its worked examples rely on hold for every dataset
and every table the project has."""

from __future__ import annotations

import inspect

import yaml

from dspike.data import DATASETS, builders
from harness.params import REPO_ROOT, load_params
from pipelines import tables

DVC = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = load_params(REPO_ROOT / "params.yaml")
DOC = (REPO_ROOT / "docs" / "extending.md").read_text()


def test_every_dataset_is_its_record_its_builder_and_its_dvc_yaml_lines():
    prepared = set(DVC["prepare"]["foreach"])
    used = {PARAMS.stage(s).dataset for s in PARAMS.stages} | {"mnist"}  # mnist: the studies
    for name, info in DATASETS.items():
        assert callable(getattr(builders, info.builder, None)), name
        if info.time_axis:  # event data: frames made by their own stage
            assert f"data/manifests/{name}.json" in DVC["prepare_dvs"]["outs"]
        else:
            assert name in prepared, name
        assert name in used, name
    for path in ("dspike/data/registry.py", "dspike/data/builders.py", "params.yaml", "dvc.yaml"):
        assert f"`{path}`" in DOC


def test_every_table_is_a_function_and_its_paper_numbers_under_one_key():
    reported = yaml.safe_load((REPO_ROOT / "paper" / "reported.yaml").read_text())
    functions = {
        name for name, fn in inspect.getmembers(tables, inspect.isfunction)
        if name.startswith(("table", "fig")) and fn.__module__ == tables.__name__
    }  # fmt: skip
    assert functions == set(reported), (functions, set(reported))
    source = inspect.getsource(tables._run)
    for name in functions:
        assert f"{name}(" in source, name  # _run puts it in the report
