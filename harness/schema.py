"""Which keys params.yaml may hold: a misspelled or unknown key is an error with a "did you mean".

:data:`SCHEMA` is the tree of known keys. A dict names the keys allowed under a section; ``None``
is a leaf (any value); ``"*"`` stands for names the user chooses (a stage, a model), each checked
against the sub-tree it maps to. Besides the keys, :func:`check_params` checks what a stage
would otherwise misuse silently: sections that are not mappings, an empty or non-integer seed
list, negative sample limits, stage names that are not plain names (they become file paths).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from .config_keys import STAGE_KEYS

__all__ = ["SCHEMA", "check_params", "check_stage_name"]

_DVS = (
    "time_steps", "size", "interpolation", "slicing", "split", "seed", "antialias", "values",
    "max_roll", "simulated_per_class", "prepare_workers",
)  # fmt: skip


def _leaves(*names: str) -> dict[str, None]:
    return dict.fromkeys(names)


SCHEMA: dict[str, Any] = {
    "seeds": None,
    "seeds_imagenet": None,
    "neuron": _leaves("tau", "v_threshold", "detach_reset", "backend"),
    "tdbn": _leaves("alpha", "alpha_residual", "form"),
    "dspike": _leaves("b0", "delta_b", "inherit_temperature"),
    "fdg": _leaves("epsilon", "batch_size"),
    "data": {
        **_leaves("source", "download", "root", "prepared", "workers"),
        "cifar": _leaves("autoaugment", "cutout"),
        "dvs": _leaves(*_DVS),
        "imagenet": _leaves("root", "image_size"),
    },
    "models": {"*": None},
    "launcher": _leaves("default", "imagenet"),
    "train": _leaves(*STAGE_KEYS, "max_train_samples", "max_test_samples", "checkpoint_dir"),
    "stages": {"*": _leaves(*STAGE_KEYS)},
    "ablation": _leaves("epsilons", "datasets", "seeds"),
    "studies": {
        "toy": _leaves("time_steps", "batch_size", "lr", "train_size"),
        "fig2": _leaves("epochs", "iterations", "epsilons"),
        "table1": _leaves("epochs", "epsilons"),
        "fig3": _leaves("temperatures"),
    },
    "tracking": _leaves("log_weights", "retry_s"),
    "report": _leaves("scale"),
    "energy": _leaves("e_mac_pj", "e_ac_pj", "dataset", "ann_stage", "snn_stage", "seed"),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class SchemaError(ValueError):
    """Raised as :class:`harness.params.ParamsError` by :func:`check_params`."""


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"


def _walk(node: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(node, dict):
        raise SchemaError(f"'{where}' must be a mapping of keys, not {type(node).__name__}")
    for key, value in node.items():
        dotted = f"{where}.{key}" if where else str(key)
        if "*" in schema:
            sub = schema["*"]
        elif key in schema:
            sub = schema[key]
        else:
            raise SchemaError(f"unknown key '{dotted}'{_did_you_mean(str(key), list(schema))}")
        if sub is not None:
            _walk(value, sub, dotted)


def check_stage_name(name: str, what: str = "stage") -> str:
    """``name`` if it is a plain name (it becomes part of file paths), else :class:`SchemaError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise SchemaError(
            f"{what} name {name!r} is not a plain name (letters, digits, '_', '-', '.'; no '..')"
        )
    return name


def _seeds(seeds: Any, key: str) -> None:
    if seeds is None:
        return
    if not isinstance(seeds, list) or not seeds:
        raise SchemaError(f"'{key}' must be a non-empty list of integer seeds, not {seeds!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SchemaError(f"'{key}': {seed!r} is not a non-negative integer seed")


def check_params(params: dict) -> None:
    """Raise :class:`SchemaError` naming the first unknown key or misused value in ``params``."""
    _walk({k: v for k, v in params.items() if k != "_file"}, SCHEMA, "")
    _seeds(params.get("seeds"), "seeds")
    _seeds(params.get("seeds_imagenet"), "seeds_imagenet")
    _seeds((params.get("ablation") or {}).get("seeds"), "ablation.seeds")
    for name in params.get("stages") or {}:
        check_stage_name(name)
    for key in ("max_train_samples", "max_test_samples"):
        value = (params.get("train") or {}).get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):  # fmt: skip
            raise SchemaError(f"'train.{key}': {value!r} is not a sample count (0 = all)")
