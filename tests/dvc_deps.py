"""Which project files each DVC stage imports, and whether its deps in ``dvc.yaml`` cover them.

A stage's code is the module its ``cmd`` runs (``pipelines.<stage>``). It is imported in a fresh
interpreter; then every import statement inside a function of a loaded project file (a lazy
import, which runs only on some path) is imported too, and a name it takes from a package is
looked up (a package's lazy ``__getattr__`` loads the module behind it), until nothing new
loads. Imports under ``if TYPE_CHECKING:`` never run and are not followed.

A stage's code deps are files or folders of the project's packages (DVC hashes a folder whole,
less what ``.dvcignore`` names). :func:`check` reports, per stage, an imported file no dep
covers (the stage would not rerun when it changes), a dep that covers no imported file (it
would rerun for nothing), a dep that does not exist, and an imported file ``.dvcignore`` hides.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

PACKAGES = ("dspike", "harness", "paper", "pipelines")
_MODULE = re.compile(r"\b(pipelines\.[a-z0-9_]+)\b")

# Runs in the fresh interpreter: argv[1] is the module, argv[2] the project root.
_PROBE = """
import ast, importlib, importlib.util, json, sys
from pathlib import Path
module, root, packages = sys.argv[1], Path(sys.argv[2]).resolve(), sys.argv[3].split(",")
importlib.import_module(module)

def project_files():
    out = {}
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if path and name.split(".")[0] in packages and Path(path).resolve().is_relative_to(root):
            out[name] = Path(path).resolve()
    return out

def lazy_imports(name, path):
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    yield from walk(sub, in_function)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if inner and isinstance(child, ast.Import):
                yield from (alias.name for alias in child.names)
            elif inner and isinstance(child, ast.ImportFrom):
                base = importlib.util.resolve_name("." * child.level + (child.module or ""),
                                                   package) if child.level else child.module
                yield base
                yield from (f"{base}.{alias.name}" for alias in child.names)
            yield from walk(child, inner)
    return set(walk(tree, False))

seen = set()
while True:
    files = project_files()
    todo = {n for n in files if n not in seen}
    if not todo:
        break
    for name in todo:
        seen.add(name)
        for target in lazy_imports(name, files[name]):
            if target.split(".")[0] not in packages:
                continue
            try:
                found = importlib.util.find_spec(target) is not None
            except ModuleNotFoundError:
                found = False
            if found:
                importlib.import_module(target)
            else:  # "from module import attribute": the attribute may load its module lazily
                parent, _, attribute = target.rpartition(".")
                getattr(importlib.import_module(parent), attribute, None)
print(json.dumps(sorted(str(p.relative_to(root)) for p in project_files().values())))
"""


def imported_files(module: str, root: Path) -> set[str]:
    """Project files (paths relative to ``root``) that running ``module`` can import."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, module, str(root), ",".join(PACKAGES)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"importing {module} failed:\n{proc.stderr[-3000:]}")
    return set(json.loads(proc.stdout))


def stage_bodies(dvc_yaml: dict) -> Iterator[tuple[str, dict]]:
    """(stage name, the dict holding its cmd and deps) for plain, foreach and matrix stages."""
    for name, stage in dvc_yaml.get("stages", {}).items():
        yield name, stage.get("do", stage)


def stage_modules(dvc_yaml: dict) -> dict[str, str]:
    """Stage name -> the ``pipelines.<module>`` its ``cmd`` runs."""
    out = {}
    for name, body in stage_bodies(dvc_yaml):
        found = _MODULE.findall(str(body.get("cmd", "")))
        if len(found) != 1:
            raise ValueError(f"dvc.yaml: stage {name!r} must run one pipelines module: {found}")
        out[name] = found[0]
    return out


def declared_code_deps(body: dict) -> set[str]:
    """The deps of a stage that are code: .py files or whole folders of the code packages (a
    data file there, such as ``paper/reported.yaml``, is an input)."""
    return {
        d
        for d in map(str, body.get("deps", []))
        if d.split("/")[0] in PACKAGES and (d.endswith(".py") or "." not in d.rsplit("/", 1)[-1])
    }


def covers(dep: str, path: str) -> bool:
    """Whether the dep ``dep`` (a file, or a folder DVC hashes whole) holds the file ``path``."""
    return path == dep or path.startswith(dep.rstrip("/") + "/")


def dvcignored(root: Path) -> list[str]:
    """The anchored folder patterns of ``.dvcignore`` (``/dspike/integrations/``), as paths."""
    lines = (root / ".dvcignore").read_text().splitlines()
    return [line.strip("/") for line in lines if line.startswith("/") and line.endswith("/")]


def has_code(path: Path) -> bool:
    """Whether the module ``path`` holds more than a docstring (and ``__future__`` imports): a
    package's ``__init__.py`` that does not can change no result, so no dep need cover it."""
    body = ast.parse(path.read_text()).body
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        for node in body
    )


def uncovered(files: set[str], deps: set[str], ignored: list[str]) -> dict[str, list[str]]:
    """What is wrong with ``deps`` for a stage that imports ``files`` (those with code, see
    :func:`has_code`); empty if nothing is."""
    hidden = [f for f in files if any(covers(i, f) for i in ignored)]
    return {
        k: sorted(v)
        for k, v in {
            "not covered": [f for f in files if not any(covers(d, f) for d in deps)],
            "covers nothing imported": [d for d in deps if not any(covers(d, f) for f in files)],
            "dvcignored": hidden,
        }.items()
        if v
    }


def check(root: Path) -> dict[str, dict[str, list[str]]]:
    """``{stage: problems}`` (see :func:`uncovered`, plus deps that do not exist) of dvc.yaml."""
    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text())
    modules = stage_modules(dvc_yaml)
    names = sorted(set(modules.values()))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        imports = dict(zip(names, pool.map(lambda m: imported_files(m, root), names), strict=True))
    ignored = dvcignored(root)
    problems = {}
    for name, body in stage_bodies(dvc_yaml):
        deps = declared_code_deps(body)
        files = {f for f in imports[modules[name]] if has_code(root / f)}
        found = uncovered(files, deps, ignored)
        missing = sorted(d for d in deps if not (root / d).exists())
        if missing:
            found["missing"] = missing
        if found:
            problems[name] = found
    return problems
