"""Keypoint and identity metrics for motion transfer (FOMM's AKD / MKR / AED, and ACD).

Keypoints here are ``B,K,2`` arrays with an optional visibility ``B,K`` (bool or 0/1). AKD is
reported in the coordinates you pass (pixels for OpenPose-style detections, as in the FOMM
paper).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["acd", "akd", "color_histogram_embedding", "mkr"]


def _vis(kp: torch.Tensor, vis) -> torch.Tensor:
    if vis is None:
        return torch.ones(kp.shape[:-1], dtype=torch.bool, device=kp.device)
    v = torch.as_tensor(vis, device=kp.device)
    return v > 0.5 if v.dtype.is_floating_point else v.bool()


def akd(kp_a, kp_b, vis_a=None, vis_b=None) -> torch.Tensor:
    """Average keypoint distance: mean Euclidean distance over keypoints visible in both sets.

    Args:
        kp_a, kp_b: ``B,K,2`` keypoints (same units, e.g. pixels).
        vis_a, vis_b: optional ``B,K`` visibilities (bool or confidences > 0.5).
    Returns:
        ``B`` tensor (NaN for an item with no keypoint visible in both).
    """
    a, b = torch.as_tensor(kp_a, dtype=torch.float32), torch.as_tensor(kp_b, dtype=torch.float32)
    if a.shape != b.shape or a.dim() != 3 or a.shape[-1] != 2:
        raise ValueError(f"akd: expected two B,K,2 keypoint sets, got {tuple(a.shape)} and {tuple(b.shape)}")
    both = _vis(a, vis_a) & _vis(b, vis_b)
    d = (a - b).norm(dim=-1)
    n = both.sum(1)
    out = (d * both).sum(1) / n.clamp_min(1)
    return torch.where(n > 0, out, torch.full_like(out, float("nan")))


def mkr(vis_gt, vis_pred) -> torch.Tensor:
    """Missing keypoint rate: fraction of keypoints visible in ``vis_gt`` but not in ``vis_pred``
    (per item, ``B``)."""
    g = torch.as_tensor(vis_gt)
    g = g > 0.5 if g.dtype.is_floating_point else g.bool()
    p = torch.as_tensor(vis_pred)
    p = p > 0.5 if p.dtype.is_floating_point else p.bool()
    return ((g & ~p).sum(1).float() / g.sum(1).clamp_min(1).float())


def color_histogram_embedding(images: torch.Tensor, bins: int = 8) -> torch.Tensor:
    """A simple, weight-free identity embedding: the L2-normalised joint RGB histogram
    (``bins^3`` soft bins) of each image ``B,3,H,W`` in [0,1].

    It captures clothing/skin/background colours, not facial identity; it is the documented
    default of :func:`acd` when no face-recognition network is available. Pass a real
    embedding (e.g. a face-recognition or re-identification network) for paper-grade ACD.
    """
    x = images.float().clamp(0, 1) * (bins - 1)
    b = x.shape[0]
    lo = x.floor().clamp(max=bins - 2) if bins > 1 else x.floor()
    fr = x - lo
    lo = lo.long()
    hist = torch.zeros(b, bins**3, device=images.device)
    # trilinear soft binning: 8 corners
    for dr in (0, 1):
        for dg in (0, 1):
            for db in (0, 1):
                w = ((fr[:, 0] if dr else 1 - fr[:, 0]) * (fr[:, 1] if dg else 1 - fr[:, 1])
                     * (fr[:, 2] if db else 1 - fr[:, 2]))
                idx = ((lo[:, 0] + dr) * bins + (lo[:, 1] + dg)) * bins + (lo[:, 2] + db)
                hist.scatter_add_(1, idx.flatten(1), w.flatten(1))
    return hist / hist.norm(dim=1, keepdim=True).clamp_min(1e-12)


def acd(images_a: torch.Tensor, images_b: torch.Tensor,
        embed: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Average (identity) content distance: Euclidean distance between embeddings per pair.

    Args:
        images_a, images_b: ``B,3,H,W`` in [0,1] (e.g. generated frame vs source identity).
        embed: callable ``B,3,H,W -> B,D``; default :func:`color_histogram_embedding`.
    Returns:
        ``B`` tensor; average it over frames/videos for the reported ACD.
    """
    if images_a.shape != images_b.shape:
        raise ValueError(f"acd: shapes differ: {tuple(images_a.shape)} vs {tuple(images_b.shape)}")
    fn = embed or color_histogram_embedding
    with torch.no_grad():
        ea, eb = fn(images_a), fn(images_b)
    return (ea.float() - eb.float()).flatten(1).norm(dim=1)
