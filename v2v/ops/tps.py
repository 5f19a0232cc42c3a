"""Thin-plate-spline image warps through kornia.

:func:`tps_warp` moves image content from control points ``points_src`` to ``points_dst`` (both
``B,K,2`` in normalized [-1,1] coordinates, x first, in the ``align_corners`` convention given),
using kornia's TPS solver (``kornia.geometry.transform.get_tps_transform``) and sampler
(``warp_image_tps``). FOMM's equivariance loss uses its own TPS flavour (L1-distance radial basis,
``v2v.ops.keypoints.RandomTPS``) for parity with the official code; this is the general-purpose one.
"""
from __future__ import annotations

import torch
from kornia.geometry.transform import get_tps_transform, warp_image_tps

__all__ = ["tps_warp"]


def tps_warp(image: torch.Tensor, points_src: torch.Tensor, points_dst: torch.Tensor,
             align_corners: bool = True, padding_mode: str = "zeros") -> torch.Tensor:
    """Warp ``image`` (``B,C,H,W``) so that what was at ``points_src`` lands at ``points_dst``.

    Control points: ``B,K,2`` normalized [-1,1], x first (K >= 3, not all collinear). The output
    pixel p samples the input at TPS(p), where TPS maps each destination point onto its source
    point exactly. Bilinear sampling, ``padding_mode`` as in ``grid_sample``.

    Args:
        image: ``B,C,H,W`` float.
        points_src, points_dst: ``B,K,2`` control points, normalized [-1, 1], x first.
        align_corners: the normalization convention of the points.
        padding_mode: as in ``grid_sample``.

    Returns:
        ``B,C,H,W`` warped image.

    Example:
        >>> pts = torch.tensor([[[-1., -1.], [1., -1.], [-1., 1.], [1., 1.]]])
        >>> img = torch.rand(1, 1, 5, 5)
        >>> torch.allclose(tps_warp(img, pts, pts), img, atol=1e-4)   # same points: identity
        True
    """
    if points_src.shape != points_dst.shape or points_src.dim() != 3 or points_src.shape[-1] != 2:
        raise ValueError(f"tps_warp: control points must both be B,K,2; got {tuple(points_src.shape)} "
                         f"and {tuple(points_dst.shape)}")
    kernel_weights, affine_weights = get_tps_transform(points_dst, points_src)
    # kornia pairs these weights with the source points as kernel centres (checked by the tests:
    # every destination control point samples exactly its source point)
    return warp_image_tps(image, points_src, kernel_weights, affine_weights, align_corners=align_corners,
                          padding_mode=padding_mode)
