"""Refuse a CIFAR pickle that would run code, before torchvision's ``pickle.load`` reads it.

torchvision reads CIFAR's ``data_batch_*``/``test_batch``/``meta`` files with ``pickle.load``;
any pickle can name a callable that unpickling then calls. The official files' MD5s are fixed in
torchvision, but a bundled copy is vouched for only by a manifest in the data folder itself,
which whoever wrote the files could also write. :func:`check_plain_pickle` reads a file with an
unpickler that resolves only what CIFAR pickles contain (numpy arrays, and the ``_codecs.encode``
protocol 2 uses for bytes): if it passes, unpickling the same bytes calls nothing else.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from .errors import CorruptDataError

__all__ = ["check_plain_pickle"]

ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _Plain(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a data file never does")
        return super().find_class(module, name)


def check_plain_pickle(path: str | Path) -> None:
    """Raise :class:`CorruptDataError` naming ``path`` unless it is a plain data pickle."""
    try:
        with open(path, "rb") as f:
            _Plain(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise CorruptDataError(path, f"refused to unpickle: {err}") from None
