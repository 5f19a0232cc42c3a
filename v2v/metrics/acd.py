"""Video content consistency (ACD) and frame-to-frame motion statistics of unconditional video generators.

**ACD** (Average Content Distance; MoCoGAN, Tulyakov et al. 2018, Sec. 4; used by MoCoGAN-HD,
Tab. 2): embed every frame, take the average L2 distance between the embeddings of all frame pairs
of a video, and average over videos. Lower = the content (identity) stays more consistent.
The papers embed faces with OpenFace (FaceForensics) or use the mean colour (ACD-C, shape videos);
neither network is shipped, so the embedding here is documented and selectable:

- ``"histogram"`` (default): the L2-normalised soft joint RGB histogram (8^3 bins) of the frame,
  :func:`v2v.metrics.keypoints.color_histogram_embedding` - colours of clothes, skin and background,
  insensitive to where things move (a weight-free stand-in for an identity network);
- ``"mean_color"``: the frame's mean RGB (MoCoGAN's ACD-C);
- any callable ``N,3,H,W -> N,D`` (e.g. a face-recognition network) for paper-grade numbers.

Values depend on the embedding: compare only numbers computed with the same one.

**Motion statistics**: :func:`flow_magnitudes` gives the OpenCV DIS optical-flow magnitudes between
consecutive frames; :func:`flow_magnitude_distance` is the 1-D Wasserstein-1 distance between two
sets of videos' magnitude distributions (pixels).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from v2v.errors import V2VError

__all__ = ["acd", "flow_magnitude_distance", "flow_magnitudes", "frame_embedding"]


def frame_embedding(frames: torch.Tensor, embed: str | Callable = "histogram") -> torch.Tensor:
    """Embed frames ``N,3,H,W`` in [0,1] -> ``N,D`` (see the module docstring for the choices)."""
    if callable(embed):
        return embed(frames).float().flatten(1)
    if embed == "histogram":
        from v2v.metrics.keypoints import color_histogram_embedding

        return color_histogram_embedding(frames)
    if embed == "mean_color":
        return frames.float().mean([2, 3])
    raise V2VError(f"unknown ACD embedding '{embed}' (valid: histogram, mean_color, or a callable)")


@torch.no_grad()
def acd(videos: torch.Tensor, embed: str | Callable = "histogram") -> torch.Tensor:
    """Average Content Distance of videos ``B,T,3,H,W`` in [0,1]: mean pairwise L2 between frame embeddings.

    Args:
        videos: ``B,T,3,H,W`` (T >= 2) in [0,1].
        embed: ``"histogram"`` | ``"mean_color"`` | callable ``N,3,H,W -> N,D``.

    Returns:
        Scalar tensor: the mean over videos of the mean over frame pairs ``i < j`` of ``||f_i - f_j||``.

    Example:
        >>> v = torch.rand(1, 1, 3, 8, 8).expand(2, 4, 3, 8, 8)   # static videos
        >>> float(acd(v))
        0.0
    """
    if videos.dim() != 5 or videos.shape[2] != 3 or videos.shape[1] < 2:
        raise V2VError(f"acd: expected videos B,T,3,H,W with T >= 2, got {tuple(videos.shape)}")
    b, t = videos.shape[:2]
    f = frame_embedding(videos.flatten(0, 1), embed).view(b, t, -1)
    d = torch.cdist(f, f)  # B,T,T
    iu = torch.triu_indices(t, t, 1)
    return d[:, iu[0], iu[1]].mean()


def flow_magnitudes(videos: torch.Tensor, preset: str = "medium") -> np.ndarray:
    """DIS optical-flow magnitudes (pixels) of every pixel of every consecutive frame pair.

    Args:
        videos: ``B,T,3,H,W`` in [0,1].

    Returns:
        1-D float32 array of ``B*(T-1)*H*W`` magnitudes.
    """
    from v2v.ops.flow_estimation import estimate_flow

    if videos.dim() != 5 or videos.shape[1] < 2:
        raise V2VError(f"flow_magnitudes: expected videos B,T,3,H,W with T >= 2, got {tuple(videos.shape)}")
    a = videos[:, :-1].flatten(0, 1)
    b = videos[:, 1:].flatten(0, 1)
    flow = estimate_flow(a, b, "dis", preset=preset)
    return flow.norm(dim=1).flatten().numpy().astype(np.float32)


def flow_magnitude_distance(videos_a: torch.Tensor, videos_b: torch.Tensor, preset: str = "medium") -> float:
    """Wasserstein-1 distance between the DIS flow-magnitude distributions of two video sets.

    Example:
        >>> v = torch.rand(2, 3, 3, 16, 16)
        >>> flow_magnitude_distance(v, v)
        0.0
    """
    ma, mb = np.sort(flow_magnitudes(videos_a, preset)), np.sort(flow_magnitudes(videos_b, preset))
    q = np.linspace(0, 1, 257)[1:-1]
    return float(np.abs(np.quantile(ma, q) - np.quantile(mb, q)).mean())
