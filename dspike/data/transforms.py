"""The paper's input pipelines (Sec. 5.1-5.3), each a named choice built from torchvision parts.

- CIFAR-10/100 (Sec. 5.1): random crop 32 with padding 4, horizontal flip, AutoAugment with
  torchvision's CIFAR10 policy [37], normalisation, Cutout of one 16x16 square [38]; test:
  normalisation only.
- CIFAR10-DVS (Sec. 5.2): frames resized to 48x48 once (see ``dvs_frames``); training adds a random
  horizontal flip and a random roll of up to 5 pixels in x and y; test: nothing more.
- ImageNet (Sec. 5.3): the standard ResNet recipe [30], RandomResizedCrop 224 + flip; test: resize
  256, centre crop 224.
- MNIST (Sec. 4, toy problem): tensor + normalisation.

Normalisation statistics are the registry's (:data:`dspike.data.registry.DATASETS`).
"""

from __future__ import annotations

import torch
from torchvision import transforms as T

from .registry import DATASETS


class Cutout(torch.nn.Module):
    """Zero one ``size`` x ``size`` square of a [C,H,W] tensor, as DeVries & Taylor [38] do.

    The centre is uniform over the image and the square is clipped at the border, so near an edge
    less than size^2 pixels are zeroed (their reference code). Applied after normalisation, so the
    square holds the dataset mean. torchvision's RandomErasing is not used: it keeps the whole
    square inside the image, which changes the distribution of the erased area.
    """

    def __init__(self, size: int = 16) -> None:
        super().__init__()
        self.size = size

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy, cx = int(torch.randint(0, h, ())), int(torch.randint(0, w, ()))
        y0, y1 = max(cy - self.size // 2, 0), min(cy + self.size - self.size // 2, h)
        x0, x1 = max(cx - self.size // 2, 0), min(cx + self.size - self.size // 2, w)
        out = img.clone()
        out[..., y0:y1, x0:x1] = 0
        return out

    def extra_repr(self) -> str:
        return f"size={self.size}"


class RandomRoll(torch.nn.Module):
    """Roll a [..., H, W] tensor by independent uniform shifts in [-max_shift, max_shift] along H
    and W (wrapping around), the CIFAR10-DVS augmentation of Sec. 5.2."""

    def __init__(self, max_shift: int = 5) -> None:
        super().__init__()
        self.max_shift = max_shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dy, dx = (int(v) for v in torch.randint(-self.max_shift, self.max_shift + 1, (2,)))
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}"


def mnist_transform() -> T.Compose:
    """MNIST (train and test): PIL -> float tensor [1,28,28] -> normalise."""
    info = DATASETS["mnist"]
    return T.Compose([T.ToTensor(), T.Normalize(info.mean, info.std)])


def cifar_transform(
    name: str,
    train: bool,
    augment: bool = True,
    *,
    autoaugment: bool = True,
    cutout: int = 16,
) -> T.Compose:
    """CIFAR-10/100 pipeline of Sec. 5.1; ``cutout=0`` or ``autoaugment=False`` drops that step."""
    mean, std = DATASETS[name].mean, DATASETS[name].std
    steps: list = []
    if train and augment:
        steps += [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
        if autoaugment:
            steps.append(T.AutoAugment(T.AutoAugmentPolicy.CIFAR10))
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    if train and augment and cutout > 0:
        steps.append(Cutout(cutout))
    return T.Compose(steps)


def imagenet_transform(
    train: bool, augment: bool = True, *, crop_size: int = 224, resize_size: int = 256
) -> T.Compose:
    """ImageNet pipeline of Sec. 5.3 (standard ResNet [30]); smaller sizes for smoke runs."""
    if train and augment:
        steps = [T.RandomResizedCrop(crop_size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(resize_size), T.CenterCrop(crop_size)]
    info = DATASETS["imagenet"]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(info.mean, info.std)])


def dvs_transform(train: bool, augment: bool = True, *, max_shift: int = 5) -> T.Compose | None:
    """CIFAR10-DVS augmentation on cached [T,2,48,48] frames (Sec. 5.2); None at test time."""
    if not (train and augment):
        return None
    return T.Compose([T.RandomHorizontalFlip(), RandomRoll(max_shift)])
