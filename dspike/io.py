"""Atomic writes of files and folders: a crash or a kill never leaves a half-written output.

Every file is written to a temporary file beside its target and renamed into place; its mode
follows the umask (as ``open()`` would make it, not ``mkstemp``'s 0600). :func:`atomic_outputs`
commits several files as a set: all are written first, then renamed one after the other, and a
failure while renaming puts the previous files back. :func:`atomic_dir` does the same for a whole
folder. :func:`check_writable` finds an unwritable output folder before hours of work, and
:func:`save_tensors` writes ``torch.save`` files that are byte-identical for identical tensors.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_dir",
    "atomic_outputs",
    "atomic_path",
    "atomic_write_text",
    "check_writable",
    "pyplot",
    "replace_dir",
    "save_figure",
    "save_tensors",
]


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
    outputs are the old set or the new set.
    """
    targets = {key: Path(p) for key, p in paths.items()}
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
    except BaseException:
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

    with open(path, "wb") as f:
        torch.save(obj, f)


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
