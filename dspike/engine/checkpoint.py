"""Checkpoints that survive interruption: atomic writes, safe loads, RNG states, SIGTERM.

A checkpoint is a plain dict of tensors, numbers, strings and lists, written to a temporary file
and renamed into place (a kill never leaves half a file) and read with
``torch.load(weights_only=True)`` (no pickled code runs). :class:`StopSignal` turns SIGTERM (a
cluster scheduler's notice) and SIGINT (Ctrl-C) into a flag the training loop checks after each
step, so it can checkpoint mid-epoch and exit. :func:`cpu_copy` snapshots a state_dict apart
from the live model (the best epoch's weights, which a checkpoint keeps when ``run.select`` is
"best").
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch

from ..io import atomic_path, save_tensors

__all__ = [
    "CheckpointError",
    "RunLock",
    "StopSignal",
    "cpu_copy",
    "derive_seed",
    "get_rng_state",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
]

FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file."""


class RunLock:
    """An exclusive lock on a run's checkpoint folder (``<folder>/lock``, ``flock``), held while
    the run trains, so a second process cannot train the same checkpoint at the same time.

    The lock goes with the process: a killed run frees it. Entering raises
    :class:`CheckpointError` naming the holder's pid when another process holds it.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / "lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl
        import os

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise CheckpointError(
                f"{self.path.parent} is in use by another training process (pid {holder}); "
                "wait for it to finish or stop it, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        import os

        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + rename)."""
    with atomic_path(path) as tmp:
        save_tensors({"format": FORMAT, **state}, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (on CPU), or ``None`` if there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dspike training checkpoint (format {FORMAT})")
    return state


def cpu_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``state`` (a state_dict): later training steps leave it as it is."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}


def derive_seed(*key: int) -> int:
    """A 32-bit seed from a tuple of integers (e.g. seed, epoch, rank), well mixed."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0])


def seed_everything(*key: int) -> int:
    """Seed Python, NumPy and torch (all devices) from ``derive_seed(*key)``; return it."""
    seed = derive_seed(*key)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def get_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states, in types ``weights_only`` accepts."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopSignal:
    """Context manager: while active, SIGTERM and SIGINT (Ctrl-C) set :attr:`requested` (and
    :attr:`signum`, the signal that came) instead of killing or raising ``KeyboardInterrupt``.

    Outside the main thread (where signals cannot be caught) it only offers :meth:`request`.
    """

    def __init__(
        self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
    ) -> None:
        self.signals = signals
        self.requested = False
        self.signum: int = signal.SIGTERM
        self._previous: dict[signal.Signals, Any] = {}

    def request(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        if not self.requested:  # the first signal names the stop
            self.signum = signum
        self.requested = True

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self.request)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
