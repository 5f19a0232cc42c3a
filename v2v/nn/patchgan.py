"""PatchGAN discriminators as in pix2pixHD / vid2vid / Everybody Dance Now.

Layer recipe (pix2pixHD ``NLayerDiscriminator``), ``kw = 4``, ``pad = ceil((kw-1)/2) = 2``::

    block 0          : Conv(in, ndf, 4, stride 2, pad 2) -> LeakyReLU(0.2)
    block n, 1..L-1  : Conv(nf_prev, nf = min(2*nf_prev, 512), 4, stride 2, pad 2) -> norm -> LeakyReLU(0.2)
    block L          : Conv(nf_prev, nf = min(2*nf_prev, 512), 4, stride 1, pad 2) -> norm -> LeakyReLU(0.2)
    block L+1        : Conv(nf, 1, 4, stride 1, pad 2)   [-> Sigmoid if use_sigmoid]

(L = ``n_layers``; n_layers + 2 blocks in all.)

Parameter names (our own, regular; ``v2v.compat`` maps official keys onto them)::

    PatchDiscriminator:            blocks.{j}.conv.{weight,bias}, blocks.{j}.norm.*   (j = 0..n_layers+1)
    MultiscalePatchDiscriminator:  scales.{s}.blocks.{j}.conv.*, scales.{s}.blocks.{j}.norm.*

Official key correspondence (pix2pixHD ``MultiscaleDiscriminator``):

- with ``getIntermFeat``: ``scale{s}_layer{j}.0`` -> ``scales.{s}.blocks.{j}.conv``,
  ``scale{s}_layer{j}.1`` -> ``scales.{s}.blocks.{j}.norm`` (j = 1..n_layers).
- without: ``layer{s}.{i}`` flat Sequential: i = 0 -> block 0 conv; for n = 1..n_layers,
  i = 2+3(n-1) -> block n conv, i = 3+3(n-1) -> block n norm; i = 2+3*n_layers -> last conv.
- a bare ``NLayerDiscriminator`` (``model.{i}`` or ``model{j}.{k}``): same, without ``scales.{s}``.

Scale ordering is identical to the official one: **output i (i = 0..num_D-1) is produced by
``scales[num_D-1-i]`` applied to the input average-pooled i times** with
``AvgPool2d(3, stride=2, padding=1, count_include_pad=False)``. So ``scales.{s}`` holds exactly
the weights of official ``scale{s}`` / ``layer{s}``.

Inputs are feature maps ``B,C,H,W`` in whatever range the caller's system uses (pix2pixHD feeds
label maps in [0,1] concatenated with images in [-1,1]); the discriminator itself applies no
range conversion. Outputs are raw patch logits ``B,1,h,w`` (or sigmoid probabilities with
``use_sigmoid``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from v2v.nn.norms import get_norm_layer

__all__ = [
    "MultiscalePatchDiscriminator",
    "PatchBlock",
    "PatchDiscriminator",
    "downsample_avg",
    "pix2pixhd_init",
]


def downsample_avg(x: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's multiscale downsampling: ``avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)``.

    ``x``: ``B,C,H,W``; returns ``B,C,ceil(H/2),ceil(W/2)`` (for H, W >= 2).
    """
    return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)


