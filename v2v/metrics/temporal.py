"""Temporal consistency: warping error with respect to a (ground-truth) backward flow."""
from __future__ import annotations

import torch

__all__ = ["warp_error"]


def warp_error(frames: torch.Tensor, flow_prev: torch.Tensor, occ_prev: torch.Tensor | None = None,
               reduction: str = "mean") -> torch.Tensor:
    """Mean absolute warping error of a video against its backward flow to the previous frame.

    ``E = mean_t  sum_p m_t(p) |frame_t(p) - warp(frame_{t-1}, flowprev_t)(p)| / (C sum_p m_t(p))``
    for ``t = 1..T-1``, with ``m_t = 1 - occ_prev_t`` (all ones when ``occ_prev`` is None).
    With the ground-truth flow of the *real* video (e.g. toycity's ``flowprev``), this measures
    how well a generated video follows the true motion; a perfect, temporally consistent result
    gets about the warping error of the real video itself (close to 0).

    Args:
        frames: video ``B,T,C,H,W`` in [0,1].
        flow_prev: ``B,T-1,2,H,W`` pixel backward flows, entry ``t-1`` for frame ``t``:
            ``frame_t(p) ≈ frame_{t-1}(p + flow(p))`` (x first).
        occ_prev: optional ``B,T-1,1,H,W`` (or ``B,T-1,H,W``) masks in [0,1], 1 = occluded /
            flow invalid (excluded).
        reduction: ``"mean"`` -> ``B`` tensor (mean over t); ``"none"`` -> ``B,T-1``.
    Uses :func:`v2v.ops.warp.warp` (bilinear, align_corners=True, border padding).
    """
    from v2v.ops.warp import warp

    if frames.dim() != 5:
        raise ValueError(f"warp_error: frames must be B,T,C,H,W, got {tuple(frames.shape)}")
    B, T, C, H, W = frames.shape
    if T < 2:
        raise ValueError("warp_error: need at least 2 frames")
    if tuple(flow_prev.shape) != (B, T - 1, 2, H, W):
        raise ValueError(f"warp_error: flow_prev must be {(B, T - 1, 2, H, W)}, got {tuple(flow_prev.shape)}")
    prev = frames[:, :-1].reshape(B * (T - 1), C, H, W)
    cur = frames[:, 1:].reshape(B * (T - 1), C, H, W)
    fl = flow_prev.reshape(B * (T - 1), 2, H, W).to(frames.dtype)
    warped = warp(prev, fl, padding_mode="border", align_corners=True)
    err = (cur - warped).abs().mean(1, keepdim=True)  # B*(T-1),1,H,W
    if occ_prev is None:
        valid = torch.ones_like(err)
    else:
        valid = 1.0 - occ_prev.reshape(B * (T - 1), 1, H, W).to(err.dtype)
    per = (err * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1e-8)
    per = per.view(B, T - 1)
    if reduction == "none":
        return per
    if reduction != "mean":
        raise ValueError(f"warp_error: reduction must be 'mean' or 'none', got {reduction!r}")
    return per.mean(1)
