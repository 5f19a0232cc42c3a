"""Occlusion estimation from a single flow by forward splatting (the "range map").

Wang et al., "Occlusion Aware Unsupervised Learning of Optical Flow" (CVPR 2018): splat a unit
mass from every pixel of frame b to where its flow lands in frame a; pixels of a that receive
(almost) nothing are not visible in b. Complements
:func:`v2v.ops.flow.fb_consistency_occlusion`, which needs both flow directions.
"""

from __future__ import annotations

import torch

from ._check import check_shape

__all__ = ["occlusion_from_range", "range_map"]


def range_map(flow: torch.Tensor) -> torch.Tensor:
    """Bilinear forward-splat count: ``B,2,H,W`` flow (pixels, x first) -> ``B,1,H,W``.

    Every pixel ``p`` of the flow's own frame sends mass 1 to ``p + flow(p)``, shared
    bilinearly among the 4 surrounding pixel centres; mass landing outside the image is dropped.
    A zero flow gives all ones. Differentiable w.r.t. ``flow`` (through the bilinear weights).

    Args:
        flow: ``B,2,H,W`` pixels, x first.

    Returns:
        ``B,1,H,W`` received mass per pixel (>= 0).

    Example:
        >>> range_map(torch.zeros(1, 2, 2, 2))[0, 0]
        tensor([[1., 1.],
                [1., 1.]])
    """
    check_shape(flow, "B,2,H,W", "range_map: flow")
    b, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    px = (xs + flow[:, 0]).reshape(b, -1)
    py = (ys + flow[:, 1]).reshape(b, -1)
    x0, y0 = torch.floor(px), torch.floor(py)
    fx, fy = px - x0, py - y0
    out = torch.zeros(b, h * w, device=flow.device, dtype=flow.dtype)
    for ix, iy, wt in (
        (x0, y0, (1 - fx) * (1 - fy)),
        (x0 + 1, y0, fx * (1 - fy)),
        (x0, y0 + 1, (1 - fx) * fy),
        (x0 + 1, y0 + 1, fx * fy),
    ):
        valid = (ix >= 0) & (ix <= w - 1) & (iy >= 0) & (iy <= h - 1)
        idx = (iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)).long()
        out = out.scatter_add(1, idx, wt * valid.to(wt.dtype))
    return out.view(b, 1, h, w)


def occlusion_from_range(flow_ba: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Occlusion mask of frame a from the flow ``f_ba`` (on frame b, pointing into a).

    ``flow_ba``: ``B,2,H,W`` pixels, x first. Returns float ``B,1,H,W`` on frame a: 1 where the
    splatted range map is below ``threshold`` (nothing of b lands there: a's pixel is occluded
    or out of view in b), else 0.

    Args:
        flow_ba: ``B,2,H,W`` pixels, x first.
        threshold: received mass below which a pixel is occluded.

    Returns:
        ``B,1,H,W`` float mask (1 = occluded).

    Example:
        >>> f = torch.zeros(1, 2, 1, 3); f[:, 0] = 1.0    # everything moves one pixel right
        >>> occlusion_from_range(f)[0, 0]
        tensor([[1., 0., 0.]])
    """
    return (range_map(flow_ba) < threshold).to(flow_ba.dtype)
