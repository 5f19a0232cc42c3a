"""SAGAN self-attention over spatial positions (used by DVD-GAN / BigGAN-style discriminators).

``y = gamma * attn(x) + x`` with ``q = Wq x`` (C -> C//8), ``k = Wk x`` (C -> C//8),
``v = Wv x`` (C -> C), all 1x1 convs with bias; ``A = softmax_j(q_i . k_j)`` over the ``N = H*W``
positions and ``attn(x)_i = sum_j A_ij v_j``. ``gamma`` is a learned scalar initialised to 0
(the block starts as the identity).

Parameter names: ``query``, ``key``, ``value`` (convs), ``gamma``. Input/output ``B,C,H,W``.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["SelfAttention2d"]


class SelfAttention2d(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019, eq. 1-3); see the module docstring.

    Args:
        channels: C of the ``B,C,H,W`` input.
        reduction: C // (query/key channels), 8 in SAGAN.
        spectral: spectral-normalize the three 1x1 convs.

    Example:
        >>> att = SelfAttention2d(16)
        >>> x = torch.rand(2, 16, 4, 4)
        >>> torch.equal(att(x), x)       # gamma starts at 0: the identity
        True
    """

    def __init__(self, channels: int, reduction: int = 8, spectral: bool = False):
        super().__init__()
        inner = max(channels // reduction, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        if spectral:
            from v2v.nn.spectral_norm import spectral_norm

            for m in (self.query, self.key, self.value):
                spectral_norm(m)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``B,C,H,W`` -> ``B,C,H,W``."""
        if x.dim() != 4:
            raise ValueError(f"SelfAttention2d: expected B,C,H,W, got {tuple(x.shape)}")
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # B, C', N
        k = self.key(x).flatten(2)    # B, C', N
        v = self.value(x).flatten(2)  # B, C, N
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # B, N(i), N(j)
        out = torch.bmm(v, attn.transpose(1, 2)).view(b, c, h, w)
        return self.gamma * out + x
