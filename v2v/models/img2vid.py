"""Img2Vid (seg2vid; Pan et al., CVPR 2019, "Video Generation from Single Semantic Label Map").

Stage 2 of the paper (first frame + its semantic label map -> T future frames), read top to
bottom as the paper's figure; stage 1 (label map -> first frame) is the shared pix2pixHD
``GlobalGenerator`` (:mod:`v2v.nn.pix2pixhd`, used by ``v2v generate img2vid --first-frame-generator``).

1. :class:`Img2VidModelConfig` / :class:`Img2VidDataConfig` (YAML ``model:`` / ``data:``).
2. :class:`LabelGrouping`: label ids -> background / foreground mask channels.
3. :class:`FlowVAE` (official ``VAE``, two-path, ``refine=True``): separate bg / fg motion
   encoders give the posterior; the image encoder codes the first frame and its masks; ``fc(z)``
   and ``zconv`` make one code per predicted frame; a decoder with gated 3-D convolutions
   predicts forward/backward flows and occlusion masks; the first frame is warped by each flow
   and :class:`v2v.nn.seg2vid.RefineNet` fills the occluded regions.
4. :class:`Img2VidLosses`: the official loss terms and weights.
5. :class:`Img2VidSystem`: trainer interface, ``generate`` and ``evaluate``.

Conventions: images float ``[0,1]`` (``B,C,H,W``; clips ``B,1+T,C,H,W`` with frame 0 the first
frame), flows ``B,2,T,H,W`` in normalized grid units (``out(p) = frame1(p - flow*mask_fw)``, see
:mod:`v2v.ops.norm_flow_warp`), masks ``B,T,H,W``. Latents: ``R = m_out*(H/16)*(W/16)/z_dim`` rows
of ``z_dim`` per sample, sample-major (``B*R, z_dim``), columns bg first.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.losses.seg2vid import Img2VidLosses
from v2v.models.base import System
from v2v.nn.seg2vid import ConvLReLU, FlowDecoder, Head, ImageEncoder, MotionNet, RefineNet, to4d, to5d
from v2v.ops.norm_flow_warp import norm_flow_warp
from v2v.registry import register_system

__all__ = ["CITYSCAPES_TRAIN_IDS", "FirstFrameConfig", "FirstFrameGenerator", "FlowVAE", "Img2VidDataConfig", "Img2VidLosses", "Img2VidModelConfig",
           "Img2VidSystem", "LabelGrouping", "check_size", "nearest_valid_size"]


# ----------------------------------------------------------------------------------------------
# 1. Configs
# ----------------------------------------------------------------------------------------------
@dataclass
class Img2VidModelConfig:
    """``model:`` section; defaults are the official Cityscapes values."""

    size: list[int] = field(default_factory=lambda: [128, 256])   # H, W (official input_size)
    num_predicted_frames: int = 4         # T
    input_channel: int = 3
    # label map -> mask channels (ids 0..num_bg-1 -> bg_mask, next num_fg -> fg_mask by default)
    num_bg_classes: int = 11
    num_fg_classes: int = 9
    label_ids: str = "train"              # train: ids are used as they are; cityscapes: full Cityscapes
                                          # labelIds -> trainIds first (void -> 19, the official 20th channel)
    label_groups: list[list[int]] | None = None  # channel c = union of these ids (None: channel c = id c)
    # widths (official values)
    bg_dim: int = 512                     # motion_net_bg fc width (released test model: 128)
    fg_dim: int = 512                     # motion_net_fg fc width (released test model: 896)
    z_dim: int = 1024                     # = bg_dim + fg_dim
    enc_widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    motion_widths: list[int] = field(default_factory=lambda: [32, 64, 128, 64])
    code_ch: int = 16
    head_ch: int = 16
    refine_widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])
    refine_dim: int = 1024
    # losses (official weights of train_refine_multigpu_w_mask_two_path.py)
    lambda_flow: float = 1.0
    lambda_recon: float = 2.0
    lambda_recon_back: float = 1.0
    lambda_recon_before: float = 1.0
    lambda_kld: float = 0.1
    lambda_flowcon: float = 1.0
    lambda_sim: float = 1.0
    lambda_vgg: float = 1.0
    lambda_mask: float = 0.1
    alpha_recon_image: float = 0.85
    use_vgg: bool = True
    vgg_widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])
    vgg_weights: str | None = None        # torchvision vgg19 .pth, a .safetensors from `v2v convert img2vid`,
                                          # or None: $V2V_WEIGHTS / torch hub cache
    vgg_random_init: bool = False         # explicitly allow random VGG weights (tests only)


@dataclass
class Img2VidDataConfig:
    """``data:`` section: a vid2vid-layout folder (``{split}_A`` label ids, ``{split}_B`` frames), e.g.
    synthetic toycity. Items are clips of ``1 + num_predicted_frames`` frames."""

    root: str = ""
    size: list[int] = field(default_factory=lambda: [128, 256])
    train_split: str = "train"
    test_split: str = "test"
    clip_step: int = 1
    stride: int = 1                       # frame step inside a clip (larger = more motion per predicted frame)
    max_frames: int = 0
    pan: str = "any"                      # any | canonical: mirror clips whose content moves right, so the camera
                                          # always pans one way (as a forward-driving camera always moves forward;
                                          # a pan direction cannot be told from one frame otherwise)


class CanonicalPan(torch.utils.data.Dataset):
    """Mirror (W axis) the clips whose content moves right from the first to the last frame (global
    shift by OpenCV phase correlation), so every clip pans the same way (``pan: canonical``)."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        import cv2
        import numpy as np

        item = dict(self.base[i])
        imgs = item["images"]
        a, b = (imgs[k].mean(0).numpy().astype(np.float64) for k in (0, -1))
        (dx, _dy), _ = cv2.phaseCorrelate(a, b)
        if dx > 0:
            for k in ("images", "labels"):
                item[k] = item[k].flip(-1)
            item.pop("flowprev", None)
            item.pop("flow", None)
        return item


