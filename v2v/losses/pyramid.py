"""Multi-scale image-pyramid reconstruction losses (FOMM's perceptual pyramid and its fallback).

- :class:`L1PyramidLoss`: ``sum_s w * mean|x_s - y_s|`` over anti-aliased downsamplings, a
  stand-in for the VGG pyramid that needs no pretrained weights.
- :func:`build_pyramid_loss`: picks the VGG19 pyramid (:class:`v2v.losses.perceptual.VGGPyramidLoss`)
  or the L1 stand-in by name, with ``auto`` falling back to L1 (with a warning) when no VGG19
  weights are found offline.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from v2v.errors import V2VError
from v2v.ops.pyramid import antialias_downsample

__all__ = ["PYRAMID_NETS", "L1PyramidLoss", "build_pyramid_loss"]

PYRAMID_NETS = ("vgg19", "vgg19_random", "l1", "auto")


class L1PyramidLoss(nn.Module):
    """L1 image pyramid: ``sum_s weight * mean|down_s(x) - down_s(y)|`` (``y`` detached).

    Args:
        scales: pyramid scales, e.g. ``[1, 0.5, 0.25, 0.125]`` (FOMM's anti-aliased downsampling).
        weight: weight of every scale.

    ``forward(x B,C,H,W, y B,C,H,W) -> scalar``.

    Example:
        >>> loss = L1PyramidLoss([1, 0.5], weight=2.0)
        >>> x = torch.zeros(1, 3, 8, 8)
        >>> float(loss(x, x))
        0.0
        >>> float(L1PyramidLoss([1], weight=2.0)(x, x + 0.5))
        1.0
    """

    def __init__(self, scales: Sequence[float], weight: float):
        super().__init__()
        self.scales = [float(s) for s in scales]
        self.weight = float(weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"L1PyramidLoss: shapes differ {tuple(x.shape)} vs {tuple(y.shape)}")
        loss = x.new_zeros(())
        for s in self.scales:
            xs, ys = antialias_downsample(x, s), antialias_downsample(y, s)
            loss = loss + self.weight * (xs - ys.detach()).abs().mean()
        return loss


def build_pyramid_loss(net: str, scales: Sequence[float], layer_weights: Sequence[float],
                       vgg_weights: str | None = None) -> nn.Module:
    """The pyramid reconstruction loss named ``net``.

    Args:
        net: ``vgg19`` (ImageNet VGG19 found offline by :mod:`v2v.weights`; missing = V2VError),
            ``vgg19_random`` (random VGG19: smoke tests only), ``l1`` (:class:`L1PyramidLoss`
            with weight ``sum(layer_weights)``) or ``auto`` (vgg19 when its weights are found,
            else l1 with a warning).
        scales: pyramid scales.
        layer_weights: per-VGG-layer weights (FOMM ``loss_weights.perceptual``).
        vgg_weights: explicit VGG19 weights file (default: searched by :mod:`v2v.weights`).

    Returns:
        A module ``(prediction, target) -> scalar``.
    """
    if net == "auto":
        from v2v.weights import find_weights

        try:
            find_weights("vgg19", vgg_weights)
            net = "vgg19"
        except V2VError as exc:
            warnings.warn(f"{exc}; the perceptual loss falls back to an L1 image pyramid", stacklevel=2)
            net = "l1"
    if net == "l1":
        return L1PyramidLoss(scales, sum(layer_weights))
    if net in ("vgg19", "vgg19_random"):
        from v2v.losses.perceptual import VGGPyramidLoss

        return VGGPyramidLoss(scales=list(scales), layer_weights=list(layer_weights),
                              weights=vgg_weights if net == "vgg19" else "random")
    raise V2VError(f"perceptual_net: expected one of {', '.join(PYRAMID_NETS)}, got {net!r}")
