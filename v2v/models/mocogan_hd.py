"""MoCoGAN-HD (Tian et al., ICLR 2021): a video is a trajectory in a frozen StyleGAN2's w space.

Paper Fig. 2, one method per box::

    z ~ N(0,I) -> w_0 = G.mapping(z)                                       (Sec. 3.1)
    h_0, c_0 = LSTM_enc(w_0);  h_t, c_t = LSTM_dec(e_t, (h_{t-1}, c_{t-1})),  e_t ~ N(0,I)
    w_t = w_{t-1} + lambda * tanh(h_t W + b) (U * sigma)                     (Eq. 1, residual in PCA basis)
    x_t = G.synthesis(w_t, noise)   (one noise map per video per layer)     (Sec. 3.1)
    D_I : contrastive BigGAN image discriminator with MoCo queues + EMA copy (Sec. 3.2, cross-domain)
    D_V : multi-scale 3-D PatchGAN on k x k avg-pooled clips                  (Sec. 3.2)
    L_G = L_ra(D_V) + L_hinge(D_I) + w_match * L_match + L_mutual            (Eq. 3-6)
    L_D = L_ra(D_V) + GP,  L_hinge(D_I) + 2 * L_contr                       (official weights)

In-domain mode (``cross_domain: false``) replaces D_I by a 2-D PatchGAN on (first frame, frame t)
pairs and feeds D_V those pairs too, with RaLSGAN for both (official ``train_func_in_domain``).

Layouts: videos ``B,T,3,H,W`` raw generator values (nominally [-1,1]); ``sample`` maps to [0,1].
The PCA basis (``pca_comp`` ``(n_pca, D)``, ``pca_stdev`` ``(n_pca,)``) is a buffer of the motion
generator, loaded from ``pca_dir`` (official ``pca_comp.npy`` / ``pca_stdev.npy``) or computed with
:func:`fit_pca` (the official IncrementalPCA recipe, solved exactly by SVD).
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.losses.contrastive import contrastive_loss, cosine_similarity16
from v2v.losses.gan import GANLoss, gradient_penalty, relativistic_lsgan_loss
from v2v.models.base import System
from v2v.nn.biggan import BigGANProjectionDiscriminator
from v2v.nn.patchgan import MultiscalePatchDiscriminator
from v2v.nn.stylegan2 import StyleGAN2Generator, load_generator_state_dict, read_rosinality
from v2v.nn.video_discriminators import MultiscaleVideoDiscriminator, VideoPatchDiscriminator3d
from v2v.registry import register_system

__all__ = ["ContrastiveImageDiscriminator", "MoCoGANHDConfig",
           "MoCoGANHDDataConfig", "MoCoGANHDSystem", "MotionGenerator", "fit_pca", "load_pca", "sample_warp_params", "video_discriminator", "warp"]


@dataclass
class MoCoGANHDConfig:
    """The YAML ``model:`` section (official option names where there is one)."""

    image_generator: str | None = None  # rosinality StyleGAN2 file (official --img_g_weights)
    pca_dir: str | None = None  # folder with pca_comp.npy / pca_stdev.npy (official --save_pca_path)
    pca_samples: int = 2000  # mapped samples for fit_pca when pca_dir is absent
    style_gan_size: int = 256
    latent_dimension: int = 512
    n_mlp: int = 8
    stylegan_channels: dict[int, int] | None = None  # widths table override (tiny models)
    channel_multiplier: int = 2
    h_dim: int = 384
    n_pca: int = 384
    w_residual: float = 0.2
    n_frames_G: int = 16
    video_frame_size: int = 128  # discriminators see frames avg-pooled to this size
    cross_domain: bool = False
    nc: int = 3
    # image discriminator (cross-domain: BigGAN D + contrastive head; in-domain: 2-D PatchGAN pairs)
    D_ch: int = 96
    l_len: int = 256
    q_len: int = 4096
    moco_t: float = 0.07
    moco_m: float = 0.999
    world_batch_size: int = 16  # q_len_eff = q_len // world_batch_size * world_batch_size
    ndf_img: int = 64  # in-domain 2-D PatchGAN width (official constant 64)
    # video discriminator
    num_D: int = 2
    norm_D_3d: str = "instance"
    ndf_3d: int = 64
    ndf_max_3d: int = 64
    # losses
    w_match: float = 1.0
    G_step: int = 5  # generator steps per discriminator step
    use_noise: bool = True


@dataclass
class MoCoGANHDDataConfig:
    """``data:`` section: real clips of ``n_frames_G`` frames at ``video_frame_size``."""

    root: str | None = None  # videos (v2v.data.VideoFolderDataset layout); None = synthetic puppets
    synthetic: str = "puppets"  # puppets | toycity (in memory, when root is None)
    num_videos: int = 16
    frames: int = 24
    stride: int = 1
    repeats: int = 1
    seed: int = 0


# ----------------------------------------------------------------------------- motion generator

@dataclass
class Trajectory:
    """Output of :class:`MotionGenerator`: ``latents (B,T,D)``, noise ``e (B,T-1,D)``, ``e_rec``, states."""

    latents: torch.Tensor
    e: torch.Tensor
    e_rec: torch.Tensor
    h: torch.Tensor  # (B,T,h_dim), h[:,0] from the encoder cell
    c: torch.Tensor
    step: torch.Tensor  # tanh(h_t W + b), (B,T-1,n_pca)


class MotionGenerator(nn.Module):
    """LSTM encoder-decoder predicting residual PCA steps (official ``RNNModule``, same keys).

    ``forward(w0 (B,D), n_frames, noise=None (B,T-1,D)) -> Trajectory``. The input is the mapped
    w (not z). Buffers ``pca_comp (n_pca,D)`` and ``pca_stdev (n_pca,)`` hold the basis.

    Example:
        >>> m = MotionGenerator(latent_dimension=8, h_dim=6, n_pca=4)
        >>> m(torch.randn(2, 8), 5).latents.shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, latent_dimension: int = 512, h_dim: int = 384, n_pca: int = 384, w_residual: float = 0.2):
        super().__init__()
        d = latent_dimension
        self.z_dim, self.h_dim, self.n_pca, self.w_residual = d, h_dim, n_pca, w_residual
        self.enc_cell = nn.LSTMCell(d, h_dim)
        self.cell = nn.LSTMCell(d, h_dim)
        self.w = nn.Parameter(torch.empty(h_dim, n_pca))
        self.b = nn.Parameter(torch.zeros(n_pca))
        self.fc1 = nn.Linear(2 * h_dim, d)
        self.fc2 = nn.Linear(d, d)
        self.register_buffer("pca_comp", torch.eye(n_pca, d))
        self.register_buffer("pca_stdev", torch.ones(n_pca))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in (self.enc_cell, self.cell):
            for name, p in m.named_parameters():
                if "weight" in name:
                    for i in range(4):
                        nn.init.orthogonal_(p.data[i * self.h_dim:(i + 1) * self.h_dim])
                else:
                    nn.init.zeros_(p)
        for m in (self.fc1, self.fc2):
            nn.init.orthogonal_(m.weight)
        nn.init.normal_(self.w, std=0.02)

    def set_pca(self, comp: torch.Tensor, stdev: torch.Tensor) -> None:
        """Install the basis (rows ``[:n_pca]`` are used, as official)."""
        comp, stdev = torch.as_tensor(comp), torch.as_tensor(stdev)
        if comp.dim() != 2 or comp.shape[1] != self.z_dim or comp.shape[0] < self.n_pca or stdev.shape[0] < self.n_pca:
            raise V2VError(f"PCA stats have components {tuple(comp.shape)} / stdev {tuple(stdev.shape)}; "
                           f"the config needs at least ({self.n_pca}, {self.z_dim}) (n_pca, latent_dimension)")
        self.pca_comp.copy_(comp[: self.n_pca].float())
        self.pca_stdev.copy_(stdev[: self.n_pca].float())

    def pca_step(self, h: torch.Tensor) -> torch.Tensor:
        """Eq. 1 direction ``tanh(h W + b)`` (B, n_pca)."""
        return torch.tanh(h @ self.w + self.b)

    def forward(self, w0: torch.Tensor, n_frames: int, noise: torch.Tensor | None = None) -> Trajectory:
        if w0.dim() != 2 or w0.shape[1] != self.z_dim:
            raise V2VError(f"motion generator expects w of shape (B,{self.z_dim}), got {tuple(w0.shape)}")
        b = w0.shape[0]
        if noise is None:
            noise = torch.randn(b, max(n_frames - 1, 0), self.z_dim, device=w0.device, dtype=w0.dtype)
        basis = self.pca_comp * self.pca_stdev[:, None]
        h, c = self.enc_cell(w0)
        out, hs, cs, steps = [w0], [h], [c], []
        for t in range(n_frames - 1):
            h, c = self.cell(noise[:, t], (h, c))
            s = self.pca_step(h)
            out.append(out[-1] + self.w_residual * s @ basis)
            hs.append(h)
            cs.append(c)
            steps.append(s)
        hh, cc = torch.stack(hs, 1), torch.stack(cs, 1)
        e_rec = self.fc2(F.relu(self.fc1(torch.cat([hh[:, 1:], cc[:, 1:]], 2))))
        st = torch.stack(steps, 1) if steps else w0.new_zeros(b, 0, self.n_pca)
        return Trajectory(torch.stack(out, 1), noise[:, : n_frames - 1], e_rec, hh, cc, st)