def nearest_valid_size(n: int) -> int:
    """The nearest multiple of 32 that is >= 128 (RefineNet pools 5 times and needs 4x4 at the bottom)."""
    return max(128, round(n / 32.0) * 32)


def check_size(h: int, w: int, where: str = "model.size") -> None:
    """V2VError unless H and W are multiples of 32 and >= 128, naming the nearest valid size."""
    if h % 32 or w % 32 or h < 128 or w < 128:
        raise V2VError(f"{where}: image size {h}x{w} is not supported: Img2Vid needs H and W multiples of 32 "
                       f"and >= 128 (its refinement network); nearest valid size "
                       f"{nearest_valid_size(h)}x{nearest_valid_size(w)}")


# ----------------------------------------------------------------------------------------------
# 2. Label ids -> bg / fg mask channels
# ----------------------------------------------------------------------------------------------
#: Cityscapes labelIds 0..33 -> trainIds (255 = void), the cityscapesScripts table.
CITYSCAPES_TRAIN_IDS = [255, 255, 255, 255, 255, 255, 255, 0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7,
                        8, 9, 10, 11, 12, 13, 14, 15, 255, 255, 16, 17, 18]
VOID_CHANNEL_ID = 19


class LabelGrouping:
    """Label ids -> ``(bg_mask, fg_mask)``, one-hot float maps with ``num_bg`` / ``num_fg`` channels.

    ``label_ids="cityscapes"`` first converts full Cityscapes labelIds to trainIds (void and
    unlabeled -> 19, the official 20th mask channel); ``label_groups[c]`` lists the ids that
    light channel ``c`` (default: channel c <-> id c). Any other id is a V2VError.
    """

    def __init__(self, num_bg: int, num_fg: int, label_ids: str = "train", label_groups=None):
        if label_ids not in ("train", "cityscapes"):
            raise V2VError(f"model.label_ids must be 'train' or 'cityscapes', got '{label_ids}'")
        n = num_bg + num_fg
        groups = [[c] for c in range(n)] if label_groups is None else [list(g) for g in label_groups]
        if len(groups) != n:
            raise V2VError(f"model.label_groups has {len(groups)} groups; the model has {num_bg} bg + {num_fg} fg "
                           f"= {n} mask channels")
        ids = [i for g in groups for i in g]
        if len(set(ids)) != len(ids) or min(ids, default=0) < 0:
            raise V2VError(f"model.label_groups: every id must be >= 0 and in at most one group, got {groups}")
        table = torch.full((max(ids, default=0) + 1,), -1, dtype=torch.long)
        for c, g in enumerate(groups):
            table[g] = c
        self.num_bg, self.num_fg, self.label_ids, self.groups = num_bg, num_fg, label_ids, groups
        self.table = table

    def channels(self, labels: torch.Tensor) -> torch.Tensor:
        """Integer ids ``B,H,W`` -> channel index ``B,H,W`` (V2VError for unmapped ids)."""
        lab = labels.long()
        if self.label_ids == "cityscapes":
            cs = torch.tensor(CITYSCAPES_TRAIN_IDS + [255], device=lab.device)
            bad = (lab < -1) | (lab > 33)
            if bool(bad.any()):
                raise V2VError(f"label map: id {int(lab[bad][0])} is not a Cityscapes labelId (-1..33)")
            lab = cs[torch.where(lab < 0, torch.full_like(lab, 34), lab)]
            lab = torch.where(lab == 255, torch.full_like(lab, VOID_CHANNEL_ID), lab)
        table = self.table.to(lab.device)
        inside = (lab >= 0) & (lab < table.numel())
        ch = torch.where(inside, table[lab.clamp(0, table.numel() - 1)], torch.full_like(lab, -1))
        if bool((ch < 0).any()):
            bad = sorted({int(v) for v in lab[ch < 0].unique()[:8]})
            what = "train ids" if self.label_ids == "cityscapes" else "ids"
            raise V2VError(f"label map: {what} {bad} are outside the configured classes ({self.num_bg} bg + "
                           f"{self.num_fg} fg channels, groups {self.groups}); set model.label_groups / label_ids")
        return ch

    def __call__(self, labels: torch.Tensor, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        onehot = F.one_hot(self.channels(labels), self.num_bg + self.num_fg).permute(0, 3, 1, 2).to(dtype)
        return onehot[:, :self.num_bg], onehot[:, self.num_bg:]


# ----------------------------------------------------------------------------------------------
# 3. The flow VAE
# ----------------------------------------------------------------------------------------------
class FlowVAE(nn.Module):
    """The Img2Vid stage-2 network (official ``VAE`` two-path with refinement; attribute names kept).

    ``forward(frame1, bg_mask, fg_mask, noise_bg, z=None, frames=None, eps=None)``: see :meth:`forward`.
    """

    def __init__(self, cfg: Img2VidModelConfig):
        super().__init__()
        H, W = cfg.size
        check_size(H, W)
        c, T = cfg.input_channel, cfg.num_predicted_frames
        m_out = cfg.motion_widths[3]
        if cfg.bg_dim + cfg.fg_dim != cfg.z_dim:
            raise V2VError(f"model.bg_dim + model.fg_dim ({cfg.bg_dim}+{cfg.fg_dim}) must equal model.z_dim "
                           f"({cfg.z_dim})")
        cells = m_out * (H // 16) * (W // 16)
        if cells % cfg.z_dim:
            raise V2VError(f"model.z_dim={cfg.z_dim} must divide motion_widths[3]*(H/16)*(W/16) = {cells}")
        self.cfg = cfg
        self.T, self.C, self.H, self.W = T, c, H, W
        self.m_out, self.z_dim = m_out, cfg.z_dim
        self.rows_per_sample = cells // cfg.z_dim
        self.motion_net_bg = MotionNet((1 + T) * c + cfg.num_bg_classes, cfg.motion_widths, cfg.bg_dim, cfg.z_dim)
        self.motion_net_fg = MotionNet((1 + T) * c + cfg.num_fg_classes, cfg.motion_widths, cfg.fg_dim, cfg.z_dim)
        self.encoder = ImageEncoder(c + cfg.num_bg_classes + cfg.num_fg_classes, cfg.enc_widths)
        self.flow_decoder = FlowDecoder(cfg.enc_widths, cfg.code_ch, T)
        self.zconv = ConvLReLU(m_out + cfg.enc_widths[3], cfg.code_ch * T, 3, 1, 1)
        self.fc = nn.Linear(cfg.z_dim, cfg.z_dim)
        self.flownext = Head(2 * cfg.enc_widths[0], cfg.head_ch)
        self.flowprev = Head(2 * cfg.enc_widths[0], cfg.head_ch)
        self.get_mask = Head(2 * cfg.enc_widths[0], cfg.head_ch)
        self.refine_net = RefineNet(c, cfg.refine_widths, cfg.refine_dim)

    # --- equations, one per method -------------------------------------------------------------
    def posterior(self, frames, bg_mask, fg_mask):
        """Motion input ``y = [frame1, frames_1..T - frame1]``; each path -> rows; mu, logvar = cat([bg, fg], 1)."""
        B, n = frames.shape[:2]
        f1 = frames[:, 0]
        y = torch.cat([f1, (frames[:, 1:] - f1.unsqueeze(1)).reshape(B, (n - 1) * self.C, self.H, self.W)], 1)
        mu_bg, lv_bg = self.motion_net_bg(torch.cat([y, bg_mask], 1))
        mu_fg, lv_fg = self.motion_net_fg(torch.cat([y, fg_mask], 1))
        return torch.cat([mu_bg, mu_fg], 1), torch.cat([lv_bg, lv_fg], 1)

    def codes(self, z, codex):
        """``zmap = fc(z).view(B, m_out, H/16, W/16)``; ``codey = zconv(cat([zmap, codex]))`` (``B, code_ch*T, ..``)."""
        zmap = self.fc(z).reshape(-1, self.m_out, self.H // 16, self.W // 16)
        return zmap, self.zconv(torch.cat([zmap, codex], 1))

    def decode(self, feats, codex, codey):
        """Frame-major ``z_t = cat([codex, codey_t])`` -> flow, flowback ``B,2,T,H,W``, mask_fw/bw ``B,T,H,W``."""
        e1, e2, e3 = feats
        T = self.T
        code = to4d(torch.cat([codex.unsqueeze(2).expand(-1, -1, T, -1, -1),
                                codey.reshape(codey.shape[0], T, -1, *codey.shape[2:]).transpose(1, 2)], 1))
        d = self.flow_decoder(e1, e2, e3, code)
        flow = to5d(self.flownext(d), T)
        flowback = to5d(self.flowprev(d), T)
        masks = to5d(torch.sigmoid(self.get_mask(d)), T)
        return flow, flowback, masks[:, 0], masks[:, 1]

    def warp(self, frame1, flow, mask_fw):
        """``warped_t = norm_flow_warp(frame1, flow_t * mask_fw_t)`` -> ``B,T,C,H,W`` (all frames in one call)."""
        B, T = mask_fw.shape[:2]
        f = (flow * mask_fw.unsqueeze(1)).transpose(1, 2).reshape(B * T, 2, self.H, self.W)
        img = frame1.unsqueeze(1).expand(-1, T, -1, -1, -1).reshape(B * T, self.C, self.H, self.W)
        return norm_flow_warp(img, f).reshape(B, T, self.C, self.H, self.W)

    def refine(self, warped, mask_fw, noise_bg):
        """``refine_net(warped_t*m_t + noise_bg*(1-m_t))`` per frame (train-mode BN: statistics per frame)."""
        m = mask_fw.unsqueeze(2)
        x = warped * m + noise_bg.unsqueeze(1) * (1 - m)
        if self.refine_net.training:
            return torch.stack([self.refine_net(x[:, t]) for t in range(x.shape[1])], 1)
        B, T = x.shape[:2]
        return self.refine_net(x.flatten(0, 1)).reshape(B, T, self.C, self.H, self.W)

    def forward(self, frame1, bg_mask, fg_mask, noise_bg, z=None, frames=None, eps=None):
        """Args:
            frame1: ``B,C,H,W`` first frame in [0,1]; bg_mask / fg_mask ``B,nbg,H,W`` / ``B,nfg,H,W``.
            noise_bg: ``B,C,H,W`` fill of the occluded regions before refinement.
            z: ``B*R, z_dim`` latent (generation); None: from the posterior (training, needs
                ``frames``) or N(0, 1) (eval without frames).
            frames: ``B,1+T,C,H,W`` clip (frame 0 = frame1): gives mu / logvar.
            eps: ``B*R, z_dim`` reparameterisation noise (default randn).
        Returns: dict warped, refined (``B,T,C,H,W``), flow, flowback (``B,2,T,H,W``), mask_fw,
            mask_bw (``B,T,H,W``), z, codex, zmap, codey, and mu, logvar when ``frames`` is given.
        """
        if frame1.shape[-2:] != (self.H, self.W):
            raise V2VError(f"img2vid: input size {tuple(frame1.shape[-2:])} != model size {(self.H, self.W)}")
        out = {}
        e1, e2, e3, codex = self.encoder(torch.cat([frame1, bg_mask, fg_mask], 1))
        if frames is not None:
            out["mu"], out["logvar"] = mu, logvar = self.posterior(frames, bg_mask, fg_mask)
        if z is None:
            rows = frame1.shape[0] * self.rows_per_sample
            if frames is not None and self.training:
                eps = torch.randn_like(mu) if eps is None else eps
                z = eps * torch.exp(0.5 * logvar) + mu
            else:
                z = torch.randn(rows, self.z_dim, device=frame1.device, dtype=frame1.dtype)
        zmap, codey = self.codes(z, codex)
        flow, flowback, mask_fw, mask_bw = self.decode((e1, e2, e3), codex, codey)
        warped = self.warp(frame1, flow, mask_fw)
        refined = self.refine(warped, mask_fw, noise_bg)
        out.update(warped=warped, refined=refined, flow=flow, flowback=flowback, mask_fw=mask_fw,
                   mask_bw=mask_bw, z=z, codex=codex, zmap=zmap, codey=codey)
        return out


# ----------------------------------------------------------------------------------------------
# 4. Losses (official losses_multigpu_only_mask + the training script's weights)
# ----------------------------------------------------------------------------------------------
#: relu layers returned by the official ``my_vgg`` (avg-pool VGG19, convs 0..25)
MY_VGG_LAYERS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu3_4",
                 "relu4_1", "relu4_2", "relu4_3", "relu4_4")


def build_vgg(cfg: Img2VidModelConfig, weights=None):
    """The frozen ``my_vgg`` feature extractor (ImageNet-normalized input, avg-pools).

    ``weights``: a ``features.*`` state dict (e.g. from an official checkpoint) or None to use
    ``cfg.vgg_weights`` (.pth, .safetensors, or the default lookup) / random with ``vgg_random_init``.
    """
    from v2v.losses.perceptual import VGG19Features

    if weights is None:
        if cfg.vgg_random_init:
            weights = "random"
        elif cfg.vgg_weights and str(cfg.vgg_weights).endswith(".safetensors"):
            from v2v.weights_io import read_weights

            weights = read_weights(cfg.vgg_weights)[0]
        else:
            weights = cfg.vgg_weights
    return VGG19Features(MY_VGG_LAYERS, weights=weights, normalize="imagenet", widths=cfg.vgg_widths, pool="avg")


# ----------------------------------------------------------------------------------------------
# Stage 1: label map -> first frame (the shared pix2pixHD generator)
# ----------------------------------------------------------------------------------------------
@dataclass
class FirstFrameConfig:
    """pix2pixHD generator options (official names; defaults: the official Cityscapes model)."""

    label_nc: int = 35                    # one-hot label channels (Cityscapes full labelIds)
    use_instance: bool = True             # + instance-edge channel (official: not no_instance)
    netG: str = "global"                  # global | local
    ngf: int = 64
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    norm: str = "instance"


class FirstFrameGenerator(nn.Module):
    """Stage 1: :class:`v2v.nn.pix2pixhd.GlobalGenerator` / ``LocalEnhancer`` as ``netG``.

    ``forward(labels B,H,W, instances B,H,W | None)`` -> ``B,3,H,W`` in [0,1] (one-hot labels plus
    the pix2pixHD instance-edge channel; without instance maps the label map serves as one).
    """

    def __init__(self, cfg: FirstFrameConfig):
        super().__init__()
        from v2v.nn.pix2pixhd import GlobalGenerator, LocalEnhancer

        self.cfg = cfg
        cin = cfg.label_nc + (1 if cfg.use_instance else 0)
        if cfg.netG == "global":
            self.netG = GlobalGenerator(cin, 3, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global, cfg.norm)
        elif cfg.netG == "local":
            self.netG = LocalEnhancer(cin, 3, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global,
                                      cfg.n_local_enhancers, cfg.n_blocks_local, cfg.norm)
        else:
            raise V2VError(f"first-frame generator netG must be 'global' or 'local', got '{cfg.netG}'")

    @torch.no_grad()
    def forward(self, labels: torch.Tensor, instances: torch.Tensor | None = None) -> torch.Tensor:
        from v2v.ops.labels import instance_edges

        lab = labels.long()
        if int(lab.min()) < 0 or int(lab.max()) >= self.cfg.label_nc:
            raise V2VError(f"first-frame generator: label id {int(lab.max())} outside 0..{self.cfg.label_nc - 1}")
        x = F.one_hot(lab, self.cfg.label_nc).permute(0, 3, 1, 2).float()
        if self.cfg.use_instance:
            x = torch.cat([x, instance_edges(lab if instances is None else instances)], 1)
        return ((self.netG(x) + 1) / 2).clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# 5. System
# ----------------------------------------------------------------------------------------------
@register_system("img2vid", compat="v2v.compat.img2vid", commands="v2v.commands.img2vid", aliases=("seg2vid",))
class Img2VidSystem(System):
    """Img2Vid stage 2 (see module docstring). One optimizer group ``G`` (the whole VAE; VGG frozen).

    Batches (:class:`v2v.data.datasets.LabelSequenceDataset` clips of 1+T frames): ``images``
    ``B,1+T,C,H,W`` in [0,1], ``labels`` ``B,1+T,H,W`` (only frame 0's labels are used).
    """

    ModelConfig = Img2VidModelConfig
    DataConfig = Img2VidDataConfig

    def __init__(self, cfg: Img2VidModelConfig, inference: bool = False):
        super().__init__()
        self.cfg = cfg
        self.grouping = LabelGrouping(cfg.num_bg_classes, cfg.num_fg_classes, cfg.label_ids, cfg.label_groups)
        self.vae = FlowVAE(cfg)
        self.inference = inference
        self.losses = Img2VidLosses(cfg)
        self._vgg = None

    @classmethod
    def from_config(cls, model_cfg, inference: bool = False):
        if isinstance(model_cfg, dict):
            from v2v.config import from_dict

            model_cfg = from_dict(Img2VidModelConfig, model_cfg, prefix="model")
        return cls(model_cfg, inference=inference)

    @classmethod
    def build_dataset(cls, data_cfg, split: str, model_cfg=None):
        import os

        from v2v.data.datasets import LabelSequenceDataset

        T = (model_cfg.num_predicted_frames if model_cfg is not None else 4)
        if model_cfg is not None and list(data_cfg.size) != list(model_cfg.size):
            raise V2VError(f"data.size {list(data_cfg.size)} != model.size {list(model_cfg.size)}")
        name = data_cfg.train_split if split == "train" else data_cfg.test_split
        if split != "train" and not os.path.isdir(os.path.join(data_cfg.root, f"{name}_B")):
            return None
        if data_cfg.pan not in ("any", "canonical"):
            raise V2VError(f"data.pan must be 'any' or 'canonical', got '{data_cfg.pan}'")
        ds = LabelSequenceDataset(data_cfg.root, split=name, n_frames=1 + T, label_nc=None, use_instance=False,
                                  size=tuple(data_cfg.size), max_frames=data_cfg.max_frames or None,
                                  stride=data_cfg.stride, clip_step=data_cfg.clip_step)
        return CanonicalPan(ds) if data_cfg.pan == "canonical" else ds

    def optim_groups(self):
        return {"G": list(self.vae.parameters())}

    def generator_module(self):
        return self.vae

    def set_vgg(self, vgg) -> None:
        """Use this frozen feature extractor for the VGG term (not a submodule: never saved)."""
        object.__setattr__(self, "_vgg", vgg)

    @property
    def vgg(self):
        if self._vgg is None and self.cfg.use_vgg:
            self.set_vgg(build_vgg(self.cfg).to(next(self.parameters()).device))
        return self._vgg

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self._vgg is not None:
            self._vgg._apply(fn, *args, **kwargs)
        return self

    def masks(self, labels: torch.Tensor, dtype=torch.float32):
        """Label ids ``B,H,W`` -> (bg_mask, fg_mask) with the configured grouping."""
        return self.grouping(labels, dtype)

    # --- training -----------------------------------------------------------------------------
    def forward_losses(self, frames, labels, noise_bg=None, eps=None):
        """Training forward + loss terms. frames ``B,1+T,C,H,W``, labels ``B,H,W`` -> (out, terms)."""
        frames = frames.float()
        bg, fg = self.masks(labels, frames.dtype)
        frame1, frame2 = frames[:, 0], frames[:, 1:]
        noise = torch.randn_like(frame1) if noise_bg is None else noise_bg
        out = self.vae(frame1, bg, fg, noise, frames=frames, eps=eps)
        vp = vg = None
        if self.cfg.use_vgg and self.cfg.lambda_vgg:
            vp = self.vgg(out["warped"].flatten(0, 1))
            with torch.no_grad():
                vg = self.vgg(frame2.flatten(0, 1))
        return out, self.losses.terms(frame1, frame2, out, vp, vg)

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        T = self.cfg.num_predicted_frames
        frames = batch["images"][:, :1 + T]
        if frames.shape[1] < 1 + T:
            raise V2VError(f"training clips have {frames.shape[1]} frames; need 1 + num_predicted_frames = {1 + T}")
        out, t = self.forward_losses(frames, batch["labels"][:, 0])
        logs = {"G": self.losses.total(t)}
        logs.update({f"G/{k}": v.detach() for k, v in t.items()})
        with torch.no_grad():
            logs["G/l1"] = (out["refined"] - frames[:, 1:].float()).abs().mean()
        return logs

    # --- inference ----------------------------------------------------------------------------
    def sample_latent(self, batch: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """N(0, I) latent as the official test script: one ``z_dim`` vector per sample, repeated over its R rows."""
        z = torch.randn(batch, 1, self.cfg.z_dim, generator=generator)
        return z.expand(-1, self.vae.rows_per_sample, -1).reshape(-1, self.cfg.z_dim).to(device)

    @torch.no_grad()
    def generate(self, frame1: torch.Tensor, labels: torch.Tensor, z: torch.Tensor | None = None,
                 noise_bg: torch.Tensor | None = None, seed: int = 0, precision: str = "fp32") -> dict:
        """First frame ``B,C,H,W`` in [0,1] + label ids ``B,H,W`` -> dict with ``video`` ``B,1+T,C,H,W``
        (frame 0 = frame1, then the refined frames) plus the VAE outputs. Eval-mode BN."""
        was = self.vae.training
        self.vae.eval()
        g = torch.Generator().manual_seed(int(seed))
        dev = frame1.device
        B = frame1.shape[0]
        bg, fg = self.masks(labels.to(dev), frame1.dtype)
        z = self.sample_latent(B, g, dev) if z is None else z
        noise = torch.randn(frame1.shape, generator=g).to(dev) if noise_bg is None else noise_bg
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        ctx = torch.autocast(dev.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        try:
            with ctx:
                out = self.vae(frame1.float(), bg, fg, noise, z=z)
        finally:
            self.vae.train(was)
        out = {k: v.float() for k, v in out.items()}
        out["video"] = torch.cat([frame1.float().unsqueeze(1), out["refined"]], 1).clamp(0, 1)
        return out

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        imgs = batch["images"].float()[:, :1 + self.cfg.num_predicted_frames]
        out = self.generate(imgs[:, 0], batch["labels"][:, 0])
        return {"real": imgs, "fake": out["video"]}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Held-out L1 / PSNR of the T predicted frames (z = 0, the prior mean; noise from seed 0),
        and the copy-the-first-frame baseline on the same frames."""
        T = self.cfg.num_predicted_frames
        imgs = batch["images"].float()[:, :1 + T]
        B = imgs.shape[0]
        z = torch.zeros(B * self.vae.rows_per_sample, self.cfg.z_dim, device=imgs.device)
        pred = self.generate(imgs[:, 0], batch["labels"][:, 0], z=z)["refined"]
        gt = imgs[:, 1:]
        copy = imgs[:, :1].expand_as(gt)

        def psnr(a):
            mse = (a - gt).pow(2).flatten(2).mean(2).clamp_min(1e-10)
            return float((10 * torch.log10(1 / mse)).mean())

        return {"l1": float((pred - gt).abs().mean()), "psnr": psnr(pred),
                "l1_copy": float((copy - gt).abs().mean()), "psnr_copy": psnr(copy)}
