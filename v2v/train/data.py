"""Resumable, rank-split data order.

Epoch ``e`` visits the training set in the permutation ``torch.randperm(n)`` drawn from a
generator seeded with ``(seed, e)``; global batch ``b`` is ``perm[b*B:(b+1)*B]`` (the last
incomplete batch is dropped), and rank ``r`` of ``K`` takes the ``r``-th contiguous slice of
``B/K`` items. The order depends only on (seed, epoch, batch index), never on the number of
workers or on where a previous process stopped, so a resumed run continues exactly by
starting the sampler at the saved (epoch, batch index).

Each item is fetched with python ``random``, ``numpy.random`` and ``torch`` seeded from
(seed, epoch, position in the epoch): a dataset's random augmentation is then reproducible
per item, identical for any rank count or worker count, and survives resume.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from v2v.errors import V2VError

__all__ = ["ResumableBatchSampler", "SeededItems", "item_seed", "make_eval_loader", "make_train_loader"]


def item_seed(seed: int, epoch: int, pos: int) -> int:
    """A 63-bit seed for the item at position ``pos`` of epoch ``epoch``."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, pos]).generate_state(2, np.uint64)[0] >> 1)


class ResumableBatchSampler(torch.utils.data.Sampler):
    """Infinite sampler of this rank's share of each global batch, as lists of ``(index, item_seed)``."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        epoch: int = 0,
        batch_index: int = 0,
    ):
        if batch_size % world_size:
            raise V2VError(
                f"train.batch_size {batch_size} is not divisible by the number of processes {world_size}"
            )
        if n < batch_size:
            raise V2VError(f"the training set has {n} items, fewer than train.batch_size {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.batch_index = epoch, batch_index

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) & 0x7FFF_FFFF_FFFF_FFFF)
        return torch.randperm(self.n, generator=g)

    def __iter__(self):
        epoch, b = self.epoch, self.batch_index
        per = self.batch_size // self.world_size
        while True:
            perm = self.permutation(epoch).tolist()
            while b < self.batches_per_epoch:
                start = b * self.batch_size + self.rank * per
                yield [(perm[p], item_seed(self.seed, epoch, p)) for p in range(start, start + per)]
                b += 1
            epoch, b = epoch + 1, 0


class SeededItems(torch.utils.data.Dataset):
    """Wrap a dataset so that ``ds[(i, s)]`` fetches item ``i`` with all global RNGs seeded by ``s``.

    The caller's RNG states are restored afterwards (so fetching in the main process with
    ``num_workers=0`` leaves the training RNG untouched).
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        i, s = key
        py, npst, th = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            random.seed(s)
            np.random.seed(s % (2**32))
            # the CPU generator only: torch.manual_seed also queues lazy CUDA seeding, which records
            # a stack trace per call (milliseconds per item); datasets build items on the CPU
            torch.default_generator.manual_seed(s)
            return self.dataset[i]
        finally:
            random.setstate(py)
            np.random.set_state(npst)
            torch.set_rng_state(th)


def make_train_loader(
    dataset, sampler: ResumableBatchSampler, num_workers: int, pin_memory: bool = False, seed: int = 0
):
    """DataLoader over ``sampler``. Its own generator keeps it from drawing on the global torch RNG
    (a DataLoader iterator otherwise consumes one draw when created, which would shift a resumed run)."""
    return torch.utils.data.DataLoader(
        SeededItems(dataset),
        batch_sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(seed),
    )


class _FixedOrder(torch.utils.data.Sampler):
    def __init__(self, n, batch_size, seed, rank, world_size, max_batches):
        self.n, self.bs, self.seed, self.rank, self.ws, self.max = (
            n,
            batch_size,
            seed,
            rank,
            world_size,
            max_batches,
        )

    def __iter__(self):
        per = max(1, self.bs // self.ws)
        nb = -(-self.n // self.bs)  # a short last batch is kept: every held-out item counts
        for b in range(min(nb, self.max) if self.max else nb):
            lo = b * self.bs + self.rank * per
            idx = [i for i in range(lo, lo + per) if i < self.n]
            if idx:
                yield [(i, item_seed(self.seed, 0x7FFFFFFF, i)) for i in idx]


def make_eval_loader(
    dataset, batch_size: int, seed: int, rank: int, world_size: int, max_batches: int, num_workers: int = 0
):
    """The first ``max_batches`` global batches of ``dataset`` in index order (rank-split)."""
    return torch.utils.data.DataLoader(
        SeededItems(dataset),
        batch_sampler=_FixedOrder(len(dataset), batch_size, seed, rank, world_size, max_batches),
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )
