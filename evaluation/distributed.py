"""Evaluation split over the processes of ``torchrun`` (one per GPU, any number of nodes).

    torchrun --nproc_per_node=4 eval_davis.py --model saves/stcn.pth --output output/d17

Every process (rank) segments its own share of the videos and writes each video atomically; rank 0
prepares the output folder before the others write into it, waits for all of them at the end, then
prints the aggregate frames/s and scores and writes the tables once. Shares are balanced by frame
count: longest video first, each to the rank with the fewest frames so far (ties: the lower rank).
Ranks exchange only small Python objects, over NCCL on GPUs and gloo on CPUs; the output folder must
be one folder all ranks see (a shared file system across nodes).

Only rank 0 claims the output folder (``evaluation.output_dir.claim_output``: lock, earlier results
removed, eval_config.json); the other ranks hold a ``RankOutput`` and start writing once every rank has
finished its set-up (``failed_ranks``: one collective that a rank whose set-up failed joins too, so
that every rank can say in one line why the run stopped). Rank 0 records the other ranks' videos once
they report them written.

A failing rank prints ``error: video NAME (rank r of N): ...`` and exits non-zero; torchrun then
stops the other ranks with SIGTERM, which ``util.interrupts.raise_on_signals`` (held by every rank
within ``claim``) turns into an exception so that their unfinished video folders are removed on the
way out, and the run ends with a non-zero status.
A plain ``python eval_davis.py`` is a world of one process: no process group, nothing changes.

The eval scripts use this through ``evaluation.runner`` (``claim_run_output``, ``start_run``,
``segment_videos``, ``is_main_process``); ``session`` wraps a script's ``run`` in ``runner.run_script``.
"""
import argparse
import contextlib
import os
from pathlib import Path

import torch
import torch.distributed as dist

from evaluation.output_dir import claim_output
from util.atomic_files import publish_directory
from util.distributed import DistributedContext, barrier, init_distributed, shutdown_distributed
from util.interrupts import raise_on_signals

# Ranks wait for each other twice: for rank 0's set-up and, at the end, for the slowest rank's last
# video. A rank that dies is torchrun's to detect, so the collectives may wait long.
EVAL_TIMEOUT_MINUTES = 12 * 60

_SINGLE = DistributedContext()
_current = _SINGLE


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
    if "WORLD_SIZE" not in os.environ:   # a plain run: runner.resolve_device checks --device
        yield _SINGLE
        return
    device_type = _device_type(device)
    try:
        context = init_distributed(device_type, timeout_minutes=EVAL_TIMEOUT_MINUTES)
    except RuntimeError as error:        # e.g. --device cuda without a GPU
        raise argparse.ArgumentTypeError(str(error)) from None
    _current = context
    try:
        yield context
    finally:
        _current = _SINGLE
        shutdown_distributed()


class RankOutput:
    """The output folder as a rank other than 0 holds it: rank 0 claimed and started it; this rank only
    publishes its videos' folders (rank 0 records them as written after the final ``gather``)."""

    def __init__(self, path):
        self.path = Path(path)

    def start(self, config):
        pass

    def publish(self, final, video=None):
        return publish_directory(final)

    def video_done(self, *names):
        pass

    def finish(self, **extra):
        pass


@contextlib.contextmanager
def claim(path):
    """``claim_output(path)`` on rank 0 (the only rank of a plain run); a ``RankOutput`` elsewhere, where
    SIGINT/SIGTERM raise too so that unfinished folders are removed."""
    if _current.is_main:
        with claim_output(path) as out:
            yield out
    else:
        with raise_on_signals():
            yield RankOutput(path)


class PeerStopped(RuntimeError):
    """Another rank left the process group (its own error is printed above this rank's)."""


@contextlib.contextmanager
def _peers_present(context, waiting_for):
    """Turn the backend's "connection closed by peer" into one ``PeerStopped`` line naming this rank."""
    try:
        yield
    except RuntimeError as error:   # gloo/NCCL: a peer exited while this rank waited for it
        raise PeerStopped(f"another process of this run stopped before {waiting_for} (its error is printed "
                          f"above){describe_rank(context)}") from error


def wait_for_all(context, waiting_for):
    """Barrier of every rank (none in a world of one); ``waiting_for`` words what the ranks wait for,
    for the error if one left."""
    with _peers_present(context, waiting_for):
        barrier(context)


def gather(value, context=None, waiting_for="every video was segmented"):
    """``value`` of every rank, in rank order (``[value]`` in a world of one)."""
    context = context or _current
    if not context.distributed:
        return [value]
    values = [None] * context.world_size
    with _peers_present(context, waiting_for):
        dist.all_gather_object(values, value)
    return values


def failed_ranks(context, failed, waiting_for):
    """The ranks whose step failed (``failed``: this rank's outcome), known to every rank: one all-gather
    that all ranks take part in, failed or not (``[]`` or ``[0]`` in a world of one)."""
    return [rank for rank, bad in enumerate(gather(bool(failed), context, waiting_for)) if bad]


def describe_rank(context=None):
    """" (rank r of N)" under torchrun, "" otherwise: appended to error messages."""
    context = context or _current
    return f" (rank {context.rank} of {context.world_size})" if context.distributed else ""
