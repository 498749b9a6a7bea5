"""Evaluation split over the processes of ``torchrun`` (one per GPU, any number of nodes).

    torchrun --nproc_per_node=4 eval_davis.py --model saves/stcn.pth --output output/d17

Every process (rank) segments its own share of the videos and writes each video atomically; rank 0
prepares the output folder before the others write into it, waits for all of them at the end, then
prints the aggregate frames/s and scores and writes the tables once. Shares are balanced by frame
count: longest video first, each to the rank with the fewest frames so far (ties: the lower rank).
Ranks exchange only small Python objects, over NCCL on GPUs and gloo on CPUs; the output folder must
be one folder all ranks see (a shared file system across nodes).

A failing rank prints ``error: video NAME (rank r of N): ...`` and exits non-zero; torchrun then
stops the other ranks with SIGTERM, which ``session`` turns into an exception so that their
unfinished video folders are removed on the way out, and the run ends with a non-zero status.
A plain ``python eval_davis.py`` is a world of one process: no process group, nothing changes.

The eval scripts use this through ``evaluation.runner`` (``start_run``, ``segment_videos``,
``is_main_process``; ``barrier(current())``); ``session`` wraps a script's ``run`` in ``runner.run_script``.
"""
import argparse
import contextlib
import os
import signal

import torch
import torch.distributed as dist

from util.train_distributed import DistributedContext, barrier, init_distributed, shutdown_distributed

# Ranks wait for each other twice: for rank 0's set-up and, at the end, for the slowest rank's last
# video. A rank that dies is torchrun's to detect, so the collectives may wait long.
EVAL_TIMEOUT_MINUTES = 12 * 60

_SINGLE = DistributedContext()
_current = _SINGLE


class Terminated(KeyboardInterrupt):
    """SIGTERM (torchrun stopping this rank because another one failed) raised as an exception."""


def current():
    """The ``DistributedContext`` of the running evaluation (a world of one outside ``session``)."""
    return _current


def is_main_process():
    return _current.is_main


def split_by_length(lengths, world_size):
    """Indices of the videos each rank segments: longest first, each to the least-loaded rank (by
    frames; ties go to the lower rank, then the earlier video). Returns ``world_size`` lists."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    shares, load = [[] for _ in range(world_size)], [0] * world_size
    for index in order:
        rank = min(range(world_size), key=lambda r: (load[r], r))
        shares[rank].append(index)
        load[rank] += lengths[index]
    return shares


def my_share(videos, context=None):
    """The videos (any objects with ``len()`` = frame count) this rank segments, longest first."""
    context = context or _current
    if not context.distributed:
        return list(videos)
    return [videos[i] for i in split_by_length([len(v) for v in videos], context.world_size)[context.rank]]


def _device_type(device):
    if device is None:
        return None
    try:
        return torch.device(device).type
    except RuntimeError as error:
        raise argparse.ArgumentTypeError(f"--device {device!r}: {error}") from None


def rank_device(device, context=None):
    """Under torchrun each rank runs on the GPU of its LOCAL_RANK; a plain run keeps ``device``."""
    context = context or _current
    device = torch.device(device)
    if not context.distributed or device.type != "cuda":
        return device
    if device.index is not None and device.index != context.local_rank:
        raise argparse.ArgumentTypeError(f"--device {device} under torchrun: give --device cuda, each process "
                                         f"uses the GPU of its LOCAL_RANK ({context.local_rank} here)")
    return torch.device("cuda", context.local_rank)


@contextlib.contextmanager
def session(device=None):
    """Join torchrun's process group when launched by it (``WORLD_SIZE`` set), for the block."""
    global _current
    device_type = _device_type(device)
    if "WORLD_SIZE" not in os.environ:   # a plain run
        yield _SINGLE
        return
    try:
        context = init_distributed(device_type, timeout_minutes=EVAL_TIMEOUT_MINUTES)
    except RuntimeError as error:        # e.g. --device cuda without a GPU
        raise argparse.ArgumentTypeError(str(error)) from None

    def terminate(signum, frame):
        raise Terminated(f"rank {context.rank} stopped by torchrun (another rank failed)")

    previous = signal.signal(signal.SIGTERM, terminate)
    _current = context
    try:
        yield context
    finally:
        _current = _SINGLE
        signal.signal(signal.SIGTERM, previous)
        shutdown_distributed()


def gather(value, context=None):
    """``value`` of every rank, in rank order (``[value]`` in a world of one)."""
    context = context or _current
    if not context.distributed:
        return [value]
    values = [None] * context.world_size
    dist.all_gather_object(values, value)
    return values


def describe_rank(context=None):
    """" (rank r of N)" under torchrun, "" otherwise: appended to error messages."""
    context = context or _current
    return f" (rank {context.rank} of {context.world_size})" if context.distributed else ""
