"""Atomic writes of files and folders: a crash or a kill never leaves a half-written output.

Every file is written to a temporary file beside its target and renamed into place; its mode
follows the umask (as ``open()`` would make it, not ``mkstemp``'s 0600). :func:`atomic_outputs`
commits several files as a set: all are written first, then renamed one after the other, and a
failure while renaming puts the previous files back. :func:`atomic_dir` does the same for a whole
folder. :func:`check_writable` finds an unwritable output folder before hours of work, and
:func:`save_tensors` writes ``torch.save`` files that are byte-identical for identical tensors.

A write that fails for want of space (``ENOSPC``, a quota, the file size limit) raises
:class:`DiskFullError` once the temporary files are gone: one message naming the file, the file
system (its mount point), the space free there and the space the write needs; the previous
files are untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DiskFullError",
    "atomic_dir",
    "atomic_outputs",
    "atomic_path",
    "atomic_write_text",
    "check_writable",
    "is_disk_full",
    "pyplot",
    "replace_dir",
    "save_figure",
    "save_tensors",
]


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no room: the disk, a quota, ulimit -f


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def _mount_point(path: Path) -> Path:
    """The mount point of the file system that holds ``path`` (or its nearest existing parent)."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


class DiskFullError(OSError):
    """A write that found no room; ``str()`` is one line naming the file (``filename``), the file
    system's mount point, its free space and the space needed (``needed`` bytes, if known; else
    more than the ``written`` bytes)."""

    def __init__(
        self, err: OSError, path: str | Path, needed: int | None = None, written: int | None = None
    ) -> None:
        path = Path(path)
        mount = _mount_point(path.parent)
        try:
            st = os.statvfs(mount)
            free: int | None = st.f_bavail * st.f_frsize
        except OSError:
            free = None
        what = {errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file size limit exceeded"}
        cause = what.get(err.errno, "no space left on device")
        need = (
            f"; it needs about {_size(needed)}" if needed
            else f"; it needs more than the {_size(written)} written when it failed" if written
            else ""
        )  # fmt: skip
        have = f"{_size(free)} free" if free is not None else "free space unknown"
        message = (
            f"{cause} writing {path}: the file system at {mount} has {have}{need}; free space "
            "there (or set another path) and run the same command again (files already there "
            "are kept)"
        )
        super().__init__(err.errno, message, str(path))
        self.mount, self.free, self.needed = mount, free, needed

    def __str__(self) -> str:
        return self.strerror


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is an ``OSError`` of a write that found no room."""
    return isinstance(err, OSError) and err.errno in _FULL


def _tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in ``obj`` (nested dicts, lists, tuples): a torch.save file's size,
    give or take its small records."""
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    nbytes = getattr(obj, "nbytes", None)
    return int(nbytes) if isinstance(nbytes, int) else 0


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would, for every thread)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    with atomic_outputs({"": path}) as tmp:
        yield tmp[""]


@contextlib.contextmanager
def atomic_outputs(paths: Mapping[str, str | Path]) -> Iterator[dict[str, Path]]:
    """Yield a temporary path beside each of ``paths``; on success rename them all into place.

    Nothing is renamed unless every file was written. If a rename fails, the files already
    renamed get their previous contents back (or are removed if there were none), so the
    outputs are the old set or the new set. A write that finds no room raises
    :class:`DiskFullError` once the temporary files are removed.
    """
    targets = {key: Path(p) for key, p in paths.items()}
    try:
        with _atomic_set(targets) as tmps:
            yield tmps
    except OSError as err:
        if not is_disk_full(err) or isinstance(err, DiskFullError):
            raise
        needed = getattr(err, "needed", None)
        raise DiskFullError(
            err, _target_of(err, targets), needed, getattr(err, "written", None)
        ) from err


def _target_of(err: OSError, targets: Mapping[str, Path]) -> Path:
    """The output whose temporary file ``err`` names (the first output if it names none)."""
    name = Path(err.filename).name if err.filename else ""
    for path in targets.values():
        if name.startswith(f".{path.name}.") or name == path.name:
            return path
    return next(iter(targets.values()))


@contextlib.contextmanager
def _atomic_set(targets: Mapping[str, Path]) -> Iterator[dict[str, Path]]:
    tmps: dict[str, Path] = {}
    done: list[tuple[Path, Path | None]] = []  # renamed so far, with their previous file
    try:
        for key, path in targets.items():
            tmps[key] = _temp_beside(path)
        yield dict(tmps)
        for key, path in targets.items():
            backup = _second_name(path) if path.is_file() else None
            try:
                os.replace(tmps[key], path)
            except BaseException:
                if backup is not None:
                    backup.unlink(missing_ok=True)
                raise
            done.append((path, backup))
    except BaseException as err:
        if is_disk_full(err) and not getattr(err, "filename", None):  # a write names no file
            written = [tmp for tmp in tmps.values() if tmp.is_file() and tmp.stat().st_size]
            err.filename = str(written[-1] if written else next(iter(tmps.values()), ""))
        if is_disk_full(err) and getattr(err, "needed", None) is None:
            with contextlib.suppress(OSError):  # it needs more than it wrote before it failed
                err.written = os.stat(err.filename).st_size
        for path, backup in reversed(done):
            if backup is not None:
                os.replace(backup, path)
            else:
                path.unlink(missing_ok=True)
        done.clear()
        raise
    finally:
        for tmp in tmps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        for _, backup in done:
            if backup is not None:
                backup.unlink(missing_ok=True)


def _second_name(path: Path) -> Path:
    """A new name beside ``path`` for its current file (a copy where links fail)."""
    backup = _temp_beside(path)
    backup.unlink()
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    return backup


def check_writable(paths: Mapping[str, str | Path] | list[str | Path]) -> None:
    """Raise ``PermissionError`` (or another ``OSError``) naming the first output that cannot
    be written, by creating and removing a temporary file beside each."""
    for path in paths.values() if isinstance(paths, Mapping) else paths:
        _temp_beside(Path(path)).unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it takes ``path``'s place
    (:func:`replace_dir`), on failure it is deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        tmp.chmod(0o777 & ~_umask())
        yield tmp
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(src: str | Path, dest: str | Path) -> Path:
    """Move the folder ``src`` onto ``dest`` (same filesystem), removing an old ``dest`` first.

    A folder cannot be renamed over a non-empty one, so the old one goes first: a crash in
    between leaves ``dest`` absent, never half-written. Returns ``dest``.
    """
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(src, dest)
    return dest


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_tensors(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)``, byte-identical for identical ``obj`` wherever it is written.

    Through an open file, torch names the archive's records ``archive/...``; given a path, it
    would use the file's name (a random temporary name here).
    """
    import torch

    try:
        with open(path, "wb") as f:
            torch.save(obj, f)
    except RuntimeError as err:  # torch's writer reports a failed write as "unexpected pos"
        cause = err.__context__
        if not isinstance(cause, OSError):
            raise
        failed = OSError(cause.errno, cause.strerror, str(path))
        failed.needed = _tensor_bytes(obj)  # type: ignore[attr-defined]
        raise failed from err
    except OSError as err:
        if err.filename is None:
            err.filename = str(path)
        if is_disk_full(err):
            err.needed = _tensor_bytes(obj)  # type: ignore[attr-defined]
        raise


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: figures here are only ever saved to files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Save a matplotlib figure as PNG atomically and close it; returns ``path``."""
    plt = pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return Path(path)
