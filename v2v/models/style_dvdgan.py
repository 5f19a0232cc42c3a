"""Single-image video prediction: StyleGAN2-style DVD-GAN (Radner, "Video Synthesis from a Single
Image", TUM 2020; official ``--model dvdgan --generator style2`` of Mirjang/mt_videosynthesis).

Generator (:class:`StyleDVDGenerator`, ``D`` pyramid levels, ``ch = ch_g``,
``CH = [8,8,8,8,8,8,4,2,1][-(D+1):]``, latent size ``L = resolution / 2**D``):

1. ``x = 2 * image - 1``
2. encoder: ``SNConv3x3(3 -> ch)`` + ResBlock-down blocks, widths ``ch*CH[D] -> ch*CH[D-1] -> ...``
   (pre-activation ReLU, avg-pool 2, no norm); ``F`` = outputs deepest first (``F[l]`` matches level l)
3. style ``s = sigmoid(Linear(flatten(ResBlock(ResBlock(F[0])))))`` (``style_dim``, one per video)
4. ``y`` = learned constant ``(8ch, L, L)`` for every step ``t = 1..T-1``
5. level ``l``: if ``l % up_blocks_per_rnn == 0`` a ConvGRU (``gru_layers`` layers, hidden of
   every layer initialised to ``F[l]``) unrolled over the steps; then StyledConv x2-up and
   StyledConv (modulated + demodulated 3x3, FIR upsampling, biased leaky ReLU)
6. ToRGB (modulated 1x1, no demodulation, + bias) -> tanh; frame 0 is the input image;
   output ``(y + 1) / 2`` in [0,1], shape ``B,T,3,H,W``.

No noise enters the generator: its output is a deterministic function of the image (and the
spectral-norm state of the first conv, whose power iteration advances on every call as in the
official code). Temporal variation comes from the ConvGRU recurrences.

Training (official ``DvdGanModel``): WGAN-GP with a spatial discriminator D_S on K frames drawn
from ``1..T-1`` (each concatenated with the input image when ``conditional``) and a temporal
discriminator D_T on the whole clip (:mod:`v2v.nn.video_discriminators`, spectral norm variant
``"dvdgan"``). Iteration ``i = step + 1``: when ``i % n_critic == 0`` a G step
``L_G = lambda_S * mean D_S(fake) + lambda_T * mean D_T(fake)``, otherwise a D step
``L_D = mean D(real) - mean D(fake) + lambda_GP * GP`` for D_S and D_T (the repo's sign
convention). ``n_acc_batches`` splits the batch into that many sub-batches, each loss divided by
``n_acc_batches`` (the official gradient accumulation; sub-batches draw their own frames).
For ``step < pretrain_steps`` the G loss also has ``lambda_L1 * L1(fake, real)`` (the official
``pretrain_epochs`` warm-up, counted in steps here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from v2v.errors import V2VError
from v2v.losses.gan import gradient_penalty
from v2v.models.base import System
from v2v.nn.recurrent import ConvGRU
from v2v.nn.resblocks import ResBlock
from v2v.nn.spectral_norm import spectral_norm
from v2v.nn.stylegan2 import ConstantInput, FusedLeakyReLU, ModulatedConv2d, ToRGB
from v2v.nn.video_discriminators import DVDSpatialDiscriminator, DVDTemporalDiscriminator, sample_frames
from v2v.registry import register_system

__all__ = ["StyleDVDGANConfig", "StyleDVDGANDataConfig", "StyleDVDGANSystem", "StyleDVDGenerator", "StyledConv",
           "pyramid_geometry", "spatial_stack"]

CH_MULTS = (8, 8, 8, 8, 8, 8, 4, 2, 1)
GRU_KERNELS = (3, 5, 3)
MODCONV = ("batched", "grouped")


@dataclass
class StyleDVDGANConfig:
    """The YAML ``model:`` section; defaults are the official style2 setups (sky/landscape 128)."""

    resolution: int = 128
    frames: int = 25  # clip length T including the input frame (official max_clip_length*fps/skip_frames)
    input_nc: int = 3
    ch_g: int = 32
    ch_ds: int = 16
    ch_dt: int = 64
    start_fp: int = 2
    max_fp: int = 5
    up_blocks_per_rnn: int = 1
    gru_layers: int = 1
    style_dim: int = 256
    dvd_spatial_frames: int = 8  # K
    conditional: bool = True
    dt_prepool: bool = False  # official --no_dt_prepool in every style2 setup
    lambda_S: float = 1.0
    lambda_T: float = 5.0
    lambda_GP: float = 1.0
    n_critic: int = 3
    n_acc_batches: int = 1
    pretrain_steps: int = 0  # official pretrain_epochs (counted in steps): G also gets lambda_L1 * L1(fake, real)
    lambda_L1: float = 10.0
    modconv: str = "batched"  # batched (fast, input scaling) | grouped (official grouped conv)


@dataclass
class StyleDVDGANDataConfig:
    """The YAML ``data:`` section: a folder of videos (``<root>/<split>/<video>``; files or frame folders)."""

    root: str = "data/windfield"
    stride: int = 1  # official skip_frames
    repeats: int = 1
    augment: dict = field(default_factory=dict)  # VideoFolderDataset augment (flip, time_flip, jitter)


def pyramid_geometry(resolution: int, start_fp: int = 2, max_fp: int = 5) -> tuple[int, int]:
    """``(depth D, latent size L)`` of the generator pyramid; V2VError for an unusable resolution.

    ``D = min(max_fp, log2(resolution) - start_fp)``, ``L = resolution / 2**D``; the resolution
    must be a power of two with ``3 <= D <= 8`` (the constant input and the style head are 8ch wide,
    so level 0 must be an 8ch level of ``CH``) and ``L >= 4`` (the style head halves L twice).

    >>> pyramid_geometry(128), pyramid_geometry(64)
    ((5, 4), (4, 4))
    """
    r = int(resolution)
    if r < 1 or r & (r - 1):
        raise V2VError(f"style-dvdgan: resolution {resolution} is not a power of two")
    geo = _geometry(r, int(start_fp), int(max_fp))
    if geo is None:
        ok = [2**e for e in range(1, 16) if _geometry(2**e, int(start_fp), int(max_fp))]
        hint = f"the minimum is {ok[0]}" if ok else "no resolution works with these options"
        raise V2VError(f"style-dvdgan: resolution {resolution} is below the pyramid minimum for start_fp={start_fp}, "
                       f"max_fp={max_fp} (needs depth 3..8 and a latent of >= 4 pixels; {hint})")
    return geo


def _geometry(r: int, start_fp: int, max_fp: int) -> tuple[int, int] | None:
    depth = min(max_fp, int(math.log2(r)) - start_fp)
    if depth < 3 or depth > len(CH_MULTS) - 1 or (r >> depth) < 4:
        return None
    return depth, r >> depth


def spatial_stack(video: torch.Tensor, indices, cond: torch.Tensor | None) -> torch.Tensor:
    """D_S input: frames ``indices`` of ``video: B,T,C,H,W`` as ``K,B,C',H,W``, each preceded
    along channels by ``cond: B,C0,H,W`` (the input image) when given."""
    frames, _ = sample_frames(video, len(indices), indices=indices)
    if cond is None:
        return frames
    return torch.cat([cond.unsqueeze(0).expand(frames.shape[0], -1, -1, -1, -1), frames], 2)


class StyledConv(nn.Module):
    """StyleGAN2 StyledConv as the official DvdStyle2 builds it: no noise injection (no noise weight).
    Keys ``conv.*`` (:class:`v2v.nn.stylegan2.ModulatedConv2d`) and ``activate.bias``."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, upsample: bool = False, fused: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, True, upsample, fused=fused)
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.activate(self.conv(x, style))


