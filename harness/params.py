"""Reading params.yaml: overlays, dotted keys, hashes and provenance for every stage."""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .schema import SchemaError, check_params

__all__ = [
    "ParamsError",
    "deep_merge",
    "flatten",
    "get",
    "load_params",
    "params_hash",
    "provenance",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


class ParamsError(KeyError):
    """A missing or invalid key in params.yaml; the message names the key and the file."""

    def __str__(self) -> str:
        return str(self.args[0])


def deep_merge(base: dict, overlay: dict) -> dict:
    """``base`` updated recursively by ``overlay`` (lists and scalars are replaced)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict:
    """The mapping in the YAML file ``path``; malformed YAML or another type is a ParamsError."""
    if not path.is_file():
        raise ParamsError(f"{path}: no such params file (run from the repository root)")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ParamsError(f"{path}: not valid YAML{at}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: must be a mapping of keys, not {type(data).__name__}")
    return data


def load_params(path: str | Path = "params.yaml", overlay: str | Path | None = None) -> dict:
    """params.yaml (DVC's file, in the working directory), optionally overlaid by another.

    Checked against :data:`harness.schema.SCHEMA`: an unknown key (with a "did you mean"), a
    section that is not a mapping, an empty seed list or a negative sample limit is a
    :class:`ParamsError` naming the key and the file.
    """
    path = Path(path)
    params = _read_yaml(path)
    if overlay is not None:
        params = deep_merge(params, _read_yaml(Path(overlay)))
    try:
        check_params(params)
    except SchemaError as err:
        raise ParamsError(f"{path}: {err}") from None
    params["_file"] = str(path)
    return params


def get(params: dict, dotted: str, default: Any = ...) -> Any:
    """``params["a"]["b"]`` for ``"a.b"``; a missing key raises :class:`ParamsError`."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not ...:
                return default
            where = params.get("_file", "params.yaml")
            raise ParamsError(f"{where}: missing key '{dotted}'")
        node = node[part]
    return node


def flatten(tree: Any, prefix: str) -> dict[str, Any]:
    """``{"a.b": 1}`` for ``prefix="a"``, ``tree={"b": 1}``: a params subtree as tracker params."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}"))
    return out


def params_hash(obj: Any) -> str:
    """Short stable hash of a params subtree (keys sorted), for tags and checkpoint keys."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def provenance() -> dict[str, str]:
    """Git commit, dirty flag, package versions and device: the line under every table.

    Versions come from package metadata, never from importing the package (torch, dvc or
    mlflow would cost seconds in a stage that does not use them). The device is the GPU's name
    where this process already imported torch and has a GPU, else the CPU's.
    """
    versions = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "dvc", "mlflow", "tonic"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = platform.processor()
    return {
        "git_commit": os.environ.get("DSPIKE_GIT_COMMIT") or _git("rev-parse", "HEAD") or "unknown",
        "git_dirty": str(bool(_git("status", "--porcelain", "--untracked-files=no"))).lower(),
        "device": device or platform.machine(),
        **{f"version_{k}": v for k, v in versions.items()},
    }
