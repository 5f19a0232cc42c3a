"""FVD (Unterthiner et al. 2018) with the StyleGAN-V I3D TorchScript (Kinetics-400 features).

The detector is a local file: ``find_weights("i3d")`` (``i3d_torchscript.pt`` in
``$V2V_WEIGHTS`` or the torch hub checkpoints folder) or an explicit path; a missing file raises
V2VError with the download address. It is called as StyleGAN-V does:
``detector(x, rescale=True, resize=True, return_features=True)`` with ``x`` ``B,3,T,H,W`` in
[0,255] (the detector rescales to [-1,1] and resizes to 224x224 itself), giving 400-d
pre-softmax features. FVD is the Fréchet distance of the two feature sets
(:func:`v2v.metrics.frechet.frechet_distance`, shared with FID). Use clips of 16 frames and
hundreds of videos for numbers comparable to papers.
"""
from __future__ import annotations

import os

import torch

from v2v.errors import V2VError

from .frechet import FeatureStats, frechet_distance

__all__ = ["I3DFeatures", "fvd", "load_i3d"]

_CACHE: dict = {}


class I3DFeatures(torch.nn.Module):
    """Videos ``B,T,3,H,W`` in [0,1] -> ``B,400`` I3D features (8-bit quantized first)."""

    def __init__(self, net, quantize: bool = True):
        super().__init__()
        self.net = net
        self.quantize = quantize

    @torch.no_grad()
    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        if videos.dim() != 5 or videos.shape[2] != 3:
            raise ValueError(f"I3DFeatures: expected B,T,3,H,W videos in [0,1], got {tuple(videos.shape)}")
        x = videos.float().clamp(0, 1) * 255
        if self.quantize:
            x = x.round()
        x = x.permute(0, 2, 1, 3, 4).contiguous()
        f = self.net(x, rescale=True, resize=True, return_features=True)
        return f.flatten(1)


def load_i3d(path: str | os.PathLike | None = None, device="cpu") -> I3DFeatures:
    """Load the I3D TorchScript detector from a local file (cached per device)."""
    from v2v.weights import find_weights

    p = find_weights("i3d", path)
    key = (p, str(device))
    if key not in _CACHE:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            try:
                net = torch.jit.load(p, map_location=device)
            except (RuntimeError, ValueError) as exc:
                raise V2VError(f"{p}: not a TorchScript I3D detector ({exc})") from None
        _CACHE[key] = I3DFeatures(net.eval()).to(device)
    return _CACHE[key]


def fvd(real: torch.Tensor, fake: torch.Tensor, device="cpu", extractor=None, path=None,
        batch_size: int = 8) -> float:
    """FVD between two video sets ``N,T,3,H,W`` in [0,1] (N >= 2 each; use hundreds).

    ``extractor``: any callable ``B,T,3,H,W -> B,D`` (default: :func:`load_i3d`).
    """
    ex = extractor if extractor is not None else load_i3d(path, device)
    stats = []
    for vids in (real, fake):
        st = FeatureStats()
        for i in range(0, vids.shape[0], batch_size):
            st.update(ex(vids[i:i + batch_size].to(device)).cpu())
        stats.append(st.mean_cov())
    return frechet_distance(*stats[0], *stats[1])
