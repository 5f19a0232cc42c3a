"""Blocks of the Img2Vid (seg2vid, Pan et al. CVPR 2019) flow VAE and its refinement U-Net.

Layer order and attribute names follow the official STVIR/seg2vid code
(``src/models/multiframe_w_mask_genmask_two_path.py``, ``src/models/vgg_128.py``), so official
state dicts load without renaming. All blocks are feature-map -> feature-map modules
(``B,C,H,W``; :class:`GateConv3d` ``B,C,T,H,W``) and take their widths as arguments:

- :class:`ConvLReLU` (official ``convbase``): Conv (bias) -> LeakyReLU(0.2)
- :class:`ConvBNLReLU` (``convblock``): Conv (no bias) -> BN -> LeakyReLU(0.2)
- :class:`UpConv` (``upconv``): Conv (in -> 2*out) -> BN -> LReLU -> Conv (2*out -> out) -> BN -> LReLU
  -> bilinear x2 upsampling (``align_corners=False``)
- :class:`GateConv3d` (``gateconv3d``): Conv3d 3x3x3 (mixes neighbouring frames, zero-padded in
  time) -> BN3d -> LeakyReLU(0.2)
- :class:`MotionNet` (``motion_net``): the posterior encoder of one path (background or foreground)
- :class:`ImageEncoder` / :class:`FlowDecoder` / :class:`Head`: the first-frame encoder, the per-frame
  decoder (frame-major ``T*B`` batches, gated 3-D convs across frames) and the flow / occlusion heads
- :class:`RefineNet` (``vgg_128.RefineNet``): VGG-style U-Net that fills occluded regions
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBNLReLU", "ConvLReLU", "FlowDecoder", "GateConv3d", "Head", "ImageEncoder", "MotionNet", "RefineNet",
           "UpConv", "VGGLayer", "skip_cat", "to4d", "to5d"]


class ConvLReLU(nn.Module):
    """Conv2d (bias) -> LeakyReLU(0.2). Keys ``main.0``."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, pad: int = 0):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, pad), nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.main(x)


class ConvBNLReLU(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> LeakyReLU(0.2). Keys ``main.0``, ``main.1``."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, pad: int = 0):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, pad, bias=False),
                                  nn.BatchNorm2d(out_ch), nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.main(x)


class UpConv(nn.Module):
    """Two conv-BN-LReLU layers (in -> 2*out -> out, biased convs) then bilinear x2 (align_corners=False).

    Keys ``main.0`` (conv), ``main.1`` (BN), ``main.3``, ``main.4``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, pad: int = 0):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_ch, out_ch * 2, kernel, stride, pad), nn.BatchNorm2d(out_ch * 2), nn.LeakyReLU(0.2),
            nn.Conv2d(out_ch * 2, out_ch, kernel, stride, pad), nn.BatchNorm2d(out_ch), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))

    def forward(self, x):
        return self.main(x)


class GateConv3d(nn.Module):
    """Conv3d (bias) -> BatchNorm3d -> LeakyReLU(0.2) on ``B,C,T,H,W`` (official ``gateconv3d``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, pad: int = 1):
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel, stride, pad, bias=True)
        self.bn = nn.BatchNorm3d(out_ch)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), 0.2)


