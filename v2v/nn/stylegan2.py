"""StyleGAN2 generator and discriminator in the rosinality (``stylegan2-pytorch``) parameter layout.

Shared by every system that needs a StyleGAN2 (MoCoGAN-HD renders videos through a frozen one;
``v2v.models.stylegan2`` trains one). Built from :func:`v2v.ops.modconv.modulated_conv2d` and
:func:`v2v.ops.modconv.upfirdn2d`, so files written by rosinality's ``train.py`` /
``convert_weight.py`` (``{'g_ema': state_dict, 'latent_avg': ...}``) load key for key.

Generator (Karras et al. 2020, Fig. 2d)::

    z (B,D) -> PixelNorm -> n_mlp x [EqualLinear(lr_mul) -> lrelu*sqrt2]  = w     (mapping)
    const 4x4 -> StyledConv(w) -> ToRGB(w) = skip
    for r in 8 .. size: StyledConv(up) -> StyledConv -> skip = ToRGB + upsample(skip)
    image = skip (no tanh, nominally [-1, 1])

Keys: ``style.{1..n_mlp}.{weight,bias}``, ``input.input``, ``conv1.*``, ``to_rgb1.*``,
``convs.{n}.{conv.weight, conv.modulation.{weight,bias}, conv.blur.kernel (even n), noise.weight,
activate.bias}``, ``to_rgbs.{j}.{conv.*, bias, upsample.kernel}``, ``noises.noise_{i}``.
Widths default to the official table (512 up to 32 px, then ``2**(14-log2 r) * channel_multiplier``);
``channels`` overrides it (small test models), and :func:`generator_config_from_state_dict` reads
all sizes back from a file's shapes.

``w`` may be ``(N, D)`` (one style for every layer, the MoCoGAN-HD case) or ``(N, n_latent, D)``.
``noise`` is a list of ``num_layers`` maps ``(N,1,r,r)`` (or ``None`` entries: no noise added).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.ops.modconv import make_kernel, modulated_conv2d, upfirdn2d, upsample2d

__all__ = [
    "ConstantInput", "EqualConv2d", "EqualLinear", "ModulatedConv2d", "StyleGAN2Discriminator",
    "StyleGAN2Generator", "StyledConv", "ToRGB", "default_channels", "fused_lrelu",
    "generator_config_from_state_dict", "load_generator_state_dict", "read_rosinality",
]

SQRT2 = math.sqrt(2.0)


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """The official width table ``{resolution: channels}`` (4..1024)."""
    cm = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm,
            1024: 16 * cm}


def fused_lrelu(x: torch.Tensor, bias: torch.Tensor | None = None, slope: float = 0.2,
                scale: float = SQRT2) -> torch.Tensor:
    """``leaky_relu(x + bias, slope) * scale`` with ``bias`` broadcast over dim 1 (StyleGAN2 ``fused_bias_act``).

    Args:
        x: ``N,C,...`` tensor.
        bias: ``(C,)`` or None.

    Returns:
        Tensor of ``x``'s shape.

    Example:
        >>> fused_lrelu(torch.tensor([[-1.0, 1.0]]), torch.zeros(2)).tolist()  # doctest: +ELLIPSIS
        [[-0.28284..., 1.41421...]]
    """
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x, slope) * scale


class PixelNorm(nn.Module):
    """``x * rsqrt(mean(x^2, dim=1) + 1e-8)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Equalized-lr linear: ``x @ (W * lr_mul / sqrt(in))^T + b * lr_mul`` (+ fused lrelu).

    Keys ``weight (out,in)``, ``bias (out,)``.

    Example:
        >>> EqualLinear(8, 4, bias_init=1.0)(torch.zeros(2, 8)).tolist()[0]
        [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_lrelu(F.linear(x, self.weight * self.scale), b)
        return F.linear(x, self.weight * self.scale, b)


class EqualConv2d(nn.Module):
    """Equalized-lr conv: weight ``(out,in,k,k) / sqrt(in*k*k)``; keys ``weight``, ``bias``."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class _Kernel(nn.Module):
    """Holds a FIR ``kernel`` buffer (rosinality ``Blur`` / ``Upsample`` keys); the math lives in ops."""

    def __init__(self, blur_kernel: Sequence[int], gain: float):
        super().__init__()
        self.register_buffer("kernel", make_kernel(blur_kernel) * gain)


def modulated_conv2d_batched(x: torch.Tensor, weight: torch.Tensor, style: torch.Tensor, demodulate: bool = True,
                             up: int = 1, eps: float = 1e-8, blur_kernel=(1, 3, 3, 1)) -> torch.Tensor:
    """Modulated conv with ONE shared weight: scale the input, convolve, scale the output.

    The "non-fused" formulation of StyleGAN2-ADA: ``conv(x * s, W) * d`` with
    ``d = rsqrt(sum_{cin,k}(W^2 s^2) + eps)``; mathematically equal to
    :func:`v2v.ops.modconv.modulated_conv2d` (grouped conv with per-sample weights), but a single
    dense conv over the batch (faster on CPUs when the batch is large).

    Args:
        x: ``B,Cin,H,W``; weight: ``Cout,Cin,k,k`` (lr-scaled); style: ``B,Cin``.
        up: 1 or 2 (transposed stride-2 conv + FIR blur, as the grouped version).

    Returns:
        ``B,Cout,H',W'``.

    Example:
        >>> x, w, s = torch.randn(2, 3, 8, 8), torch.randn(4, 3, 3, 3), torch.rand(2, 3) + 0.5
        >>> bool(torch.allclose(modulated_conv2d_batched(x, w, s), modulated_conv2d(x, w, s), atol=1e-5))
        True
    """
    b, cin = x.shape[:2]
    cout, _, kh, kw = weight.shape
    xs = x * style.view(b, cin, 1, 1).to(x.dtype)
    if up > 1:
        out = F.conv_transpose2d(xs, weight.transpose(0, 1), stride=up)
        k = make_kernel(blur_kernel, device=x.device, dtype=out.dtype) * (up**2)
        p = (k.shape[0] - up) - (kw - 1)
        out = upfirdn2d(out, k, pad=((p + 1) // 2 + up - 1, p // 2 + 1))
    else:
        out = F.conv2d(xs, weight, padding=kh // 2)
    if demodulate:
        d = torch.rsqrt(style.pow(2).to(weight.dtype) @ weight.pow(2).sum([2, 3]).t() + eps)  # B,Cout
        out = out * d.view(b, cout, 1, 1).to(out.dtype)
    return out


class ModulatedConv2d(nn.Module):
    """rosinality ``ModulatedConv2d``: keys ``weight (1,out,in,k,k)``, ``modulation.*`` (+ ``blur.kernel``).

    ``forward(x (B,Cin,H,W), w (B,D)) -> (B,Cout,H',W')``. ``fused=True`` (default) runs the grouped
    per-sample-weight conv (the official formulation), ``fused=False`` the batched one
    (:func:`modulated_conv2d_batched`); they agree to float rounding.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1), fused: bool = True):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.demodulate, self.upsample, self.fused = demodulate, upsample, fused
        self.blur_kernel = tuple(blur_kernel)
        if upsample:
            self.blur = _Kernel(blur_kernel, 4)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.modulation(w)
        weight = self.weight[0] * self.scale
        up = 2 if self.upsample else 1
        if self.fused:
            return modulated_conv2d(x, weight, style, self.demodulate, up=up, blur_kernel=self.blur_kernel)
        return modulated_conv2d_batched(x, weight, style, self.demodulate, up=up, blur_kernel=self.blur_kernel)