def load_pca(pca_dir: str, n_pca: int | None = None, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Read official ``pca_comp.npy`` (D,D) and ``pca_stdev.npy`` (D,) (float64) as float32 tensors."""
    out = []
    for name in ("pca_comp.npy", "pca_stdev.npy"):
        p = os.path.join(pca_dir, name)
        if not os.path.isfile(p):
            raise V2VError(f"PCA stats not found: {p} (compute them with `v2v generate mocogan-hd-pca` or set model.pca_dir)")
        try:
            out.append(torch.from_numpy(np.load(p, allow_pickle=False)).float())
        except ValueError as exc:
            raise V2VError(f"{p}: not a plain .npy array ({exc})") from None
    comp, stdev = out
    if comp.dim() != 2 or stdev.dim() != 1 or comp.shape[0] != stdev.shape[0]:
        raise V2VError(f"{pca_dir}: pca_comp {tuple(comp.shape)} and pca_stdev {tuple(stdev.shape)} do not fit "
                       "(expected (K,D) and (K,))")
    if dim is not None and comp.shape[1] != dim:
        raise V2VError(f"{pca_dir}: PCA components have dimension {comp.shape[1]}, the latent dimension is {dim}")
    if n_pca is not None and comp.shape[0] < n_pca:
        raise V2VError(f"{pca_dir}: {comp.shape[0]} PCA components, the config needs n_pca={n_pca}")
    return comp, stdev


@torch.no_grad()
def fit_pca(mapping: nn.Module, dim: int, n_samples: int = 2000, batch: int = 500, seed: int = 0) -> dict:
    """The official ``get_stats_pca.py`` statistics of ``n_samples`` mapped ``z ~ N(0,I)``.

    Official: sklearn ``IncrementalPCA(n_components=D)`` fed batches of mapped samples. With all D
    components kept, incremental PCA equals the exact PCA of the pooled samples, computed here by one
    SVD of the centred matrix (float64). Returns ``pca_comp (D,D)`` (rows = components, by decreasing
    variance, sign as sklearn's ``svd_flip``), ``pca_stdev`` = sqrt(explained variance, ddof 1),
    ``pca_var_ratio``, ``style_mean``, ``style_var``.
    """
    g = torch.Generator().manual_seed(seed)
    dev = next(mapping.parameters()).device
    ws = []
    for i in range(0, n_samples, batch):
        z = torch.randn(min(batch, n_samples - i), dim, generator=g).to(dev)
        ws.append(mapping(z).double().cpu())
    x = torch.cat(ws)
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    sign = torch.sign(vt[torch.arange(vt.shape[0]), vt.abs().argmax(1)])
    vt = vt * sign[:, None]
    var = s**2 / (x.shape[0] - 1)
    return {"pca_comp": vt.numpy(), "pca_stdev": var.sqrt().numpy(), "pca_var_ratio": (var / var.sum()).numpy(),
            "style_mean": mean.float().numpy(), "style_var": x.var(0).float().numpy()}


# ----------------------------------------------------------------------------- image discriminator

class ContrastiveImageDiscriminator(nn.Module):
    """Official ``ModelD_img`` (cross-domain): D, its momentum copy ``modelD_ema``, queues ``q_real``/``q_fake``."""

    def __init__(self, resolution: int, D_ch: int, l_len: int, q_len: int, moco_t: float, moco_m: float,
                 world_batch_size: int):
        super().__init__()
        self.modelD = BigGANProjectionDiscriminator(resolution, D_ch, l_len)
        self.modelD_ema = BigGANProjectionDiscriminator(resolution, D_ch, l_len)
        self.modelD_ema.load_state_dict(self.modelD.state_dict())
        self.modelD_ema.requires_grad_(False)
        self.register_buffer("q_real", F.normalize(torch.randn(q_len, l_len), dim=0))
        self.register_buffer("q_fake", F.normalize(torch.randn(q_len, l_len), dim=0))
        self.register_buffer("q_ptr", torch.zeros(1, dtype=torch.long))
        self.q_len_eff = q_len // world_batch_size * world_batch_size
        self.moco_t, self.moco_m = moco_t, moco_m

    def forward(self, x: torch.Tensor, ema: bool = False, proj_only: bool = False):
        return (self.modelD_ema if ema else self.modelD)(x, proj_only)

    def contrastive(self, real: torch.Tensor, real2: torch.Tensor, fake: torch.Tensor, fake2: torch.Tensor):
        """``get_cntr_loss_cross_domain``: real views vs ``q_real`` + fake views vs ``q_fake``."""
        q = self.q_len_eff
        return (contrastive_loss(real, real2, self.q_real[:q], self.moco_t)
                + contrastive_loss(fake, fake2, self.q_fake[:q], self.moco_t))

    @torch.no_grad()
    def momentum_update(self) -> None:
        for p, pe in zip(self.modelD.parameters(), self.modelD_ema.parameters()):
            pe.mul_(self.moco_m).add_(p.detach(), alpha=1 - self.moco_m)

    @torch.no_grad()
    def update_memory_bank(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        """Write the (all-gathered) EMA projections at ``q_ptr`` and advance it modulo ``q_len_eff``."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            real, fake = _all_gather(real), _all_gather(fake)
        n, ptr = real.shape[0], int(self.q_ptr)
        n = min(n, self.q_real.shape[0] - ptr)
        self.q_real[ptr:ptr + n] = real[:n]
        self.q_fake[ptr:ptr + n] = fake[:n]
        self.q_ptr[0] = (ptr + n) % max(self.q_len_eff, 1)


def _all_gather(x: torch.Tensor) -> torch.Tensor:
    out = [torch.empty_like(x) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(out, x.contiguous())
    return torch.cat(out)


# ----------------------------------------------------------------------------- video discriminator, augmentation

def video_discriminator(nc: int, n_frames: int, num_D: int, norm: str, ndf: int, ndf_max: int = 64,
                        widths: list[int] | None = None) -> MultiscaleVideoDiscriminator:
    """Official ``ModelD_3d.netD``: ``num_D`` 3-D PatchGANs (k4, temporal stride 2), pool (3,3,3)/(1,2,2).

    Scale ``s`` has width ``min(ndf_max, ndf * 2**(num_D-1-s))`` (or ``widths[s]``).
    """
    stride = (2, 2, 2) if n_frames > 16 else (1, 2, 2)
    d = MultiscaleVideoDiscriminator(nc, ndf, 3, norm, num_D, True, temporal_kernel=4, temporal_stride=2,
                                     track_running_stats=True, pool_kernel=(3, 3, 3), pool_stride=stride)
    widths = widths or [min(ndf_max, ndf * 2 ** (num_D - 1 - s)) for s in range(num_D)]
    for s, w in enumerate(widths):
        d.scales[s] = VideoPatchDiscriminator3d(nc, w, 3, norm, True, 4, 2, 512, False, True)
    for m in d.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return d


def sample_warp_params(b: int, h: int, w: int, max_ratio: float = 0.25) -> dict[str, torch.Tensor]:
    """Draw the official ``warp()`` parameters (python ``random`` + torch RNG, official distributions)."""
    cut, op, flip, cch, csh, aff = [], [], [], [], [], []
    for _ in range(b):
        ratio = random.uniform(max_ratio / 2, max_ratio)
        side = random.randint(0, 3)
        if side == 0:
            hs, ws = random.uniform(0, max_ratio - ratio), random.uniform(0, 1 - max_ratio)
        elif side == 1:
            hs, ws = random.uniform(1 - max_ratio, 1 - ratio), random.uniform(0, 1 - max_ratio)
        elif side == 2:
            ws, hs = random.uniform(0, max_ratio - ratio), random.uniform(0, 1 - max_ratio)
        else:
            ws, hs = random.uniform(1 - max_ratio, 1 - ratio), random.uniform(0, 1 - max_ratio)
        cut.append([round(hs * (h - 1) - 0.5), round(ws * (w - 1) - 0.5), round(h * ratio - 0.5)])
        k = random.randint(0, 2)
        op.append(k)
        flip.append(random.randint(0, 1) if k == 0 else 0)
        cch.append(random.randint(0, 3) if k == 1 else -1)
        csh.append(float(torch.rand(1)) - 0.5 if k == 1 else 0.0)
        if k == 2:
            a = math.pi
            aff.append([random.uniform(-a, a), random.uniform(-0.1, 0.1), random.uniform(-0.1, 0.1),
                        random.uniform(0.95, 1.05)])
        else:
            aff.append([0.0, 0.0, 0.0, 1.0])
    return {"cutout": torch.tensor(cut), "op": torch.tensor(op), "flip": torch.tensor(flip),
            "color_channel": torch.tensor(cch), "color_shift": torch.tensor(csh), "affine": torch.tensor(aff)}


def warp(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Official augmentation ``warp()`` with explicit parameters: cutout, then flip / colour / affine per sample.

    Args:
        x: frames ``B,C,H,W``.
        params: from :func:`sample_warp_params` (``cutout (B,3)``, ``op (B,)``, ``flip``, ``color_channel``,
            ``color_shift``, ``affine (B,4)`` = angle, tx, ty, scale).

    Returns:
        ``B,C,H,W`` (differentiable in ``x``).
    """
    outs = []
    for i in range(x.shape[0]):
        hs, ws, ln = (int(v) for v in params["cutout"][i])
        mm = np.ones(tuple(x[i].shape), np.float32)
        mm[:, hs:hs + ln, ws:ws + ln] = 0.0  # numpy slice semantics, as the official mask
        m = torch.from_numpy(mm).to(x)
        xi = x[i] * m
        op = int(params["op"][i])
        if op == 0:
            xi = torch.flip(xi, [-1]) if int(params["flip"][i]) == 1 else xi
        elif op == 1:
            c, s = int(params["color_channel"][i]), params["color_shift"][i].to(xi)
            add = torch.zeros_like(xi)
            if c == 0:
                add = add + s
            else:
                add[c - 1] = s
            xi = xi + add
        else:
            a, tx, ty, sc = (params["affine"][i, j].to(xi) for j in range(4))
            th = torch.stack([torch.stack([sc * torch.cos(a), sc * torch.sin(-a), tx]),
                              torch.stack([sc * torch.sin(a), sc * torch.cos(a), ty])])[None]
            grid = F.affine_grid(th, [1, *xi.shape], align_corners=False)
            xi = F.grid_sample(xi[None], grid, padding_mode="reflection", align_corners=False)[0]
        outs.append(xi)
    return torch.stack(outs)


def _flip_video(v: torch.Tensor) -> torch.Tensor:
    """Official ``flip_video``: reverse time with p = 1/2 (``v`` B,T,C,H,W)."""
    return torch.flip(v, [1]) if random.randint(0, 1) == 0 else v


# ----------------------------------------------------------------------------- the system

@register_system("mocogan-hd", compat="v2v.compat.mocogan_hd", commands="v2v.commands.mocogan_hd")
class MoCoGANHDSystem(System):
    """Frozen StyleGAN2 + motion generator (+ D_I, D_V when training); see the module docstring."""

    ModelConfig = MoCoGANHDConfig
    DataConfig = MoCoGANHDDataConfig

    def __init__(self, cfg: MoCoGANHDConfig, inference: bool = False):
        super().__init__(cfg)
        self.generator = StyleGAN2Generator(cfg.style_gan_size, cfg.latent_dimension, cfg.n_mlp,
                                            cfg.channel_multiplier, channels=cfg.stylegan_channels)
        self.generator.requires_grad_(False).eval()
        self.motion = MotionGenerator(cfg.latent_dimension, cfg.h_dim, cfg.n_pca, cfg.w_residual)
        self.inference = inference
        if cfg.style_gan_size % cfg.video_frame_size:
            raise V2VError(f"style_gan_size {cfg.style_gan_size} is not a multiple of video_frame_size "
                           f"{cfg.video_frame_size}")
        if not inference:
            if cfg.cross_domain:
                self.D_img = ContrastiveImageDiscriminator(cfg.video_frame_size, cfg.D_ch, cfg.l_len, cfg.q_len,
                                                           cfg.moco_t, cfg.moco_m, cfg.world_batch_size)
            else:
                self.D_img = MultiscalePatchDiscriminator(cfg.nc * 2, cfg.ndf_img, 3, cfg.norm_D_3d, num_D=cfg.num_D,
                                                          get_interm_feat=True, track_running_stats=True)
            nc, nt = (cfg.nc, cfg.n_frames_G) if cfg.cross_domain else (cfg.nc * 2, cfg.n_frames_G - 1)
            self.D_3d = video_discriminator(nc, nt, cfg.num_D, cfg.norm_D_3d, cfg.ndf_3d, cfg.ndf_max_3d)
            self._hinge = GANLoss("hinge")
            self._d_updated = False

    @classmethod
    def from_config(cls, model_cfg: MoCoGANHDConfig, inference: bool = False) -> MoCoGANHDSystem:
        """Build; loads ``image_generator`` and ``pca_dir`` when set (else computes the PCA basis)."""
        sysm = cls(model_cfg, inference)
        if model_cfg.image_generator:
            sysm.load_image_generator(model_cfg.image_generator)
            if model_cfg.pca_dir:
                sysm.motion.set_pca(*load_pca(model_cfg.pca_dir, model_cfg.n_pca, model_cfg.latent_dimension))
            else:
                st = fit_pca(sysm.generator.style, model_cfg.latent_dimension, model_cfg.pca_samples)
                sysm.motion.set_pca(torch.from_numpy(st["pca_comp"]), torch.from_numpy(st["pca_stdev"]))
        elif model_cfg.pca_dir:
            sysm.motion.set_pca(*load_pca(model_cfg.pca_dir, model_cfg.n_pca, model_cfg.latent_dimension))
        return sysm

    def load_image_generator(self, path: str) -> None:
        """rosinality file (``g_ema``) into the frozen generator, official ``strict=False`` semantics."""
        ck = read_rosinality(path)
        load_generator_state_dict(self.generator, ck["g_ema"], path)
        if torch.is_tensor(ck.get("latent_avg")):
            self.register_buffer("latent_avg", ck["latent_avg"].reshape(1, -1).float(), persistent=False)

    # -- Fig. 2 forward ------------------------------------------------------------------------
    def trajectory(self, z: torch.Tensor, n_frames: int, rnn_noise: torch.Tensor | None = None) -> Trajectory:
        """``z (B,D)`` -> mapped ``w_0`` -> LSTM trajectory (the RNN input is w, not z)."""
        return self.motion(self.generator.mapping(z), n_frames, rnn_noise)

    def render(self, latents: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``latents (B,T,D)`` -> video ``(B,T,3,S,S)``; ``noise``: per-VIDEO maps ``(B,1,r,r)`` per layer."""
        b, t, d = latents.shape
        nz = None
        if noise is not None:
            nz = [None if n is None else n.unsqueeze(1).expand(b, t, *n.shape[1:]).reshape(b * t, *n.shape[1:])
                  for n in noise]
        img = self.generator.synthesis(latents.reshape(b * t, d), nz)
        return img.view(b, t, *img.shape[1:])

    def truncate(self, latents: torch.Tensor, truncation: float) -> torch.Tensor:
        if truncation >= 1:
            return latents
        avg = getattr(self, "latent_avg", None)
        if avg is None:
            avg = self.generator.mean_latent(4096, torch.Generator().manual_seed(0))
        return avg.to(latents) + truncation * (latents - avg.to(latents))

    @staticmethod
    def interpolate(latents: torch.Tensor) -> torch.Tensor:
        """``--interpolation``: ``2T-1`` latents with the midpoints inserted."""
        mid = (latents[:, :-1] + latents[:, 1:]) / 2
        out = torch.stack([latents[:, :-1], mid], 2).flatten(1, 2)
        return torch.cat([out, latents[:, -1:]], 1)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, n_frames: int, use_noise: bool = False, interpolate: bool = False,
                 truncation: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Videos ``(B,T',3,S,S)`` raw values; ``T' = 2T-1`` with ``interpolate``. LSTM unrolls any T."""
        rn = torch.randn(z.shape[0], max(n_frames - 1, 0), self.cfg.latent_dimension, generator=generator).to(z)
        lat = self.truncate(self.trajectory(z, n_frames, rn).latents, truncation)
        if interpolate:
            lat = self.interpolate(lat)
        noise = self.generator.make_noise(z.shape[0], generator) if use_noise else None
        return self.render(lat, noise)

    def downsample(self, video: torch.Tensor) -> torch.Tensor:
        """D input: ``avg_pool3d(video, (1,k,k))``, ``k = style_gan_size / video_frame_size``."""
        k = self.cfg.style_gan_size // self.cfg.video_frame_size
        if k == 1:
            return video
        return F.avg_pool2d(video.flatten(0, 1), k).unflatten(0, video.shape[:2])

    # -- training ------------------------------------------------------------------------------
    @classmethod
    def build_dataset(cls, data_cfg: MoCoGANHDDataConfig, split: str, model_cfg: MoCoGANHDConfig | None = None):
        from v2v.data.clips import ClipDataset, SyntheticClips
        from v2v.data.datasets import VideoFolderDataset

        cfg = model_cfg or MoCoGANHDConfig()
        size = (cfg.video_frame_size, cfg.video_frame_size)
        if data_cfg.root:
            sp = split if os.path.isdir(os.path.join(data_cfg.root, split)) else None
            if sp is None and split != "train":
                return None
            return ClipDataset(VideoFolderDataset(data_cfg.root, "clips", cfg.n_frames_G, size, data_cfg.repeats,
                                                   split=sp, stride=data_cfg.stride))
        return SyntheticClips(data_cfg, split, cfg.n_frames_G, cfg.video_frame_size)

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        d_img = self.D_img.modelD if self.cfg.cross_domain else self.D_img
        return {"G": list(self.motion.parameters()), "D_img": list(d_img.parameters()),
                "D_3d": list(self.D_3d.parameters())}

    def generator_module(self) -> nn.Module:
        return self.motion

    def _fake(self, b: int, device) -> tuple[torch.Tensor, Trajectory]:
        z = torch.randn(b, self.cfg.latent_dimension, device=device)
        tr = self.trajectory(z, self.cfg.n_frames_G)
        noise = self.generator.make_noise(b) if self.cfg.use_noise else None
        return self.downsample(self.render(tr.latents, noise)), tr

    def _pairs(self, v: torch.Tensor) -> torch.Tensor:
        """In-domain D_V input: ``cat(first frame, frame t)`` for t = 1..T-1 (B,T-1,2C,H,W)."""
        return torch.cat([v[:, :1].expand(-1, v.shape[1] - 1, -1, -1, -1), v[:, 1:]], 2)

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        """One G update (official ``G_step``); every ``G_step``-th call also the D updates (``D_step``)."""
        cfg = self.cfg
        if cfg.cross_domain and self._d_updated:
            self.D_img.momentum_update()  # after the previous D optimizer step, as official
        self._d_updated = False
        real = batch["video"] * 2 - 1  # B,T,C,H,W in [-1,1]
        fake, tr = self._fake(real.shape[0], real.device)
        l_mutual = -cosine_similarity16(tr.e_rec.flatten(0, 1), tr.e.flatten(0, 1).detach()).mean()
        vr, vf = (real, fake) if cfg.cross_domain else (self._pairs(real), self._pairs(fake))
        d3_real = self.D_3d(_flip_video(vr))
        d3_fake = self.D_3d(_flip_video(vf))
        g_3d = (relativistic_lsgan_loss(d3_fake, d3_real, True) + relativistic_lsgan_loss(d3_real, d3_fake, False)) / 2
        fid = random.randint(1, cfg.n_frames_G - 1)
        out: dict[str, torch.Tensor] = {}
        if cfg.cross_domain:
            s = fake.shape[-1]
            wf, wr = warp(fake[:, fid], sample_warp_params(fake.shape[0], s, s)), \
                warp(fake[:, 0], sample_warp_params(fake.shape[0], s, s))
            with torch.no_grad():
                self.D_img.update_memory_bank(self.D_img(wr, ema=True, proj_only=True),
                                              self.D_img(wf, ema=True, proj_only=True))
            d_fake, l_fake = self.D_img(wf)
            _, l_real = self.D_img(wr)
            g_2d = self._hinge(d_fake, True, for_discriminator=False)
            l_match = -cosine_similarity16(l_fake, l_real).mean()
            out["G"] = g_3d + g_2d + cfg.w_match * l_match + l_mutual
            out["G/match"] = l_match.detach()
        else:
            di_real = self.D_img(torch.cat([real[:, 0], real[:, fid]], 1))
            di_fake = self.D_img(torch.cat([fake[:, 0], fake[:, fid]], 1))
            g_2d = (relativistic_lsgan_loss(di_fake, di_real, True) + relativistic_lsgan_loss(di_real, di_fake, False)) / 2
            out["G"] = g_3d + g_2d + l_mutual
        out.update({"G/3d": g_3d.detach(), "G/2d": g_2d.detach(), "G/mutual": l_mutual.detach()})
        if (step + 1) % max(cfg.G_step, 1) == 0:
            out.update(self._d_losses(real, fake.detach(), vr, vf.detach()))
            self._d_updated = True
        return out

    def _d_losses(self, real, fake, vr, vf) -> dict[str, torch.Tensor]:
        """Official ``D_step`` on detached fakes: RaLSGAN + GP for D_V; hinge + 2 contrastive (or RaLSGAN) for D_I."""
        cfg = self.cfg
        d3_fake, d3_real = self.D_3d(_flip_video(vf)), self.D_3d(_flip_video(vr))
        l_real3, l_fake3 = relativistic_lsgan_loss(d3_real, d3_fake, True), relativistic_lsgan_loss(d3_fake, d3_real, False)
        gp = gradient_penalty(self.D_3d, vr, vf, weight=10.0 / cfg.num_D, per_scale=True, norm_dim=2)
        out = {"D_3d": (l_real3 + l_fake3) * 0.5 + gp, "D/real_3d": l_real3.detach(), "D/fake_3d": l_fake3.detach(),
               "D/gp": gp.detach()}
        fid = random.randint(1, cfg.n_frames_G - 1)
        if cfg.cross_domain:
            b, s = fake.shape[0], fake.shape[-1]
            views = [warp(fake[:, i], sample_warp_params(b, s, s)) for i in (0, 0, fid, fid)]  # real2, real, fake2, fake
            (_dr2, lr2), (dr, lr), (_df2, lf2), (df, lf) = (self.D_img(v) for v in views)
            cntr = self.D_img.contrastive(lr, lr2, lf, lf2)
            h_real, h_fake = self._hinge(dr, True), self._hinge(df, False)
            out.update({"D_img": h_real + h_fake + 2.0 * cntr, "D/contrastive": cntr.detach(),
                        "D/hinge_real": h_real.detach(), "D/hinge_fake": h_fake.detach()})
        else:
            di_real = self.D_img(torch.cat([real[:, 0], real[:, fid]], 1))
            di_fake = self.D_img(torch.cat([fake[:, 0], fake[:, fid]], 1))
            lr_, lf_ = relativistic_lsgan_loss(di_real, di_fake, True), relativistic_lsgan_loss(di_fake, di_real, False)
            out.update({"D_img": (lr_ + lf_) * 0.5, "D/real_2d": lr_.detach(), "D/fake_2d": lf_.detach()})
        return out

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        z = torch.randn(batch["video"].shape[0], self.cfg.latent_dimension, device=batch["video"].device)
        fake = self.generate(z, self.cfg.n_frames_G, use_noise=self.cfg.use_noise)
        return {"fake": ((fake.clamp(-1, 1) + 1) / 2), "real": batch["video"]}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        from v2v.metrics.acd import acd, flow_magnitude_histogram_distance

        real = batch["video"]
        z = torch.randn(real.shape[0], self.cfg.latent_dimension, device=real.device)
        fake = ((self.generate(z, real.shape[1], use_noise=self.cfg.use_noise).clamp(-1, 1) + 1) / 2)
        fake = self.downsample(fake)
        return {"acd": float(acd(fake)), "flow_hist_dist": float(flow_magnitude_histogram_distance(fake, real))}
