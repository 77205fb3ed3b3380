"""``make_loader``: a DataLoader set up so that loading is not the bottleneck."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def make_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    *,
    workers: int = 2,
    distributed: bool = False,
    seed: int = 0,
    pin_memory: bool | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """Shuffled (train) or ordered (test) batches; worker processes stay alive between epochs.

    With ``distributed`` a ``DistributedSampler`` (seeded, shuffling when training) splits the data
    over ranks: call ``loader.sampler.set_epoch(epoch)`` each epoch. ``pin_memory`` defaults to
    whether CUDA is available. Shuffling order and augmentation randomness follow ``seed``.
    """
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    sampler = DistributedSampler(dataset, shuffle=train, seed=seed) if distributed else None
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        drop_last=drop_last,
        generator=generator,
    )
