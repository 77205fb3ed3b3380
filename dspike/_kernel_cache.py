"""Ahead-of-time compiled kernel packages, built once per machine and kept on disk.

A kernel is a pure function of tensors (:mod:`dspike._lif_fused` writes the LIF's). It is
compiled ahead of time (``torch.export`` + AOTInductor) into a ``.pt2`` package kept in
inductor's cache directory (``$TORCHINDUCTOR_CACHE_DIR``, else ``<tmp>/torchinductor_<user>``),
under ``dspike_lif/``. A build takes 10-30 s; a process that finds its package there loads it
in milliseconds, without importing torch._dynamo or torch._inductor, so a pipeline stage pays
no compile. Concurrent processes that need the same package build it once: the others wait on
its lock file. Dim 1 of every ``[T, N]`` input is dynamic, so one package serves every N; the
CPU kernels take the thread count at run time (``cpp.dynamic_threads``);
``emulate_precision_casts`` rounds every bf16/fp16 intermediate as eager does.

:func:`package_key` names a package by what changes its generated code: the torch and Python
versions, the kernels' code (:func:`code_digest`), the pass, T, the dtype, the device (on CPU
its model and flags, which ``-march=native`` builds for) and a formula the kernel calls
(:func:`formula_key`). :func:`run` runs a package, loading or first building it.

A package on disk that is damaged (not a whole archive) is built again. A package that
cannot be built (no C++ compiler, say) or keyed (a formula without source) raises
:class:`KernelBuildError`, naming it and the cause; a failed package is not tried again in the
process.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import inspect
import logging
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

__all__ = [
    "DEVICE_TYPES",
    "KernelBuildError",
    "cache_dir",
    "code_digest",
    "formula_key",
    "package_key",
    "package_path",
    "run",
]

# Devices the kernels are built for; elsewhere (``meta`` tensors, which only carry shapes, as
# in op counting) the eager kernels run.
DEVICE_TYPES = ("cpu", "cuda")

log = logging.getLogger(__name__)


class KernelBuildError(RuntimeError):
    """A kernel package could not be built (or loaded) on this machine."""


class _Pass(torch.nn.Module):
    """One pass as a module for ``torch.export``; ``extra`` are its non-tensor arguments."""

    def __init__(self, fn: Callable, *extra: object) -> None:
        super().__init__()
        self.fn, self.extra = fn, extra

    def forward(self, *tensors: torch.Tensor):
        return self.fn(*tensors, *self.extra)


# Loaded packages by (package, device): a runner is bound to the GPU it was loaded for, so
# a process that drives several GPUs loads a package once per GPU.
_RUNNERS: dict[tuple[str, torch.device], Any] = {}
# Packages this process built (not loaded); for the tests, which count it to show that a
# process finding the packages on disk builds nothing.
builds = 0


def cache_dir() -> Path:
    """Where the packages live: inductor's cache directory, ``dspike_lif/`` (the rule of
    ``torch._inductor.runtime.cache_dir_utils.default_cache_dir``, without importing it). The
    default is per user under the temporary directory, so "once per machine" is once per user
    and, where /tmp is cleared at boot, once per boot."""
    root = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if root is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError, ImportError):
            user = f"uid_{os.getuid()}"
        user = re.sub(r'[\\/:*?"<>|]', "_", user)
        root = os.path.join(tempfile.gettempdir(), "torchinductor_" + user)
    return Path(os.path.abspath(root), "dspike_lif")


@functools.cache
def _module_source(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@functools.cache
def formula_key(fn: Callable) -> str:
    """What identifies a surrogate formula's code: its source, the values it closes over, its
    defaults and the source file it lives in (so a helper it calls is covered too). Raises
    KernelBuildError where that cannot be read (a ``functools.partial``, a callable object, a
    function typed into a REPL): such a formula runs the eager kernels."""
    try:
        cells = tuple(cell.cell_contents for cell in fn.__closure__ or ())
        return (f"{fn.__module__}.{fn.__qualname__}:{inspect.getsource(fn)}:{cells!r}:"
                f"{fn.__defaults__!r}:{fn.__kwdefaults__!r}:"
                f"{_module_source(inspect.getfile(fn))}")
    except (AttributeError, OSError, TypeError, ValueError) as error:
        raise KernelBuildError(
            f"the surrogate formula {fn!r} has no source to key a fused kernel by "
            f"({type(error).__name__}: {error})"
        ) from error


@functools.cache
def _cpu_target() -> str:
    """What ``-march=native`` builds for: the CPU's model and flags (Linux), else its ISA."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        return hashlib.sha256("".join(sorted(set(lines))).encode()).hexdigest()[:16]
    except OSError:
        return str(torch.backends.cpu.get_cpu_capability())


