"""Temporal losses for video synthesis: flow-warp consistency and flow supervision.

Conventions: frames ``B,3,H,W`` in [0,1]; flow ``B,2,H,W`` in pixels, channel 0 = x (right),
channel 1 = y (down), backward: ``warp(img, flow)(p) = img(p + flow(p))``
(:func:`v2v.ops.warp.warp`); masks / confidences ``B,1,H,W`` in [0,1]. Videos ``B,T,C,H,W``.
"""
from __future__ import annotations

import torch

from v2v.losses.basic import l1_loss

__all__ = ["flow_loss", "video_warp_loss", "warp_loss"]


def warp_loss(frame: torch.Tensor, prev: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor | None = None,
              reduction: str = "masked", detach_prev: bool = False) -> torch.Tensor:
    """L1 between ``frame`` and ``prev`` warped to it by the backward ``flow`` (``frame -> prev``).

    ``mask`` (e.g. a non-occlusion confidence) weights the pixels; ``reduction`` as
    :func:`v2v.losses.basic.l1_loss` (``"mean"`` = vid2vid's MaskedL1Loss). A correct flow
    between two shifted copies of an image gives 0 away from the borders.
    """
    from v2v.ops.warp import warp

    if detach_prev:
        prev = prev.detach()
    return l1_loss(warp(prev, flow), frame, mask, reduction)


def video_warp_loss(video: torch.Tensor, flows: torch.Tensor, masks: torch.Tensor | None = None,
                    reduction: str = "masked") -> torch.Tensor:
    """Mean of :func:`warp_loss` over consecutive frames of ``video: B,T,C,H,W``.

    ``flows: B,T-1,2,H,W`` with ``flows[:, t]`` the backward flow from frame t+1 to frame t;
    ``masks: B,T-1,1,H,W`` or None.
    """
    t = video.shape[1]
    total = video.new_zeros(())
    for i in range(t - 1):
        m = None if masks is None else masks[:, i]
        total = total + warp_loss(video[:, i + 1], video[:, i], flows[:, i], m, reduction)
    return total / max(t - 1, 1)


def flow_loss(flow: torch.Tensor, flow_ref: torch.Tensor, conf: torch.Tensor | None = None,
              reduction: str = "mean") -> torch.Tensor:
    """L1 between a predicted and a reference flow (``B,2,H,W`` pixels), weighted by ``conf``.

    The default ``reduction="mean"`` is vid2vid's ``criterionFlow`` (MaskedL1Loss: mean over all
    elements of ``|flow - ref| * conf``).
    """
    return l1_loss(flow, flow_ref, conf, reduction)
