"""Paper transforms (Sec. 5.1-5.3): Cutout, RandomRoll, the DVS split, the pipelines' contents."""

from __future__ import annotations

import torch
from torchvision import transforms as T

from dspike.data import (
    DATASETS,
    Cutout,
    RandomRoll,
    cifar_transform,
    dvs_transform,
    imagenet_transform,
    split_indices,
)


def _zero_box(mask: torch.Tensor) -> tuple[int, int, int]:
    """(number of zeros, box height, box width) of the zeros of a 2-D mask."""
    ys, xs = torch.nonzero(mask == 0, as_tuple=True)
    return len(ys), int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def test_cutout_zeroes_one_16x16_square():
    torch.manual_seed(0)
    full = 0
    for _ in range(200):
        out = Cutout(16)(torch.ones(3, 32, 32))
        assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])  # same square, all C
        n, h, w = _zero_box(out[0])
        assert n == h * w and h <= 16 and w <= 16  # one axis-aligned box, clipped at borders
        full += (h, w) == (16, 16)
    assert full > 20  # centred away from the border: exactly 16x16


def test_cutout_does_not_modify_input():
    x = torch.ones(3, 32, 32)
    Cutout(16)(x)
    assert torch.all(x == 1)


def test_random_roll_is_a_roll_within_max_shift():
    x = torch.arange(2 * 48 * 48, dtype=torch.float32).reshape(1, 2, 48, 48)
    torch.manual_seed(1)
    seen = set()
    for _ in range(50):
        out = RandomRoll(5)(x)
        matches = [
            (dy, dx)
            for dy in range(-5, 6)
            for dx in range(-5, 6)
            if torch.equal(out, torch.roll(x, (dy, dx), (-2, -1)))
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10


def test_dvs_augmentation_only_in_training():
    assert dvs_transform(train=False) is None
    assert dvs_transform(train=True, augment=False) is None
    steps = dvs_transform(train=True).transforms
    assert isinstance(steps[0], T.RandomHorizontalFlip) and isinstance(steps[1], RandomRoll)
    assert steps[1].max_shift == 5


def test_cifar_pipelines():
    train = cifar_transform("cifar10", train=True).transforms
    kinds = [type(t) for t in train]
    assert kinds == [
        T.RandomCrop, T.RandomHorizontalFlip, T.AutoAugment, T.ToTensor, T.Normalize, Cutout,
    ]  # fmt: skip
    assert train[0].padding == 4 and train[0].size == (32, 32)
    assert train[2].policy == T.AutoAugmentPolicy.CIFAR10 and train[5].size == 16
    assert tuple(train[4].mean) == DATASETS["cifar10"].mean
    test = cifar_transform("cifar10", train=False).transforms
    assert [type(t) for t in test] == [T.ToTensor, T.Normalize]
    no_aug = cifar_transform("cifar100", train=True, augment=False).transforms
    assert [type(t) for t in no_aug] == [T.ToTensor, T.Normalize]


def test_imagenet_pipelines():
    train = imagenet_transform(train=True).transforms
    assert isinstance(train[0], T.RandomResizedCrop) and train[0].size == (224, 224)
    assert isinstance(train[1], T.RandomHorizontalFlip)
    test = imagenet_transform(train=False).transforms
    assert isinstance(test[0], T.Resize) and test[0].size == 256
    assert isinstance(test[1], T.CenterCrop) and test[1].size == (224, 224)


def _full_index(shuffled_seed: int = 3) -> tuple[list[str], list[int]]:
    """A full-sized CIFAR10-DVS index (10 classes x 1,000 recordings) in a scrambled order."""
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]  # fmt: skip
    items = [(f"/d/{c}/cifar10_{c}_{i}.aedat4", k) for k, c in enumerate(classes)
             for i in range(1000)]  # fmt: skip
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(shuffled_seed))
    items = [items[i] for i in order]
    return [f for f, _ in items], [k for _, k in items]


def test_first900_split_on_full_index():
    files, targets = _full_index()
    train, test = split_indices(files, targets, "first900")
    assert len(train) == 9000 and len(test) == 1000 and not set(train) & set(test)
    for i in test:  # the last 100 recordings of each class (numbers 900..999)
        assert int(files[i].rsplit("_", 1)[1].split(".")[0]) >= 900
    assert all(sum(targets[i] == k for i in test) == 100 for k in range(10))


def test_random_split_is_seeded_and_stratified():
    files, targets = _full_index()
    a = split_indices(files, targets, "random", seed=0)
    assert a == split_indices(files, targets, "random", seed=0)
    assert a != split_indices(files, targets, "random", seed=1)
    assert a != split_indices(files, targets, "first900")
    assert len(a[0]) == 9000 and all(sum(targets[i] == k for i in a[1]) == 100 for k in range(10))