class PatchBlock(nn.Module):
    """``conv -> norm -> act``; ``norm``/``act`` are ``nn.Identity`` where the recipe has none."""

    def __init__(self, conv: nn.Module, norm: nn.Module | None = None, act: nn.Module | None = None):
        super().__init__()
        self.conv = conv
        self.norm = norm if norm is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class PatchDiscriminator(nn.Module):
    """pix2pixHD ``NLayerDiscriminator`` (PatchGAN), layer for layer.

    Args:
        in_channels: input channels C of ``x: B,C,H,W``.
        ndf: width of the first conv.
        n_layers: number of stride-2 convs (official ``n_layers_D``, default 3).
        norm: ``"instance"`` (InstanceNorm2d, affine=False: pix2pixHD default), ``"batch"``,
            ``"none"`` (see :func:`v2v.nn.norms.get_norm_layer`).
        use_sigmoid: apply a sigmoid to the last output (pix2pixHD ``--no_lsgan``). Note: the
            official code silently drops the sigmoid when ``getIntermFeat`` is on; we always
            apply it when asked, so for parity with such a checkpoint pass False.
        get_interm_feat: forward returns the list of all ``n_layers + 2`` block outputs
            (last = logits); otherwise the logits tensor ``B,1,h,w`` only.
        track_running_stats: forwarded to the norm layers (None = torch default per type).
        max_channels: width cap (512 in the official code).
        kernel_size: 4 in the official code; padding is ``ceil((k-1)/2)``.

    Parameter layout: ``blocks.{j}.conv.*``, ``blocks.{j}.norm.*`` (see module docstring).

    Example:
        >>> PatchDiscriminator(3, ndf=8)(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 1, 7, 7])
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str | None = "instance",
                 use_sigmoid: bool = False, get_interm_feat: bool = False,
                 track_running_stats: bool | None = None, max_channels: int = 512, kernel_size: int = 4):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_channels = in_channels
        self.n_layers = n_layers
        self.get_interm_feat = get_interm_feat
        self.use_sigmoid = use_sigmoid
        kw = kernel_size
        pad = math.ceil((kw - 1.0) / 2)

        def lrelu():
            return nn.LeakyReLU(0.2)

        def nrm(c):
            return get_norm_layer(norm, c, track_running_stats=track_running_stats)

        blocks = [PatchBlock(nn.Conv2d(in_channels, ndf, kw, stride=2, padding=pad), None, lrelu())]
        nf = ndf
        for _ in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, max_channels)
            blocks.append(PatchBlock(nn.Conv2d(nf_prev, nf, kw, stride=2, padding=pad), nrm(nf), lrelu()))
        nf_prev, nf = nf, min(nf * 2, max_channels)
        blocks.append(PatchBlock(nn.Conv2d(nf_prev, nf, kw, stride=1, padding=pad), nrm(nf), lrelu()))
        blocks.append(PatchBlock(nn.Conv2d(nf, 1, kw, stride=1, padding=pad), None,
                                 nn.Sigmoid() if use_sigmoid else None))
        self.blocks = nn.ModuleList(blocks)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All ``n_layers + 2`` block outputs for ``x: B,C,H,W`` (the last is the patch output)."""
        out = []
        for blk in self.blocks:
            x = blk(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor):
        """``x: B,C,H,W`` -> list of block outputs (``get_interm_feat``) or logits ``B,1,h,w``."""
        if self.get_interm_feat:
            return self.features(x)
        for blk in self.blocks:
            x = blk(x)
        return x


class MultiscalePatchDiscriminator(nn.Module):
    """pix2pixHD ``MultiscaleDiscriminator``: ``num_D`` PatchDiscriminators on an avg-pool pyramid.

    ``forward(x)`` with ``x: B,C,H,W`` returns a list of ``num_D`` lists, ordered like the
    official code: element i comes from ``scales[num_D-1-i]`` applied to ``x`` downsampled i
    times (:func:`downsample_avg`). Each inner list holds all ``n_layers + 2`` block outputs
    when ``get_interm_feat`` is on, otherwise only ``[logits]``. This nested list is what
    :class:`v2v.losses.gan.GANLoss` and :func:`v2v.losses.feature_matching.feature_matching_loss`
    accept.

    Args: as :class:`PatchDiscriminator`, plus ``num_D`` (number of scales).
    Parameter layout: ``scales.{s}.blocks.{j}.conv.*`` / ``.norm.*``.

    Example:
        >>> out = MultiscalePatchDiscriminator(3, ndf=8, num_D=2)(torch.rand(1, 3, 32, 32))
        >>> [o[-1].shape[-1] for o in out]
        [7, 5]
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str | None = "instance",
                 use_sigmoid: bool = False, num_D: int = 3, get_interm_feat: bool = False,
                 track_running_stats: bool | None = None, max_channels: int = 512, kernel_size: int = 4):
        super().__init__()
        self.num_D = num_D
        self.n_layers = n_layers
        self.get_interm_feat = get_interm_feat
        self.scales = nn.ModuleList([
            PatchDiscriminator(in_channels, ndf, n_layers, norm, use_sigmoid, get_interm_feat,
                               track_running_stats, max_channels, kernel_size)
            for _ in range(num_D)])

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """``x: B,C,H,W`` -> ``[[features or logits of scale num_D-1], ..., [... of scale 0]]``."""
        result = []
        for i in range(self.num_D):
            d = self.scales[self.num_D - 1 - i]
            if self.get_interm_feat:
                result.append(d.features(x))
            else:
                result.append([d(x)])
            if i != self.num_D - 1:
                x = downsample_avg(x)
        return result


@torch.no_grad()
def pix2pixhd_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """pix2pixHD ``weights_init``: conv weights ~ N(0, std); BatchNorm weight ~ N(1, std), bias 0.

    Conv biases keep torch's default init (as in the official code). Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            m.weight.normal_(0.0, std)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)) and m.affine:
            m.weight.normal_(1.0, std)
            m.bias.zero_()
    return module
