"""Warping by a flow in normalized grid units (Img2Vid / seg2vid ``flowwrapper``).

seg2vid's flows are displacements in ``grid_sample`` units (``[-1, 1]`` spans the image between
the centres of the corner pixels) and are *subtracted* from the base grid::

    out(p) = image(p - flow(p))     bilinear, zeros outside the image, align_corners=True

In v2v's pixel convention (:mod:`v2v.ops.warp`) that is the backward pixel flow
``-flow * ((W - 1) / 2, (H - 1) / 2)``: see :func:`norm_flow_to_pixels`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["norm_flow_to_pixels", "norm_flow_warp"]


def _base_grid(h: int, w: int, device, dtype) -> torch.Tensor:
    xs = torch.linspace(-1, 1, w, device=device, dtype=dtype) if w > 1 else torch.full((1,), -1.0, device=device,
                                                                                          dtype=dtype)
    ys = torch.linspace(-1, 1, h, device=device, dtype=dtype) if h > 1 else torch.full((1,), -1.0, device=device,
                                                                                          dtype=dtype)
    return torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], -1)


def norm_flow_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` at ``base_grid - flow`` (official seg2vid ``flowwrapper``).

    Args:
        image: ``B,C,H,W`` float.
        flow: ``B,2,H,W`` displacement in normalized units (channel 0 = x, 1 = y).

    Returns:
        ``B,C,H,W``: ``grid_sample(image, base - flow, bilinear, zeros, align_corners=True)``.

    Example:
        >>> img = torch.rand(1, 3, 8, 8)
        >>> torch.allclose(norm_flow_warp(img, torch.zeros(1, 2, 8, 8)), img, atol=1e-6)
        True
    """
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"norm_flow_warp: expected image B,C,H,W and flow B,2,H,W of the same size, got "
                         f"{tuple(image.shape)} and {tuple(flow.shape)}")
    h, w = image.shape[-2:]
    grid = _base_grid(h, w, image.device, flow.dtype).unsqueeze(0) - flow.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def norm_flow_to_pixels(flow: torch.Tensor) -> torch.Tensor:
    """Normalized seg2vid flow ``B,2,H,W`` -> v2v backward pixel flow (``out(p) = img(p + f(p))``)."""
    h, w = flow.shape[-2:]
    scale = flow.new_tensor([(w - 1) / 2.0, (h - 1) / 2.0]).view(1, 2, 1, 1)
    return -flow * scale
