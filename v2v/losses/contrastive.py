"""Contrastive and cosine losses of MoCoGAN-HD (Tian et al. 2021, Sec. 3.2, Eq. 4-6).

- :func:`contrastive_loss`: InfoNCE of two augmented views against a memory queue (MoCo), with the
  official detail that the self-similarity of a row stays in the softmax denominator as logit 0;
- :func:`cosine_similarity16`: ``F.cosine_similarity(dim=1)`` with torch 1.6's formula
  ``w12 / sqrt(max(w1 * w2, eps^2))`` (the official pin; modern torch normalises first and differs
  by ~1e-8), used by the feature-matching and mutual-information losses;
- :func:`pair_cos_sim`: the cosine-similarity matrix with row norms clamped at ``eps``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["contrastive_loss", "cosine_similarity16", "pair_cos_sim"]


def pair_cos_sim(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine-similarity matrix ``(Na, Nb)`` with row norms clamped at ``eps``."""
    return (a / a.norm(dim=1, keepdim=True).clamp_min(eps)) @ (b / b.norm(dim=1, keepdim=True).clamp_min(eps)).t()


def cosine_similarity16(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """torch-1.6 ``F.cosine_similarity(dim=1)``: ``w12 / sqrt(max(w1 * w2, eps^2))``.

    Args:
        a, b: ``N,D``.

    Returns:
        ``(N,)`` cosine similarities.

    Example:
        >>> cosine_similarity16(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])).tolist()
        [1.0]
    """
    return (a * b).sum(1) / torch.sqrt(((a * a).sum(1) * (b * b).sum(1)).clamp_min(eps * eps))


def contrastive_loss(l: torch.Tensor, l2: torch.Tensor, queue: torch.Tensor, moco_t: float) -> torch.Tensor:
    """InfoNCE of two views against a queue (Eq. 4); self-similarity stays in the denominator as logit 0.

    Args:
        l, l2: projections of the two views ``(B,P)``.
        queue: negatives ``(Q,P)`` (detached).
        moco_t: temperature.

    Returns:
        Scalar ``sum_i[-log p(i,i+B) - log p(i+B,i)] / 2B`` with ``p = softmax(M * cos)`` over
        ``cat(l, l2, queue)``, ``M = 1/moco_t`` except ``M[i,i] = 0``.

    Example:
        >>> x = torch.randn(4, 8)
        >>> bool(contrastive_loss(x, x, torch.randn(16, 8), 0.07) < contrastive_loss(x, -x, torch.randn(16, 8), 0.07))
        True
    """
    bsz = l.shape[0]
    sim = pair_cos_sim(torch.cat([l, l2]), torch.cat([l, l2, queue.detach()]))
    m = torch.full_like(sim, 1.0 / moco_t)
    m.fill_diagonal_(0.0)
    p = F.softmax(sim * m, dim=1)
    idx = torch.arange(bsz, device=l.device)
    return -(torch.log(p[idx, idx + bsz]).sum() + torch.log(p[idx + bsz, idx]).sum()) / (2.0 * bsz)
