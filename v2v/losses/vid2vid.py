"""The vid2vid training objective (Wang et al. 2018, Eq. 6-8), on the finest scale's outputs.

``G = L_I (image GAN + feature matching) + L_V (temporal GANs on n_frames_D frames subsampled by
n_frames_D**s) + lambda_vgg * VGG + lambda_F * L_W (flow vs the reference flow, warp of the real
previous frame) + lambda_W * weight-mask prior + lambda_T * warp consistency of the output``.
Masked L1 terms use vid2vid's MaskedL1Loss (:func:`v2v.losses.basic.l1_loss` ``reduction="mean"``).

:func:`vid2vid_losses` takes the system duck-typed (``cfg``, ``netD``, ``netD_T``, ``run_generator``,
``frames_at``), so this module imports no model.
"""
from __future__ import annotations

import torch

from v2v.errors import V2VError
from v2v.losses.basic import l1_loss
from v2v.losses.feature_matching import feature_matching_loss
from v2v.losses.temporal import flow_loss

__all__ = ["reference_flow", "vid2vid_losses"]


def reference_flow(cur01: torch.Tensor, prev01: torch.Tensor, method: str) -> torch.Tensor:
    """Flow warping ``prev`` onto ``cur`` (``N,2,H,W`` pixels) from the shared estimator, no grad.
    ``method="auto"``: RAFT when its weights are on disk, else DIS."""
    from v2v.ops.flow_estimation import estimate_flow

    if method == "auto":
        from v2v.weights import find_weights

        try:
            find_weights("raft_large")
            method = "raft"
        except V2VError:
            method = "dis"
    with torch.no_grad():
        return estimate_flow(cur01.float(), prev01.float(), method=method)


def _confidence(cur, prev, flow, threshold):
    from v2v.ops.warp import warp

    return ((cur - warp(prev, flow)).pow(2).sum(1, keepdim=True) < threshold).float()


class _Criteria:
    """The GAN loss and the VGG loss (built once per system; the VGG is not a submodule: not saved)."""

    def __init__(self, cfg, device):
        from v2v.losses.gan import GANLoss

        self.gan = GANLoss(cfg.gan_mode)
        self.vgg = None
        if cfg.use_vgg:
            from v2v.losses.perceptual import VGGLoss

            weights = "random" if cfg.vgg_random_init else cfg.vgg_weights
            self.vgg = VGGLoss(weights=weights, normalize="pix2pixhd").to(device)


def _criteria(system) -> _Criteria:
    crit = system.__dict__.get("_criteria")
    if crit is None:
        crit = _Criteria(system.cfg, next(system.parameters()).device)
        object.__setattr__(system, "_criteria", crit)
    return crit


def _gan_terms(system, D, real_in, fake_ins):
    """D loss on detached fakes, G adversarial + feature-matching terms through D."""
    c = system.cfg
    gan = _criteria(system).gan
    d_loss = g_gan = g_fm = real_in.new_zeros(())
    pred_real = D(real_in)
    for fk in fake_ins:
        d_loss = d_loss + 0.5 * (gan(pred_real, True) + gan(D(fk.detach()), False))
        pred_fake = D(fk)
        g_gan = g_gan + gan(pred_fake, True, for_discriminator=False)
        if not c.no_ganFeat:
            g_fm = g_fm + feature_matching_loss(pred_fake, pred_real) * c.lambda_feat
    return d_loss, g_gan, g_fm