class NoiseInjection(nn.Module):
    """``x + weight * noise`` (key ``weight (1,)``); ``noise=None`` adds nothing."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return x if noise is None else x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    """Bias + lrelu(0.2) * sqrt(2) (key ``bias (C,)``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_lrelu(x, self.bias)


class StyledConv(nn.Module):
    """Modulated conv -> ``+ noise.weight * noise`` -> bias + lrelu * sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1), fused: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, True, upsample, blur_kernel, fused)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) + ``bias (1,3,1,1)`` + upsampled previous ``skip``."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True, blur_kernel: Sequence[int] = (1, 3, 3, 1),
                 fused: bool = True):
        super().__init__()
        if upsample:
            self.upsample = _Kernel(blur_kernel, 4)
        self.blur_kernel = tuple(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + upsample2d(skip, self.blur_kernel)
        return out


class ConstantInput(nn.Module):
    """Learned ``input (1,C,4,4)`` repeated over the batch."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, n: int) -> torch.Tensor:
        return self.input.expand(n, -1, -1, -1)


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator (module docstring), rosinality layout.

    Args:
        size: output resolution (power of two >= 4).
        style_dim: latent dimension D of z and w.
        n_mlp: mapping-network depth.
        channel_multiplier: official width table multiplier (ignored where ``channels`` is given).
        blur_kernel: FIR kernel of the up-sampling layers.
        lr_mlp: learning-rate multiplier of the mapping network.
        channels: ``{resolution: width}`` overriding the official table (keys 4..size).
        fused_modconv: grouped per-sample conv (True, official) or the batched formulation.

    Example:
        >>> g = StyleGAN2Generator(16, 8, 2, channels={4: 8, 8: 8, 16: 4})
        >>> g(torch.randn(3, 8)).shape
        torch.Size([3, 3, 16, 16])
    """

    def __init__(self, size: int = 256, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1), lr_mlp: float = 0.01,
                 channels: Mapping[int, int] | None = None, fused_modconv: bool = True):
        super().__init__()
        log_size = int(math.log2(size))
        if size < 4 or 2**log_size != size:
            raise V2VError(f"StyleGAN2 size must be a power of two >= 4, got {size}")
        self.size, self.style_dim, self.n_mlp, self.log_size = size, style_dim, n_mlp, log_size
        ch = default_channels(channel_multiplier)
        if channels:
            ch.update({int(k): int(v) for k, v in channels.items()})
        self.channels = ch
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True)
                                                  for _ in range(n_mlp)])
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_kernel=blur_kernel, fused=fused_modconv)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False, fused=fused_modconv)
        self.num_layers = (log_size - 2) * 2 + 1
        self.n_latent = log_size * 2 - 2
        self.convs, self.to_rgbs, self.noises = nn.ModuleList(), nn.ModuleList(), nn.Module()
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        cin = ch[4]
        for i in range(3, log_size + 1):
            cout = ch[2**i]
            self.convs.append(StyledConv(cin, cout, 3, style_dim, True, blur_kernel, fused_modconv))
            self.convs.append(StyledConv(cout, cout, 3, style_dim, False, blur_kernel, fused_modconv))
            self.to_rgbs.append(ToRGB(cout, style_dim, True, blur_kernel, fused_modconv))
            cin = cout

    def noise_shapes(self) -> list[int]:
        """Resolution of each noise-injection layer (``num_layers`` entries)."""
        return [2 ** ((i + 5) // 2) for i in range(self.num_layers)]

    def make_noise(self, n: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Fresh ``N(0,1)`` noise maps ``(n,1,r,r)``, one per layer."""
        dev = self.input.input.device
        return [torch.randn(n, 1, r, r, generator=generator).to(dev) for r in self.noise_shapes()]

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """``z (N,D) -> w (N,D)``."""
        if z.dim() != 2 or z.shape[1] != self.style_dim:
            raise V2VError(f"StyleGAN2 mapping expects z of shape (N,{self.style_dim}), got {tuple(z.shape)}")
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of ``n`` mapped samples ``(1,D)`` (the truncation centre)."""
        z = torch.randn(n, self.style_dim, generator=generator).to(self.input.input.device)
        return self.style(z).mean(0, keepdim=True)

    def synthesis(self, w: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """``w (N,D)`` or ``(N,n_latent,D)`` + per-layer noise -> image ``(N,3,size,size)``."""
        lat = w.unsqueeze(1).expand(-1, self.n_latent, -1) if w.dim() == 2 else w
        noise = list(noise) if noise is not None else [None] * self.num_layers
        if len(noise) != self.num_layers:
            raise V2VError(f"StyleGAN2 synthesis: {len(noise)} noise maps given, expected {self.num_layers}")
        out = self.conv1(self.input(lat.shape[0]), lat[:, 0], noise[0])
        skip = self.to_rgb1(out, lat[:, 1])
        i = 1
        for j, rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * j](out, lat[:, i], noise[2 * j + 1])
            out = self.convs[2 * j + 1](out, lat[:, i + 1], noise[2 * j + 2])
            skip = rgb(out, lat[:, i + 2], skip)
            i += 2
        return skip

    def forward(self, z: torch.Tensor, noise=None, truncation: float = 1.0,
                truncation_latent: torch.Tensor | None = None) -> torch.Tensor:
        """``z (N,D)`` -> image ``(N,3,size,size)`` (mapping, optional truncation, synthesis)."""
        w = self.mapping(z)
        if truncation < 1 and truncation_latent is not None:
            w = truncation_latent + truncation * (w - truncation_latent)
        return self.synthesis(w, noise)


# ----------------------------------------------------------------------------- discriminator

class ConvLayer(nn.Sequential):
    """rosinality ``ConvLayer``: [Blur] -> EqualConv2d -> [FusedLeakyReLU] (indices as the official Sequential)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1), bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        self._down = downsample
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(_Blur(blur_kernel, ((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch))
        super().__init__(*layers)


class _Blur(_Kernel):
    def __init__(self, blur_kernel, pad):
        super().__init__(blur_kernel, 1)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class _DResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, blur_kernel=blur_kernel, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class StyleGAN2Discriminator(nn.Module):
    """rosinality StyleGAN2 ``Discriminator`` (residual, minibatch-stddev), same keys.

    ``convs.0`` (1x1 from RGB), ``convs.{1..}`` residual down blocks, ``final_conv``,
    ``final_linear.{0,1}``. ``forward(img (N,3,size,size)) -> logits (N,1)``.

    Example:
        >>> d = StyleGAN2Discriminator(16, channels={4: 8, 8: 8, 16: 8})
        >>> d(torch.randn(4, 3, 16, 16)).shape
        torch.Size([4, 1])
    """

    def __init__(self, size: int = 256, channel_multiplier: int = 2, blur_kernel: Sequence[int] = (1, 3, 3, 1),
                 channels: Mapping[int, int] | None = None, stddev_group: int = 4):
        super().__init__()
        ch = default_channels(channel_multiplier)
        if channels:
            ch.update({int(k): int(v) for k, v in channels.items()})
        log_size = int(math.log2(size))
        convs: list[nn.Module] = [ConvLayer(3, ch[size], 1)]
        cin = ch[size]
        for i in range(log_size, 2, -1):
            convs.append(_DResBlock(cin, ch[2 ** (i - 1)], blur_kernel))
            cin = ch[2 ** (i - 1)]
        self.convs = nn.Sequential(*convs)
        self.stddev_group, self.stddev_feat = stddev_group, 1
        self.final_conv = ConvLayer(cin + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 16, ch[4], activation=True), EqualLinear(ch[4], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        b, c, h, w = out.shape
        g = min(b, self.stddev_group)
        while b % g:
            g -= 1
        s = out.view(g, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        s = torch.sqrt(s.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        s = s.repeat(g, 1, h, w)
        out = self.final_conv(torch.cat([out, s], 1))
        return self.final_linear(out.view(b, -1))


# ----------------------------------------------------------------------------- files

def read_rosinality(path: str | os.PathLike) -> dict:
    """Read a rosinality-layout file (``{'g_ema': ..., 'latent_avg': ...}``; ``weights_only=True``) or a
    v2v safetensors written by ``v2v train`` (``g_ema.*`` keys). Returns a dict with ``g_ema`` (state dict)
    and, where present, ``latent_avg``, ``g``, ``d``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise V2VError(f"image generator not found: {path}")
    with open(path, "rb") as f:
        head = f.read(16)
    try:
        if head[:2] == b"PK" or head[:1] == b"\x80":
            ck = torch.load(path, map_location="cpu", weights_only=True)
        else:
            from safetensors.torch import load_file

            flat = load_file(path)
            ck: dict = {}
            for k, v in flat.items():
                top, _, rest = k.partition(".")
                if top in ("g_ema", "g", "d") and rest:
                    ck.setdefault(top, {})[rest] = v
                elif k == "latent_avg":
                    ck["latent_avg"] = v
    except Exception as exc:  # noqa: BLE001 - torch/safetensors raise many types for foreign files
        raise V2VError(f"{path}: cannot read as a StyleGAN2 checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ck, dict) or not isinstance(ck.get("g_ema"), dict):
        keys = list(ck)[:5] if isinstance(ck, dict) else type(ck).__name__
        raise V2VError(f"{path}: not a rosinality StyleGAN2 file (expected a 'g_ema' state dict; has {keys})")
    return ck


def generator_config_from_state_dict(sd: Mapping[str, torch.Tensor]) -> dict:
    """Constructor kwargs (size, style_dim, n_mlp, channels) read from a ``g_ema`` state dict's shapes."""
    if "input.input" not in sd or "style.1.weight" not in sd:
        raise V2VError("not a StyleGAN2 generator state dict (no 'input.input' / 'style.1.weight')")
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    n_up = 0
    while f"to_rgbs.{n_up}.bias" in sd or f"to_rgbs.{n_up}.conv.weight" in sd:
        n_up += 1
    size = 4 * 2**n_up
    channels = {4: int(sd["input.input"].shape[1])}
    for j in range(n_up):
        channels[8 * 2**j] = int(sd[f"convs.{2 * j}.conv.weight"].shape[1])
    return {"size": size, "style_dim": int(sd["style.1.weight"].shape[1]), "n_mlp": n_mlp, "channels": channels}


def load_generator_state_dict(g: StyleGAN2Generator, sd: Mapping[str, torch.Tensor], path: str = "image generator",
                              strict: bool = False) -> list[str]:
    """Load a ``g_ema`` state dict with the official ``strict=False`` semantics, after checking the sizes.

    Keys the file lacks keep the model's values and keys the model lacks are ignored (as
    ``load_state_dict(strict=False)``), but a file whose resolution or latent dimension differs
    from ``g`` is a one-line V2VError (the official loader would silently keep random layers),
    and so is any shape mismatch. Returns the missing keys.
    """
    got = generator_config_from_state_dict(sd)
    if got["size"] != g.size or got["style_dim"] != g.style_dim:
        raise V2VError(f"{path}: image generator is {got['size']}px with latent dimension {got['style_dim']}, "
                       f"the config expects {g.size}px with latent dimension {g.style_dim}")
    if got["n_mlp"] != g.n_mlp:
        raise V2VError(f"{path}: image generator has n_mlp={got['n_mlp']}, the config expects {g.n_mlp}")
    own = g.state_dict()
    bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in sd.items()
           if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise V2VError(f"{path} does not match the image generator: " + "; ".join(bad[:4])
                       + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""))
    missing = [k for k in own if k not in sd]
    if strict and missing:
        raise V2VError(f"{path}: image generator keys missing: {', '.join(missing[:5])}")
    with torch.no_grad():
        g.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return missing
