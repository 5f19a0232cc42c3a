"""Convolutional blocks of the vid2vid composite generator (pix2pixHD-style encoder/decoder pieces).

All blocks are plain feature-map -> feature-map modules (``B,C,H,W`` float tensors); they make
no assumption about the value range. Layer order follows the official NVIDIA/vid2vid
``CompositeGenerator``:

- :class:`Stem`: ReflectionPad(3) -> Conv7x7 -> norm -> ReLU
- :class:`Down`: Conv3x3 stride 2, ZERO padding 1 -> norm -> ReLU
- :class:`ResnetBlock`: x + [ReflectionPad(1), Conv3x3, norm, ReLU, ReflectionPad(1), Conv3x3, norm](x)
- :class:`Up`: ConvTranspose3x3 stride 2 (padding 1, output_padding 1) -> norm -> ReLU
- :class:`Head`: ReflectionPad(3) -> Conv7x7 (no activation; the caller applies tanh / sigmoid / scale)
"""
from __future__ import annotations

from torch import nn

from v2v.nn.norms import canonical_norm_name, get_norm_layer

__all__ = ["Decoder", "Down", "Encoder", "Head", "ResnetBlock", "Stem", "Up", "make_norm"]


def make_norm(kind: str, channels: int) -> nn.Module:
    """vid2vid's norm layers: 'batch' -> BatchNorm2d(affine); 'instance' -> InstanceNorm2d(affine=False,
    track_running_stats=True) as the official ``get_norm_layer``; other names via :func:`get_norm_layer`."""
    trs = True if canonical_norm_name(kind) == "instance" else None
    return get_norm_layer(kind, channels, track_running_stats=trs)


class Stem(nn.Module):
    """ReflectionPad(3), Conv7x7(in_ch -> out_ch), norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, norm: str = "batch"):
        super().__init__()
        self.pad = nn.ReflectionPad2d(3)
        self.conv = nn.Conv2d(in_ch, out_ch, 7)
        self.norm = make_norm(norm, out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.norm(self.conv(self.pad(x))))


class Down(nn.Module):
    """Conv3x3 stride 2 with zero padding 1 (halves H and W), norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, norm: str = "batch"):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1)
        self.norm = make_norm(norm, out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class ResnetBlock(nn.Module):
    """x + [pad, conv3x3, norm, ReLU, pad, conv3x3, norm](x); reflect padding, no ReLU after the add."""

    def __init__(self, ch: int, norm: str = "batch"):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(ch, ch, 3)
        self.norm1 = make_norm(norm, ch)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(ch, ch, 3)
        self.norm2 = make_norm(norm, ch)

    def forward(self, x):
        y = self.act(self.norm1(self.conv1(self.pad(x))))
        return x + self.norm2(self.conv2(self.pad(y)))


class Up(nn.Module):
    """ConvTranspose2d 3x3 stride 2 (padding 1, output_padding 1: doubles H and W), norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, norm: str = "batch"):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1)
        self.norm = make_norm(norm, out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class Head(nn.Module):
    """ReflectionPad(3), Conv7x7 to ``out_ch`` channels, no activation."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.pad = nn.ReflectionPad2d(3)
        self.conv = nn.Conv2d(in_ch, out_ch, 7)

    def forward(self, x):
        return self.conv(self.pad(x))


class Encoder(nn.Module):
    """Stem, ``n_down`` Down blocks (channels doubling from ``ngf``), then ``n_blocks`` ResnetBlocks.

    Output: ``B, ngf*2**n_down, H/2**n_down, W/2**n_down``.
    """

    def __init__(self, in_ch: int, ngf: int, n_down: int, n_blocks: int, norm: str = "batch"):
        super().__init__()
        self.stem = Stem(in_ch, ngf, norm)
        self.down = nn.ModuleList(Down(ngf * 2**i, ngf * 2 ** (i + 1), norm) for i in range(n_down))
        self.blocks = nn.ModuleList(ResnetBlock(ngf * 2**n_down, norm) for _ in range(n_blocks))

    def forward(self, x):
        x = self.stem(x)
        for m in self.down:
            x = m(x)
        for m in self.blocks:
            x = m(x)
        return x


class Decoder(nn.Module):
    """``n_blocks`` ResnetBlocks at ``ch`` channels, then ``n_up`` Up blocks halving the channels."""

    def __init__(self, ch: int, n_up: int, n_blocks: int, norm: str = "batch"):
        super().__init__()
        self.blocks = nn.ModuleList(ResnetBlock(ch, norm) for _ in range(n_blocks))
        self.up = nn.ModuleList(Up(ch // 2**i, ch // 2 ** (i + 1), norm) for i in range(n_up))

    def forward(self, x):
        for m in self.blocks:
            x = m(x)
        for m in self.up:
            x = m(x)
        return x
