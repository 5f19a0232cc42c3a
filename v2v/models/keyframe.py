"""Keyframe interpolation: the video between a first and a last frame.

Reference: Penington, Teo & Wang, "Generating Video from Images" (Stanford poster; 30 frames of
64x64). No official code exists: the poster is the spec, and every choice it leaves open is
marked **choice** (also in ``docs/sections/keyframe.md``). ``model.variant`` picks one of:

``cvae`` (poster)
    z_total = [z_video (600) | z_first (1000) | z_last (1000)]. z_video ~ q(z|x) = N(mu(x),
    Sigma(x)) from a 3-D conv encoder of the whole clip x; z_first / z_last = E(c(x)), the
    deterministic embedding of the first and last frame by one shared 2-D conv encoder
    (**choice**: the condition c(x) enters as these two codes, and the KL is on z_video only).
    Loss (poster): KL(N(mu, Sigma) || N(0, I)) + l1 ||x - g(z)||^2 + l2 ||c(g(z)) - c(x)||^2,
    squared errors **summed** over the clip (a Gaussian likelihood), KL summed over latent dims,
    both averaged over the batch (**choice**). Sampling: z_video ~ N(0, I).
``cgan`` (poster)
    G(z_video ~ N(0, I), z_first, z_last) with the same decoder g; a conditional 3-D PatchGAN D
    sees the clip with both keyframes broadcast over time (**choice**). Loss: the standard
    (non-saturating, BCE) GAN objective + l ||c(G(z)) - c(x)||^2; D uses one-sided label
    smoothing (real target ``1 - label_smoothing``, fake 0; Salimans et al. 2016); Adam.
``flow`` (ours, beats the linear baseline)
    Super SloMo (Jiang et al., CVPR 2018) with analytic flows: bidirectional DIS flows F01, F10
    between the keyframes (:func:`v2v.ops.flow_estimation.estimate_flow`), the time-weighted
    flow approximation (SloMo eq. 4)::

        F_t0 = -(1 - t) t F01 + t^2 F10        F_t1 = (1 - t)^2 F01 - t (1 - t) F10

    backward warps g(I0, F_t0), g(I1, F_t1) (:func:`v2v.ops.warp.warp`), forward-backward
    occlusion maps (:func:`v2v.ops.flow.fb_consistency_occlusion`) carried to time t, and a
    refinement U-Net (:class:`v2v.nn.hourglass.Hourglass`) predicting flow residuals, a
    visibility logit v and an RGB residual r (SloMo's refinement, eq. 5-6)::

        I_t = ((1 - t) s(v) g(I0, F_t0 + dF_t0) + t (1 - s(v)) g(I1, F_t1 + dF_t1)) / Z + r

    The last layer starts at zero, so the untrained model is the analytic SloMo interpolation
    (**choice**); the given keyframes are frames 0 and T-1. Loss: L1 (+ optional MSE) on random
    intermediate frames + a small smoothness term on the flow residuals.

Baseline: :func:`linear_interpolation` (cross-fade). The poster's "L2 distance" is :func:`clip_l2`,
the L2 norm of the clip difference in [0,1] units over all T*H*W*3 values (30*64*64*3 here).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.losses.basic import kl_normal, tv_loss
from v2v.losses.gan import GANLoss
from v2v.models.base import System
from v2v.nn.hourglass import DownBlock2d, Hourglass
from v2v.nn.norms import get_norm_layer
from v2v.nn.video_discriminators import VideoPatchDiscriminator3d
from v2v.ops.flow import fb_consistency_occlusion
from v2v.ops.flow_estimation import estimate_flow
from v2v.ops.warp import warp
from v2v.registry import register_system

__all__ = ["VARIANTS", "FlowInterpolator", "FrameEncoder", "KeyframeDataConfig", "KeyframeModelConfig",
           "KeyframeSystem", "VideoDecoder", "VideoEncoder", "clip_l2", "linear_interpolation",
           "load_keyframe", "slomo_flows"]

VARIANTS = ("cvae", "cgan", "flow")
TRAINING_ONLY = ("discriminator.",)  # state-dict prefixes absent from an inference build


@dataclass
class KeyframeModelConfig:
    """The YAML ``model:`` section; the only place defaults live (poster sizes)."""

    variant: str = "flow"  # cvae | cgan | flow
    frames: int = 30  # T, keyframes included
    size: int = 64  # H = W
    # cvae / cgan (poster latent split)
    z_video: int = 600
    z_first: int = 1000
    z_last: int = 1000
    width: int = 32  # channels at full resolution; doubled per halving, capped at max_width
    max_width: int = 256
    lambda_kl: float = 1.0
    lambda_rec: float = 1.0  # l1: ||x - g(z)||^2 (cvae)
    lambda_cond: float = 1.0  # l2 (cvae) / l (cgan): ||c(g(z)) - c(x)||^2
    # cgan
    d_width: int = 32
    d_layers: int = 3
    label_smoothing: float = 0.1  # one-sided: D's real target is 1 - label_smoothing
    # flow
    flow_method: str = "dis"  # any v2v.ops.flow_estimation method (dis | farneback | raft | raft_small)
    flow_preset: str = "medium"  # DIS preset
    refine_width: int = 32
    refine_blocks: int = 3
    refine_max_width: int = 128
    train_times: int = 4  # intermediate frames trained per clip and step (random t, as Super SloMo)
    lambda_l1: float = 1.0  # L1 on the intermediate frames (Super SloMo's reconstruction loss)
    lambda_l2: float = 0.0  # MSE on them (the metric's loss)
    lambda_smooth: float = 0.01


@dataclass
class KeyframeDataConfig:
    """The YAML ``data:`` section: clips of ``model.frames`` frames at ``model.size``."""

    source: str = "puppets"  # puppets | toycity (rendered in memory) | folder (any videos)
    root: str = ""  # source=folder: root/{train,test}/<video> or, with time_split, root/<video>
    num_train: int = 64  # synthetic: training videos
    num_test: int = 16  # synthetic: held-out videos; folder: max held-out clips
    seed: int = 0  # synthetic scene seed (test videos use split "test")
    stride: int = 1  # folder: frame step inside a clip
    time_split: float = 0.0  # folder without split sub-folders: train on this first fraction of each video
    test_hop: int = 10  # time_split: frames between held-out clip starts
    horizontal_flip: bool = True  # train augmentation (global RNG)
    time_flip: bool = True  # reversing a clip swaps its keyframes: still a valid sample


# ----------------------------------------------------------------------------- baselines, metric


def linear_interpolation(first: torch.Tensor, last: torch.Tensor, frames: int) -> torch.Tensor:
    """Cross-fade ``(1 - t) first + t last`` at ``t = k / (frames - 1)``.

    Args:
        first, last: ``B,3,H,W`` in [0,1]. frames: T >= 2.
    Returns:
        ``B,T,3,H,W``; frame 0 is ``first`` and frame T-1 is ``last`` exactly.

    >>> linear_interpolation(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2), 3)[0, :, 0, 0, 0]
    tensor([0.0000, 0.5000, 1.0000])
    """
    t = torch.linspace(0, 1, frames, device=first.device, dtype=first.dtype).view(1, -1, 1, 1, 1)
    return torch.lerp(first[:, None], last[:, None], t)


def clip_l2(pred: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The poster's L2 distance per clip: ``||pred - real||_2`` over all T*H*W*3 values in [0,1].

    ``pred``, ``real``: ``B,T,3,H,W`` in [0,1]. Returns ``B``.
    """
    if pred.shape != real.shape or pred.dim() != 5:
        raise ValueError(f"clip_l2: expected two B,T,3,H,W clips, got {tuple(pred.shape)}, {tuple(real.shape)}")
    return (pred.float() - real.float()).pow(2).flatten(1).sum(1).sqrt()


