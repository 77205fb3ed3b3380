"""A fixed random subset of a dataset: smaller runs that still see every class."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

__all__ = ["random_subset"]


def random_subset(dataset: Dataset, size: int, seed: int = 0) -> Dataset:
    """``size`` samples of ``dataset`` drawn at random with ``seed``, kept in dataset order.

    The same ``(size, seed)`` always picks the same samples. ``size`` 0, or one at least the
    dataset's length, returns ``dataset`` itself.
    """
    n = len(dataset)  # type: ignore[arg-type]
    if not size or size >= n:
        return dataset
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]
    return Subset(dataset, sorted(pick.tolist()))
