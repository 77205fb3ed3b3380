"""Fixtures of the fault catalogue: an MLflow store template and a workspace with good outputs."""

from __future__ import annotations

import shutil

import pytest
from faults_support import OUTPUTS, make_workspace, mlflow_template, stage, train_argv


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    return mlflow_template(tmp_path_factory.getbasetemp().parent)


@pytest.fixture(scope="module")
def done(tmp_path_factory, template):
    """A workspace where stage ``a`` (seed 0) has run: its outputs are the good ones to keep."""
    root = make_workspace(tmp_path_factory.mktemp("done"), template)
    run = stage(root, *train_argv("a"))
    assert run.returncode == 0, run.stderr
    assert all((root / f).is_dir() for f in OUTPUTS)
    return root


@pytest.fixture
def ws(done, tmp_path):
    """A fresh copy of ``done`` for one test."""
    return shutil.copytree(done, tmp_path / "ws", symlinks=True)
