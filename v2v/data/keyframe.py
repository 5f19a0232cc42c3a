"""Clip datasets of keyframe interpolation (:mod:`v2v.models.keyframe`): items ``{"video": T,3,S,S}``.

``cfg`` is the system's ``data:`` section (``KeyframeDataConfig`` in :mod:`v2v.models.keyframe`): ``source``
(``puppets`` | ``toycity`` | ``folder``), ``root``, ``num_train``, ``num_test``, ``seed``, ``stride``,
``time_split``, ``test_hop``, ``horizontal_flip``, ``time_flip``. Training augmentation draws from the
global RNGs (seeded per item by the trainer).
"""
from __future__ import annotations

import numpy as np
import torch

from v2v.errors import V2VError

__all__ = ["SyntheticClips", "TimeSplitClips", "build_clips"]


def _augment(x: torch.Tensor, cfg) -> torch.Tensor:
    import random  # the global RNG, seeded per item by the trainer

    if cfg.horizontal_flip and random.random() < 0.5:
        x = x.flip(-1)
    if cfg.time_flip and random.random() < 0.5:
        x = x.flip(0)
    return x


class SyntheticClips(torch.utils.data.Dataset):
    """Clips rendered in memory by :mod:`v2v.data.synthetic` (``puppets``: 8 identities, new
    motion per video; ``toycity``: a new street per video); item ``i`` is a pure function of
    (seed, split, i), rendered once and cached."""

    def __init__(self, source: str, n: int, frames: int, size: int, seed: int, split: str,
                 cfg=None):
        self.source, self.n, self.frames, self.size, self.seed, self.split = source, n, frames, size, seed, split
        self.cfg, self.cache = cfg, {}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        from v2v.data.synthetic.common import video_rng

        if i not in self.cache:
            rng = video_rng(self.seed, self.split, i, self.source)
            if self.source == "puppets":
                from v2v.data.synthetic.puppets import make_identity, render_puppets

                v = render_puppets(make_identity(self.seed, i % 8), rng, self.frames, self.size, self.size)
            else:
                from v2v.data.synthetic.toycity import render_toycity

                v = render_toycity(rng, self.frames, self.size, self.size)
            self.cache[i] = torch.from_numpy(v.rgb).permute(0, 3, 1, 2).contiguous()
        x = self.cache[i].float().div(255)
        return {"video": _augment(x, self.cfg) if self.cfg is not None else x}


class TimeSplitClips(torch.utils.data.Dataset):
    """Clips of the videos directly under ``root``, split in time: training clips start at random
    in the first ``time_split`` of each video; held-out clips lie wholly after it, every
    ``test_hop`` frames. Videos are decoded once, resized to ``size``, and kept in memory."""

    def __init__(self, cfg, split: str, frames: int, size: int):
        from v2v.data.datasets import _list_videos
        from v2v.data.image import resize_image
        from v2v.data.video import read_video

        self.cfg, self.split, self.span = cfg, split, (frames - 1) * cfg.stride + 1
        self.videos, self.items = [], []
        for name, path in _list_videos(_folder(cfg.root)):
            a = read_video(path)[0]
            v = torch.from_numpy(np.stack([resize_image(f, (size, size)) for f in a])).permute(0, 3, 1, 2)
            cut = int(len(v) * cfg.time_split)
            if split == "train" and cut >= self.span:
                self.videos.append(v[:cut])
            elif split == "test":
                self.items += [(v, s) for s in range(cut, len(v) - self.span + 1, max(1, cfg.test_hop))]
        if split == "train" and not self.videos:
            raise V2VError(f"data.root {cfg.root}: no video has {self.span} frames before time_split={cfg.time_split}")
        self.items = self.items[: cfg.num_test]

    def __len__(self) -> int:
        return max(len(self.videos), self.cfg.num_train) if self.split == "train" else len(self.items)

    def __getitem__(self, i: int) -> dict:
        if self.split == "train":
            v = self.videos[i % len(self.videos)]
            s = int(torch.randint(0, len(v) - self.span + 1, (1,)))
        else:
            v, s = self.items[i]
        x = v[s : s + self.span : self.cfg.stride].float().div(255)
        return {"video": _augment(x, self.cfg) if self.split == "train" else x}


def _folder(root: str):
    from pathlib import Path

    if not root or not Path(root).is_dir():
        raise V2VError(f"data.root: video folder '{root}' not found")
    return Path(root)


def build_clips(cfg, split: str, frames: int, size: int):
    """Clips of ``model.frames`` frames at ``model.size``: :class:`SyntheticClips`, or for ``folder``
    ``root/{train,test}`` via ``VideoFolderDataset`` (clips mode, held-out draws seeded) or
    :class:`TimeSplitClips` (``time_split > 0``). None for a missing test split."""
    t, s, train = frames, size, split == "train"
    if cfg.source in ("puppets", "toycity"):
        return SyntheticClips(cfg.source, cfg.num_train if train else cfg.num_test, t, s, cfg.seed, split,
                              cfg if train else None)
    if cfg.source != "folder":
        raise V2VError(f"data.source: unknown source '{cfg.source}' (valid: puppets, toycity, folder)")
    if cfg.time_split > 0:
        ds = TimeSplitClips(cfg, split, t, s)
        return ds if len(ds) else None
    from v2v.data.datasets import VideoFolderDataset

    if not (_folder(cfg.root) / split).is_dir():
        if train:
            raise V2VError(f"data.root: no 'train' folder in {cfg.root} (or set data.time_split)")
        return None
    aug = {"flip": cfg.horizontal_flip, "time_flip": cfg.time_flip} if train else None
    ds = VideoFolderDataset(cfg.root, mode="clips", n_frames=t, size=(s, s), augment=aug, split=split,
                            stride=cfg.stride, seed=None if train else 0)
    if not train and len(ds) > cfg.num_test:
        ds = torch.utils.data.Subset(ds, list(range(cfg.num_test)))
    return ds
