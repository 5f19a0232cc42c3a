"""FOMM-style convolutional blocks, encoder/decoder and the U-Net "hourglass".

Generic building blocks (used by the First Order Motion Model and reusable by any system):

- :class:`SameBlock2d`  conv -> BatchNorm -> ReLU (resolution kept)
- :class:`DownBlock2d`  conv -> BatchNorm -> ReLU -> AvgPool(2)
- :class:`UpBlock2d`    nearest x2 -> conv -> BatchNorm -> ReLU
- :class:`ResBlock2d`   pre-activation residual block: x + conv2(relu(bn2(conv1(relu(bn1(x))))))
- :class:`Encoder` / :class:`Decoder` / :class:`Hourglass`: a U-Net whose decoder concatenates
  ``[up_output, skip]`` after every up block, ending with the hourglass input itself, so the
  output has ``block_expansion + in_features`` channels (``Hourglass.out_channels``).

Tensors are feature maps ``B,C,H,W`` (float32); ``H`` and ``W`` must be divisible by
``2**num_blocks`` for an Hourglass.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Decoder", "DownBlock2d", "Encoder", "Hourglass", "ResBlock2d", "SameBlock2d", "UpBlock2d"]


class SameBlock2d(nn.Module):
    """conv(kernel_size, padding) -> BatchNorm2d -> ReLU; ``B,Cin,H,W -> B,Cout,H,W``.

    Args:
        in_channels, out_channels: Cin, Cout.
        kernel_size, padding: of the conv.

    Example:
        >>> SameBlock2d(3, 8, kernel_size=7, padding=3)(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 8, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """conv -> BatchNorm2d -> ReLU -> AvgPool2d(2); halves H and W. Args: as :class:`SameBlock2d`.

    Example:
        >>> DownBlock2d(3, 8)(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class UpBlock2d(nn.Module):
    """nearest x2 upsample (index floor(dst/2)) -> conv -> BatchNorm2d -> ReLU; doubles H and W.
    Args: as :class:`SameBlock2d`.

    Example:
        >>> UpBlock2d(8, 4)(torch.rand(1, 8, 4, 4)).shape
        torch.Size([1, 4, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.relu(self.norm(self.conv(x)))


class ResBlock2d(nn.Module):
    """Pre-activation residual block keeping channels and resolution.

    Args:
        channels: C of ``B,C,H,W``.
        kernel_size, padding: of both convs.

    Example:
        >>> ResBlock2d(8)(torch.rand(1, 8, 4, 4)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(self, channels: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(channels, affine=True)
        self.norm2 = nn.BatchNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return x + out


def _width(block_expansion: int, max_features: int, i: int) -> int:
    return min(max_features, block_expansion * (2 ** i))


class Encoder(nn.Module):
    """``num_blocks`` DownBlock2d; block i maps width(i) -> width(i+1), width(0) = in_features.

    ``forward`` returns the list ``[x, out_0, ..., out_{n-1}]`` (input first) for the decoder's skips.

    Args:
        block_expansion: width multiplier; width(i) = min(max_features, block_expansion * 2**i).
        in_features: channels of the input.
        num_blocks: number of DownBlock2d.
        max_features: width cap.

    Example:
        >>> [t.shape[1] for t in Encoder(8, 3, num_blocks=2)(torch.rand(1, 3, 8, 8))]
        [3, 16, 32]
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        self.blocks = nn.ModuleList(
            DownBlock2d(in_features if i == 0 else _width(block_expansion, max_features, i),
                        _width(block_expansion, max_features, i + 1))
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """UpBlock2d stack mirroring :class:`Encoder`; concatenates each skip after every block.

    Args: as :class:`Encoder`. ``forward`` takes the encoder's list and returns
    ``B,block_expansion+in_features,H,W``.

    Example:
        >>> enc, dec = Encoder(8, 3, num_blocks=2), Decoder(8, 3, num_blocks=2)
        >>> dec(enc(torch.rand(1, 3, 8, 8))).shape
        torch.Size([1, 11, 8, 8])
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            mult = 1 if i == num_blocks - 1 else 2
            blocks.append(UpBlock2d(mult * _width(block_expansion, max_features, i + 1),
                                    _width(block_expansion, max_features, i)))
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = block_expansion + in_features

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        feats = list(feats)
        out = feats.pop()
        for block in self.blocks:
            out = block(out)
            out = torch.cat([out, feats.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net: ``B,in_features,H,W -> B,block_expansion+in_features,H,W`` (see module docstring).

    Args: as :class:`Encoder`; H and W must be divisible by ``2**num_blocks``.

    Example:
        >>> hg = Hourglass(8, 3, num_blocks=2)
        >>> hg(torch.rand(1, 3, 8, 8)).shape[1] == hg.out_channels == 11
        True
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
