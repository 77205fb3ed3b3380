"""Spikes saved for the backward pass as what they are: one byte each, not four.

A LIF's output holds 0 and 1 only (Eq. 2), in the network's floating dtype. The layers after
it save it for their backward (a convolution for its weight gradient, an average pool, a
residual block's LIF for its addend), 4 bytes a value in float32. :func:`mark_spikes` marks a
tensor as spikes; while :func:`spikes_saved_as_bytes` is open, each tensor autograd saves that
is a marked tensor, or a view of one, not modified since it was marked (its version counter
says so) is kept as ``uint8``, once per view however many nodes save it, and turned back into
its dtype when the backward needs it: 0 and 1 are exact in every dtype, so no gradient changes.
Every other tensor is saved as autograd saves it.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import NamedTuple

import torch

__all__ = ["mark_spikes", "spikes_saved_as_bytes"]

# The attribute a spike tensor's storage owner (its base) carries: its version when marked.
_MARK = "_dspike_spikes_at_version"


def _root(x: torch.Tensor) -> torch.Tensor:
    """The tensor that owns ``x``'s storage: ``x`` or the base it is a view of."""
    return x if x._base is None else x._base


def mark_spikes(spikes: torch.Tensor) -> torch.Tensor:
    """``spikes`` (0/1 values), marked as such for :func:`spikes_saved_as_bytes`."""
    root = _root(spikes)
    setattr(root, _MARK, root._version)
    return spikes


def _is_spikes(x: torch.Tensor) -> bool:
    root = _root(x)
    return x.dtype == root.dtype and getattr(root, _MARK, None) == root._version


class _Bytes(NamedTuple):
    root: torch.Tensor  # the whole spike tensor as uint8, laid out as the float one
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int  # of the saved view, in the root's storage
    dtype: torch.dtype

    def unpack(self) -> torch.Tensor:
        offset = self.root.storage_offset() + self.offset
        return self.root.as_strided(self.size, self.stride, offset).to(self.dtype)


class _ByteSaver:
    """Pack and unpack hooks that keep marked spikes as ``uint8``: each spike tensor packed
    once, however many nodes save it or views of it."""

    def __init__(self) -> None:
        # id of a spike tensor -> (it, weakly; its uint8 copy)
        self._packed: dict[int, tuple[weakref.ref, torch.Tensor]] = {}

    def pack(self, x: torch.Tensor) -> torch.Tensor | _Bytes:
        if not _is_spikes(x):
            return x
        root = _root(x)
        hit = self._packed.get(id(root))
        if hit is None or hit[0]() is not root:
            hit = self._packed[id(root)] = (weakref.ref(root), root.detach().to(torch.uint8))
        if hit[1].stride() != root.stride():  # .to keeps only a dense layout: the view alone
            values = x.detach().to(torch.uint8)
            return _Bytes(values, tuple(values.shape), values.stride(), 0, x.dtype)
        offset = x.storage_offset() - root.storage_offset()
        return _Bytes(hit[1], tuple(x.shape), x.stride(), offset, x.dtype)

    @staticmethod
    def unpack(saved: torch.Tensor | _Bytes) -> torch.Tensor:
        return saved.unpack() if isinstance(saved, _Bytes) else saved


@contextlib.contextmanager
def spikes_saved_as_bytes() -> Iterator[None]:
    """While open, autograd keeps marked spikes (:func:`mark_spikes`) as ``uint8``."""
    saver = _ByteSaver()
    with torch.autograd.graph.saved_tensors_hooks(saver.pack, saver.unpack):
        yield
