"""Video discriminators: DVD-GAN spatial / temporal discriminators and a multi-scale 3-D PatchGAN.

All take videos ``B,T,C,H,W`` (or frames ``B,C,H,W`` for the spatial one) with pixel values in
[0,1]; the DVD-GAN ones map to [-1,1] internally (``2x - 1``), the PatchGAN ones take whatever
range the caller's system uses (like :mod:`v2v.nn.patchgan`).

**DVD-GAN** (Clark et al. 2019; layer recipe of the DVD-GAN port used by the style_dvdgan system,
``dvdgan/Discriminators.py`` of mt_videosynthesis). With ``c = ch``:

- :class:`DVDSpatialDiscriminator` (D_S): frames ``N,C,H,W`` (a stack ``K,B,C,H,W`` of K
  sampled frames is folded to ``K*B`` rows, k-major) -> ``2x-1`` -> optimized first block
  (SNConv3x3 -> ReLU -> SNConv3x3 -> AvgPool2, + SNConv1x1(AvgPool2(x))) to 2c -> ResBlock down
  2c->4c -> self-attention(4c) -> ResBlocks down 4c->8c->16c->16c -> ReLU -> sum over H,W ->
  SNLinear(16c->1). Output: one score per row, shape ``(N,)``.
- :class:`DVDTemporalDiscriminator` (D_T): ``B,T,C,H,W`` -> ``2x-1`` -> [optional 2x2 avg
  pre-pool per frame] -> ``B,C,T,H,W`` -> 3-D optimized first block to 2c (AvgPool3d 2 over
  time and space) -> 3-D ResBlock down 2c->4c -> frames folded into the batch (``B*T'``,
  b-major) -> self-attention -> 2-D ResBlocks down 4c->8c->16c->16c -> ReLU -> sum H,W ->
  SNLinear. Output shape ``(B*T',)``.
- :func:`sample_frames` draws the K frames D_S looks at.

Parameter names: ``blocks.{i}`` (ResBlocks ``conv0/conv1/conv_sc``, attention
``query/key/value/gamma``), ``linear``; for D_T ``blocks3d.{i}`` then ``blocks.{i}``. Every conv
and the linear are spectrally normalized (:mod:`v2v.nn.spectral_norm`; the official
``<p>.module.weight_bar/_u/_v`` layout converts with ``convert_legacy_spectral_norm``).
The official SN iterates on every forward (train and eval, u/v advancing) and normalizes with an
additive eps: pass ``sn_variant="dvdgan"`` for exactly that (``sn_update_in_eval=True`` only
switches on the eval-mode iteration).

**Multi-scale 3-D PatchGAN** (:class:`VideoPatchDiscriminator3d`,
:class:`MultiscaleVideoDiscriminator`): the pix2pixHD recipe with ``Conv3d`` (kernel
``(kt, 4, 4)``, spatial stride 2, temporal stride configurable) on ``B,T,C,H,W`` clips; the
multi-scale version runs ``num_D`` of them on progressively downsampled clips
(``avg_pool3d`` with ``count_include_pad=False`` over space, time or both) and returns the
same nested list as :class:`v2v.nn.patchgan.MultiscalePatchDiscriminator` (usable with
``GANLoss`` and ``feature_matching_loss``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from v2v.nn.attention import SelfAttention2d
from v2v.nn.norms import get_norm_layer
from v2v.nn.resblocks import ResBlock
from v2v.nn.spectral_norm import set_spectral_norm_variant, spectral_norm

__all__ = ["DVDSpatialDiscriminator", "DVDTemporalDiscriminator", "MultiscaleVideoDiscriminator",
           "VideoPatchDiscriminator3d", "sample_frames"]


def _set_sn_update_in_eval(module: nn.Module, flag: bool) -> None:
    from v2v.nn.spectral_norm import SpectralNormParam

    for m in module.modules():
        if isinstance(m, SpectralNormParam):
            m.update_in_eval = flag


def sample_frames(video: torch.Tensor, k: int, *, indices: Sequence[int] | torch.Tensor | None = None,
                  first: int = 0, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick ``k`` distinct frames of ``video: B,T,C,H,W`` (the same indices for every sample).

    Indices are drawn uniformly without replacement from ``first..T-1`` unless given.
    Returns ``(frames K,B,C,H,W, indices K)``.
    """
    t = video.shape[1]
    if indices is None:
        perm = torch.randperm(t - first, generator=generator)[:k] + first
        indices = perm
    idx = torch.as_tensor(indices, dtype=torch.long)
    return video[:, idx.to(video.device)].transpose(0, 1), idx


