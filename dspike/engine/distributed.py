"""Everything torchrun/DDP in one place: process group, device, SyncBN, rank-0 helpers.

``torchrun --nproc_per_node N -m pipelines.train ...`` sets RANK / WORLD_SIZE / LOCAL_RANK; without
them everything runs in one process and every helper here is a no-op. NCCL on GPUs, gloo on CPU.
tdBN wraps a plain BatchNorm (:mod:`dspike.norm`), so ``convert_sync_batchnorm`` synchronises its
statistics across devices, as the paper does on ImageNet (Sec. 5.3); PyTorch's SyncBatchNorm
runs on GPUs only, so on CPU the batch statistics stay per process.
"""

from __future__ import annotations

import datetime
import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, Subset

__all__ = [
    "DistInfo",
    "all_reduce_sum",
    "all_reduce_tensor",
    "any_rank",
    "barrier",
    "broadcast_object",
    "gather_objects",
    "setup",
    "shard",
    "teardown",
    "unwrap",
    "wrap_model",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(timeout_s: float = 7200.0) -> DistInfo:
    """Join the process group torchrun describes (idempotent); pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s)
        )
    rank = dist.get_rank() if dist.is_initialized() else 0
    return DistInfo(rank, world, local_rank, device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """``model`` on its device; under torchrun, with SyncBatchNorm (GPU) inside DDP."""
    model.to(info.device)
    if not info.distributed:
        return model
    if info.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    else:
        warnings.warn("SyncBatchNorm needs GPUs; batch statistics stay per process", stacklevel=2)
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_tensor(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``tensor`` over ranks (a new tensor, on ``tensor``'s device)."""
    if not info.distributed:
        return tensor
    buf = tensor.to(_comm_device(info), copy=True)
    dist.all_reduce(buf)
    return buf.to(tensor.device)


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise sum over ranks (float64, so counts stay exact)."""
    return all_reduce_tensor(torch.tensor(values, dtype=torch.float64), info).tolist()


def any_rank(flags: list[bool], info: DistInfo) -> list[bool]:
    """Element-wise OR over ranks: every rank takes the same decision (stop, bad loss)."""
    if not info.distributed:
        return flags
    t = torch.tensor(flags, dtype=torch.int32, device=_comm_device(info))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def shard(dataset: Dataset, info: DistInfo) -> Dataset:
    """This rank's every W-th sample: evaluation covers each sample exactly once (no padding)."""
    if not info.distributed:
        return dataset
    return Subset(dataset, range(info.rank, len(dataset), info.world_size))  # type: ignore[arg-type]


def _comm_device(info: DistInfo) -> torch.device:
    return info.device if dist.get_backend() == "nccl" else torch.device("cpu")