class MotionNet(nn.Module):
    """Posterior encoder of one motion path: video differences + class masks -> (mu, logvar) rows.

    Args:
        in_ch: input channels ((1+T)*C frames + that path's mask channels).
        widths: ``(m0, m1, m2, m_out)``: conv widths (official 32, 64, 128, 64).
        out_dim: latent columns of this path (official bg 512 / fg 512; released model 128 / 896).
        z_dim: row length of the reshaped feature map (official 1024).

    ``forward(x)``: ``B,in_ch,H,W`` -> ``mu, logvar`` of shape ``B*R, out_dim`` where the
    ``B,m_out,H/16,W/16`` output is reshaped raw (NCHW order) into rows of ``z_dim``,
    ``R = m_out*H*W/(256*z_dim)`` rows per sample.
    """

    def __init__(self, in_ch: int, widths: Sequence[int], out_dim: int, z_dim: int):
        super().__init__()
        m0, m1, m2, m3 = (int(w) for w in widths)
        self.z_dim = int(z_dim)
        self.main = nn.Sequential(
            nn.Conv2d(in_ch, m0, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
            nn.Conv2d(m0, m1, 4, 2, 1, bias=False), nn.BatchNorm2d(m1), nn.LeakyReLU(0.2),
            nn.Conv2d(m1, m1, 3, 1, 1, bias=False), nn.BatchNorm2d(m1), nn.LeakyReLU(0.2),
            nn.Conv2d(m1, m2, 4, 2, 1, bias=False), nn.BatchNorm2d(m2), nn.LeakyReLU(0.2),
            nn.Conv2d(m2, m2, 3, 1, 1, bias=False), nn.BatchNorm2d(m2), nn.LeakyReLU(0.2),
            nn.Conv2d(m2, m3, 4, 2, 1, bias=False))
        self.fc1 = nn.Linear(self.z_dim, out_dim)
        self.fc2 = nn.Linear(self.z_dim, out_dim)

    def forward(self, x):
        rows = self.main(x).reshape(-1, self.z_dim)
        return self.fc1(rows), self.fc2(rows)


class VGGLayer(nn.Module):
    """Conv3x3 pad 1 (bias) -> BN -> LeakyReLU(0.2) (official ``vgg_layer``)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.BatchNorm2d(out_ch), nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.main(x)


class _RefineEncoder(nn.Module):
    def __init__(self, nc: int, w: Sequence[int], dim: int):
        super().__init__()
        w1, w2, w3, w4, w5 = w
        self.c1 = nn.Sequential(VGGLayer(nc, w1), VGGLayer(w1, w1))
        self.c2 = nn.Sequential(VGGLayer(w1, w2), VGGLayer(w2, w2))
        self.c3 = nn.Sequential(VGGLayer(w2, w3), VGGLayer(w3, w3), VGGLayer(w3, w3))
        self.c4 = nn.Sequential(VGGLayer(w3, w4), VGGLayer(w4, w4), VGGLayer(w4, w4))
        self.c5 = nn.Sequential(VGGLayer(w4, w5), VGGLayer(w5, w5), VGGLayer(w5, w5))
        self.c6 = nn.Sequential(nn.Conv2d(w5, dim, 4, 1, 0), nn.BatchNorm2d(dim), nn.Tanh())

    def forward(self, x):
        h1 = self.c1(x)
        h2 = self.c2(F.max_pool2d(h1, 2, 2))
        h3 = self.c3(F.max_pool2d(h2, 2, 2))
        h4 = self.c4(F.max_pool2d(h3, 2, 2))
        h5 = self.c5(F.max_pool2d(h4, 2, 2))
        h6 = self.c6(F.max_pool2d(h5, 2, 2))
        return h6, [h1, h2, h3, h4, h5]


class _RefineDecoder(nn.Module):
    def __init__(self, nc: int, w: Sequence[int], dim: int):
        super().__init__()
        w1, w2, w3, w4, w5 = w
        self.upc1 = nn.Sequential(nn.ConvTranspose2d(dim, w5, 4, 1, 0), nn.BatchNorm2d(w5), nn.LeakyReLU(0.2))
        self.upc2 = nn.Sequential(VGGLayer(2 * w5, w5), VGGLayer(w5, w5), VGGLayer(w5, w4))
        self.upc3 = nn.Sequential(VGGLayer(2 * w4, w4), VGGLayer(w4, w4), VGGLayer(w4, w3))
        self.upc4 = nn.Sequential(VGGLayer(2 * w3, w3), VGGLayer(w3, w3), VGGLayer(w3, w2))
        self.upc5 = nn.Sequential(VGGLayer(2 * w2, w2), VGGLayer(w2, w1))
        self.upc6 = nn.Sequential(VGGLayer(2 * w1, w1), nn.ConvTranspose2d(w1, nc, 3, 1, 1), nn.Sigmoid())

    @staticmethod
    def _up(x):
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, h6, skips):
        d = self.upc1(h6)
        for stage, skip in zip((self.upc2, self.upc3, self.upc4, self.upc5, self.upc6), reversed(skips)):
            d = stage(torch.cat([self._up(d), skip], 1))
        return d


class RefineNet(nn.Module):
    """Img2Vid refinement U-Net (official ``RefineNet``, the version without a flow encoder).

    Encoder: five VGG stages (2, 2, 3, 3, 3 :class:`VGGLayer`) separated by 2x2 max-pools, then
    Conv4x4 (valid) -> BN -> tanh. Decoder: ConvTranspose4x4 -> BN -> LReLU, then five times
    [bilinear x2 (align_corners=False), concat the matching encoder stage, VGG layers]; the last
    stage ends with ConvTranspose3x3 -> sigmoid.

    Args:
        nc: image channels (3).
        widths: the five stage widths (official 64, 128, 256, 512, 512).
        dim: bottleneck channels (official 1024).

    ``forward(x)``: ``B,nc,H,W`` (H, W multiples of 32 and >= 128) -> ``B,nc,H,W`` in (0,1).
    """

    def __init__(self, nc: int = 3, widths: Sequence[int] = (64, 128, 256, 512, 512), dim: int = 1024):
        super().__init__()
        w = [int(v) for v in widths]
        if len(w) != 5:
            raise ValueError(f"RefineNet: expected 5 stage widths, got {w}")
        self.image_encoder = _RefineEncoder(nc, w, dim)
        self.image_decoder = _RefineDecoder(nc, w, dim)

    def forward(self, x):
        h6, skips = self.image_encoder(x)
        return self.image_decoder(h6, skips)


class ImageEncoder(nn.Module):
    """econv1 (Conv4/2/1 bias, LReLU) and econv2..4 (Conv4/2/1, BN, LReLU): x, masks -> 4 feature maps."""

    def __init__(self, in_ch: int, widths):
        super().__init__()
        e1, e2, e3, e4 = widths
        self.econv1 = ConvLReLU(in_ch, e1, 4, 2, 1)
        self.econv2 = ConvBNLReLU(e1, e2, 4, 2, 1)
        self.econv3 = ConvBNLReLU(e2, e3, 4, 2, 1)
        self.econv4 = ConvBNLReLU(e3, e4, 4, 2, 1)

    def forward(self, x):
        e1 = self.econv1(x)
        e2 = self.econv2(e1)
        e3 = self.econv3(e2)
        return e1, e2, e3, self.econv4(e3)


def to5d(x: torch.Tensor, t: int) -> torch.Tensor:
    """Frame-major ``T*B,C,h,w`` -> ``B,C,T,h,w``."""
    return x.reshape(t, -1, *x.shape[1:]).permute(1, 2, 0, 3, 4)


def to4d(x: torch.Tensor) -> torch.Tensor:
    """``B,C,T,h,w`` -> frame-major ``T*B,C,h,w``."""
    return x.permute(2, 0, 1, 3, 4).reshape(-1, x.shape[1], *x.shape[3:])


def skip_cat(feat5: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
    """cat([decoded B,C,T,h,w, encoder map repeated over T], channels) -> frame-major 4-D."""
    rep = enc.unsqueeze(2).expand(-1, -1, feat5.shape[2], -1, -1)
    return to4d(torch.cat([feat5, rep], 1))


class FlowDecoder(nn.Module):
    """Per-frame codes -> features at H/2 (official ``decoder``; gated 3-D convs mix neighbouring frames)."""

    def __init__(self, enc_widths, code_ch: int, num_frames: int):
        super().__init__()
        e1, e2, e3, e4 = enc_widths
        self.T = num_frames
        self.dconv1 = ConvBNLReLU(e4 + code_ch, e4, 3, 1, 1)
        self.dconv2 = UpConv(e4, e3, 3, 1, 1)
        self.dconv3 = UpConv(2 * e3, e2, 3, 1, 1)
        self.dconv4 = UpConv(2 * e2, e1, 3, 1, 1)
        self.gateconv1 = GateConv3d(e2, e2, 3, 1, 1)
        self.gateconv2 = GateConv3d(e1, e1, 3, 1, 1)

    def forward(self, e1, e2, e3, z):
        T = self.T
        d2 = skip_cat(to5d(self.dconv2(self.dconv1(z)), T), e3)
        d3 = skip_cat(self.gateconv1(to5d(self.dconv3(d2), T)), e2)
        return skip_cat(self.gateconv2(to5d(self.dconv4(d3), T)), e1)


class Head(nn.Module):
    """upconv(in, head_ch, k5) -> Conv5x5 -> 2 channels (official ``getflow`` / ``get_occlusion_mask``)."""

    def __init__(self, in_ch: int, head_ch: int):
        super().__init__()
        self.main = nn.Sequential(UpConv(in_ch, head_ch, 5, 1, 2), nn.Conv2d(head_ch, 2, 5, 1, 2))

    def forward(self, x):
        return self.main(x)
