"""Process-group setup for ``torchrun`` (and plain single-process runs).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; they are read here, inside ``main()``, never at
import time. Every process torchrun starts joins a process group, also when it starts only one
(``--nproc_per_node=1`` then runs DDP and the collectives, e.g. on one GPU); GPUs use NCCL (one
device per local rank), CPUs use gloo. A plain ``python train.py`` (no WORLD_SIZE in the
environment) is a world of one process and creates no process group.
"""
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "init_distributed", "shutdown_distributed", "all_reduce_mean"]


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    distributed: bool = False     # a process group exists (launched by torchrun)

    @property
    def is_main(self):
        return self.rank == 0


def init_distributed(device=None, timeout_minutes=30):
    """Read torchrun's environment, pick the device and start the process group when needed.

    ``device``: "cuda", "cpu" or None (CUDA when available)."""
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = torch.cuda.is_available() if device is None else device == "cuda"
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for but no CUDA device is available")
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    launched = "WORLD_SIZE" in os.environ
    if launched and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(minutes=timeout_minutes))
    return DistributedContext(rank, local_rank, world_size, dev, distributed=launched)


def shutdown_distributed():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(values, context):
    """Mean of a 1-D float tensor over all processes (itself when there is one process)."""
    if not context.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / context.world_size


def barrier(context):
    if context.distributed:
        dist.barrier(device_ids=[context.local_rank] if context.device.type == "cuda" else None)
