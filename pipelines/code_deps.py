"""The project files each DVC stage imports, checked against (or written into) ``dvc.yaml``.

    python -m pipelines.code_deps            # exit 1, naming each file missing or extra
    python -m pipelines.code_deps --write    # rewrite every stage's code deps in dvc.yaml

A stage's code is the module its ``cmd`` runs (``pipelines.<stage>``). It is imported in a fresh
interpreter; then every import statement inside a function of a loaded project file (a lazy
import, which runs only on some path) is imported too, and a name it takes from a package is
looked up (a package's lazy ``__getattr__`` loads the module behind it), until nothing new
loads. Imports under
``if TYPE_CHECKING:`` never run and are not followed. The project files loaded are the stage's
code dependencies, exactly: a stage that depends on a whole package reruns when any unrelated
module, or a bytecode cache, changes; one that misses a file does not rerun when it should.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "check", "declared_code_deps", "imported_files", "stage_modules"]

PACKAGES = ("dspike", "pipelines")
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


def _stage_bodies(dvc_yaml: dict) -> Iterator[tuple[str, dict]]:
    """(stage name, the dict holding its cmd and deps) for plain, foreach and matrix stages."""
    for name, stage in dvc_yaml.get("stages", {}).items():
        yield name, stage.get("do", stage)


def stage_modules(dvc_yaml: dict) -> dict[str, str]:
    """Stage name -> the ``pipelines.<module>`` its ``cmd`` runs."""
    out = {}
    for name, body in _stage_bodies(dvc_yaml):
        found = _MODULE.findall(str(body.get("cmd", "")))
        if len(found) != 1:
            raise ValueError(f"dvc.yaml: stage {name!r} must run one pipelines module: {found}")
        out[name] = found[0]
    return out


def _is_code(dep: str) -> bool:
    top = dep.split("/")[0]
    return top in PACKAGES and (dep.endswith(".py") or "." not in dep.rsplit("/", 1)[-1])


def declared_code_deps(body: dict) -> set[str]:
    """The deps of a stage inside the code packages: .py files (or, wrongly, whole folders)."""
    return {str(d) for d in body.get("deps", []) if _is_code(str(d))}


def _imports_by_module(modules: dict[str, str], root: Path) -> dict[str, set[str]]:
    """:func:`imported_files` of every module, one fresh interpreter each, in parallel."""
    names = sorted(set(modules.values()))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip(names, pool.map(lambda m: imported_files(m, root), names), strict=True))


def check(root: Path) -> dict[str, dict[str, list[str]]]:
    """``{stage: {"missing": [...], "extra": [...]}}`` for every stage whose code deps are wrong."""
    import yaml

    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text())
    modules = stage_modules(dvc_yaml)
    cache = _imports_by_module(modules, root)
    problems = {}
    for name, body in _stage_bodies(dvc_yaml):
        want, have = cache[modules[name]], declared_code_deps(body)
        if want != have:
            problems[name] = {"missing": sorted(want - have), "extra": sorted(have - want)}
    return problems


def write(root: Path) -> None:
    """Rewrite every stage's code deps in dvc.yaml (comments and layout kept; ruamel.yaml)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = root / "dvc.yaml"
    doc: Any = yaml.load(path.read_text())
    modules = stage_modules(doc)
    cache = _imports_by_module(modules, root)
    for name, body in _stage_bodies(doc):
        others = [d for d in body.get("deps", []) if not _is_code(str(d))]
        deps = body["deps"]
        deps.clear()
        deps.extend([*sorted(cache[modules[name]]), *others])
    with path.open("w") as f:
        yaml.dump(doc, f)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root")
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.write:
        write(root)
        print(f"dvc.yaml: code deps written ({root})")
        return
    problems = check(root)
    for stage, diff in problems.items():
        for kind in ("missing", "extra"):
            for dep in diff[kind]:
                print(f"dvc.yaml: stage {stage}: {kind} code dep {dep}")
    if problems:
        print("fix with: python -m pipelines.code_deps --write", file=sys.stderr)
        raise SystemExit(1)
    print(f"dvc.yaml: code deps of every stage match its imports ({root})")


if __name__ == "__main__":
    main()
