"""Small closed-form linear algebra that exporters (ONNX) and every backend handle.

``torch.inverse`` on ``...,2,2`` batches goes through LU factorisation, which the ONNX exporter
does not support; the 2x2 closed form is exact up to rounding and cheaper.
"""
from __future__ import annotations

import torch

__all__ = ["inverse_2x2"]


def inverse_2x2(m: torch.Tensor) -> torch.Tensor:
    """Inverse of 2x2 matrices by the adjugate: ``[[d, -b], [-c, a]] / (ad - bc)``.

    Args:
        m: ``(..., 2, 2)`` float tensor of invertible matrices (a singular matrix gives inf/nan,
            as ``torch.inverse`` raises for it).

    Returns:
        ``(..., 2, 2)`` tensor, ``m @ inverse_2x2(m) = I`` up to rounding.

    Example:
        >>> m = torch.tensor([[2.0, 1.0], [1.0, 1.0]])
        >>> inverse_2x2(m)
        tensor([[ 1., -1.],
                [-1.,  2.]])
    """
    if m.dim() < 2 or m.shape[-2:] != (2, 2):
        raise ValueError(f"inverse_2x2: expected (..., 2, 2), got {tuple(m.shape)}")
    a, b = m[..., 0, 0], m[..., 0, 1]
    c, d = m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    row0 = torch.stack([d, -b], dim=-1)
    row1 = torch.stack([-c, a], dim=-1)
    return torch.stack([row0, row1], dim=-2) / det[..., None, None]
