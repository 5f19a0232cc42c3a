"""Discriminator feature-matching loss (pix2pixHD / vid2vid / EDN, and FOMM with its weights).

pix2pixHD (``G_GAN_Feat`` without ``lambda_feat``)::

    loss = sum_i sum_{j < len(fake[i]) - 1}  d_weight * feat_weight * L1(fake[i][j], real[i][j].detach())
    d_weight    = 1 / num_D
    feat_weight = 4 / (n_layers + 1)          # n_layers = len(fake[i]) - 2 (the D's n_layers_D)

L1 is the mean absolute difference. Multiply by ``lambda_feat`` (10 in pix2pixHD) yourself.

FOMM uses per-layer weights and no last-output skip (its discriminator returns feature maps
separately from the prediction map)::

    feature_matching_loss(fake_maps, real_maps, layer_weights=[10, 10, 10, 10], d_weight=1.0,
                          skip_last=False)
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FeatureMatchingLoss", "feature_matching_loss"]


def _as_nested(x) -> list[list[torch.Tensor]]:
    if torch.is_tensor(x):
        return [[x]]
    x = list(x)
    if x and torch.is_tensor(x[0]):
        return [x]
    return [list(s) for s in x]


def feature_matching_loss(fake, real, *, feat_weight: float | None = None,
                          d_weight: float | None = None,
                          layer_weights: Sequence[float] | None = None,
                          skip_last: bool = True, detach_real: bool = True) -> torch.Tensor:
    """Feature-matching L1 between D features of fake and real inputs.

    Args:
        fake, real: D outputs: a list (scales) of lists (block outputs ``B,C,h,w``), or one
            flat list for a single discriminator.
        feat_weight: per-layer weight; default ``4 / (n_layers + 1)`` with
            ``n_layers = len(fake[i]) - 2`` (pix2pixHD).
        d_weight: per-scale weight; default ``1 / num_D``.
        layer_weights: explicit per-layer weights (overrides ``feat_weight``; a 0 skips the
            layer, as FOMM).
        skip_last: ignore the last output of each scale (the patch logits), as pix2pixHD.
        detach_real: stop gradients through the real features (pix2pixHD does; FOMM does not,
            which only matters if D is being trained through this loss).
    Returns: scalar tensor.
    """
    fake_n, real_n = _as_nested(fake), _as_nested(real)
    if len(fake_n) != len(real_n):
        raise ValueError(f"fake has {len(fake_n)} scales, real has {len(real_n)}")
    num_d = len(fake_n)
    dw = (1.0 / num_d) if d_weight is None else float(d_weight)
    total = None
    for fs, rs in zip(fake_n, real_n):
        if len(fs) != len(rs):
            raise ValueError(f"fake has {len(fs)} feature maps, real has {len(rs)}")
        n_use = len(fs) - 1 if skip_last else len(fs)
        if n_use <= 0:
            continue
        fw = (4.0 / max(len(fs) - 1, 1)) if feat_weight is None else float(feat_weight)
        for j in range(n_use):
            w = fw if layer_weights is None else float(layer_weights[j])
            if w == 0:
                continue
            r = rs[j].detach() if detach_real else rs[j]
            term = dw * w * (fs[j] - r).abs().mean()
            total = term if total is None else total + term
    if total is None:
        ref = fake_n[0][0]
        return ref.new_zeros(())
    return total


class FeatureMatchingLoss(nn.Module):
    """Module wrapper of :func:`feature_matching_loss` with fixed options (see there)."""

    def __init__(self, feat_weight: float | None = None, d_weight: float | None = None,
                 layer_weights: Sequence[float] | None = None, skip_last: bool = True,
                 detach_real: bool = True):
        super().__init__()
        self.kw = {"feat_weight": feat_weight, "d_weight": d_weight,
                       "layer_weights": None if layer_weights is None else list(layer_weights),
                       "skip_last": skip_last, "detach_real": detach_real}

    def forward(self, fake, real) -> torch.Tensor:
        return feature_matching_loss(fake, real, **self.kw)
