"""Inference-time fusion: BatchNorm (eval statistics) folded into the preceding convolution.

``conv -> BN`` in eval mode is one affine map per output channel, so
``W' = W * g / sqrt(var + eps)`` and ``b' = (b - mean) * g / sqrt(var + eps) + beta`` give the
same output with one pass over the activations less. Differences are float32 rounding only
(~1e-7 relative).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batchnorm", "fuse_for_inference"]

# (conv attribute, BN attribute that directly follows it) in v2v's FOMM-style blocks
_PAIRS = (("conv", "norm"), ("conv1", "norm2"))


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every ``conv -> BatchNorm2d`` pair of ``module``'s blocks in place (eval mode only).

    A block qualifies when it has a ``conv``/``norm`` (or ``conv1``/``norm2``, the pre-activation
    residual block's inner pair) ``Conv2d``/``BatchNorm2d`` pair applied in that order; the BN is
    replaced by ``nn.Identity``. Pre-activation norms (``norm1`` before a ReLU) are left alone.

    Args:
        module: a network in eval mode (train-mode BN uses batch statistics and cannot be folded).

    Returns:
        The number of folded pairs.

    Example:
        >>> from v2v.nn.hourglass import SameBlock2d
        >>> import torch
        >>> blk = SameBlock2d(3, 4).eval()
        >>> x = torch.rand(1, 3, 8, 8)
        >>> y = blk(x)
        >>> fold_batchnorm(blk)
        1
        >>> bool((blk(x) - y).abs().max() < 1e-5)
        True
    """
    if module.training:
        raise ValueError("fold_batchnorm: the module must be in eval mode")
    n = 0
    for sub in list(module.modules()):
        for conv_name, bn_name in _PAIRS:
            conv, bn = getattr(sub, conv_name, None), getattr(sub, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                setattr(sub, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(sub, bn_name, nn.Identity())
                n += 1
    return n


def fuse_for_inference(*modules: nn.Module) -> None:
    """A fast inference path's one-time preparation, in place: eval mode, BatchNorm folded
    (:func:`fold_batchnorm`) and channels_last weights (the faster conv layout on x86 CPUs)."""
    for m in modules:
        m.eval()
        fold_batchnorm(m)
        m.to(memory_format=torch.channels_last)
