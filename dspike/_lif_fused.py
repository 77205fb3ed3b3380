"""Fused LIF kernels (Eq. 1-2) for the ``compiled`` backend of :mod:`dspike.neurons`.

Both passes are written one time step at a time on a ``[T, N]`` view; inductor unrolls the T
steps and fuses them into one loop over the N neurons (C++/OpenMP on CPU, Triton on GPU). The
forward reads ``c`` once and writes spikes and ``u_pre`` once; the backward reads ``dL/dy`` and
``u_pre`` once, evaluates the surrogate inline and writes ``dL/dc``, with no other buffer of
size T x N.

The kernels are compiled ahead of time (``torch.export`` + AOTInductor) into a ``.pt2`` package
once per machine and kept in inductor's cache directory (``$TORCHINDUCTOR_CACHE_DIR``, else
``<tmp>/torchinductor_<user>``), under ``dspike_lif/``. A build takes 10-30 s; a process that
finds its package there loads it in milliseconds, without importing torch._dynamo or
torch._inductor, so a pipeline stage pays no compile. Concurrent processes that need the same
package build it once: the others wait on its lock file. What changes the generated code is
one package each: the pass, T, the dtype, the device (on CPU its model and flags, which
``-march=native`` builds for), the surrogate's formula. Everything else is data:
``consts = [tau, V_th, detach_reset, *surrogate.grad_params()]`` is a float64 tensor on the
input's device, so a new Dspike temperature (Algorithm 1, every epoch) is not a rebuild; N is
dynamic, so every layer of a network shares one kernel; the CPU kernels take the thread count
at run time (``cpp.dynamic_threads``). ``emulate_precision_casts`` rounds every bf16/fp16
intermediate as eager does, so the two backends emit the same spikes in low precision too.

A package on disk that is damaged (not a whole archive) is built again. A package that
cannot be built (no C++ compiler, say) or keyed (a formula without source) raises
:class:`KernelBuildError`, naming it and the cause; a failed package is not tried again in the
process, and :mod:`dspike.neurons` warns once per reason and runs the eager kernels there.
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

from .surrogate import GradFunction

__all__ = [
    "DEVICE_TYPES", "KernelBuildError", "cache_dir", "lif_backward", "lif_forward", "package_path"
]

# Devices the kernels are built for; elsewhere (``meta`` tensors, which only carry shapes, as
# in op counting) the eager kernels run.
DEVICE_TYPES = ("cpu", "cuda")

log = logging.getLogger(__name__)


class KernelBuildError(RuntimeError):
    """A fused kernel package could not be built (or loaded) on this machine."""


def _forward_steps(c: torch.Tensor, consts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    tau, v_threshold = consts[0], consts[1]
    spikes, potentials = [], []
    u = None
    for t in range(c.shape[0]):
        u_pre = c[t] if u is None else c[t] + tau * u  # Eq. 1
        fired = u_pre > v_threshold  # Eq. 2
        u = torch.where(fired, 0.0, u_pre)
        spikes.append(fired.to(c.dtype))
        potentials.append(u_pre)
    return torch.stack(spikes), torch.stack(potentials)


def _backward_steps(
    grad_spikes: torch.Tensor,
    u_pre: torch.Tensor,
    consts: torch.Tensor,
    grad_function: GradFunction,
) -> torch.Tensor:
    tau, v_threshold, detach_reset = consts[0], consts[1], consts[2] != 0
    params = consts[3:].unbind()
    grads: list[torch.Tensor] = []
    for t in range(u_pre.shape[0] - 1, -1, -1):
        v = u_pre[t] - v_threshold
        sg = grad_function(v, *params)
        grad = grad_spikes[t] * sg
        if grads:
            # dL/dc(t) = dL/dy(t) sg(t) + tau du(t)/du_pre(t) dL/dc(t+1), as in the eager backward.
            not_fired = (v <= 0).to(v.dtype)
            carry = torch.where(detach_reset, not_fired, not_fired - u_pre[t] * sg)
            grad = grad + (tau * carry) * grads[-1]
        grads.append(grad)
    return torch.stack(grads[::-1])


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
def _formula(fn: Callable) -> str:
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
def _package_key(
    name: str, steps: int, dtype: torch.dtype, device: torch.device, formula: str = ""
) -> str:
    """The package's file name; cached, as every LIF call asks for it."""
    if device.type == "cpu":
        target = _cpu_target()
    else:
        target = str(torch.cuda.get_device_capability(device)) if device.type == "cuda" else ""
    parts = (torch.__version__, sys.version_info[:2], _SOURCE, name, steps, str(dtype),
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


def _run(
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


# What the generated code depends on in this module (not its docs): a change rebuilds.
_SOURCE = hashlib.sha256(
    "".join(
        inspect.getsource(f) for f in (_forward_steps, _backward_steps, _Pass, _build, _examples)
    )
    .encode() + repr(_INDUCTOR_OPTIONS).encode()
).hexdigest()


@functools.lru_cache(maxsize=256)
def _consts(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, device=device)


def _steps_view(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached as contiguous ``[T, N]``."""
    return x.detach().reshape(x.shape[0], -1).contiguous()


def lif_forward(
    c: torch.Tensor, tau: float, v_threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes (shape of ``c``) and ``u_pre`` (``[T, N]``) of Eq. 1-2, one fused kernel."""
    flat = _steps_view(c)
    key = _package_key("forward", flat.shape[0], flat.dtype, flat.device)
    consts = _consts((tau, v_threshold), c.device)
    spikes, u_pre = _run(key, [flat, consts], _forward_steps)
    return spikes.view(c.shape), u_pre


def lif_backward(
    grad_spikes: torch.Tensor,
    u_pre: torch.Tensor,
    tau: float,
    v_threshold: float,
    grad_function: GradFunction,
    grad_params: tuple[float, ...],
    detach_reset: bool,
) -> torch.Tensor:
    """``dL/dc`` (shape of ``grad_spikes``) from ``u_pre`` ``[T, N]``, one fused kernel."""
    consts = _consts((tau, v_threshold, float(detach_reset), *grad_params), u_pre.device)
    try:
        formula = _formula(grad_function)
    except TypeError as error:  # unhashable: functools.cache cannot hold it
        raise KernelBuildError(f"the surrogate formula {grad_function!r} is unhashable") from error
    key = _package_key("backward", u_pre.shape[0], u_pre.dtype, u_pre.device, formula)
    inputs = [_steps_view(grad_spikes), _steps_view(u_pre), consts]
    (grad,) = _run(key, inputs, _backward_steps, grad_function)
    return grad.view(grad_spikes.shape)
