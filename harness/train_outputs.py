"""A training run's outputs and checkpoint folder: what it writes, where, and atomically.

dvc.yaml names the three outputs (``--model``, ``--metrics``, ``--plots``), written as one set
(:func:`dspike.io.atomic_outputs`); every file named on the command line must lie inside the
workspace. While the run trains, its checkpoint lives in
``<train.checkpoint_dir>/<variant>/seed<S>-<key>/`` (:func:`checkpoint_folder`), keyed by the
run's hash and the digest of the code that loaded (:func:`code_digest`). A folder whose run's
outputs are in place without it (DVC restored them from its run cache after the run was
interrupted, say) is removed by the next training run that completes
(:func:`remove_orphaned_checkpoints`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from dspike.engine import PLOT_COLUMNS, CheckpointError, FitResult, RunLock, TrainConfig
from dspike.io import atomic_outputs, save_tensors

from .params import params_hash

__all__ = [
    "KEY_FILE",
    "OUTPUTS",
    "check_in_workspace",
    "checkpoint_folder",
    "code_digest",
    "output_paths",
    "remove_orphaned_checkpoints",
    "write_outputs",
    "write_skipped",
]

log = logging.getLogger("pipelines.train")
KEY_FILE = "key.json"  # in a checkpoint folder: the params hash and code digest it was made by
OUTPUTS = ("model", "metrics", "plots")  # the --flags dvc.yaml names


def output_paths(args: argparse.Namespace) -> dict[str, Path]:
    """``{"model": ..., "metrics": ..., "plots": ...}`` from the command line."""
    return {name: getattr(args, name) for name in OUTPUTS}


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, PLOT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


def _commit(
    paths: dict[str, Path], state: dict[str, torch.Tensor], metrics: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Write model, metrics and plots as one set (:func:`dspike.io.atomic_outputs`)."""
    with atomic_outputs(paths) as tmp:
        save_tensors({k: v.detach().cpu() for k, v in state.items()}, tmp["model"])
        tmp["metrics"].write_text(json.dumps(metrics, indent=2) + "\n")
        tmp["plots"].write_text(_csv_text(rows))


def _selected(result: FitResult, select: str, column: str) -> Any:
    """``column`` of the epoch ``select`` ships: the last, or the best test epoch."""
    epoch = result.best_epoch if select == "best" else len(result.history)
    return result.history[epoch - 1][column]


def write_skipped(paths: dict[str, Path], reason: str) -> None:
    """Outputs of a stage that cannot run here, so ``dvc repro`` goes on."""
    _commit(paths, {}, {"skipped": True, "reason": reason}, [])


def write_outputs(
    paths: dict[str, Path], result: FitResult, config: TrainConfig, meta: dict[str, Any]
) -> None:
    select = config.run.select
    metrics = {
        **meta,
        "acc": result.final_acc if select == "final" else result.best_acc,
        "select": select,
        "final_acc": result.final_acc,
        "best_acc": result.best_acc,
        "best_epoch": result.best_epoch,
        "epochs": config.run.epochs,
        "time_steps": config.model.time_steps,
        "b0": config.surrogate.temperature if config.model.mode == "snn" else None,
        "temperature": _selected(result, select, "temperature"),
        "seconds": round(result.seconds, 3),
        "mlflow_run_id": result.run_id,
    }
    _commit(paths, result.selected_state(select), metrics, result.history)


def check_in_workspace(args: argparse.Namespace) -> None:
    """Every file named on the command line lies inside the working directory (the DVC
    workspace): a ``../`` path must not read or write elsewhere."""
    cwd = Path.cwd()
    for flag in ("init", "init_metrics", "manifest", "model", "metrics", "plots"):
        path = getattr(args, flag)  # lexically: DVC may link outputs to a cache elsewhere
        if path is not None and not Path(os.path.abspath(path)).is_relative_to(cwd):
            raise ValueError(f"--{flag.replace('_', '-')} {path}: outside the workspace {cwd}")


def code_digest() -> str:
    """sha256 (12 hex digits) of the project's source files this process has loaded.

    With :func:`run_hash` it keys a run's checkpoint: a checkpoint written by other code is
    never resumed.
    """
    root = Path(__file__).resolve().parent.parent
    files = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and name.split(".")[0] in ("dspike", "pipelines"):
            files.add(Path(path).resolve())
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def checkpoint_folder(
    parent: Path, seed: int, digest: str, code: str, claim: bool = True, metrics: Path | None = None
) -> Path:
    """``<parent>/seed<S>-<key>``: the checkpoint folder of this code, config and data.

    With ``claim`` (rank 0 only, under torchrun) a folder of the same run and seed with another
    key (other code, config or data), never to be resumed, is removed with one line saying why,
    and the run starts afresh; one that another process holds
    (:class:`dspike.engine.RunLock`) raises ``CheckpointError``. ``metrics`` (the run's metrics
    output) is recorded in the folder's key file, for :func:`remove_orphaned_checkpoints`.
    """
    key = params_hash({"run": digest, "code": code})
    folder = parent / f"seed{seed}-{key}"
    if not claim:
        return folder
    for other in sorted(parent.glob(f"seed{seed}-*")):
        if other == folder or not other.is_dir():
            continue
        try:
            written = json.loads((other / KEY_FILE).read_text())
        except (OSError, ValueError):
            written = {}
        why = (
            "other code" if written.get("params_hash") == digest
            else "another config or data" if written.get("code") == code
            else "other code, config or data"
        )  # fmt: skip
        with RunLock(other):
            shutil.rmtree(other)
        log.warning("checkpoint %s was written by %s: not resumed, starting afresh", other, why)
    folder.mkdir(parents=True, exist_ok=True)
    key_record = {"params_hash": digest, "code": code}
    if metrics is not None:
        key_record["metrics"] = os.path.abspath(metrics)
    (folder / KEY_FILE).write_text(json.dumps(key_record) + "\n")
    return folder


def remove_orphaned_checkpoints(root: Path) -> list[Path]:
    """Remove the checkpoint folders under ``root`` (``train.checkpoint_dir``) whose run is
    complete without them: the metrics output their key file names exists and was written by
    the same run (params hash) and code. That happens when a run is interrupted and DVC then
    restores its outputs from its run cache instead of rerunning it. Folders in use (locked),
    of other runs or code, or without a recorded metrics path are kept. Returns those removed.
    """
    removed = []
    for key_file in sorted(Path(root).glob(f"*/seed*-*/{KEY_FILE}")):
        folder = key_file.parent
        try:
            key = json.loads(key_file.read_text())
            done = json.loads(Path(key["metrics"]).read_text())
        except (OSError, ValueError, KeyError, TypeError):
            continue
        made_by = (done.get("params_hash"), done.get("code_digest"))
        if made_by != (key.get("params_hash"), key.get("code")):
            continue
        try:
            with RunLock(folder):
                shutil.rmtree(folder)
        except CheckpointError:  # another process trains it
            continue
        log.info("checkpoint %s: its run's outputs (%s) are in place; removed", folder,
                 key["metrics"])  # fmt: skip
        removed.append(folder)
    return removed
