"""Local correlation (cost volume) between two feature maps, pure torch (FlowNet/PWC-Net style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["correlation_displacements", "local_correlation"]


def correlation_displacements(max_displacement: int = 4, stride: int = 1) -> list:
    """The ``(dy, dx)`` pixel displacements of :func:`local_correlation`'s channels, in order
    (dy outer, dx inner, each from ``-D`` to ``+D`` in steps of ``stride``).

    Args:
        max_displacement: largest displacement ``D`` in pixels.
        stride: displacement step in pixels.

    Returns:
        list of ``(dy, dx)`` integer pairs, length ``(2 * (D // stride) + 1) ** 2``.

    Example:
        >>> correlation_displacements(1)[:3]
        [(-1, -1), (-1, 0), (-1, 1)]
    """
    r = max_displacement // stride
    steps = [s * stride for s in range(-r, r + 1)]
    return [(dy, dx) for dy in steps for dx in steps]


def local_correlation(
    f1: torch.Tensor, f2: torch.Tensor, max_displacement: int = 4, stride: int = 1
) -> torch.Tensor:
    """Cost volume ``out[b, n, i, j] = mean_c f1[b, c, i, j] * f2[b, c, i + dy_n, j + dx_n]``.

    Args:
        f1, f2: feature maps ``B,C,H,W`` (same shape).
        max_displacement: largest displacement ``D`` in pixels (both axes).
        stride: displacement step (FlowNet's ``stride2``); channels
            ``N = (2 * (D // stride) + 1) ** 2``.

    Returns:
        ``B,N,H,W``; channel ``n`` is displacement ``correlation_displacements(D, stride)[n]``
        (dy outer, dx inner; with stride 1 the centre channel ``N // 2`` is zero displacement).
        Positions outside ``f2`` count as zeros. Normalized by the number of channels ``C``.
        Differentiable; memory ``O(B*C*H*W)`` (one shifted product at a time).

    Example:
        >>> f = torch.ones(1, 4, 3, 3)
        >>> local_correlation(f, f, max_displacement=1)[0, :, 1, 1]
        tensor([1., 1., 1., 1., 1., 1., 1., 1., 1.])
    """
    if f1.shape != f2.shape or f1.dim() != 4:
        raise ValueError(
            f"local_correlation: f1 {tuple(f1.shape)} and f2 {tuple(f2.shape)} must both be B,C,H,W"
        )
    d = int(max_displacement)
    _, c, h, w = f1.shape
    f2p = F.pad(f2, (d, d, d, d))
    outs = []
    for dy, dx in correlation_displacements(d, stride):
        shifted = f2p[:, :, d + dy : d + dy + h, d + dx : d + dx + w]
        outs.append((f1 * shifted).sum(1))
    return torch.stack(outs, 1) / c