def slomo_flows(f01: torch.Tensor, f10: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Super SloMo eq. 4: intermediate backward flows from the two keyframe flows.

    Args:
        f01, f10: ``B,2,H,W`` pixel flows (F01 on frame 0 into frame 1, F10 the reverse).
        t: ``N`` times in (0, 1).
    Returns:
        ``(F_t0, F_t1)``, each ``B,N,2,H,W``: ``warp(I0, F_t0) ~ I_t``, ``warp(I1, F_t1) ~ I_t``.
    """
    t = t.view(1, -1, 1, 1, 1).to(f01)
    a, b = f01[:, None], f10[:, None]
    return -(1 - t) * t * a + t * t * b, (1 - t) ** 2 * a - t * (1 - t) * b


# ----------------------------------------------------------------------------- poster networks


def _widths(width: int, max_width: int, n: int) -> list[int]:
    return [min(max_width, width * 2**i) for i in range(n + 1)]


def _levels(size: int) -> int:
    n = round(np.log2(size / 4))
    if size < 8 or 4 * 2**n != size:
        raise V2VError(f"model.size must be 4 * 2^k >= 8 (e.g. 64, 256), got {size}")
    return n


def _conv3d(i: int, o: int, stride) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(i, o, 3, stride, 1), get_norm_layer("batch", o, dim=3), nn.LeakyReLU(0.2))


class FrameEncoder(nn.Module):
    """c(x) embedding: image ``B,3,S,S`` -> code ``B,z_dim`` (DownBlock2d to 4x4, then linear)."""

    def __init__(self, size: int, width: int, max_width: int, z_dim: int):
        super().__init__()
        w = _widths(width, max_width, _levels(size))
        self.blocks = nn.Sequential(*[DownBlock2d(3 if i == 0 else w[i], w[i + 1]) for i in range(len(w) - 1)])
        self.fc = nn.Linear(w[-1] * 16, z_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(image * 2 - 1).flatten(1))


class VideoEncoder(nn.Module):
    """q(z_video | x): clip ``B,T,3,S,S`` -> ``(mu, logvar)``, each ``B,z_dim`` (3-D convs)."""

    def __init__(self, frames: int, size: int, width: int, max_width: int, z_dim: int):
        super().__init__()
        w, t, blocks = _widths(width, max_width, _levels(size)), frames, []
        for i in range(len(w) - 1):
            st = 2 if t >= 4 else 1
            blocks.append(_conv3d(3 if i == 0 else w[i], w[i + 1], (st, 2, 2)))
            t = (t - 1) // st + 1
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(w[-1] * 16, 2 * z_dim)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(video.transpose(1, 2) * 2 - 1).mean(2)  # B,C,4,4 (mean over time)
        mu, logvar = self.fc(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)


class VideoDecoder(nn.Module):
    """g(z): ``B,z_total`` -> clip ``B,T,3,S,S`` in [0,1].

    Linear to ``C x t0 x 4 x 4``, then per level: trilinear resize (space x2, time towards T)
    -> Conv3d 3x3x3 -> BatchNorm -> LeakyReLU; a Conv3d head and a sigmoid.
    """

    def __init__(self, frames: int, size: int, width: int, max_width: int, z_dim: int):
        super().__init__()
        n = _levels(size)
        w = _widths(width, max_width, n)[::-1]  # widest first
        self.sizes = [(max(1, round(frames * 2.0 ** (i - n))), 4 * 2**i, 4 * 2**i) for i in range(n + 1)]
        self.sizes[-1] = (frames, size, size)
        self.fc = nn.Linear(z_dim, w[0] * int(np.prod(self.sizes[0])))
        self.c0 = w[0]
        self.blocks = nn.ModuleList(_conv3d(w[i], w[i + 1], 1) for i in range(n))
        self.head = nn.Conv3d(w[-1], 3, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.fc(z), 0.2).view(z.shape[0], self.c0, *self.sizes[0])
        for blk, s in zip(self.blocks, self.sizes[1:]):
            h = blk(F.interpolate(h, size=s, mode="trilinear", align_corners=False))
        return torch.sigmoid(self.head(h)).transpose(1, 2)


# ----------------------------------------------------------------------------- flow-guided


class FlowInterpolator(nn.Module):
    """Flow-guided interpolation (module docstring): keyframes ``B,3,H,W`` -> clip ``B,T,3,H,W``."""

    IN_CH = 19  # I0, I1, g(I0,F_t0), g(I1,F_t1) (12) + F_t0, F_t1 (4) + 2 occlusion maps + t
    OUT_CH = 8  # dF_t0, dF_t1 (4) + visibility logit (1) + RGB residual (3)

    def __init__(self, refine_width: int, refine_blocks: int, refine_max_width: int, flow_method: str,
                 flow_preset: str):
        super().__init__()
        self.flow_method, self.flow_preset = flow_method, flow_preset
        self.hourglass = Hourglass(refine_width, self.IN_CH, refine_blocks, refine_max_width)
        self.head = nn.Conv2d(self.hourglass.out_channels, self.OUT_CH, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # untrained = analytic SloMo interpolation
        nn.init.zeros_(self.head.bias)
        self.multiple = 2**refine_blocks

    def keyframe_flows(self, first: torch.Tensor, last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bidirectional flows ``(F01, F10)``, ``B,2,H,W`` pixels (no gradient)."""
        kw = {"preset": self.flow_preset} if self.flow_method == "dis" else {}
        return (estimate_flow(first, last, self.flow_method, **kw).to(first),
                estimate_flow(last, first, self.flow_method, **kw).to(first))

    def forward(self, first: torch.Tensor, last: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames at times ``t`` (``N`` values in (0,1)): ``(B,N,3,H,W, flow residuals B,N,4,H,W)``."""
        b, _, h, w = first.shape
        n = t.numel()
        f01, f10 = self.keyframe_flows(first, last)
        ft0, ft1 = (f.flatten(0, 1) for f in slomo_flows(f01, f10, t))  # B*N,2,H,W
        rep = lambda x: x[:, None].expand(-1, n, -1, -1, -1).flatten(0, 1)
        i0, i1 = rep(first), rep(last)
        o0, o1 = rep(fb_consistency_occlusion(f01, f10)), rep(fb_consistency_occlusion(f10, f01))
        tt = t.to(first).repeat(b).view(-1, 1, 1, 1)
        w0, w1 = warp(i0, ft0), warp(i1, ft1)
        feats = torch.cat([i0, i1, w0, w1, ft0 / w, ft1 / w, warp(o0, ft0), warp(o1, ft1),
                           tt.expand(-1, 1, h, w)], 1)
        out = self.head(self.hourglass(self._pad(feats)))[..., :h, :w]
        dflow, vis, res = out[:, :4], torch.sigmoid(out[:, 4:5]), out[:, 5:]
        w0, w1 = warp(i0, ft0 + dflow[:, :2]), warp(i1, ft1 + dflow[:, 2:])
        a0, a1 = (1 - tt) * vis, tt * (1 - vis)
        mid = ((a0 * w0 + a1 * w1) / (a0 + a1).clamp_min(1e-6) + res).clamp(0, 1)
        return mid.view(b, n, 3, h, w), dflow.view(b, n, 4, h, w)

    def interpolate(self, first: torch.Tensor, last: torch.Tensor, frames: int) -> torch.Tensor:
        """The whole clip ``B,T,3,H,W``: the given keyframes at both ends, :meth:`forward` between."""
        t = torch.linspace(0, 1, frames, device=first.device, dtype=first.dtype)[1:-1]
        mid = self(first, last, t)[0] if frames > 2 else first[:, None, :, :, :][:, :0]
        return torch.cat([first[:, None], mid, last[:, None]], 1)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        m = self.multiple
        ph, pw = (-x.shape[-2]) % m, (-x.shape[-1]) % m
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


# ----------------------------------------------------------------------------- the system


@register_system("keyframe", commands="v2v.commands.keyframe")
class KeyframeSystem(System):
    """First + last frame -> clip (variants in the module docstring). Batch: ``{"video": B,T,3,S,S}``
    in [0,1]; the keyframes are ``video[:, 0]`` and ``video[:, -1]``."""

    ModelConfig = KeyframeModelConfig
    DataConfig = KeyframeDataConfig

    def __init__(self, cfg: KeyframeModelConfig, inference: bool = False):
        super().__init__()
        if cfg.variant not in VARIANTS or cfg.frames < 2:
            raise V2VError(f"model.variant '{cfg.variant}' / model.frames {cfg.frames}: expected one of "
                           f"{', '.join(VARIANTS)} / >= 2")
        self.cfg, self.inference = cfg, inference
        if cfg.variant == "flow":
            self.interpolator = FlowInterpolator(cfg.refine_width, cfg.refine_blocks, cfg.refine_max_width,
                                                 cfg.flow_method, cfg.flow_preset)
            return
        z_total = cfg.z_video + cfg.z_first + cfg.z_last
        if cfg.z_first != cfg.z_last:
            raise V2VError(f"model.z_first ({cfg.z_first}) and model.z_last ({cfg.z_last}) must be equal "
                           "(one shared keyframe encoder)")
        self.frame_encoder = FrameEncoder(cfg.size, cfg.width, cfg.max_width, cfg.z_first)
        self.decoder = VideoDecoder(cfg.frames, cfg.size, cfg.width, cfg.max_width, z_total)
        if cfg.variant == "cvae":
            self.encoder = VideoEncoder(cfg.frames, cfg.size, cfg.width, cfg.max_width, cfg.z_video)
        elif not inference:
            self.discriminator = VideoPatchDiscriminator3d(9, cfg.d_width, cfg.d_layers, norm="instance",
                                                           temporal_stride=2)
            self.gan_d = GANLoss("vanilla", real_label=1.0 - cfg.label_smoothing)  # one-sided smoothing
            self.gan_g = GANLoss("nonsaturating")

    @classmethod
    def build_dataset(cls, data_cfg: KeyframeDataConfig, split: str, model_cfg: KeyframeModelConfig | None = None):
        """Clips ``{"video": T,3,S,S}`` in [0,1] (:func:`v2v.data.keyframe.build_clips`)."""
        from v2v.data.keyframe import build_clips

        m = model_cfg or KeyframeModelConfig()
        return build_clips(data_cfg, split, m.frames, m.size)

    # ---------------------------------------------------------------- generation
    def condition(self, first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """``[z_first | z_last]``: ``B, z_first + z_last``."""
        return torch.cat([self.frame_encoder(first), self.frame_encoder(last)], 1)

    def _check_keyframes(self, first: torch.Tensor, last: torch.Tensor) -> None:
        if first.dim() != 4 or first.shape != last.shape or first.shape[1] != 3:
            raise V2VError(f"keyframes must be two B,3,H,W images of one size, got {tuple(first.shape)} "
                           f"and {tuple(last.shape)}")
        s = self.cfg.size
        if self.cfg.variant != "flow" and tuple(first.shape[-2:]) != (s, s):
            raise V2VError(f"the {self.cfg.variant} model works at {s}x{s} (model.size), keyframes are "
                           f"{first.shape[-1]}x{first.shape[-2]}")

    def generate(self, first: torch.Tensor, last: torch.Tensor, frames: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Keyframes ``B,3,H,W`` in [0,1] -> clip ``B,T,3,H,W`` in [0,1].

        cvae/cgan draw ``z_video ~ N(0, I)`` from ``generator`` (CPU) and make ``model.frames``
        frames at ``model.size``; flow makes any ``frames >= 2`` at any size.
        """
        self._check_keyframes(first, last)
        frames = frames or self.cfg.frames
        if self.cfg.variant == "flow":
            return self.interpolator.interpolate(first, last, frames)
        if frames != self.cfg.frames:
            raise V2VError(f"the {self.cfg.variant} model generates {self.cfg.frames} frames (model.frames), "
                           f"not {frames}")
        z = torch.randn(first.shape[0], self.cfg.z_video, generator=generator).to(first)
        return self.decoder(torch.cat([z, self.condition(first, last)], 1))

    # ---------------------------------------------------------------- training
    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        if self.cfg.variant == "cgan":
            g = list(self.frame_encoder.parameters()) + list(self.decoder.parameters())
            return {"G": g, "D": list(self.discriminator.parameters())}
        return {"G": [p for n, p in self.named_parameters() if not n.startswith(TRAINING_ONLY)]}

    @staticmethod
    def _cond_error(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """||c(fake) - c(real)||^2: first and last frames, summed per clip, mean over the batch."""
        d = torch.stack([fake[:, 0] - real[:, 0], fake[:, -1] - real[:, -1]], 1)
        return d.pow(2).flatten(1).sum(1).mean()

    def _d_input(self, video: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        t = video.shape[1]
        c = torch.cat([real[:, :1], real[:, -1:]], 2).expand(-1, t, -1, -1, -1)  # keyframes over time
        return torch.cat([video, c], 2) * 2 - 1

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        x = batch["video"]
        cfg = self.cfg
        if cfg.variant == "flow":
            k = torch.randperm(x.shape[1] - 2)[: cfg.train_times].to(x.device) + 1  # SloMo: random t per step
            mid, dflow = self.interpolator(x[:, 0], x[:, -1], k.to(x) / (x.shape[1] - 1))
            l1, l2 = (mid - x[:, k]).abs().mean(), (mid - x[:, k]).pow(2).mean()
            smooth = tv_loss(dflow.flatten(0, 1))
            return {"G": cfg.lambda_l1 * l1 + cfg.lambda_l2 * l2 + cfg.lambda_smooth * smooth,
                    "G/l1": l1.detach(), "G/l2": l2.detach(), "G/smooth": smooth.detach()}
        cond = self.condition(x[:, 0], x[:, -1])
        if cfg.variant == "cvae":
            mu, logvar = self.encoder(x)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
            fake = self.decoder(torch.cat([z, cond], 1))
            kl = kl_normal(mu, logvar)
            rec = (fake - x).pow(2).flatten(1).sum(1).mean()
            c = self._cond_error(fake, x)
            return {"G": cfg.lambda_kl * kl + cfg.lambda_rec * rec + cfg.lambda_cond * c,
                    "G/kl": kl.detach(), "G/rec": rec.detach(), "G/cond": c.detach()}
        z = torch.randn(x.shape[0], cfg.z_video, device=x.device, dtype=x.dtype)
        fake = self.decoder(torch.cat([z, cond], 1))
        g_adv = self.gan_g(self.discriminator(self._d_input(fake, x)), True, for_discriminator=False)
        c = self._cond_error(fake, x)
        d_real = self.gan_d(self.discriminator(self._d_input(x, x)), True)
        d_fake = self.gan_d(self.discriminator(self._d_input(fake.detach(), x)), False)
        return {"G": g_adv + cfg.lambda_cond * c, "D": d_real + d_fake, "G/adv": g_adv.detach(),
                "G/cond": c.detach(), "D/real": d_real.detach(), "D/fake": d_fake.detach()}

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        x, t = batch["video"], batch["video"].shape[1]
        return {"fake": self.generate(x[:, 0], x[:, -1], t), "real": x, "linear": linear_interpolation(x[:, 0], x[:, -1], t)}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Mean clip L2 (:func:`clip_l2`) and PSNR of this model and of linear interpolation."""
        x = batch["video"]
        fake = self.generate(x[:, 0], x[:, -1], x.shape[1], generator=torch.Generator().manual_seed(0))
        lin = linear_interpolation(x[:, 0], x[:, -1], x.shape[1])
        mse = lambda p: (p - x).pow(2).flatten(1).mean(1)
        return {"l2": float(clip_l2(fake, x).mean()), "l2_linear": float(clip_l2(lin, x).mean()),
                "psnr": float((-10 * torch.log10(mse(fake).clamp_min(1e-10))).mean()),
                "psnr_linear": float((-10 * torch.log10(mse(lin).clamp_min(1e-10))).mean())}

    # ---------------------------------------------------------------- weights
    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """:meth:`System.save_pretrained` without the training-only weights (a training-built CGAN
        saves what an inference build loads)."""
        from v2v.config import save_yaml, to_dict
        from v2v.weights_io import save_weights

        sd = {k: v for k, v in self.state_dict().items() if not k.startswith(TRAINING_ONLY)}
        model = to_dict(self.cfg)
        os.makedirs(folder, exist_ok=True)
        save_weights(sd, os.path.join(folder, "keyframe.safetensors"),
                     {"system": "keyframe", "model": json.dumps(model)})  # as System.save_pretrained
        save_yaml({"system": "keyframe", "model": model}, os.path.join(folder, "keyframe.yaml"))


def _model_config_from(raw: dict, where: str) -> KeyframeModelConfig:
    from v2v.config import from_dict

    if raw.get("system", "keyframe") not in ("keyframe",):
        raise V2VError(f"{where}: system '{raw.get('system')}' is not keyframe")
    return from_dict(KeyframeModelConfig, raw.get("model", {}), "model")


def load_keyframe(checkpoint: str | os.PathLike, config: str | os.PathLike | dict | None = None,
                  device: str | torch.device = "cpu") -> KeyframeSystem:
    """Inference system from a v2v checkpoint (``v2v train`` or :meth:`save_pretrained` output).

    ``checkpoint``: a ``.safetensors`` file or a :meth:`save_pretrained` folder. ``config``: an
    experiment/pretrained YAML (its ``model:`` section) or mapping; None reads it from the file's
    metadata. Training-only weights (the discriminator) are skipped; anything else that does not
    fit is one V2VError naming the keys and shapes.
    """
    from v2v.config import load_yaml
    from v2v.weights_io import check_state_dict, read_weights

    path = os.fspath(checkpoint)
    if os.path.isdir(path):
        path = os.path.join(path, "keyframe.safetensors")
    tensors, meta = read_weights(path)
    if config is not None:
        cfg = _model_config_from(config if isinstance(config, dict) else load_yaml(config), str(config))
    elif "config" in meta:
        cfg = _model_config_from(json.loads(meta["config"]), path)
    elif "model" in meta:
        cfg = _model_config_from({"model": json.loads(meta["model"])}, path)
    else:
        raise V2VError(f"{path}: no model config in its metadata; pass --config")
    system = KeyframeSystem.from_config(cfg, inference=True)
    sd = {k: v for k, v in tensors.items() if not k.startswith(TRAINING_ONLY) and not k.startswith("ema.")}
    check_state_dict(system.state_dict(), sd, path)
    system.load_state_dict(sd)
    return system.to(device).eval()
