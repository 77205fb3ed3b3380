"""Every DVC stage depends on exactly the project files its module imports (pipelines.code_deps)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pipelines.code_deps import check, declared_code_deps, imported_files, stage_modules
from pipelines.params import REPO_ROOT


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_probe_follows_lazy_imports_and_skips_type_checking_ones(tmp_path):
    _package(
        tmp_path,
        {
            "pipelines/__init__.py": "",
            "pipelines/stage.py": """
                from typing import TYPE_CHECKING
                from dspike import core
                if TYPE_CHECKING:
                    from dspike import typing_only
                def run():
                    from dspike.lazy import helper
                    return helper
            """,
            "dspike/__init__.py": "",
            "dspike/core.py": "X = 1\n",
            "dspike/lazy.py": "from .deeper import Y\ndef helper():\n    return Y\n",
            "dspike/deeper.py": "Y = 2\n",
            "dspike/typing_only.py": "Z = 3\n",
            "dspike/unused.py": "W = 4\n",
        },
    )
    assert imported_files("pipelines.stage", tmp_path) == {
        "pipelines/__init__.py",
        "pipelines/stage.py",
        "dspike/__init__.py",
        "dspike/core.py",
        "dspike/lazy.py",
        "dspike/deeper.py",
    }


def test_a_whole_package_or_a_missing_file_is_reported(tmp_path):
    _package(
        tmp_path,
        {
            "pipelines/__init__.py": "",
            "pipelines/stage.py": "import dspike.core\n",
            "dspike/__init__.py": "",
            "dspike/core.py": "",
            "dvc.yaml": """
                stages:
                  one:
                    foreach: [a, b]
                    do:
                      cmd: python -m pipelines.stage ${item}
                      deps: [dspike, pipelines/stage.py, data/in.json]
                      outs:
                        - out/${item}.json
            """,
        },
    )
    assert check(tmp_path) == {
        "one": {
            "missing": ["dspike/__init__.py", "dspike/core.py", "pipelines/__init__.py"],
            "extra": ["dspike"],
        }
    }
    body = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["one"]["do"]
    assert declared_code_deps(body) == {"dspike", "pipelines/stage.py"}  # data/in.json is not code
    subprocess.run(
        [sys.executable, "-m", "pipelines.code_deps", "--root", str(tmp_path), "--write"],
        cwd=REPO_ROOT, check=True, capture_output=True,
    )  # fmt: skip
    assert check(tmp_path) == {}
    deps = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["one"]["do"]["deps"]
    assert deps[-1] == "data/in.json"  # inputs kept, after the code


def test_stage_modules_reads_the_module_each_cmd_runs():
    dvc_yaml = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    modules = stage_modules(dvc_yaml)
    assert modules["fig3"] == "pipelines.fig3"
    assert modules["cifar10_snn_t6"] == "pipelines.train"  # behind ${launcher.default}
    assert modules["ablation"] == "pipelines.train"


@pytest.mark.integration
def test_every_stage_of_dvc_yaml_lists_exactly_the_files_it_imports():
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.code_deps"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
