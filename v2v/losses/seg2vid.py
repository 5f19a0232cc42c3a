"""Loss terms of Img2Vid (seg2vid, Pan et al. CVPR 2019), official ``src/losses.py`` numerics.

Flows here are in normalized grid units (see :mod:`v2v.ops.norm_flow_warp`); images in [0,1].

- :func:`neighbourhood_flow_smoothness` (official ``_quickflowloss``): edge-aware smoothness over
  a 5x5 neighbourhood without its centre row/column.
- :func:`flow_consistency` (official ``_flowconsist``): forward-backward consistency, masked.
- :func:`ssim_dissimilarity` (official ``SSIM``): ``clamp((1 - SSIM) / 2, 0, 1).mean()`` with 3x3
  average-pool statistics and no padding. kornia's SSIM uses a Gaussian window with padding,
  which gives different numbers, so the official form is implemented here (a few lines).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from v2v.ops.norm_flow_warp import norm_flow_warp

__all__ = ["Img2VidLosses", "flow_consistency", "neighbourhood_flow_smoothness", "ssim_dissimilarity"]


def neighbourhood_flow_smoothness(flow: torch.Tensor, image: torch.Tensor, neighbourhood: int = 5,
                                  alpha: float = 1.0, flow_scale: float = 128.0,
                                  image_scale: float = 256.0) -> torch.Tensor:
    """Edge-aware flow smoothness (official ``_quickflowloss``).

    ``f = flow*flow_scale``, ``I = image*image_scale``; for each offset ``(i, j)`` of the
    neighbourhood with ``i, j != centre``:
    ``sum_c (f_c[centre] - f_c[offset])^2 * exp(-alpha * sum_c (I_c[centre] - I_c[offset])^2 - |offset|^2)``,
    summed over everything and divided by ``B*H*W``.

    Args:
        flow: ``B,2,H,W``. image: ``B,C,H,W``.
    Returns: scalar.
    """
    if flow.dim() != 4 or image.dim() != 4 or flow.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"smoothness: expected B,2,H,W flow and B,C,H,W image, got {tuple(flow.shape)}, "
                         f"{tuple(image.shape)}")
    f = flow * flow_scale
    im = image * image_scale
    b, _, h, w = im.shape
    c = (neighbourhood - 1) // 2
    fc = f[:, :, c:h - c, c:w - c]
    ic = im[:, :, c:h - c, c:w - c]
    terms = []
    for i in range(neighbourhood):
        if i == c:
            continue
        for j in range(neighbourhood):
            if j == c:
                continue
            fs = (fc - f[:, :, i:h - (neighbourhood - i - 1), j:w - (neighbourhood - j - 1)]) ** 2
            its = (ic - im[:, :, i:h - (neighbourhood - i - 1), j:w - (neighbourhood - j - 1)]) ** 2
            terms.append(fs.sum(1) * torch.exp(-alpha * its.sum(1) - ((i - c) ** 2 + (j - c) ** 2)))
    return torch.stack(terms).sum() / (b * w * h)


def flow_consistency(flow: torch.Tensor, flowback: torch.Tensor, mask_fw: torch.Tensor,
                     mask_bw: torch.Tensor) -> torch.Tensor:
    """Forward-backward consistency of one frame (official ``_flowconsist``).

    ``mean(mask_bw * |warp(flow, -flowback) - flowback|) + mean(mask_fw * |warp(flowback, flow) - flow|)``
    with :func:`v2v.ops.norm_flow_warp.norm_flow_warp`. flows ``B,2,H,W``, masks ``B,1,H,W``.
    """
    prev = (mask_bw * (norm_flow_warp(flow, -flowback) - flowback).abs()).mean()
    nxt = (mask_fw * (norm_flow_warp(flowback, flow) - flow).abs()).mean()
    return prev + nxt


def ssim_dissimilarity(x: torch.Tensor, y: torch.Tensor, c1: float = 0.01 ** 2, c2: float = 0.03 ** 2,
                       window: int = 3) -> torch.Tensor:
    """``clamp((1 - SSIM(x, y)) / 2, 0, 1).mean()`` with ``window`` x ``window`` average pooling, stride 1,
    no padding (official seg2vid ``SSIM``). x, y: ``B,C,H,W`` -> scalar.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> float(ssim_dissimilarity(x, x)) < 1e-6
        True
    """
    mu_x = F.avg_pool2d(x, window, 1)
    mu_y = F.avg_pool2d(y, window, 1)
    sigma_x = F.avg_pool2d(x ** 2, window, 1) - mu_x ** 2
    sigma_y = F.avg_pool2d(y ** 2, window, 1) - mu_y ** 2
    sigma_xy = F.avg_pool2d(x * y, window, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sigma_x + sigma_y + c2)
    return torch.clamp((1 - num / den) / 2, 0, 1).mean()


class Img2VidLosses:
    """The nine official terms and their weighted total.

    ``terms(frame1, frame2, out, vgg_pred, vgg_gt)`` with ``frame2`` ``B,T,C,H,W`` (frames 1..T),
    ``out`` the :class:`FlowVAE` dict (needs mu/logvar), ``vgg_*`` lists of feature maps (or
    None for no VGG term). ``total(terms)`` applies the config's weights.
    """

    NAMES = ("flowloss", "reconloss", "reconloss_back", "reconloss_before", "kldloss", "flowcon", "sim_loss",
             "vgg_loss", "mask_loss")

    def __init__(self, cfg):
        self.cfg = cfg

    def terms(self, frame1, frame2, out, vgg_pred=None, vgg_gt=None) -> dict[str, torch.Tensor]:
        from v2v.losses.basic import kl_normal

        flow, flowback, m_fw, m_bw = out["flow"], out["flowback"], out["mask_fw"], out["mask_bw"]
        refined, warped = out["refined"], out["warped"]
        T = frame2.shape[1]
        a = self.cfg.alpha_recon_image
        t = {}
        t["flowloss"] = 0.01 * (neighbourhood_flow_smoothness(flow[:, :, 0], frame2[:, 0])
                                + neighbourhood_flow_smoothness(flowback[:, :, 0], frame1))
        t["flowcon"] = sum(flow_consistency(flow[:, :, i], flowback[:, :, i], m_fw[:, i:i + 1], m_bw[:, i:i + 1])
                           for i in range(T))
        t["kldloss"] = kl_normal(out["mu"], out["logvar"], reduction="sum") / 1000
        t["sim_loss"] = sum(a * ssim_dissimilarity(refined[:, i], frame2[:, i])
                            + (1 - a) * F.l1_loss(refined[:, i], frame2[:, i]) for i in range(T))
        fb = (-flowback * m_bw.unsqueeze(1)).transpose(1, 2).flatten(0, 1)
        prev = norm_flow_warp(frame2.flatten(0, 1), fb).reshape(frame2.shape)
        mb = m_bw.unsqueeze(2)
        t["reconloss_back"] = (prev * mb - frame1.unsqueeze(1) * mb).abs().mean()
        t["reconloss"] = (refined - frame2).abs().mean()
        mf = m_fw.unsqueeze(2)
        t["reconloss_before"] = (warped * mf - frame2 * mf).abs().mean()
        t["vgg_loss"] = (sum((g - p).abs().mean() for p, g in zip(vgg_pred, vgg_gt)) if vgg_pred is not None
                         else refined.new_zeros(()))
        t["mask_loss"] = (1 - m_bw).mean() + (1 - m_fw).mean()
        return {k: t[k] for k in self.NAMES}

    def total(self, t: dict) -> torch.Tensor:
        c = self.cfg
        w = {"flowloss": c.lambda_flow, "reconloss": c.lambda_recon, "reconloss_back": c.lambda_recon_back,
             "reconloss_before": c.lambda_recon_before, "kldloss": c.lambda_kld, "flowcon": c.lambda_flowcon,
             "sim_loss": c.lambda_sim, "vgg_loss": c.lambda_vgg, "mask_loss": c.lambda_mask}
        return sum(w[k] * t[k] for k in self.NAMES)
