"""Video clips for unconditional video generators (MoCoGAN-HD): real folders and the embedded synthetic data.

- :class:`ClipDataset` wraps :class:`v2v.data.datasets.VideoFolderDataset` (``clips`` mode) as
  ``{"video": T,3,H,W in [0,1]}``;
- :func:`render_clip` renders one embedded synthetic video (puppets / toycity) in memory at a small
  square size; :class:`SyntheticClips` serves random ``n_frames`` windows of such videos.
"""
from __future__ import annotations

import random

import numpy as np
import torch

from v2v.errors import V2VError

__all__ = ["ClipDataset", "SyntheticClips", "render_clip"]


class ClipDataset(torch.utils.data.Dataset):
    """``VideoFolderDataset`` clips -> ``{"video": T,3,H,W in [0,1]}``."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.ds[i]["video"]}


class SyntheticClips(torch.utils.data.Dataset):
    """In-memory clips of the embedded synthetic data (puppets / toycity) at ``size``: ``{"video": T,3,H,W}``."""

    def __init__(self, cfg, split: str, n_frames: int, size: int):
        n = cfg.num_videos if split == "train" else max(cfg.num_videos // 4, 2)
        self.videos = [render_clip(cfg.synthetic, cfg.seed, split, i, cfg.frames, size) for i in range(n)]
        self.n_frames, self.repeats, self.stride = n_frames, cfg.repeats, cfg.stride

    def __len__(self) -> int:
        return len(self.videos) * self.repeats

    def __getitem__(self, i: int) -> dict:
        v = self.videos[i % len(self.videos)]
        span = (self.n_frames - 1) * self.stride + 1
        t0 = random.randint(0, max(v.shape[0] - span, 0))
        return {"video": v[t0:t0 + span:self.stride]}


def render_clip(kind: str, seed: int, split: str, index: int, frames: int, size: int) -> torch.Tensor:
    """One embedded synthetic video (puppets: identity ``index % 4``; toycity) rendered at 2x and
    area-downsampled to ``size`` -> float ``T,3,size,size`` in [0,1]."""
    import cv2

    from v2v.data.synthetic.common import video_rng

    big = max(2 * size, 64)
    if kind == "puppets":
        from v2v.data.synthetic.puppets import make_identity, render_puppets

        rgb = render_puppets(make_identity(seed, index % 4), video_rng(seed, split, index, "puppets"), frames,
                             big, big).rgb
    elif kind == "toycity":
        from v2v.data.synthetic.toycity import render_toycity

        rgb = render_toycity(video_rng(seed, split, index, "toycity"), frames, big, big).rgb
    else:
        raise V2VError(f"unknown synthetic data '{kind}' (valid: puppets, toycity)")
    small = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in rgb])
    return torch.from_numpy(small).permute(0, 3, 1, 2).float().div(255)
