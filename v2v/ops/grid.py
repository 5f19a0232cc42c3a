"""Coordinate grids and conversions between pixel and normalized coordinates.

Conventions (used across v2v):

* Grids are ``(H, W, 2)`` tensors whose last dimension is ``(x, y)`` — x first (column, to the
  right), then y (row, down) — the layout ``torch.nn.functional.grid_sample`` expects.
* Pixel coordinates: pixel ``(i, j)`` (row i, column j) has its centre at ``x = j, y = i``.
* Normalized coordinates lie in [-1, 1]:

  - ``align_corners=True``: -1 and +1 are the *centres* of the corner pixels,
    ``x = 2 * j / (W - 1) - 1`` (FOMM, vid2vid, keypoints in v2v).
  - ``align_corners=False``: -1 and +1 are the outer *edges* of the corner pixels,
    ``x = (2 * j + 1) / W - 1``.

  For a size-1 axis with ``align_corners=True`` the only pixel sits at 0.
"""

from __future__ import annotations

import torch

from v2v.ops._check import check_shape

__all__ = ["make_grid", "norm_to_pixel", "pixel_grid", "pixel_to_norm"]


def _axis_norm(n: int, align_corners: bool, device, dtype) -> torch.Tensor:
    # Computed in the working dtype (at least float32) in the same operation order as FOMM's
    # make_coordinate_grid, so grids match the official ones bit for bit.
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    idx = torch.arange(n, device=device, dtype=work)
    if align_corners:
        v = 2 * (idx / (n - 1)) - 1 if n > 1 else torch.zeros_like(idx)
    else:
        v = (2 * idx + 1) / n - 1
    return v.to(dtype)


def make_grid(h: int, w: int, align_corners: bool = True, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalized sampling grid of shape ``(H, W, 2)``, last dim ``(x, y)`` in [-1, 1].

    ``align_corners=True``: ``x = 2*j/(W-1) - 1`` (corner pixel centres at ±1);
    ``align_corners=False``: ``x = (2*j+1)/W - 1``. Same for y with i and H.

    Args:
        h, w: grid height and width in pixels (>= 1).
        align_corners: the normalization convention (see the module docstring).
        device, dtype: of the result.

    Returns:
        ``(H, W, 2)`` tensor, ``grid[i, j] = (x_j, y_i)``, ready for ``grid_sample``.

    Example:
        >>> make_grid(2, 3)[..., 0]
        tensor([[-1.,  0.,  1.],
                [-1.,  0.,  1.]])
    """
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f"make_grid: size must be >= 1, got {h}x{w}")
    x = _axis_norm(int(w), align_corners, device, dtype)
    y = _axis_norm(int(h), align_corners, device, dtype)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def pixel_grid(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-coordinate grid of shape ``(H, W, 2)`` with ``grid[i, j] = (j, i)`` (x first).

    Args:
        h, w: grid height and width in pixels (>= 1).
        device, dtype: of the result.

    Returns:
        ``(H, W, 2)`` tensor of pixel-centre coordinates (x = column, y = row).

    Example:
        >>> pixel_grid(2, 2)[1, 0]
        tensor([0., 1.])
    """
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f"pixel_grid: size must be >= 1, got {h}x{w}")
    x = torch.arange(int(w), device=device, dtype=dtype)
    y = torch.arange(int(h), device=device, dtype=dtype)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def _sizes(size_hw, like: torch.Tensor):
    h, w = int(size_hw[0]), int(size_hw[1])
    return torch.tensor(
        [w, h], dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device
    )


def pixel_to_norm(xy: torch.Tensor, size_hw, align_corners: bool = True) -> torch.Tensor:
    """Convert pixel coordinates ``(..., 2)`` (x, y) to normalized [-1, 1] coordinates.

    ``align_corners=True``: ``n = 2 p / (S - 1) - 1`` (size-1 axes map to 0);
    ``align_corners=False``: ``n = (2 p + 1) / S - 1``.

    Args:
        xy: pixel coordinates ``(..., 2)``, x first.
        size_hw: ``(H, W)`` of the image the coordinates refer to.
        align_corners: the normalization convention.

    Returns:
        ``(..., 2)`` normalized coordinates (float).

    Example:
        >>> pixel_to_norm(torch.tensor([[4., 0.]]), (5, 9))
        tensor([[ 0., -1.]])
    """
    check_shape(xy, "*,2", "pixel_to_norm: xy")
    s = _sizes(size_hw, xy)
    xy = xy.to(s.dtype)
    if align_corners:
        denom = torch.clamp(s - 1, min=1)
        out = 2.0 * xy / denom - 1.0
        return torch.where(s > 1, out, torch.zeros_like(out))
    return (2.0 * xy + 1.0) / s - 1.0


def norm_to_pixel(xy: torch.Tensor, size_hw, align_corners: bool = True) -> torch.Tensor:
    """Convert normalized [-1, 1] coordinates ``(..., 2)`` (x, y) to pixel coordinates.

    Inverse of :func:`pixel_to_norm`: ``align_corners=True``: ``p = (n + 1) (S - 1) / 2``;
    ``align_corners=False``: ``p = ((n + 1) S - 1) / 2``.

    Args: as :func:`pixel_to_norm`, with ``xy`` normalized. Returns ``(..., 2)`` pixel
    coordinates (float).

    Example:
        >>> norm_to_pixel(torch.tensor([[0., -1.]]), (5, 9))
        tensor([[4., 0.]])
    """
    check_shape(xy, "*,2", "norm_to_pixel: xy")
    s = _sizes(size_hw, xy)
    xy = xy.to(s.dtype)
    if align_corners:
        return (xy + 1.0) * (s - 1) / 2.0
    return ((xy + 1.0) * s - 1.0) / 2.0
