"""params.yaml, loaded once into frozen records whose fields mirror its sections.

:func:`load_params` reads the file (optionally overlaid by another, as the smoke run does) and
returns :class:`Params`: one record per section (``params.dspike.b0``, ``params.data.dvs.size``,
``params.stages["cifar10_snn_t6"].lr``), the ``neuron`` and ``tdbn`` sections as the library's
own :class:`dspike.spec.NeuronSpec` (``params.spec``). The records' fields are the keys the file
may hold, so the loader checks every key and type from them: an unknown key is an error with a
"did you mean", a value of the wrong type names its key, as does a missing one. params.yaml
holds every default of the pipeline: a record field has a default only where the key is
optional and the library decides (``data.imagenet.image_size``: the registry's input side).
Where params.yaml and the library both name a default (the LIF constants, the training
recipe, the pJ per operation), params.yaml is the source for every stage and the library's is
for code that builds models without it; tests/test_params.py checks that they agree.

Besides the loader: :func:`deep_merge` (overlays), :func:`params_hash` and :func:`provenance`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from dspike.checks import ConfigError
from dspike.spec import NeuronSpec

__all__ = [
    "AblationParams",
    "DataParams",
    "DspikeParams",
    "EnergyParams",
    "FdgParams",
    "Params",
    "ParamsChangedError",
    "ParamsError",
    "RunSettings",
    "StageParams",
    "StudiesParams",
    "TrainParams",
    "changed_keys",
    "check_stage_name",
    "check_unchanged",
    "deep_merge",
    "dvc_value",
    "flatten",
    "load_params",
    "params_hash",
    "parse_params",
    "provenance",
    "read_params",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


class ParamsError(KeyError):
    """A missing or invalid key in params.yaml; the message names the key and the file."""

    def __str__(self) -> str:
        return str(self.args[0])


# --- the records: one per section, fields = keys ----------------------------------------------


@dataclass(frozen=True)
class DspikeParams:
    """``dspike``: Dspike's temperature (Sec. 5.2) and Algorithm 1's step."""

    b0: float
    delta_b: float
    inherit_temperature: bool


@dataclass(frozen=True)
class FdgParams:
    """``fdg``: the finite-difference gradient of Algorithm 1 (Eq. 10)."""

    epsilon: float
    batch_size: int


@dataclass(frozen=True)
class CifarParams:
    """``data.cifar``: CIFAR augmentation (Sec. 5.2); the keywords of the CIFAR builders."""

    autoaugment: bool
    cutout: int


@dataclass(frozen=True)
class DvsParams:
    """``data.dvs``: CIFAR10-DVS frames (:class:`dspike.data.FrameOptions`'s fields), the
    random roll of training frames, and the bundled simulator's size and workers."""

    time_steps: int
    size: int
    interpolation: str
    values: str
    slicing: str
    split: str
    seed: int
    antialias: bool
    max_roll: int
    simulated_per_class: int
    prepare_workers: int


@dataclass(frozen=True)
class ImagenetParams:
    """``data.imagenet``: the ImageFolder root ("" skips ImageNet) and the crop side
    (absent: the registry's, 224)."""

    root: str
    image_size: int | None = None


@dataclass(frozen=True)
class DataParams:
    """``data``: where datasets come from and how they are read."""

    source: Literal["download", "bundled"]
    download: bool
    root: str
    prepared: str
    workers: int
    cifar: CifarParams
    dvs: DvsParams
    imagenet: ImagenetParams


@dataclass(frozen=True)
class LauncherParams:
    """``launcher``: what starts each training stage (``python -m`` or torchrun)."""

    default: str
    imagenet: str


@dataclass(frozen=True)
class StageParams:
    """``stages.<stage>``: what a training stage sets over the ``train`` defaults."""

    dataset: str | None = None
    model: str | None = None
    mode: str | None = None
    time_steps: int | None = None
    surrogate: str | None = None
    epochs: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    nesterov: bool | None = None
    schedule: str | None = None
    batch_size: int | None = None
    bf16: bool | None = None
    select: str | None = None
    max_train_samples: int | None = None
    max_test_samples: int | None = None


@dataclass(frozen=True)
class TrainParams(StageParams):
    """``train``: every training stage's defaults, and what only this section sets."""

    max_train_samples: int = field(default=0, metadata={"required": True})
    max_test_samples: int = field(default=0, metadata={"required": True})
    checkpoint_dir: str = field(default="", metadata={"required": True})

    def __post_init__(self) -> None:
        for key in ("max_train_samples", "max_test_samples"):
            if getattr(self, key) < 0:
                raise ParamsError(f"'train.{key}': {getattr(self, key)} is not a sample count "
                                  "(0 = all)")  # fmt: skip


@dataclass(frozen=True)
class RunSettings:
    """One training stage's settings: ``stages.<stage>`` over ``train``, every key resolved.
    :meth:`key` names where a value came from, for errors."""

    stage: str
    dataset: str
    model: str
    mode: str
    time_steps: int
    surrogate: str
    epochs: int
    lr: float
    momentum: float
    weight_decay: float
    nesterov: bool
    schedule: str
    batch_size: int
    bf16: bool
    select: str
    max_train_samples: int
    max_test_samples: int
    from_stage: frozenset[str]

    def key(self, name: str) -> str:
        """``stages.<stage>.<name>`` if the stage sets ``name``, else ``train.<name>``."""
        return f"stages.{self.stage}.{name}" if name in self.from_stage else f"train.{name}"


@dataclass(frozen=True)
class AblationParams:
    """``ablation``: Table 5's extra FDG eps, per dataset and seed."""

    epsilons: tuple[float, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class ToyParams:
    """``studies.toy``: how every toy-CNN study trains (Sec. 4.2)."""

    time_steps: int
    batch_size: int
    lr: float
    train_size: int


@dataclass(frozen=True)
class Fig2Params:
    epochs: int
    iterations: int
    epsilons: tuple[float, ...]


@dataclass(frozen=True)
class Table1Params:
    epochs: int
    epsilons: tuple[float, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Fig3Params:
    temperatures: tuple[float, ...]


@dataclass(frozen=True)
class SurrogateChoiceParams:
    """One entry of ``studies.surrogates.list``: a surrogate of a framework, its options."""

    framework: Literal["dspike", "spikingjelly", "snntorch"]
    name: str
    options: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SurrogatesParams:
    """``studies.surrogates``: Fig. 2's measure and Table 1's protocol for many surrogates."""

    epochs: int
    iterations: int
    epsilons: tuple[float, ...]
    seeds: tuple[int, ...]
    test_size: int
    finite_limit: float
    list: tuple[SurrogateChoiceParams, ...]


@dataclass(frozen=True)
class StudiesParams:
    """``studies``: the toy-CNN studies (Sec. 4), Fig. 3 and the surrogates study."""

    toy: ToyParams
    fig2: Fig2Params
    table1: Table1Params
    fig3: Fig3Params
    surrogates: SurrogatesParams


@dataclass(frozen=True)
class TrackingParams:
    """``tracking``: what goes to MLflow (no stage lists it: changing it reruns nothing)."""

    log_weights: bool
    retry_s: float


@dataclass(frozen=True)
class ReportParams:
    scale: str


@dataclass(frozen=True)
class EnergyParams:
    """``energy``: Table 3's pJ per operation (Sec. 5.4) and which runs it counts."""

    e_mac_pj: float
    e_ac_pj: float
    dataset: str
    ann_stage: str
    snn_stage: str
    seed: int


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml. ``spec`` is the ``neuron`` and ``tdbn`` sections; ``file``
    is where it was read (for messages), not a key.

    Loaded by :func:`load_params`, it remembers the file as read and which keys the stage
    read (each field read, at any depth: ``studies.fig3.temperatures``; ``spec`` is ``neuron``
    and ``tdbn``; :meth:`stage` reads ``stages.<name>`` and ``train``, :meth:`model_options`
    ``models.<name>``), so that :func:`check_unchanged` can tell whether they still hold."""

    seeds: tuple[int, ...]
    seeds_imagenet: tuple[int, ...]
    spec: NeuronSpec
    dspike: DspikeParams
    fdg: FdgParams
    data: DataParams
    models: dict[str, dict[str, Any]]
    launcher: LauncherParams
    train: TrainParams
    stages: dict[str, StageParams]
    ablation: AblationParams
    studies: StudiesParams
    tracking: TrackingParams
    report: ReportParams
    energy: EnergyParams
    file: str = "params.yaml"

    def stage(self, name: str) -> RunSettings:
        """``stages.<name>`` over the ``train`` defaults; a key neither sets is a ParamsError."""
        _note_read(self, f"stages.{name}", "train")
        p = _Unrecorded(self)  # the finer keys above, not the whole sections
        if name not in p.stages:
            raise ParamsError(f"{p.file}: no stage 'stages.{name}' "
                              f"(stages: {', '.join(p.stages)})")  # fmt: skip
        stage, values = p.stages[name], {}
        for f in dataclasses.fields(StageParams):
            value = getattr(stage, f.name)
            values[f.name] = getattr(p.train, f.name) if value is None else value
            if values[f.name] is None:
                raise ParamsError(f"{p.file}: missing key 'stages.{name}.{f.name}' "
                                  f"(nor 'train.{f.name}')")  # fmt: skip
        given = frozenset(f.name for f in dataclasses.fields(StageParams)
                          if getattr(stage, f.name) is not None)  # fmt: skip
        return RunSettings(stage=name, from_stage=given, **values)

    def sample_caps(self, stage: str | None = None) -> tuple[int, int]:
        """(``max_train_samples``, ``max_test_samples``) of ``stages.<stage>`` over ``train``
        (``train``'s without a stage); 0 = the whole split."""
        limits = self.stage(stage) if stage else self.train
        return limits.max_train_samples, limits.max_test_samples

    def model_options(self, name: str) -> dict[str, Any]:
        """``models.<name>``: the network constructor's keyword options (none if absent)."""
        _note_read(self, f"models.{name}")
        return dict(object.__getattribute__(self, "models").get(name) or {})


# what a stage may read without its result depending on it (no stage lists it in dvc.yaml)
_NOT_RESULTS = ("tracking",)
_SPEC_KEYS = ("neuron", "tdbn")  # Params.spec is these sections


def _recorded_getattribute(self: Any, name: str) -> Any:
    """A record's attribute, noting the params key of a field read (a nested record notes
    nothing itself: the fields read from it do)."""
    value = object.__getattribute__(self, name)
    state = object.__getattribute__(self, "__dict__")
    read = state.get("_read")
    if read is not None and name in state and not name.startswith("_"):
        if not dataclasses.is_dataclass(value) or isinstance(value, NeuronSpec):
            prefix = state["_prefix"]
            read.update(_SPEC_KEYS if (prefix, name) == ("", "spec") else
                        (f"{prefix}.{name}" if prefix else name,))  # fmt: skip
    return value


def _record_reads(record: Any, prefix: str, read: set[str]) -> None:
    """Make ``record`` (and the records in it) note in ``read`` the keys read from it."""
    object.__setattr__(record, "_read", read)
    object.__setattr__(record, "_prefix", prefix)
    for f in dataclasses.fields(record):
        value = object.__getattribute__(record, f.name)
        if type(value) in _RECORDS:
            _record_reads(value, f"{prefix}.{f.name}" if prefix else f.name, read)


def _note_read(params: Params, *keys: str) -> None:
    read = object.__getattribute__(params, "__dict__").get("_read")
    if read is not None:
        read.update(keys)


class _Unrecorded:
    """A :class:`Params` whose reads are not recorded (a method records its own, finer keys)."""

    def __init__(self, params: Params) -> None:
        self._params = params

    def __getattr__(self, name: str) -> Any:
        return object.__getattribute__(self._params, name)


_RECORDS = tuple(
    cls for cls in list(globals().values())
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == __name__
    and cls is not RunSettings
)  # fmt: skip
for _cls in _RECORDS:
    _cls.__getattribute__ = _recorded_getattribute


# --- the loader: keys and types from the fields -----------------------------------------------

_SPEC_SECTIONS = ("neuron", "tdbn")  # the params.yaml sections Params.spec loads together
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_stage_name(name: object, what: str = "stage") -> str:
    """``name`` if it is a plain name (it becomes part of file paths), else :class:`ParamsError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ParamsError(
            f"{what} name {name!r} is not a plain name (letters, digits, '_', '-', '.'; no '..')"
        )
    return name


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"


def _type_name(tp: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _value(tp: Any, value: Any, key: str) -> Any:
    """``value`` as type ``tp`` (a record, scalar, tuple, dict, Literal or optional)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _record(tp, value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _value(inner, value, key)
    if origin is Literal:
        if value not in args:
            raise ParamsError(f"'{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"'{key}' must be a list, got {value!r}")
        return tuple(_value(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ParamsError(f"'{key}' must be a mapping of keys, not {type(value).__name__}")
        return {k: _value(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[tp]
    if not ok:
        raise ParamsError(f"'{key}' must be {_type_name(tp)}, got {value!r}")
    return float(value) if tp is float else value


def _record(cls: type, value: Any, where: str, **given: Any) -> Any:
    """The record ``cls`` of the section at ``where``, every key and type checked; ``given``
    are fields already made (not keys of the section)."""
    if not isinstance(value, Mapping):
        raise ParamsError(f"'{where}' must be a mapping of keys, not {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in given}
    for key in value:
        if key not in fields:
            dotted = f"{where}.{key}" if where else str(key)
            raise ParamsError(f"unknown key '{dotted}'{_did_you_mean(str(key), list(fields))}")
    kwargs = dict(given)
    for name, f in fields.items():
        dotted = f"{where}.{name}" if where else name
        if name in value:
            kwargs[name] = _value(hints[name], value[name], dotted)
        elif f.metadata.get("required") or (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ):
            raise ParamsError(f"missing key '{dotted}'")
    return cls(**kwargs)


def _seeds(seeds: tuple[int, ...], key: str) -> None:
    if not seeds or any(seed < 0 for seed in seeds):
        raise ParamsError(f"'{key}' must be a non-empty list of non-negative integer seeds, "
                          f"not {list(seeds)!r}")  # fmt: skip
    if len(set(seeds)) != len(seeds):
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        raise ParamsError(f"'{key}' names seed {twice[0]} more than once: {list(seeds)!r} "
                          "(a repeated seed would count one run twice)")  # fmt: skip


def parse_params(tree: Mapping[str, Any], file: str = "params.yaml") -> Params:
    """The :class:`Params` of the mapping ``tree`` (params.yaml as read); a bad key or value
    is a :class:`ParamsError` naming it and ``file``."""
    try:
        known = [f.name for f in dataclasses.fields(Params) if f.name not in ("spec", "file")]
        unknown = [k for k in tree if k not in known and k not in _SPEC_SECTIONS]
        if unknown:
            key = str(unknown[0])
            raise ParamsError(f"unknown key '{key}'{_did_you_mean(key, [*known, *_SPEC_SECTIONS])}")
        for section in _SPEC_SECTIONS:
            if section not in tree:
                raise ParamsError(f"missing key '{section}'")
            if not isinstance(tree[section], Mapping):
                raise ParamsError(f"'{section}' must be a mapping of keys, not "
                                  f"{type(tree[section]).__name__}")  # fmt: skip
        try:
            spec = NeuronSpec.from_sections(tree["neuron"], tree["tdbn"])
        except ConfigError as err:
            raise ParamsError(f"'{err.key}': {err.message}") from None
        rest = {k: v for k, v in tree.items() if k not in _SPEC_SECTIONS}
        params = _record(Params, rest, "", spec=spec, file=file)
        for name in params.stages:
            check_stage_name(name)
        _seeds(params.seeds, "seeds")
        _seeds(params.seeds_imagenet, "seeds_imagenet")
        _seeds(params.ablation.seeds, "ablation.seeds")
        _seeds(params.studies.surrogates.seeds, "studies.surrogates.seeds")
        return params
    except ParamsError as err:
        raise ParamsError(f"{file}: {err}") from None


def read_params(path: str | Path = "params.yaml", overlay: str | Path | None = None) -> dict:
    """params.yaml as read (a mapping, numbers as DVC reads them), optionally overlaid by
    another: what a tool that writes a params file of its own starts from."""
    tree = _read_yaml(Path(path))
    return tree if overlay is None else deep_merge(tree, _read_yaml(Path(overlay)))


def load_params(path: str | Path = "params.yaml", overlay: str | Path | None = None) -> Params:
    """params.yaml (DVC's file, in the working directory), optionally overlaid by another.

    The record remembers the files and what they held, and records the keys read from it, for
    :func:`check_unchanged`."""
    tree = read_params(path, overlay)
    params = parse_params(tree, str(path))
    _record_reads(params, "", set())
    object.__setattr__(params, "_source", (copy.deepcopy(tree), path, overlay))
    return params


class ParamsChangedError(ParamsError):
    """Keys a stage read from params.yaml changed while it ran (:func:`check_unchanged`)."""


def _changed_leaves(old: Any, new: Any, key: str) -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for k in [*old, *(k for k in new if k not in old)]:
            out += _changed_leaves(old.get(k), new.get(k), f"{key}.{k}")
        return out
    return [] if old == new else [f"{key} ({old!r} -> {new!r})" if old is not None and new
                                  is not None else key]  # fmt: skip


def changed_keys(params: Params) -> list[str]:
    """The keys ``params`` was read for (by :func:`load_params`'s record) whose value in the
    files now differs from what the stage read at its start, each with its old and new value;
    none for a record not made by :func:`load_params`. A file that cannot be read now counts
    as every key read having changed."""
    state = object.__getattribute__(params, "__dict__")
    if "_source" not in state:
        return []
    tree, path, overlay = state["_source"]
    read = {k for k in state["_read"] if k.split(".")[0] not in _NOT_RESULTS}
    read = sorted(k for k in read if not any(k.startswith(f"{a}.") for a in read))  # outermost
    try:
        now = read_params(path, overlay)
    except ParamsError as err:
        return [f"{', '.join(read)} ({err})"] if read else []
    changed = []
    for key in read:
        changed += _changed_leaves(dvc_value(tree, key), dvc_value(now, key), key)
    return changed


def check_unchanged(params: Params, keep: str = "") -> None:
    """Raise :class:`ParamsChangedError` naming the keys the stage read whose values in
    params.yaml (and its overlay) changed while it ran: DVC records the params it finds after
    the command ends, so a stage must not end successfully with values it did not use.
    ``keep`` says what of the run is kept."""
    changed = changed_keys(params)
    if changed:
        files = params.file + (f" (overlay {params._source[2]})" if params._source[2] else "")
        raise ParamsChangedError(
            f"{files} changed while the stage ran: {'; '.join(changed)}; it ran with the values "
            f"read at its start, so it does not end as if it used the new ones{keep}; put the "
            "values back and run the same command, or run it again to use the new values"
        )


def deep_merge(base: dict, overlay: dict) -> dict:
    """``base`` updated recursively by ``overlay`` (lists and scalars are replaced)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Yaml12Numbers(yaml.SafeLoader):
    """PyYAML's safe loader reading numbers as YAML 1.2 does (and so DVC, which records
    params.yaml's values in dvc.lock): ``1e-4`` is a float, not the string YAML 1.1 makes it."""


_Yaml12Numbers.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _read_yaml(path: Path) -> dict:
    """The mapping in the YAML file ``path``; malformed YAML or another type is a ParamsError."""
    if not path.is_file():
        raise ParamsError(f"{path}: no such params file (run from the repository root)")
    try:
        data = yaml.load(path.read_text(), Loader=_Yaml12Numbers)
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



def dvc_value(tree: Mapping[str, Any], key: str) -> Any:
    """The value DVC records in ``dvc.lock`` for the params key ``key`` (dotted, as dvc.yaml's
    ``params:`` names it) of params.yaml as read (``tree``); None where there is none."""
    node: Any = tree
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def flatten(tree: Any, prefix: str) -> dict[str, Any]:
    """``{"a.b": 1}`` for ``prefix="a"``, ``tree={"b": 1}`` (a mapping or a record): a params
    section as tracker params; tuples as lists, as params.yaml writes them."""
    if dataclasses.is_dataclass(tree):
        tree = dataclasses.asdict(tree)
    if isinstance(tree, tuple):
        return {prefix: list(tree)}
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}"))
    return out


def params_hash(obj: Any) -> str:
    """Short stable hash of a params section (a mapping or a record; keys sorted), for tags and
    checkpoint keys."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
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
