"""Every DVC stage's deps cover exactly the project code it imports (tests/dvc_deps.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from dvc_deps import check, covers, declared_code_deps, imported_files, stage_modules

from harness.params import REPO_ROOT


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


def test_a_folder_covers_its_files_and_each_kind_of_wrong_dep_is_reported(tmp_path):
    _package(
        tmp_path,
        {
            "pipelines/__init__.py": "VERSION = 1\n",  # code: a dep must cover it
            "pipelines/stage.py": "import dspike.core\nimport dspike.plugins.extra\n",
            "dspike/__init__.py": '"""A docstring only: no dep need cover it."""\n',
            "dspike/core.py": "X = 1\n",
            "dspike/plugins/__init__.py": "Y = 1\n",
            "dspike/plugins/extra.py": "Z = 1\n",
            "harness/__init__.py": "",
            ".dvcignore": "__pycache__/\n/dspike/plugins/\n",
            "dvc.yaml": """
                stages:
                  one:
                    foreach: [a, b]
                    do:
                      cmd: python -m pipelines.stage ${item}
                      deps: [dspike, pipelines/stage.py, harness, paper/gone.py, data/in.json]
                      outs:
                        - out/${item}.json
            """,
        },
    )
    assert check(tmp_path) == {
        "one": {
            "not covered": ["pipelines/__init__.py"],
            "covers nothing imported": ["harness", "paper/gone.py"],
            "dvcignored": ["dspike/plugins/__init__.py", "dspike/plugins/extra.py"],
            "missing": ["paper/gone.py"],
        }
    }
    body = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["one"]["do"]
    assert declared_code_deps(body) == {"dspike", "pipelines/stage.py", "harness", "paper/gone.py"}
    assert covers("dspike", "dspike/core.py") and not covers("dspike", "dspike_extra/core.py")


def test_stage_modules_reads_the_module_each_cmd_runs():
    dvc_yaml = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    modules = stage_modules(dvc_yaml)
    assert modules["fig3"] == "pipelines.fig3"
    assert modules["snn_t6"] == "pipelines.train"  # behind ${launcher.default}
    assert modules["ablation"] == "pipelines.train"


@pytest.mark.integration
def test_every_stage_of_dvc_yaml_covers_exactly_the_code_it_imports():
    assert check(REPO_ROOT) == {}
