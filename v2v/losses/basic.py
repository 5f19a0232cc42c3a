"""Elementary losses: (masked) L1/L2, total variation / smoothness, VAE KL.

Conventions: images / feature maps ``B,C,H,W`` (videos ``B,T,C,H,W`` also work where noted);
masks ``B,1,H,W`` (or any shape broadcastable to the input) in [0,1]; flow ``B,2,H,W`` in
pixels. Every function returns a scalar tensor.
"""
from __future__ import annotations

import torch

__all__ = ["kl_normal", "l1_loss", "l2_loss", "masked_mean", "smoothness_loss", "tv_loss"]


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """Mean of ``x`` over all elements, weighted by ``mask`` (broadcast to ``x``).

    ``sum(x * m) / sum(m broadcast to x.shape)``; 0 when the mask is empty. Without a mask
    this is ``x.mean()``.
    """
    if mask is None:
        return x.mean()
    m = mask.to(x.dtype).expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(eps)


def _reduce(err: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if reduction == "masked":
        return masked_mean(err, mask)
    if reduction == "mean":
        return err.mean() if mask is None else (err * mask.to(err.dtype)).mean()
    raise ValueError(f"reduction must be 'masked' or 'mean', got {reduction!r}")


def l1_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
            reduction: str = "masked") -> torch.Tensor:
    """Mean absolute error, optionally masked (``mask`` e.g. ``B,1,H,W`` in [0,1]); any shape.

    ``reduction="masked"``: divide by the mask's total weight (the mean over the masked
    region); ``"mean"``: divide by the number of elements (vid2vid's ``MaskedL1Loss``,
    ``L1(pred * mask, target * mask)``).
    """
    return _reduce((pred - target).abs(), mask, reduction)


def l2_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
            reduction: str = "masked") -> torch.Tensor:
    """Mean squared error, optionally masked; ``reduction`` as :func:`l1_loss`."""
    return _reduce((pred - target).pow(2), mask, reduction)


def _diffs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return dx, dy


def tv_loss(x: torch.Tensor, *, squared: bool = False) -> torch.Tensor:
    """First-order total variation of ``x`` (``...,H,W``): ``mean|dx| + mean|dy|``.

    ``dx = x[..., :, 1:] - x[..., :, :-1]`` (W-1 columns) and ``dy`` likewise over H; each is
    averaged over its own elements. ``squared=True`` uses ``dx^2`` / ``dy^2``. A constant has
    TV 0; a horizontal ramp ``x[..., w] = a*w`` has TV ``|a|``.
    """
    dx, dy = _diffs(x)
    if squared:
        return dx.pow(2).mean() + dy.pow(2).mean()
    return dx.abs().mean() + dy.abs().mean()


def smoothness_loss(x: torch.Tensor, image: torch.Tensor | None = None, *, edge_weight: float = 10.0,
                    squared: bool = False) -> torch.Tensor:
    """First-order smoothness of a map ``x: B,C,H,W`` (e.g. flow ``B,2,H,W``), optionally edge-aware.

    Without ``image`` this is :func:`tv_loss`. With ``image: B,3,H,W`` in [0,1], each gradient
    is weighted by ``exp(-edge_weight * mean_c |image gradient|)`` so that ``x`` may change
    across image edges: ``mean(w_x |dx|) + mean(w_y |dy|)``.
    """
    if image is None:
        return tv_loss(x, squared=squared)
    dx, dy = _diffs(x)
    ix, iy = _diffs(image)
    wx = torch.exp(-edge_weight * ix.abs().mean(dim=-3, keepdim=True))
    wy = torch.exp(-edge_weight * iy.abs().mean(dim=-3, keepdim=True))
    f = (lambda t: t.pow(2)) if squared else (lambda t: t.abs())
    return (wx * f(dx)).mean() + (wy * f(dy)).mean()


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "batchmean") -> torch.Tensor:
    """KL( N(mu, exp(logvar)) || N(0, I) ) of a diagonal Gaussian (VAE).

    Per element: ``-0.5 * (1 + logvar - mu^2 - exp(logvar))``. ``mu``, ``logvar``: ``B,...``.
    ``reduction``: ``"batchmean"`` (sum over latent dims, mean over the batch; default),
    ``"sum"``, ``"mean"`` (mean over all elements). ``kl_normal(0, 0) == 0``.
    """
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    if reduction == "batchmean":
        return kl.reshape(kl.shape[0], -1).sum(1).mean()
    if reduction == "sum":
        return kl.sum()
    if reduction == "mean":
        return kl.mean()
    raise ValueError(f"reduction must be batchmean, sum or mean, got {reduction!r}")
