"""Gaussian kernels, anti-aliased downsampling (FOMM) and image pyramids.

All functions take ``B,C,H,W`` float tensors (images are [0,1] by convention; any range works)
and are depthwise (each channel filtered on its own).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._check import check_shape

__all__ = [
    "AntiAliasDownsample",
    "antialias_downsample",
    "antialias_params",
    "gaussian_kernel2d",
    "gaussian_pyramid",
    "image_pyramid",
]


def gaussian_kernel2d(kernel_size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalized 2-D gaussian ``(k, k)``: ``exp(-(x-m)^2/(2 s^2)) * exp(-(y-m)^2/(2 s^2))``.

    Taps are at ``arange(k)`` with mean ``m = (k-1)/2``; the kernel sums to 1. Computed exactly
    as FOMM's ``AntiAliasInterpolation2d`` does (float32 arithmetic by default).

    Args:
        kernel_size: k (>= 1).
        sigma: standard deviation in pixels.
        dtype, device: of the result.

    Returns:
        ``(k, k)`` kernel summing to 1.

    Example:
        >>> round(gaussian_kernel2d(3, 1.0).sum().item(), 6)
        1.0
    """
    k = int(kernel_size)
    if k < 1:
        raise ValueError(f"gaussian_kernel2d: kernel_size must be >= 1, got {kernel_size}")
    mgrid = torch.meshgrid(
        torch.arange(k, dtype=torch.float32), torch.arange(k, dtype=torch.float32), indexing="ij"
    )
    kernel = torch.ones(k, k, dtype=torch.float32)
    mean = (k - 1) / 2
    for g in mgrid:
        kernel = kernel * torch.exp(-((g - mean) ** 2) / (2 * float(sigma) ** 2))
    kernel = kernel / torch.sum(kernel)
    return kernel.to(device=device, dtype=dtype)


def antialias_params(scale: float):
    """``(sigma, kernel_size, ka, kb, stride)`` FOMM uses for downsampling by ``scale`` (< 1).

    ``sigma = (1/scale - 1)/2``, ``kernel_size = 2*round(4*sigma) + 1``, ``ka = k//2``,
    ``kb = ka - 1`` if k is even else ``ka``, ``stride = int(1/scale)``.

    Args:
        scale: downsampling factor in (0, 1).

    Returns:
        ``(sigma, kernel_size, ka, kb, stride)``.

    Example:
        >>> antialias_params(0.25)
        (1.5, 13, 6, 6, 4)
    """
    if not 0 < scale < 1:
        raise ValueError(f"antialias_params: scale must be in (0, 1), got {scale}")
    sigma = (1 / scale - 1) / 2
    kernel_size = 2 * round(sigma * 4) + 1
    ka = kernel_size // 2
    kb = ka - 1 if kernel_size % 2 == 0 else ka
    return sigma, kernel_size, ka, kb, int(1 / scale)


def _antialias_weight(channels: int, scale: float, dtype=torch.float32, device=None) -> torch.Tensor:
    sigma, k, _, _, _ = antialias_params(scale)
    kern = gaussian_kernel2d(k, sigma)
    return kern.view(1, 1, k, k).repeat(channels, 1, 1, 1).to(device=device, dtype=dtype)