class StyleDVDGenerator(nn.Module):
    """The style2 generator (module docstring, steps 1-6). ``forward(image, frames)``:
    ``image: B,C,H,W`` in [0,1] -> video ``B,frames,3,H,W`` in [0,1]."""

    def __init__(self, resolution: int = 128, frames: int = 25, input_nc: int = 3, ch_g: int = 32,
                 start_fp: int = 2, max_fp: int = 5, up_blocks_per_rnn: int = 1, gru_layers: int = 1,
                 style_dim: int = 256, modconv: str = "batched"):
        super().__init__()
        if modconv not in MODCONV:
            raise V2VError(f"style-dvdgan: modconv must be one of {MODCONV}, got {modconv!r}")
        if not 1 <= gru_layers <= len(GRU_KERNELS):
            raise V2VError(f"style-dvdgan: gru_layers must be 1..{len(GRU_KERNELS)}, got {gru_layers}")
        if up_blocks_per_rnn < 1:
            raise V2VError(f"style-dvdgan: up_blocks_per_rnn must be >= 1, got {up_blocks_per_rnn}")
        depth, latent = pyramid_geometry(resolution, start_fp, max_fp)
        self.resolution, self.frames, self.input_nc = resolution, frames, input_nc
        self.depth, self.latent = depth, latent
        ch, m = ch_g, CH_MULTS[-(depth + 1):]
        fused = modconv == "grouped"
        first = nn.Sequential(spectral_norm(nn.Conv2d(input_nc, ch, 3, padding=1), variant="dvdgan"),
                              ResBlock(ch * m[depth], ch * m[depth - 1], "down"))
        self.encoder = nn.ModuleList(
            [first] + [ResBlock(ch * m[depth - i], ch * m[depth - i - 1], "down") for i in range(1, depth)])
        e2s = latent // 4
        self.encoder2style = nn.Sequential(
            ResBlock(8 * ch, 8 * ch, "down"), ResBlock(8 * ch, 4 * ch, "down"), nn.Flatten(),
            nn.Linear(4 * ch * e2s * e2s, style_dim), nn.Sigmoid())
        self.input = ConstantInput(8 * ch, latent)
        kernels = list(GRU_KERNELS[:gru_layers])
        self.rnn = nn.ModuleDict({
            str(lv): ConvGRU(m[lv] * ch, [m[lv] * ch] * gru_layers, kernels, gru_layers)
            for lv in range(depth) if lv % up_blocks_per_rnn == 0})
        self.conv = nn.ModuleList(
            nn.ModuleList([StyledConv(m[lv] * ch, m[lv] * ch, style_dim, upsample=True, fused=fused),
                           StyledConv(m[lv] * ch, m[lv + 1] * ch, style_dim, fused=fused)])
            for lv in range(depth))
        self.colorize = ToRGB(ch, style_dim, upsample=False, fused=fused)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Step 2: encoder outputs, deepest first (``F[l]`` has the shape of level l's input)."""
        feats = []
        for blk in self.encoder:
            x = blk(x)
            feats.append(x)
        return feats[::-1]

    def recur(self, rnn: ConvGRU, y: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
        """Step 5 (ConvGRU): ``y: B,n,C,h,w`` -> last-layer hidden states ``B,n,C,h,w``; hidden of every layer starts at ``init``."""
        hidden = [init] * len(rnn.cells)
        outs = []
        for t in range(y.shape[1]):
            hidden = rnn(y[:, t], hidden)
            outs.append(hidden[-1])
        return torch.stack(outs, 1)

    def forward(self, image: torch.Tensor, frames: int | None = None, trace: dict | None = None) -> torch.Tensor:
        """``image: B,C,H,W`` in [0,1] -> ``B,frames,3,H,W`` in [0,1]; ``trace`` (a dict) receives the intermediates."""
        if image.dim() != 4 or image.shape[1] != self.input_nc or image.shape[-1] != self.resolution \
                or image.shape[-2] != self.resolution:
            raise V2VError(f"style-dvdgan: expected images B,{self.input_nc},{self.resolution},{self.resolution}, "
                           f"got {tuple(image.shape)}")
        frames = self.frames if frames is None else int(frames)
        if frames < 2:
            raise V2VError(f"style-dvdgan: frames must be >= 2 (the input frame + predictions), got {frames}")
        b, n = image.shape[0], frames - 1
        x = image * 2 - 1
        feats = self.encode(x)
        style = self.encoder2style(feats[0])
        styles = style.repeat_interleave(n, 0)  # b-major, one row per (sample, step)
        y = self.input(b * n)
        if trace is not None:
            trace.update(enc=feats[::-1], style=style)
        for lv, convs in enumerate(self.conv):
            if str(lv) in self.rnn:
                y = self.recur(self.rnn[str(lv)], y.reshape(b, n, *y.shape[1:]), feats[lv])
                if trace is not None:
                    trace[f"gru{lv}"] = y
                y = y.reshape(b * n, *y.shape[2:])
            for layer in convs:
                y = layer(y, styles)
            if trace is not None:
                trace[f"lvl{lv}"] = y.reshape(b, n, *y.shape[1:])
        rgb = self.colorize(y, styles)
        if trace is not None:
            trace["rgb"] = rgb.reshape(b, n, *rgb.shape[1:])
        video = torch.cat([x[:, :3].unsqueeze(1), torch.tanh(rgb).reshape(b, n, *rgb.shape[1:])], 1)
        return (video + 1) / 2


@register_system("style-dvdgan", compat="v2v.compat.style_dvdgan", commands="v2v.commands.style_dvdgan")
class StyleDVDGANSystem(System):
    """Generator + D_S + D_T with the official WGAN-GP schedule (module docstring)."""

    ModelConfig = StyleDVDGANConfig
    DataConfig = StyleDVDGANDataConfig

    def __init__(self, cfg: StyleDVDGANConfig, inference: bool = False):
        super().__init__()
        self.cfg = cfg
        self.generator = StyleDVDGenerator(
            cfg.resolution, cfg.frames, cfg.input_nc, cfg.ch_g, cfg.start_fp, cfg.max_fp, cfg.up_blocks_per_rnn,
            cfg.gru_layers, cfg.style_dim, cfg.modconv)
        self.disc_spatial = self.disc_temporal = None
        if not inference:
            self._check_training_geometry(cfg)
            ds_in = 3 + cfg.input_nc if cfg.conditional else 3
            self.disc_spatial = DVDSpatialDiscriminator(ds_in, cfg.ch_ds, sn_variant="dvdgan")
            self.disc_temporal = DVDTemporalDiscriminator(3, cfg.ch_dt, prepool=cfg.dt_prepool, sn_variant="dvdgan")

    @staticmethod
    def _check_training_geometry(cfg: StyleDVDGANConfig) -> None:
        need = 32 * (2 if cfg.dt_prepool else 1)
        if cfg.resolution < need:
            raise V2VError(f"style-dvdgan: training needs resolution >= {need} (the discriminators halve it "
                           f"{5 + cfg.dt_prepool} times), got {cfg.resolution}")
        if cfg.frames < 4 or cfg.frames <= cfg.dvd_spatial_frames + 1:
            raise V2VError(f"style-dvdgan: training needs frames >= 4 and frames > dvd_spatial_frames + 1 "
                           f"(official assert), got frames={cfg.frames}, dvd_spatial_frames={cfg.dvd_spatial_frames}")
        if cfg.n_critic < 1 or cfg.n_acc_batches < 1:
            raise V2VError("style-dvdgan: n_critic and n_acc_batches must be >= 1")

    @classmethod
    def from_config(cls, model_cfg: StyleDVDGANConfig, inference: bool = False) -> StyleDVDGANSystem:
        return cls(model_cfg, inference=inference)

    @classmethod
    def build_dataset(cls, data_cfg: StyleDVDGANDataConfig, split: str, model_cfg: StyleDVDGANConfig = None):
        from pathlib import Path

        from v2v.data.datasets import VideoFolderDataset

        if not (Path(data_cfg.root) / split).is_dir():
            if split == "train":
                raise V2VError(f"data.root: {Path(data_cfg.root) / split} not found (make the synthetic set with "
                               f"`v2v data synth windfield --out {data_cfg.root}`)")
            return None
        res = model_cfg.resolution
        return VideoFolderDataset(data_cfg.root, mode="clips", n_frames=model_cfg.frames, size=(res, res),
                                  repeats=data_cfg.repeats if split == "train" else 1,
                                  augment=data_cfg.augment if split == "train" else None, split=split,
                                  stride=data_cfg.stride)

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"G": list(self.generator.parameters()), "Ds": list(self.disc_spatial.parameters()),
                "Dt": list(self.disc_temporal.parameters())}

    def generator_module(self) -> nn.Module:
        return self.generator

    def forward(self, image: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        return self.generator(image, frames)

    # ---- losses (official backward_Ds_wgan / backward_Dt_wgan / backward_G_wgan) -------------------
    def _draw(self, t: int) -> torch.Tensor:
        return torch.randperm(t - 1)[: min(t - 1, self.cfg.dvd_spatial_frames)] + 1

    def loss_ds(self, image, real, fake, idx_fake=None, idx_real=None, alpha=None) -> dict[str, torch.Tensor]:
        """D_S loss on detached fakes: forwards fake, real, GP (``alpha``: ``K,1,1,1,1``)."""
        cond = image if self.cfg.conditional else None
        idx_fake = self._draw(fake.shape[1]) if idx_fake is None else idx_fake
        idx_real = self._draw(real.shape[1]) if idx_real is None else idx_real
        return self._critic(self.disc_spatial, spatial_stack(real, idx_real, cond),
                            spatial_stack(fake.detach(), idx_fake, cond), alpha)

    def loss_dt(self, real, fake, alpha=None) -> dict[str, torch.Tensor]:
        """D_T loss on detached fakes: forwards fake, real, GP (``alpha``: ``B,1,1,1,1``)."""
        return self._critic(self.disc_temporal, real, fake.detach(), alpha)

    def _critic(self, disc, real, fake, alpha) -> dict[str, torch.Tensor]:
        """WGAN-GP critic terms in the repo's order (fake, real, GP) and sign."""
        d_fake = disc(fake).mean()
        d_real = disc(real).mean()
        if alpha is None:
            alpha = torch.rand(real.shape[0], 1, 1, 1, 1, device=real.device, dtype=real.dtype)
        gp = gradient_penalty(disc, real, fake, alpha=alpha)
        return {"fake": d_fake, "real": d_real, "gp": gp, "loss": d_real - d_fake + self.cfg.lambda_GP * gp}

    def loss_g(self, image, fake, idx=None) -> dict[str, torch.Tensor]:
        """G loss ``lambda_S * mean D_S(fake) + lambda_T * mean D_T(fake)`` (the repo's sign)."""
        idx = self._draw(fake.shape[1]) if idx is None else idx
        gs = self.disc_spatial(spatial_stack(fake, idx, image if self.cfg.conditional else None)).mean()
        gt = self.disc_temporal(fake).mean()
        return {"Gs": gs, "Gt": gt, "loss": self.cfg.lambda_S * gs + self.cfg.lambda_T * gt}

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        video = batch["video"]
        if video.shape[1] != self.cfg.frames:
            raise V2VError(f"style-dvdgan: clips of {video.shape[1]} frames, model.frames is {self.cfg.frames}")
        n_acc = self.cfg.n_acc_batches
        if video.shape[0] < n_acc:
            raise V2VError(f"style-dvdgan: batch of {video.shape[0]} cannot be split into n_acc_batches={n_acc}")
        g_step = (step + 1) % self.cfg.n_critic == 0
        out: dict[str, torch.Tensor] = {}

        def add(key, val):
            out[key] = out[key] + val / n_acc if key in out else val / n_acc

        for real in video.chunk(n_acc):
            image = real[:, 0]
            if g_step:
                fake = self.generator(image, real.shape[1])
                lg = self.loss_g(image, fake)
                if step < self.cfg.pretrain_steps:
                    l1 = (fake - real).abs().mean()
                    lg["loss"] = lg["loss"] + self.cfg.lambda_L1 * l1
                    add("G/L1", l1.detach())
                add("G", lg["loss"])
                add("G/Gs", lg["Gs"].detach())
                add("G/Gt", lg["Gt"].detach())
            else:
                with torch.no_grad():
                    fake = self.generator(image, real.shape[1])
                ls, lt = self.loss_ds(image, real, fake), self.loss_dt(real, fake)
                add("Ds", ls["loss"])
                add("Dt", lt["loss"])
                for k in ("real", "fake", "gp"):
                    add(f"Ds/{k}", ls[k].detach())
                    add(f"Dt/{k}", lt[k].detach())
        return out

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        video = batch["video"]
        return {"fake": self.generator(video[:, 0], video.shape[1]), "real": video}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Held-out L1 of the predicted frames 1..T-1 and of the copy-the-input baseline."""
        video = batch["video"]
        fake = self.generator(video[:, 0], video.shape[1])
        still = video[:, :1].expand_as(video)
        return {"l1": float((fake[:, 1:] - video[:, 1:]).abs().mean()),
                "l1_still": float((still[:, 1:] - video[:, 1:]).abs().mean())}