@functools.lru_cache(maxsize=256)
def package_key(
    name: str, steps: int, dtype: torch.dtype, device: torch.device, code: str, formula: str = ""
) -> str:
    """The package's file name: pass ``name``, ``steps`` (T), dtype, device, the kernels'
    ``code`` (:func:`code_digest`) and the ``formula`` they call (:func:`formula_key`); cached,
    as every LIF call asks for it."""
    if device.type == "cpu":
        target = _cpu_target()
    else:
        target = str(torch.cuda.get_device_capability(device)) if device.type == "cuda" else ""
    parts = (torch.__version__, sys.version_info[:2], code, name, steps, str(dtype),
             device.type, target, formula)
    return f"{name}-T{steps}-" + hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


_INDUCTOR_OPTIONS = {"emulate_precision_casts": True, "cpp.dynamic_threads": True}


def _build(path: Path, module: torch.nn.Module, examples: tuple[torch.Tensor, ...]) -> None:
    """Export ``module`` with dim 1 of every ``[T, N]`` input dynamic and AOT-compile it."""
    global builds
    from torch._inductor import aoti_compile_and_package

    log.warning("dspike: building the fused LIF kernel %s (once per machine, 10-30 s)", path)
    n = torch.export.Dim("n", min=1)
    shapes = tuple({1: n} if x.dim() == 2 else None for x in examples)
    program = torch.export.export(module, examples, dynamic_shapes=(shapes,))
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.pt2")
    try:
        aoti_compile_and_package(
            program, package_path=str(partial), inductor_configs=_INDUCTOR_OPTIONS
        )
        os.replace(partial, path)  # atomic: a concurrent reader never sees half a package
    finally:
        partial.unlink(missing_ok=True)
    builds += 1


# A build waits this long for another process's build of the same package, then gives up.
LOCK_TIMEOUT_S = 900


def _open(path: Path, device: torch.device) -> Any:
    """A runner of the package at ``path`` on ``device``."""
    index = -1 if device.type == "cpu" else (device.index or 0)
    # What torch._inductor.aoti_load_package calls, without importing torch._inductor
    # (2.4 s: it imports torch._dynamo). A private API, kept stable by the torch pin:
    # (package path, model name, run single-threaded, number of runners, device index).
    return torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, index)


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file is at ``path`` (inode, modification time), or None where there is none."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _damaged(path: Path) -> bool:
    """Whether the file at ``path`` is not a whole package (a ``.pt2`` is a zip archive)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is not None
    except (zipfile.BadZipFile, OSError):
        return True


def _examples(inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The inputs a package is exported with: any N works for the dynamic dim of ``[T, N]``;
    977 keeps it distinct from T in tracing."""
    return tuple(
        torch.zeros(x.shape[0], 977, dtype=x.dtype, device=x.device) if x.dim() == 2 else x
        for x in inputs
    )


def package_path(key: str) -> Path:
    """Where the package ``key`` lives on this machine."""
    return cache_dir() / f"{key}.pt2"


def _load(key: str, inputs: list[torch.Tensor], fn: Callable, *extra: object) -> Any:
    """The package ``key``'s runner, built first (from ``fn``, see :class:`_Pass`) if this
    machine has none yet. One that is there but damaged (not a whole archive) is built again,
    unless another process has replaced it meanwhile; one that is whole but does not load
    here raises, as a rebuild would not help."""
    path = package_path(key)
    device = inputs[0].device
    try:
        damaged = None
        identity = _identity(path)
        if identity is not None:
            try:
                return _open(path, device)
            except Exception as error:
                if not _damaged(path):
                    raise
                damaged = identity
                log.warning("dspike: the fused LIF kernel %s is damaged (%s: %s); building it "
                            "again, unless another process has", path, type(error).__name__,
                            error)  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_suffix(".lock")), timeout=LOCK_TIMEOUT_S):
            found = _identity(path)  # another process may have built it while this one waited
            if found is None or found == damaged:
                _build(path, _Pass(fn, *extra), _examples(inputs))
        return _open(path, device)
    except Exception as error:
        raise KernelBuildError(
            f"could not build or load the fused LIF kernel {path}: "
            f"{type(error).__name__}: {error}"
        ) from error


_FAILED: dict[str, KernelBuildError] = {}


def run(
    key: str, inputs: list[torch.Tensor], fn: Callable, *extra: object
) -> list[torch.Tensor]:
    """Run the package ``key`` on ``inputs``, loading it (or first building it) on first use.
    A package that failed raises its error again at once, without another build."""
    device = inputs[0].device
    runner = _RUNNERS.get((key, device))
    if runner is None:
        if key in _FAILED:
            raise _FAILED[key]
        try:
            runner = _RUNNERS[key, device] = _load(key, inputs, fn, *extra)
        except KernelBuildError as error:
            _FAILED[key] = error
            raise
    return runner.run(inputs)


def code_digest(*kernels: Callable) -> str:
    """What a package's generated code depends on, besides its key's other parts: the source of
    ``kernels`` (not their module's docs) and of the export and build steps here, and the
    inductor options. A change to any of them builds new packages."""
    sources = (*kernels, _Pass, _build, _examples)
    return hashlib.sha256(
        "".join(inspect.getsource(f) for f in sources).encode() + repr(_INDUCTOR_OPTIONS).encode()
    ).hexdigest()
