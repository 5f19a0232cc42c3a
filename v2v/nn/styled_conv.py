"""StyleGAN2 style-modulated layers (rosinality-port layout) on top of :mod:`v2v.ops.modconv`.

- :class:`ModulatedConv2d`: ``s = style @ (W_mod / sqrt(style_dim))^T + b_mod`` (equalized-lr
  affine, bias init 1), ``w = W / sqrt(Cin*k*k) * s``, optional demodulation
  ``w *= rsqrt(sum_{cin,kh,kw} w^2 + 1e-8)``, optional x2 upsampling (transposed stride-2 conv
  then the FIR blur ``[1,3,3,1]`` with gain 4, as StyleGAN2).
- :class:`StyledConv`: modulated conv then ``leaky_relu(x + bias, 0.2) * sqrt(2)`` (StyleGAN2's
  ``FusedLeakyReLU``). No noise injection (a generator that wants noise adds it itself).
- :class:`ToRGB`: modulated 1x1 conv without demodulation, plus a ``(1, C, 1, 1)`` bias.
- :class:`ConstantInput`: a learned ``(1, C, L, L)`` tensor repeated over the batch.

Two numerically equivalent formulations of the modulated conv (``fused=``):

- ``True`` ("grouped", the official one): one per-sample weight, a grouped conv with
  ``groups = batch`` (:func:`v2v.ops.modconv.modulated_conv2d`);
- ``False`` ("batched", StyleGAN2's ``fused_modconv=False``): scale the input channels by ``s``,
  one ordinary conv with the shared weight over the whole batch, scale the output channels by the
  demodulation factors ``rsqrt((W^2 summed over k) @ s^2 + eps)``. Same result up to float
  rounding, and much faster on CPU (one large conv instead of ``batch`` small ones).

Parameter names follow the rosinality StyleGAN2 port (``conv.weight (1,Cout,Cin,k,k)``,
``conv.modulation.weight/bias``, ``activate.bias``, ToRGB ``conv.*`` + ``bias``), so such weights
load by name. The FIR kernel is a non-persistent buffer (not in the state dict).
Inputs: features ``N,C,H,W`` and styles ``N,style_dim``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from v2v.ops.modconv import DEFAULT_FIR, make_kernel, modulated_conv2d, upfirdn2d

__all__ = ["ConstantInput", "EqualLinear", "ModulatedConv2d", "StyledConv", "ToRGB"]


class EqualLinear(nn.Module):
    """Equalized-learning-rate linear layer: ``x @ (W * lr_mul / sqrt(in))^T + b * lr_mul``."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution; see the module docstring.

    Args:
        in_channels, out_channels, kernel_size: as a Conv2d (padding ``k // 2``, no bias).
        style_dim: width of the style vector.
        demodulate: normalize each output filter (StyledConv) or not (ToRGB).
        upsample: x2 upsampling (transposed conv + FIR blur).
        fused: grouped per-sample conv (True) or the batched input-scaling formulation (False).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, fused: bool = False,
                 blur_kernel=DEFAULT_FIR):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.upsample, self.fused = demodulate, upsample, fused
        self.eps = 1e-8
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.blur_kernel = tuple(blur_kernel)
        if upsample:
            self.register_buffer("blur", make_kernel(blur_kernel) * 4, persistent=False)

    def _blur_pad(self) -> tuple[int, int]:
        p = (len(self.blur_kernel) - 2) - (self.kernel_size - 1)
        return (p + 1) // 2 + 1, p // 2 + 1

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ModulatedConv2d: expected N,{self.in_channels},H,W input, got {tuple(x.shape)}")
        s = self.modulation(style)  # N, Cin
        w = self.weight[0] * self.scale  # Cout, Cin, k, k
        if self.fused:
            return modulated_conv2d(x, w, s, demodulate=self.demodulate, up=2 if self.upsample else 1,
                                    eps=self.eps, blur_kernel=self.blur_kernel)
        xs = x * s.to(x.dtype)[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(xs, w.transpose(0, 1), stride=2)
        else:
            out = F.conv2d(xs, w, padding=self.kernel_size // 2)
        if self.demodulate:
            d = torch.rsqrt(s.pow(2) @ w.pow(2).sum([2, 3]).t() + self.eps)  # N, Cout
            out = out * d.to(out.dtype)[:, :, None, None]
        if self.upsample:
            out = upfirdn2d(out, self.blur, pad=self._blur_pad())
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, demodulate={self.demodulate}, "
                f"upsample={self.upsample}, fused={self.fused}")


class StyledConv(nn.Module):
    """Modulated conv + biased leaky ReLU (slope 0.2, gain sqrt 2); no noise. Names ``conv``, ``activate.bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, demodulate: bool = True, fused: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate, upsample, fused)
        self.activate = _BiasLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.activate(self.conv(x, style))


class _BiasLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to ``out_channels`` without demodulation, plus bias ``(1, C, 1, 1)``."""

    def __init__(self, in_channels: int, style_dim: int, out_channels: int = 3, fused: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, style_dim, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.conv(x, style) + self.bias


class ConstantInput(nn.Module):
    """A learned constant ``(1, C, size, size)`` (parameter ``input``) repeated to the batch size."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)
