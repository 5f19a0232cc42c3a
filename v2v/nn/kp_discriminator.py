"""FOMM's multi-scale patch discriminator (Siarohin et al. 2019, official ``modules/discriminator.py``).

:class:`MultiScaleKeypointDiscriminator` runs one :class:`KeypointPatchDiscriminator` per scale of
an anti-aliased image pyramid; each optionally takes keypoint gaussians as extra input channels
and optionally spectral-normalised convolutions (the legacy power-iteration order the official
checkpoints were trained with).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from v2v.ops.keypoints import kp_to_gaussian
from v2v.ops.pyramid import antialias_downsample

__all__ = ["KeypointPatchDiscriminator", "MultiScaleKeypointDiscriminator", "scale_name"]


def _spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral norm with the legacy power-iteration order the official checkpoints used."""
    from v2v.nn.spectral_norm import spectral_norm

    return spectral_norm(module)


class _DiscBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: bool, pool: bool, sn: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=4)
        if sn:
            self.conv = _spectral_norm(self.conv)
        self.norm = nn.InstanceNorm2d(cout, affine=True) if norm else None
        self.pool = pool

    def forward(self, x):
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        return F.avg_pool2d(out, 2) if self.pool else out


class KeypointPatchDiscriminator(nn.Module):
    """One-scale patch discriminator: 4x4 valid convs, InstanceNorm (blocks >= 1), LeakyReLU(0.2),
    avg-pool (all but last), a 1x1 conv. ``forward(image B,3,H,W, kp B,K,2 or None)`` ->
    (feature maps, prediction map ``B,1,h,w``); ``use_kp`` appends keypoint gaussians."""

    def __init__(self, num_channels: int = 3, num_kp: int = 10, block_expansion: int = 64, num_blocks: int = 4,
                 max_features: int = 512, sn: bool = False, use_kp: bool = False, kp_variance: float = 0.01):
        super().__init__()
        self.use_kp = use_kp
        self.kp_variance = kp_variance
        blocks = []
        for i in range(num_blocks):
            cin = num_channels + num_kp * int(use_kp) if i == 0 else min(max_features, block_expansion * 2 ** i)
            cout = min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(_DiscBlock(cin, cout, norm=i != 0, pool=i != num_blocks - 1, sn=sn))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cout, 1, kernel_size=1)
        if sn:
            self.head = _spectral_norm(self.head)

    def forward(self, x: torch.Tensor, kp: torch.Tensor | None = None):
        out = x
        if self.use_kp:
            if kp is None:
                raise ValueError("this discriminator was built with use_kp=True and needs keypoints")
            out = torch.cat([out, kp_to_gaussian(kp, x.shape[2:], self.kp_variance)], dim=1)
        feats = []
        for block in self.blocks:
            out = block(out)
            feats.append(out)
        return feats, self.head(out)


def scale_name(s: float) -> str:
    """Printable scale: 1 -> "1", 0.5 -> "0.5" (output keys ``prediction_map_<name>``)."""
    return f"{float(s):g}"


def _scale_key(s: float) -> str:
    return scale_name(s).replace(".", "-")


class MultiScaleKeypointDiscriminator(nn.Module):
    """Patch discriminators over an anti-aliased image pyramid (one per scale).

    ``forward(image B,3,H,W in [0,1], kp=None)`` -> ``{"feature_maps_<s>": [...],
    "prediction_map_<s>": B,1,h,w, "input_<s>": image at scale s}`` with ``<s> = scale_name(s)``.
    """

    def __init__(self, scales=(1,), num_channels: int = 3, num_kp: int = 10, block_expansion: int = 64,
                 num_blocks: int = 4, max_features: int = 512, sn: bool = False, use_kp: bool = False,
                 kp_variance: float = 0.01):
        super().__init__()
        self.scales = list(scales)
        kw = {"num_channels": num_channels, "num_kp": num_kp, "block_expansion": block_expansion, "num_blocks": num_blocks,
                  "max_features": max_features, "sn": sn, "use_kp": use_kp, "kp_variance": kp_variance}
        self.discs = nn.ModuleDict({_scale_key(s): KeypointPatchDiscriminator(**kw) for s in self.scales})

    def forward(self, image: torch.Tensor, kp: torch.Tensor | None = None) -> dict:
        out = {}
        for s in self.scales:
            x = antialias_downsample(image, float(s))
            feats, pred = self.discs[_scale_key(s)](x, kp)
            name = scale_name(s)
            out[f"input_{name}"] = x
            out[f"feature_maps_{name}"] = feats
            out[f"prediction_map_{name}"] = pred
        return out
