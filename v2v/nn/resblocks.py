"""Pre-activation residual blocks (BigGAN / SNGAN / DVD-GAN style), 2-D or 3-D.

``ResBlock`` (pre-activation)::

    h   = conv1(act(norm1(conv0(up(act(norm0(x)))))))     -> down(h)
    out = down(h) + down(conv_sc(up(x)))                  (conv_sc = 1x1, only when learnable)

``up`` is nearest x2 (``resample="up"``), ``down`` is ``avg_pool`` 2 (``resample="down"``; in 3-D
over time and space unless ``down_time=False``). ``first=True`` is the "optimized" first block of
a discriminator that sees the image directly: no activation before ``conv0`` and the shortcut is
``conv_sc(down(x))`` (BigGAN's ``OptimizedBlock``, DVD-GAN's ``pre_conv``/``pre_skip``).

Parameter names: ``conv0``, ``conv1``, ``conv_sc``, ``norm0``, ``norm1`` (absent norms are
``nn.Identity``, so they hold no keys). With ``spectral=True`` every conv is spectrally normalized
(:func:`v2v.nn.spectral_norm.spectral_norm`, keys ``conv0.parametrizations.weight.original`` ...).

Inputs: feature maps ``B,C,H,W`` (``dim=2``) or ``B,C,T,H,W`` (``dim=3``).

``ResnetBlock`` (the post-activation pix2pixHD/vid2vid block ``x + conv_block(x)``) lives in
:mod:`v2v.nn.pix2pixhd` with the official key layout; it is re-exported here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from v2v.nn.norms import get_norm_layer
from v2v.nn.pix2pixhd import ResnetBlock
from v2v.nn.spectral_norm import spectral_norm as _sn

__all__ = ["ResBlock", "ResnetBlock", "get_activation"]


def get_activation(name: str | None, negative_slope: float = 0.2) -> nn.Module:
    """Activation module by name.

    Args:
        name: ``relu``, ``lrelu``/``leaky_relu``, ``tanh``, ``sigmoid``, ``gelu``, ``silu``,
            ``none`` (or None).
        negative_slope: for leaky ReLU (0.2).

    Returns:
        the module.

    Example:
        >>> get_activation("lrelu")
        LeakyReLU(negative_slope=0.2)
    """
    key = (name or "none").lower()
    if key == "relu":
        return nn.ReLU()
    if key in ("lrelu", "leaky_relu", "leakyrelu"):
        return nn.LeakyReLU(negative_slope)
    table = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU, "none": nn.Identity}
    if key not in table:
        raise ValueError(f"unknown activation {name!r}")
    return table[key]()


class ResBlock(nn.Module):
    """Pre-activation residual block; see the module docstring.

    Args:
        in_channels, out_channels: channels (``out_channels`` defaults to ``in_channels``).
        resample: ``None`` (same size), ``"up"`` (nearest x2 before conv0 and on the shortcut)
            or ``"down"`` (avg-pool 2 after conv1 and on the shortcut).
        norm: norm layer name (``none`` default; ``batch``, ``instance`` ...), before each act.
        act: activation name (``relu`` default).
        dim: 2 (``B,C,H,W``) or 3 (``B,C,T,H,W``).
        hidden_channels: width of conv0's output (default ``out_channels``).
        kernel_size: of conv0/conv1 (padding ``k // 2``).
        spectral: spectral-normalize every conv.
        learnable_sc: 1x1 conv on the shortcut; default when channels change or resampling.
        first: "optimized" first block (no pre-activation; shortcut pools before the 1x1 conv).
        down_time: in 3-D, also pool over time when downsampling.

    Example:
        >>> ResBlock(8, 16, resample="down")(torch.rand(1, 8, 8, 8)).shape
        torch.Size([1, 16, 4, 4])
        >>> ResBlock(4, 4, resample="down", dim=3)(torch.rand(1, 4, 4, 8, 8)).shape
        torch.Size([1, 4, 2, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, resample: str | None = None,
                 norm: str | None = "none", act: str = "relu", dim: int = 2, hidden_channels: int | None = None,
                 kernel_size: int = 3, spectral: bool = False, learnable_sc: bool | None = None,
                 first: bool = False, down_time: bool = True, bias: bool = True):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        hidden = out_channels if hidden_channels is None else hidden_channels
        if resample not in (None, "none", "up", "down"):
            raise ValueError(f"resample must be None, 'up' or 'down', got {resample!r}")
        self.resample = None if resample == "none" else resample
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        self.dim = dim
        self.first = first
        self.down_time = down_time
        conv = nn.Conv2d if dim == 2 else nn.Conv3d
        wrap = _sn if spectral else (lambda m: m)
        pad = kernel_size // 2
        self.norm0 = nn.Identity() if first else get_norm_layer(norm, in_channels, dim=dim)
        self.act0 = nn.Identity() if first else get_activation(act)
        self.conv0 = wrap(conv(in_channels, hidden, kernel_size, padding=pad, bias=bias))
        self.norm1 = get_norm_layer(norm, hidden, dim=dim)
        self.act1 = get_activation(act)
        self.conv1 = wrap(conv(hidden, out_channels, kernel_size, padding=pad, bias=bias))
        if learnable_sc is None:
            learnable_sc = in_channels != out_channels or self.resample is not None
        if not learnable_sc and in_channels != out_channels:
            raise ValueError("an identity shortcut needs in_channels == out_channels")
        self.conv_sc = wrap(conv(in_channels, out_channels, 1, bias=True)) if learnable_sc else None

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        if self.dim == 2:
            return F.avg_pool2d(x, 2)
        return F.avg_pool3d(x, 2 if self.down_time else (1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act0(self.norm0(x))
        if self.resample == "up":
            h = self._up(h)
        h = self.conv1(self.act1(self.norm1(self.conv0(h))))
        if self.resample == "down":
            h = self._down(h)
        s = x
        if self.first:
            if self.resample == "down":
                s = self._down(s)
            if self.conv_sc is not None:
                s = self.conv_sc(s)
            return h + s
        if self.resample == "up":
            s = self._up(s)
        if self.conv_sc is not None:
            s = self.conv_sc(s)
        if self.resample == "down":
            s = self._down(s)
        return h + s
