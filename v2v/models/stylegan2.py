"""StyleGAN2 image-generator training (Karras et al. 2020), for MoCoGAN-HD's frozen content generator.

The official MoCoGAN-HD repository ships no code to train the image generator on your own frames
(its issues #16, #19). This system trains one with the rosinality ``stylegan2-pytorch`` recipe and
keeps its parameter layout, so what it writes is read by ``v2v generate mocogan-hd
--image-generator`` and by the official code:

- networks ``g`` (trained), ``d``, ``g_ema`` (exponential moving average of ``g``,
  ``decay = 0.5 ** (32 / (10 * 1000))`` per step by default): the v2v checkpoint's keys are
  ``g.*``, ``d.*``, ``g_ema.*`` = rosinality's ``{'g', 'd', 'g_ema'}`` entries;
  ``v2v convert stylegan2 CKPT --out G.pt`` writes the ``torch.save`` dict (+ ``latent_avg``);
- D: non-saturating logistic loss ``softplus(D(fake)) + softplus(-D(real))`` and, every
  ``d_reg_every`` steps, lazy R1 ``r1 / 2 * E||grad D(real)||^2 * d_reg_every``;
- G: ``softplus(-D(G(z)))`` with style mixing (probability ``mixing``) and, every ``g_reg_every``
  steps, path-length regularisation ``path_regularize * g_reg_every * (||J^T y|| - a)^2`` with
  the running mean ``a`` (decay 0.01) on a batch shrunk by ``path_batch_shrink``;
- lazy regularisation's Adam correction (lr * c, betas ** c with c = reg_every / (reg_every + 1))
  goes in the YAML ``train.lr`` / ``train.betas`` per group (see ``configs/stylegan2/*.yaml``).

Data: frames ``3,H,W`` in [0,1] from ``data.root`` (images or videos, every frame) or the
embedded synthetic videos; the networks see ``2x - 1``.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.losses.gan import r1_penalty
from v2v.models.base import System
from v2v.nn.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from v2v.registry import register_system

__all__ = ["StyleGAN2Config", "StyleGAN2DataConfig", "StyleGAN2System"]


@dataclass
class StyleGAN2Config:
    """The YAML ``model:`` section (rosinality ``train.py`` argument names)."""

    size: int = 256
    latent: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channels: dict[int, int] | None = None  # width table override (tiny models)
    lr_mlp: float = 0.01
    r1: float = 10.0
    path_regularize: float = 2.0
    path_batch_shrink: int = 2
    d_reg_every: int = 16
    g_reg_every: int = 4
    mixing: float = 0.9
    ema_decay: float = 0.5 ** (32 / (10 * 1000))


@dataclass
class StyleGAN2DataConfig:
    """``data:`` section: every frame of the videos / images under ``root`` (None = synthetic puppets)."""

    root: str | None = None
    synthetic: str = "puppets"
    num_videos: int = 16
    frames: int = 24
    seed: int = 0
    flip: bool = True


class FrameDataset(torch.utils.data.Dataset):
    """Frames ``{"image": 3,S,S in [0,1]}`` of a video folder / image folder / the synthetic data."""

    def __init__(self, cfg: StyleGAN2DataConfig, split: str, size: int):
        frames = []
        if cfg.root:
            from v2v.data.datasets import VideoFolderDataset

            sp = split if os.path.isdir(os.path.join(cfg.root, split)) else None
            if sp is None and split != "train":
                self.frames = None
                return
            ds = VideoFolderDataset(cfg.root, "clips", None, (size, size), split=sp)
            frames = [ds[i]["video"] for i in range(len(ds))]
        else:
            from v2v.data.clips import render_clip

            n = cfg.num_videos if split == "train" else max(cfg.num_videos // 4, 2)
            frames = [render_clip(cfg.synthetic, cfg.seed, split, i, cfg.frames, size) for i in range(n)]
        self.frames = torch.cat(frames)
        self.flip = cfg.flip and split == "train"

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitem__(self, i: int) -> dict:
        img = self.frames[i]
        if self.flip and random.random() < 0.5:
            img = img.flip(-1)
        return {"image": img}


@register_system("stylegan2", commands="v2v.commands.mocogan_hd")
class StyleGAN2System(System):
    """StyleGAN2 trainer (module docstring). Batch: ``{"image": B,3,S,S in [0,1]}``."""

    ModelConfig = StyleGAN2Config
    DataConfig = StyleGAN2DataConfig

    def __init__(self, cfg: StyleGAN2Config, inference: bool = False):
        super().__init__(cfg)
        kw = {"size": cfg.size, "style_dim": cfg.latent, "n_mlp": cfg.n_mlp, "channel_multiplier": cfg.channel_multiplier,
                  "lr_mlp": cfg.lr_mlp, "channels": cfg.channels}
        self.g_ema = StyleGAN2Generator(**kw)
        self.g_ema.requires_grad_(False)
        if not inference:
            self.g = StyleGAN2Generator(**kw)
            self.d = StyleGAN2Discriminator(cfg.size, cfg.channel_multiplier, channels=cfg.channels)
            self.g_ema.load_state_dict(self.g.state_dict())
            self.register_buffer("mean_path_length", torch.zeros(()))

    @classmethod
    def build_dataset(cls, data_cfg: StyleGAN2DataConfig, split: str, model_cfg: StyleGAN2Config | None = None):
        ds = FrameDataset(data_cfg, split, (model_cfg or StyleGAN2Config()).size)
        return None if ds.frames is None else ds

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"G": list(self.g.parameters()), "D": list(self.d.parameters())}

    @torch.no_grad()
    def accumulate(self) -> None:
        """``g_ema = decay * g_ema + (1 - decay) * g`` (parameters; buffers copied)."""
        for pe, p in zip(self.g_ema.parameters(), self.g.parameters()):
            pe.mul_(self.cfg.ema_decay).add_(p.detach(), alpha=1 - self.cfg.ema_decay)

    def _latents(self, n: int, device) -> torch.Tensor:
        """Mapped styles ``(n, n_latent, D)`` with style mixing (probability ``mixing``)."""
        g = self.g
        w = g.mapping(torch.randn(n, g.style_dim, device=device)).unsqueeze(1).repeat(1, g.n_latent, 1)
        if self.cfg.mixing > 0 and random.random() < self.cfg.mixing:
            w2 = g.mapping(torch.randn(n, g.style_dim, device=device))
            k = random.randint(1, g.n_latent - 1)
            w = torch.cat([w[:, :k], w2.unsqueeze(1).expand(-1, g.n_latent - k, -1)], 1)
        return w

    def _fake(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        w = self._latents(n, device)
        return self.g.synthesis(w, self.g.make_noise(n)), w

    def path_length_penalty(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(penalty, path lengths): ``||J_w^T y||`` with ``y ~ N(0, I) / sqrt(HW)``, against the running mean."""
        img, w = self._fake(n, device)
        y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * y).sum(), w, create_graph=True)
        lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
        target = self.mean_path_length + 0.01 * (lengths.mean().detach() - self.mean_path_length)
        self.mean_path_length.copy_(target)
        return (lengths - target).pow(2).mean() + 0 * img[0, 0, 0, 0], lengths

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        if step > 0:
            self.accumulate()  # after the previous G step
        real = batch["image"] * 2 - 1
        if real.shape[-1] != cfg.size or real.shape[-2] != cfg.size:
            raise V2VError(f"stylegan2: images are {tuple(real.shape[-2:])}, the model is {cfg.size}x{cfg.size}")
        n = real.shape[0]
        fake, _ = self._fake(n, real.device)
        g_loss = F.softplus(-self.d(fake)).mean()
        d_fake = F.softplus(self.d(fake.detach())).mean()
        regs_d = step % cfg.d_reg_every == 0 and cfg.r1 > 0
        real_in = real.detach().requires_grad_(regs_d)
        d_real_out = self.d(real_in)
        d_loss = F.softplus(-d_real_out).mean() + d_fake
        out = {"G/adv": g_loss.detach(), "D/logistic": d_loss.detach()}
        if regs_d:
            r1 = r1_penalty(d_real_out, real_in)
            d_loss = d_loss + cfg.r1 / 2 * r1 * cfg.d_reg_every + 0 * d_real_out[0, 0]
            out["D/r1"] = r1.detach()
        if step % cfg.g_reg_every == 0 and cfg.path_regularize > 0:
            pl, lengths = self.path_length_penalty(max(n // cfg.path_batch_shrink, 1), real.device)
            g_loss = g_loss + cfg.path_regularize * cfg.g_reg_every * pl
            out["G/path"] = pl.detach()
            out["G/path_length"] = lengths.mean().detach()
        out["G"], out["D"] = g_loss, d_loss
        return out

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        n = batch["image"].shape[0]
        img = self.g_ema(torch.randn(n, self.cfg.latent, device=batch["image"].device))
        return {"fake": (img.clamp(-1, 1) + 1) / 2, "real": batch["image"]}

    @torch.no_grad()
    def rosinality_dict(self, n_mean: int = 4096) -> dict[str, object]:
        """``{'g', 'd', 'g_ema', 'latent_avg'}`` (rosinality ``train.py`` / ``convert_weight.py`` layout)."""
        out: dict[str, object] = {"g_ema": {k: v.detach().cpu() for k, v in self.g_ema.state_dict().items()}}
        for name in ("g", "d"):
            if hasattr(self, name):
                out[name] = {k: v.detach().cpu() for k, v in getattr(self, name).state_dict().items()}
        out["latent_avg"] = self.g_ema.mean_latent(n_mean, torch.Generator().manual_seed(0))[0].cpu()
        return out