def _antialias_apply(x: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    _, _, ka, kb, stride = antialias_params(scale)
    out = F.pad(x, (ka, kb, ka, kb))
    out = F.conv2d(out, weight=weight.to(x.dtype), groups=x.shape[1])
    return out[:, :, ::stride, ::stride]


def antialias_downsample(x: torch.Tensor, scale: float) -> torch.Tensor:
    """FOMM's ``AntiAliasInterpolation2d``: gaussian blur (zero padding) then stride ``int(1/scale)``.

    ``x``: ``B,C,H,W``. Returns ``B,C,ceil(H*scale),ceil(W*scale)`` for ``1/scale`` integer;
    identity (same tensor) when ``scale == 1``. Bit-compatible with the official module
    (zero padding darkens the border; the interior of a constant image stays constant).

    Args:
        x: ``B,C,H,W`` float.
        scale: in (0, 1], ``1/scale`` an integer.

    Returns:
        ``B,C,ceil(H*scale),ceil(W*scale)``.

    Example:
        >>> antialias_downsample(torch.ones(1, 3, 64, 64), 0.25).shape
        torch.Size([1, 3, 16, 16])
    """
    check_shape(x, "B,C,H,W", "antialias_downsample: x")
    if scale == 1.0:
        return x
    if not 0 < scale < 1:
        raise ValueError(f"antialias_downsample: scale must be in (0, 1], got {scale}")
    w = _antialias_weight(x.shape[1], scale, dtype=x.dtype, device=x.device)
    return _antialias_apply(x, w, scale)


class AntiAliasDownsample(nn.Module):
    """Module form of :func:`antialias_downsample`.

    The kernel is a buffer named ``weight`` of shape ``(C, 1, k, k)`` (official FOMM checkpoints
    store it under ``...down.weight``), so official state dicts load directly.

    Args:
        channels: C of the input.
        scale: in (0, 1].

    Example:
        >>> AntiAliasDownsample(3, 0.5)(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.channels = int(channels)
        self.scale = float(scale)
        if not 0 < self.scale <= 1:
            raise ValueError(f"AntiAliasDownsample: scale must be in (0, 1], got {scale}")
        k = antialias_params(self.scale)[1] if self.scale != 1.0 else 1
        if self.scale == 1.0:
            weight = torch.ones(self.channels, 1, 1, 1)
        else:
            weight = _antialias_weight(self.channels, self.scale)
        assert weight.shape[-1] == k
        self.register_buffer("weight", weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``B,C,H,W`` -> ``B,C,ceil(H*scale),ceil(W*scale)``."""
        if self.scale == 1.0:
            return x
        return _antialias_apply(x, self.weight, self.scale)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, scale={self.scale}"


def image_pyramid(x: torch.Tensor, scales) -> dict:
    """``{scale: antialias_downsample(x, scale)}`` for each scale (FOMM's ImagePyramide).

    Args:
        x: ``B,C,H,W``.
        scales: iterable of scales in (0, 1].

    Returns:
        dict keyed by the float scales as given (1 gives ``x`` itself).

    Example:
        >>> {k: v.shape[-1] for k, v in image_pyramid(torch.rand(1, 3, 8, 8), [1, 0.5]).items()}
        {1.0: 8, 0.5: 4}
    """
    check_shape(x, "B,C,H,W", "image_pyramid: x")
    return {float(s): antialias_downsample(x, float(s)) for s in scales}


_BINOMIAL5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list:
    """Gaussian pyramid: ``[x, down(x), down(down(x)), ...]`` with ``levels`` entries.

    Each step blurs with the separable 5-tap binomial kernel ``[1,4,6,4,1]/16`` (reflect
    padding, as OpenCV's ``pyrDown``) and keeps every second pixel: ``H -> ceil(H/2)``.
    Levels stop early if a side would drop below 1 pixel.

    Args:
        x: ``B,C,H,W``.
        levels: number of entries wanted (>= 1).

    Returns:
        list of ``B,C,H_l,W_l`` tensors, finest first.

    Example:
        >>> [t.shape[-1] for t in gaussian_pyramid(torch.rand(1, 1, 9, 9), 3)]
        [9, 5, 3]
    """
    check_shape(x, "B,C,H,W", "gaussian_pyramid: x")
    if levels < 1:
        raise ValueError(f"gaussian_pyramid: levels must be >= 1, got {levels}")
    k1 = torch.tensor(_BINOMIAL5, dtype=x.dtype, device=x.device) / 16.0
    c = x.shape[1]
    kh = k1.view(1, 1, 1, 5).repeat(c, 1, 1, 1)
    kv = k1.view(1, 1, 5, 1).repeat(c, 1, 1, 1)
    out = [x]
    cur = x
    for _ in range(levels - 1):
        h, w = cur.shape[-2:]
        if h < 2 and w < 2:
            break
        mode = "reflect" if min(h, w) > 2 else "replicate"
        y = F.pad(cur, (2, 2, 2, 2), mode=mode)
        y = F.conv2d(F.conv2d(y, kh, groups=c), kv, groups=c)
        cur = y[:, :, ::2, ::2]
        out.append(cur)
    return out