def vid2vid_losses(system, batch: dict, step: int) -> dict[str, torch.Tensor]:
    """One training forward: the ``G`` and ``D`` losses and the logged terms."""
    from v2v.ops.warp import warp

    c = system.cfg
    tG, tD = c.n_frames_G, c.n_frames_D
    T = min(system.frames_at(step), batch["labels"].shape[1])
    if T < tG:
        raise V2VError(f"training clips have {T} frames; need at least n_frames_G={tG}")
    inst = batch.get("instances")
    if c.use_instance and inst is None:
        raise V2VError("model.use_instance is true but the batch has no 'instances'")
    from v2v.nn.vid2vid_blocks import encode_labels

    enc = encode_labels(batch["labels"][:, :T], inst[:, :T] if c.use_instance else None, c.label_nc, c.use_instance)
    real = batch["images"][:, :T].float() * 2 - 1
    B, _, _, H, W = real.shape
    # official niter_fix_global: only the finest scale learns at first
    grad_scales = 1 if step < c.niter_fix_global else None
    gen = system.run_generator(enc, real, grad_scales=grad_scales)
    N = T - tG + 1
    fake = gen["image"]
    real_cur, real_prev, enc_cur = real[:, tG - 1:], real[:, tG - 2:T - 1], enc[:, tG - 1:]

    def flat(x):
        return x.reshape(B * N, *x.shape[2:])

    fake_f, real_f, real_prev_f, enc_f, raw_f = flat(fake), flat(real_cur), flat(real_prev), flat(enc_cur), \
        flat(gen["raw_image"])
    # reference flow: ground truth when the data ships it (flowprev[k] on frame k+1, occprev 1 = invalid)
    if batch.get("flowprev") is not None and batch["flowprev"].shape[1] >= T - 1:
        flow_ref = flat(batch["flowprev"][:, tG - 2:T - 1].float())
        conf = (1 - flat(batch["occprev"][:, tG - 2:T - 1].float()) if batch.get("occprev") is not None
                else _confidence(real_f, real_prev_f, flow_ref, c.flow_conf_threshold))
    else:
        flow_ref = reference_flow((real_f + 1) / 2, (real_prev_f + 1) / 2, c.flow_method)
        conf = _confidence(real_f, real_prev_f, flow_ref, c.flow_conf_threshold)

    zero = fake.new_zeros(())
    g_flow = g_warp = g_w = g_vgg = gt_gan = gt_fm = d_t = zero
    if not c.no_flow:
        flow_f, weight_f = flat(gen["flow"]), flat(gen["weight"])
        g_flow = flow_loss(flow_f, flow_ref, conf) * c.lambda_F
        g_warp = l1_loss(warp(real_prev_f, flow_f), real_f, conf, "mean") * c.lambda_T
        g_w = l1_loss(weight_f, torch.zeros_like(weight_f), conf, "mean") * c.lambda_W
    first_prev = real[:, tG - 2:tG - 1] if c.first_frame != "generate" else fake[:, :1].detach()
    fake_prev = torch.cat([first_prev, fake[:, :-1].detach()], 1)
    g_out_warp = l1_loss(fake_f, warp(flat(fake_prev), flow_ref).detach(), conf, "mean") * c.lambda_T
    if c.use_vgg:
        vgg = _criteria(system).vgg
        g_vgg = vgg((fake_f + 1) / 2, (real_f + 1) / 2) * c.lambda_vgg
        if not c.no_flow:
            g_vgg = g_vgg + vgg((raw_f + 1) / 2, (real_f + 1) / 2) * c.lambda_vgg

    fakes = [fake_f] + ([raw_f] if not c.no_flow else [])
    d_loss, g_gan, g_fm = _gan_terms(system, system.netD, torch.cat([enc_f, real_f], 1),
                                     [torch.cat([enc_f, fk], 1) for fk in fakes])
    # temporal discriminators: tD frames subsampled by tD**s (the last window of the clip)
    real01 = (real + 1) / 2
    for s, netDT in enumerate(system.netD_T):
        stride = tD**s
        span = (tD - 1) * stride + 1
        if span > N:
            continue
        idx = [N - span + k * stride for k in range(tD)]
        if s == 0:
            fl = flow_ref.view(B, N, 2, H, W)[:, idx[1:]]
        else:
            cur = real01[:, tG - 1:][:, idx[1:]].reshape(-1, 3, H, W)
            prv = real01[:, tG - 1:][:, idx[:-1]].reshape(-1, 3, H, W)
            fl = reference_flow(cur, prv, c.flow_method).view(B, tD - 1, 2, H, W)
        fl = fl.reshape(B, -1, H, W) / 20.0
        d, g, f = _gan_terms(system, netDT, torch.cat([real_cur[:, idx].reshape(B, -1, H, W), fl], 1),
                             [torch.cat([fake[:, idx].reshape(B, -1, H, W), fl], 1)])
        d_t, gt_gan, gt_fm = d_t + d, gt_gan + g, gt_fm + f

    g_loss = g_gan + g_fm + g_vgg + g_flow + g_warp + g_w + g_out_warp + gt_gan + gt_fm
    with torch.no_grad():
        l1 = (fake_f - real_f).abs().mean() / 2
    return {"G": g_loss, "D": d_loss + d_t, "G/gan": g_gan.detach(), "G/feat": g_fm.detach(),
            "G/vgg": g_vgg.detach(), "G/flow": g_flow.detach(), "G/flow_warp": g_warp.detach(),
            "G/weight": g_w.detach(), "G/warp": g_out_warp.detach(), "G/t_gan": gt_gan.detach(),
            "G/t_feat": gt_fm.detach(), "G/l1": l1, "frames": torch.tensor(float(T))}
