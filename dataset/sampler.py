"""Deterministic, resumable, distributed batch sampling for iteration-based training.

Every process draws an endless stream of batches. Epoch ``e`` is a permutation of the dataset
seeded by (seed, e), split round-robin across the processes (padded by wrapping so each gets the
same share); the stream of a process concatenates its shares of epochs 0, 1, 2, ... Iteration
``i`` of a process takes the next ``batch_size`` entries of its stream, so the stream position is
a function of the iteration alone and training resumes at any iteration with exactly the batches
an uninterrupted run would have seen.

Each entry is a ``SampleKey``: the dataset index, the entropy that seeds that sample's private
``numpy.random.Generator`` (so augmentation does not depend on worker count or order) and the
curriculum's maximum frame skip at the iteration that consumes it.
"""
import math
from typing import NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["SampleKey", "TrainingBatchSampler", "sample_rng"]


class SampleKey(NamedTuple):
    index: int
    entropy: Tuple[int, ...]
    max_skip: Optional[int] = None


def sample_rng(key):
    """The numpy Generator of a sample (a plain int index gets a generator seeded by it)."""
    if isinstance(key, SampleKey):
        return np.random.default_rng(list(key.entropy))
    return np.random.default_rng([int(key)])


class TrainingBatchSampler:
    """Endless batches of ``SampleKey`` for one process, starting at ``start_iteration``.

    ``skip_at(iteration)`` (optional) gives the maximum frame skip of that iteration's samples.
    ``iterations`` (optional) ends the stream after that many iterations in total.
    """

    def __init__(self, dataset_size, batch_size, seed=0, rank=0, world_size=1, start_iteration=0,
                 iterations=None, skip_at=None):
        if dataset_size < 1:
            raise ValueError("cannot sample batches from an empty dataset")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_iteration = start_iteration
        self.iterations = iterations
        self.skip_at = skip_at
        self.per_process = math.ceil(dataset_size / world_size)

    def __len__(self):
        if self.iterations is None:
            raise TypeError("an endless sampler has no length")
        return max(0, self.iterations - self.start_iteration)

    def _share(self, epoch):
        order = np.random.default_rng([self.seed, epoch]).permutation(self.dataset_size)
        padded = np.resize(order, self.per_process * self.world_size)
        positions = np.arange(self.rank, len(padded), self.world_size)
        return padded[positions], positions

    def batch(self, iteration, _cache=None):
        """The batch a process uses at ``iteration`` (random access; ``__iter__`` streams them)."""
        cache = {} if _cache is None else _cache
        skip = self.skip_at(iteration) if self.skip_at is not None else None
        keys = []
        for n in range(iteration * self.batch_size, (iteration + 1) * self.batch_size):
            epoch, offset = divmod(n, self.per_process)
            if epoch not in cache:
                cache.clear()
                cache[epoch] = self._share(epoch)
            indices, positions = cache[epoch]
            keys.append(SampleKey(int(indices[offset]), (self.seed, epoch, int(positions[offset])), skip))
        return keys

    def __iter__(self):
        iteration = self.start_iteration
        cache = {}
        while self.iterations is None or iteration < self.iterations:
            yield self.batch(iteration, cache)
            iteration += 1
