"""Adversarial losses and gradient penalties.

``GANLoss(mode)`` accepts a discriminator output in any of the shapes our discriminators
produce:

- a tensor ``B,1,h,w`` (or any shape): the loss over all of it (mean reduction);
- a flat list of tensors (one discriminator with intermediate features, last = logits): the
  loss on the LAST element;
- a list of lists (multi-scale discriminator, :class:`v2v.nn.patchgan.MultiscalePatchDiscriminator`):
  the loss on the last element of each scale, SUMMED over scales (as pix2pixHD's GANLoss).

Note: official pix2pixHD ``GANLoss`` given a bare tensor takes ``input[-1]`` (the last batch
element); we use the whole tensor. At batch size 1 they agree; for exact parity at B > 1 a
caller may pass ``pred[-1:]``.

Modes (``for_discriminator`` only matters for hinge):

=============== =============================== ===============================
mode            real target                     fake target
=============== =============================== ===============================
lsgan           mean((x - 1)^2)                 mean(x^2)
vanilla         BCE-with-logits(x, 1)           BCE-with-logits(x, 0)
nonsaturating   same as vanilla (G uses real target on fakes: -log sigmoid(x))
hinge (D)       mean(relu(1 - x))               mean(relu(1 + x))
hinge (G)       -mean(x)                        (not used)
wgan            -mean(x)                        mean(x)
=============== =============================== ===============================

For the generator call ``loss(D(fake), True, for_discriminator=False)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError, unknown_key_message

__all__ = ["GAN_MODES", "GANLoss", "gradient_penalty", "last_outputs", "r1_penalty", "relativistic_lsgan_loss"]

GAN_MODES = ("lsgan", "vanilla", "nonsaturating", "hinge", "wgan")


def last_outputs(pred) -> list[torch.Tensor]:
    """Final outputs of a D output (tensor / list of features / list of lists), one per scale."""
    if torch.is_tensor(pred):
        return [pred]
    pred = list(pred)
    if len(pred) == 0:
        raise ValueError("empty discriminator output")
    if torch.is_tensor(pred[0]):
        return [pred[-1]]
    return [p if torch.is_tensor(p) else p[-1] for p in pred]


class GANLoss(nn.Module):
    """Adversarial loss; see the module docstring for modes and accepted inputs.

    Args:
        mode: one of ``lsgan``, ``vanilla``, ``nonsaturating``, ``hinge``, ``wgan``.
        real_label, fake_label: targets for lsgan / vanilla (default 1 / 0).

    ``forward(pred, target_is_real, for_discriminator=True) -> scalar tensor``.
    """

    def __init__(self, mode: str = "lsgan", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        mode = str(mode).lower()
        if mode == "ls":
            mode = "lsgan"
        if mode not in GAN_MODES:
            raise V2VError(unknown_key_message("GAN loss mode", mode, GAN_MODES))
        self.mode = mode
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def _single(self, x: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        m = self.mode
        if m == "lsgan":
            t = self.real_label if target_is_real else self.fake_label
            return F.mse_loss(x, torch.full_like(x, t))
        if m in ("vanilla", "nonsaturating"):
            t = self.real_label if target_is_real else self.fake_label
            return F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))
        if m == "hinge":
            if for_discriminator:
                return F.relu(1.0 - x).mean() if target_is_real else F.relu(1.0 + x).mean()
            if not target_is_real:
                raise ValueError("hinge generator loss is defined with target_is_real=True")
            return -x.mean()
        # wgan
        return -x.mean() if target_is_real else x.mean()

    def forward(self, pred, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        outs = last_outputs(pred)
        loss = self._single(outs[0], target_is_real, for_discriminator)
        for x in outs[1:]:
            loss = loss + self._single(x, target_is_real, for_discriminator)
        return loss

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def relativistic_lsgan_loss(pred, other, target_is_real: bool, real_label: float = 1.0,
                            fake_label: float = 0.0) -> torch.Tensor:
    """Relativistic average LSGAN (MoCoGAN-HD): per scale ``MSE(pred - mean(other), label)``, summed.

    ``pred``/``other``: D outputs in any form :class:`GANLoss` accepts (the final output of
    each scale is used). D loss: ``ra(D(real), D(fake), True) + ra(D(fake), D(real), False)``;
    MoCoGAN-HD's G loss: ``(ra(D(fake), D(real), True) + ra(D(real), D(fake), False)) / 2``.
    """
    ps, os_ = last_outputs(pred), last_outputs(other)
    if len(ps) != len(os_):
        raise ValueError(f"pred has {len(ps)} scales, other has {len(os_)}")
    t = real_label if target_is_real else fake_label
    total = None
    for p, o in zip(ps, os_):
        d = p - o.mean()
        term = F.mse_loss(d, torch.full_like(d, t))
        total = term if total is None else total + term
    return total


def _d_scalar(out) -> torch.Tensor:
    return sum(o.sum() for o in last_outputs(out))


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, *, weight: float = 1.0,
                     target_norm: float = 1.0, alpha: torch.Tensor | None = None,
                     per_scale: bool = False, norm_dim: int | None = None) -> torch.Tensor:
    """WGAN-GP: ``weight * mean_b (||grad_x D(x_hat)||_2 - target_norm)^2``.

    ``x_hat = alpha * real + (1 - alpha) * fake`` with ``alpha ~ U[0,1]`` per sample (pass
    ``alpha`` of shape ``B`` or broadcastable to ``real`` for determinism). ``real``/``fake``
    are any ``B,...`` tensors D accepts (images ``B,3,H,W``, videos ``B,T,C,H,W``). D may
    return a tensor or a (nested) list. Keeps the graph (create_graph) so the penalty can be
    backpropagated into D.

    Default: the gradient of the sum of all final outputs, its norm over all non-batch dims.
    Variants (MoCoGAN-HD's ``compute_gradient_penalty_T`` is ``per_scale=True``,
    ``norm_dim`` = the channel dim, ``weight = 10 / num_D``):

    - ``per_scale``: one gradient per scale's final output; the penalties are summed.
    - ``norm_dim``: the norm is taken over this dim only (per-position norms), then averaged.
    """
    b = real.shape[0]
    if alpha is None:
        alpha = torch.rand(b, device=real.device, dtype=real.dtype)
    alpha = torch.as_tensor(alpha).to(device=real.device, dtype=real.dtype)
    if alpha.dim() == 1:
        alpha = alpha.view(b, *([1] * (real.dim() - 1)))
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    outs = last_outputs(D(x_hat))
    targets = [o.sum() for o in outs] if per_scale else [sum(o.sum() for o in outs)]
    total = None
    for t in targets:
        (g,) = torch.autograd.grad(t, x_hat, create_graph=True)
        norm = g.reshape(b, -1).norm(2, dim=1) if norm_dim is None else g.norm(2, dim=norm_dim)
        term = ((norm - target_norm) ** 2).mean()
        total = term if total is None else total + term
    return weight * total


def r1_penalty(d_out, real: torch.Tensor, *, weight: float = 1.0) -> torch.Tensor:
    """R1 regularization (Mescheder et al. 2018): ``weight * mean_b ||grad_x D(x)||^2`` (no 1/2).

    ``real`` must have ``requires_grad=True`` and ``d_out = D(real)`` (tensor or nested list;
    the gradient of the sum of its final outputs is used). Multiply by gamma/2 yourself for
    the usual ``gamma/2 * E||grad||^2``. Keeps the graph.
    """
    (g,) = torch.autograd.grad(_d_scalar(d_out), real, create_graph=True)
    return weight * g.pow(2).reshape(g.shape[0], -1).sum(1).mean()