class DVDSpatialDiscriminator(nn.Module):
    """DVD-GAN spatial discriminator D_S (module docstring).

    Args:
        in_channels: channels per frame (6 for a conditional D fed ``cat(first frame, frame)``).
        ch: base width c.
        channel_mults: widths of the blocks as multiples of c (default ``(2, 4, 8, 16, 16)``).
        attention_after: index of the block after which self-attention runs (default 1,
            i.e. after the 4c block); None for no attention.
        sn_update_in_eval: spectral-norm power iteration also in eval mode.
        sn_variant: ``"torch"`` or ``"dvdgan"`` (:mod:`v2v.nn.spectral_norm` variants; the
            official DVD-GAN port is ``"dvdgan"``).

    ``forward(x)``: ``x`` frames ``N,C,H,W`` or a stack ``K,B,C,H,W`` in [0,1] -> scores ``(N,)``
    (``K*B`` rows, k-major). H, W must be divisible by ``2**len(channel_mults)``.
    """

    def __init__(self, in_channels: int = 3, ch: int = 128, channel_mults: Sequence[int] = (2, 4, 8, 16, 16),
                 attention_after: int | None = 1, sn_update_in_eval: bool = False, sn_variant: str = "torch"):
        super().__init__()
        widths = [ch * m for m in channel_mults]
        blocks: list[nn.Module] = [ResBlock(in_channels, widths[0], "down", spectral=True, first=True)]
        if attention_after == 0:
            blocks.append(SelfAttention2d(widths[0]))
        for i in range(1, len(widths)):
            blocks.append(ResBlock(widths[i - 1], widths[i], "down", spectral=True))
            if attention_after == i:
                blocks.append(SelfAttention2d(widths[i]))
        self.blocks = nn.ModuleList(blocks)
        self.linear = spectral_norm(nn.Linear(widths[-1], 1))
        set_spectral_norm_variant(self, sn_variant)
        if sn_update_in_eval:
            _set_sn_update_in_eval(self, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            x = x.reshape(-1, *x.shape[2:])
        h = x * 2 - 1
        for blk in self.blocks:
            h = blk(h)
        h = F.relu(h).flatten(2).sum(2)
        return self.linear(h).squeeze(1)


class DVDTemporalDiscriminator(nn.Module):
    """DVD-GAN temporal discriminator D_T (module docstring).

    Args:
        in_channels: channels per frame.
        ch: base width c.
        channel_mults_3d: widths of the 3-D blocks (default ``(2, 4)``), the first is the
            optimized block; each halves T, H and W.
        channel_mults_2d: widths of the 2-D blocks after folding time (default ``(8, 16, 16)``).
        prepool: 2x2 average pre-pooling of every frame (DVD-GAN default True).
        attention: self-attention after the 3-D blocks.
        sn_update_in_eval: spectral-norm power iteration also in eval mode.
        sn_variant: ``"torch"`` or ``"dvdgan"`` (see :class:`DVDSpatialDiscriminator`).

    ``forward(x)``: ``x: B,T,C,H,W`` in [0,1] -> scores ``(B*T',)`` with ``T' = T // 2**n3d``
    (b-major), i.e. ``(B,)`` for the usual short clips.
    """

    def __init__(self, in_channels: int = 3, ch: int = 128, channel_mults_3d: Sequence[int] = (2, 4),
                 channel_mults_2d: Sequence[int] = (8, 16, 16), prepool: bool = True, attention: bool = True,
                 sn_update_in_eval: bool = False, sn_variant: str = "torch"):
        super().__init__()
        self.prepool = prepool
        w3 = [ch * m for m in channel_mults_3d]
        w2 = [ch * m for m in channel_mults_2d]
        b3 = [ResBlock(in_channels, w3[0], "down", dim=3, spectral=True, first=True)]
        b3 += [ResBlock(w3[i - 1], w3[i], "down", dim=3, spectral=True) for i in range(1, len(w3))]
        self.blocks3d = nn.ModuleList(b3)
        b2: list[nn.Module] = [SelfAttention2d(w3[-1])] if attention else []
        prev = w3[-1]
        for w in w2:
            b2.append(ResBlock(prev, w, "down", spectral=True))
            prev = w
        self.blocks = nn.ModuleList(b2)
        self.linear = spectral_norm(nn.Linear(prev, 1))
        set_spectral_norm_variant(self, sn_variant)
        if sn_update_in_eval:
            _set_sn_update_in_eval(self, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, hh, ww = x.shape
        x = x * 2 - 1
        if self.prepool:
            x = F.avg_pool2d(x.reshape(b * t, c, hh, ww), 2)
            x = x.view(b, t, c, *x.shape[-2:])
        h = x.permute(0, 2, 1, 3, 4)  # B,C,T,H,W
        for blk in self.blocks3d:
            h = blk(h)
        h = h.permute(0, 2, 1, 3, 4)
        h = h.reshape(-1, *h.shape[2:])  # B*T', C, h, w (b-major)
        for blk in self.blocks:
            h = blk(h)
        h = F.relu(h).flatten(2).sum(2)
        return self.linear(h).squeeze(1)


class VideoPatchDiscriminator3d(nn.Module):
    """3-D PatchGAN: the pix2pixHD recipe with Conv3d on clips ``B,T,C,H,W``.

    Blocks (``L = n_layers``, ``pad = (kt//2, 2, 2)``)::

        block 0       : Conv3d(in, ndf, (kt,4,4), stride (st,2,2)) -> LeakyReLU(0.2)
        block 1..L-1  : Conv3d(stride (st,2,2)) -> norm -> LeakyReLU(0.2)   (widths x2, cap 512)
        block L       : Conv3d(stride 1) -> norm -> LeakyReLU(0.2)
        block L+1     : Conv3d(-> 1, stride 1)

    ``st = temporal_stride`` (default 1: time is kept, only space shrinks). MoCoGAN-HD's
    ``D_3d`` is ``temporal_kernel=4, temporal_stride=2, norm="instance",
    track_running_stats=True``. Output: the list of
    block outputs ``B,C',T',h,w`` (``get_interm_feat``) or the logits ``B,1,T',h,w``.
    Parameter names ``blocks.{j}.conv``, ``blocks.{j}.norm`` (as the 2-D PatchDiscriminator).
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str | None = "instance",
                 get_interm_feat: bool = False, temporal_kernel: int = 3, temporal_stride: int = 1,
                 max_channels: int = 512, spectral: bool = False, track_running_stats: bool | None = None):
        super().__init__()
        from v2v.nn.patchgan import PatchBlock

        self.get_interm_feat = get_interm_feat
        k = (temporal_kernel, 4, 4)
        pad = (temporal_kernel // 2, 2, 2)  # ceil((4 - 1) / 2) as the 2-D recipe
        s2 = (temporal_stride, 2, 2)

        def conv(i, o, s):
            m = nn.Conv3d(i, o, k, stride=s, padding=pad)
            return spectral_norm(m) if spectral else m

        def nrm(c):
            return get_norm_layer(norm, c, dim=3, track_running_stats=track_running_stats)

        blocks = [PatchBlock(conv(in_channels, ndf, s2), None, nn.LeakyReLU(0.2))]
        nf = ndf
        for _ in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, max_channels)
            blocks.append(PatchBlock(conv(nf_prev, nf, s2), nrm(nf), nn.LeakyReLU(0.2)))
        nf_prev, nf = nf, min(nf * 2, max_channels)
        blocks.append(PatchBlock(conv(nf_prev, nf, 1), nrm(nf), nn.LeakyReLU(0.2)))
        blocks.append(PatchBlock(conv(nf, 1, 1)))
        self.blocks = nn.ModuleList(blocks)

    def features(self, video: torch.Tensor) -> list[torch.Tensor]:
        """All block outputs for ``video: B,T,C,H,W`` (each ``B,C',T',h,w``)."""
        h = video.transpose(1, 2)
        out = []
        for blk in self.blocks:
            h = blk(h)
            out.append(h)
        return out

    def forward(self, video: torch.Tensor):
        feats = self.features(video)
        return feats if self.get_interm_feat else feats[-1]


class MultiscaleVideoDiscriminator(nn.Module):
    """``num_D`` :class:`VideoPatchDiscriminator3d` on a space/time avg-pool pyramid of the clip.

    ``downsample``: ``"space"`` (``avg_pool3d`` kernel (1,3,3), stride (1,2,2)), ``"time"``
    (kernel (3,1,1), stride (2,1,1)) or ``"spacetime"`` (kernel 3, stride 2); padding 1 on the
    pooled axes, ``count_include_pad=False``. ``pool_kernel``/``pool_stride`` (``(t, h, w)``)
    override the preset, e.g. MoCoGAN-HD: kernel (3,3,3), stride (1,2,2) (stride 2 in time for
    clips longer than 16 frames). As the 2-D version, output i comes from
    ``scales[num_D-1-i]`` on the clip downsampled i times; each entry is a list of block outputs
    (``get_interm_feat``) or ``[logits]``. Input ``B,T,C,H,W``.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str | None = "instance",
                 num_D: int = 2, get_interm_feat: bool = False, downsample: str = "space",
                 temporal_kernel: int = 3, temporal_stride: int = 1, spectral: bool = False,
                 track_running_stats: bool | None = None, max_channels: int = 512,
                 pool_kernel: Sequence[int] | None = None, pool_stride: Sequence[int] | None = None):
        super().__init__()
        if downsample not in ("space", "time", "spacetime"):
            raise ValueError(f"downsample must be space, time or spacetime, got {downsample!r}")
        self.num_D = num_D
        self.downsample = downsample
        self.get_interm_feat = get_interm_feat
        kt, st = (1, 1) if downsample == "space" else (3, 2)
        ks, ss = (1, 1) if downsample == "time" else (3, 2)
        self.pool_kernel = tuple(pool_kernel) if pool_kernel is not None else (kt, ks, ks)
        self.pool_stride = tuple(pool_stride) if pool_stride is not None else (st, ss, ss)
        self.pool_padding = tuple(k // 2 for k in self.pool_kernel)
        self.scales = nn.ModuleList([
            VideoPatchDiscriminator3d(in_channels, ndf, n_layers, norm, True, temporal_kernel, temporal_stride,
                                      max_channels, spectral, track_running_stats)
            for _ in range(num_D)])

    def downsample_clip(self, video: torch.Tensor) -> torch.Tensor:
        """One pyramid step on ``video: B,T,C,H,W``."""
        x = F.avg_pool3d(video.transpose(1, 2), self.pool_kernel, self.pool_stride, self.pool_padding,
                         count_include_pad=False)
        return x.transpose(1, 2)

    def forward(self, video: torch.Tensor) -> list[list[torch.Tensor]]:
        result = []
        for i in range(self.num_D):
            feats = self.scales[self.num_D - 1 - i].features(video)
            result.append(feats if self.get_interm_feat else [feats[-1]])
            if i != self.num_D - 1:
                video = self.downsample_clip(video)
        return result
