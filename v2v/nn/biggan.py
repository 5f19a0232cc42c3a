"""BigGAN discriminator with a projection head (Brock et al. 2019; MoCoGAN-HD's ``models/BigGAN/BigGAN_D.py``).

Residual D blocks (``blocks.<b>.{conv1, conv2[, conv_sc]}``), then ``sum(relu(h), [H, W])``,
``h = relu(proj0(h))``, ``logit = linear(h)``, ``proj = proj2(relu(proj1(h)))``. Every conv and
linear is spectrally normalised with :func:`v2v.nn.spectral_norm.spectral_norm` (legacy power-iteration
order: eval uses the stored u, v; train does one power step per call), so the official
``weight_orig / weight_u / weight_v`` keys convert with ``convert_legacy_spectral_norm``.
Architectures by input resolution (``D_arch`` of BigGAN-PyTorch):

==========  ==========================================  ======================
resolution  block widths (x D_ch)                       downsample
==========  ==========================================  ======================
32          4, 4, 4, 4  (input 3 -> 4ch)                T, T, F, F
64          1, 2, 4, 8, 16                              T, T, T, T, F
128         1, 2, 4, 8, 16, 16                          T x5, F
256         1, 2, 4, 8, 8, 16, 16                       T x6, F
==========  ==========================================  ======================

Block 0 has no pre-activation and its shortcut is avgpool then 1x1 conv; later blocks start with
ReLU and their shortcut is 1x1 conv then avgpool (the conv only where widths change or it downsamples).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.nn.spectral_norm import spectral_norm

__all__ = ["BigGANProjectionDiscriminator", "biggan_arch"]


class _DBlock(nn.Module):
    """BigGAN D block: [relu] conv3x3 -> relu -> conv3x3 -> [avgpool2] + shortcut (official ``DBlock``)."""

    def __init__(self, cin: int, cout: int, preactivation: bool, downsample: bool):
        super().__init__()
        self.pre, self.down = preactivation, downsample
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.learnable_sc = cin != cout or downsample
        if self.learnable_sc:
            self.conv_sc = spectral_norm(nn.Conv2d(cin, cout, 1))

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = self.conv_sc(x) if self.learnable_sc else x
            return F.avg_pool2d(x, 2) if self.down else x
        x = F.avg_pool2d(x, 2) if self.down else x
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.pre else x
        h = self.conv2(F.relu(self.conv1(h)))
        h = F.avg_pool2d(h, 2) if self.down else h
        return h + self.shortcut(x)


def biggan_arch(resolution: int, ch: int) -> list[tuple[int, int, bool]]:
    """``[(in, out, downsample)]`` per block for ``resolution`` and base width ``ch``."""
    mult = {32: ([4, 4, 4], [4, 4, 4, 4], [True, True, False, False]),
            64: ([1, 2, 4, 8], [1, 2, 4, 8, 16], [True] * 4 + [False]),
            128: ([1, 2, 4, 8, 16], [1, 2, 4, 8, 16, 16], [True] * 5 + [False]),
            256: ([1, 2, 4, 8, 8, 16], [1, 2, 4, 8, 8, 16, 16], [True] * 6 + [False])}
    if resolution not in mult:
        raise V2VError(f"BigGAN image discriminator: video_frame_size must be one of 32, 64, 128, 256 "
                       f"(got {resolution})")
    ins, outs, down = mult[resolution]
    cin = [3] + [ch * m for m in ins]
    return [(cin[i], ch * outs[i], down[i]) for i in range(len(outs))]


class BigGANProjectionDiscriminator(nn.Module):
    """BigGAN D with a projection head (official ``BigGAN_D.Discriminator``), spectral norm everywhere.

    Args:
        resolution: input size R (32, 64, 128 or 256).
        D_ch: base width.
        proj_dim: width of the projection head (MoCoGAN-HD ``l_len``).

    ``forward(x (N,3,R,R)) -> (logit (N,1), proj (N,proj_dim))``; ``proj_only`` returns ``proj``.

    Example:
        >>> d = BigGANProjectionDiscriminator(32, D_ch=2, proj_dim=8)
        >>> [t.shape for t in d(torch.randn(2, 3, 32, 32))]
        [torch.Size([2, 1]), torch.Size([2, 8])]
    """

    def __init__(self, resolution: int = 128, D_ch: int = 96, proj_dim: int = 256):
        super().__init__()
        arch = biggan_arch(resolution, D_ch)
        self.blocks = nn.ModuleList([_DBlock(i, o, k > 0, d) for k, (i, o, d) in enumerate(arch)])
        self.proj0 = spectral_norm(nn.Linear(arch[-1][1], proj_dim))
        self.proj1 = spectral_norm(nn.Linear(proj_dim, proj_dim))
        self.proj2 = spectral_norm(nn.Linear(proj_dim, proj_dim))
        self.linear = spectral_norm(nn.Linear(proj_dim, 1))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(m.parametrizations.weight.original)

    def forward(self, x: torch.Tensor, proj_only: bool = False):
        h = x
        for blk in self.blocks:
            h = blk(h)
        h = F.relu(self.proj0(F.relu(h).sum([2, 3])))
        proj = self.proj2(F.relu(self.proj1(h)))
        return proj if proj_only else (self.linear(h), proj)
