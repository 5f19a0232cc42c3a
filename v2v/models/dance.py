"""Everybody Dance Now (Chan et al., ICCV 2019): pose-to-dancer video transfer.

Read top to bottom as the paper's figure:

1. a **pose label** (skeleton rendering, RGB in [0,1]; see :mod:`v2v.data.pose_render`) and the
   **previous output frame** are concatenated (6 channels) and fed to a pix2pixHD generator
   (:class:`v2v.nn.pix2pixhd.GlobalGenerator`, or its ``LocalEnhancer`` for 1024x512; official
   submodule layout, so official weights load by key) - the paper's "Temporal smoothing" setup:
   training generates two consecutive frames, the second conditioned on the first;
2. a **face residual generator** (``GlobalGenerator`` or ``UnetGenerator``; the paper's "Face GAN")
   adds a residual inside the face box: ``I = G_out`` with ``I[box] = G_out[box] + faceG(cat(label[box],
   G_out[box]))`` (not clamped);
3. a **multi-scale PatchGAN** judges ``cat(label_t, label_t+1, I_t, I_t+1)`` (frame pairs) and a
   **face PatchGAN** (BatchNorm) judges ``cat(label[box], I[box])``;
4. losses (official ``pix2pixHD_model_fullts.py``): LSGAN over scales, feature matching
   (``lambda_feat``), VGG perceptual (``lambda_feat``; pix2pixHD VGG19 loss), face GAN (x0.5 per
   frame).

Conventions: public images are ``B,3,H,W`` float32 in [0,1]; videos ``B,T,3,H,W``. Internally the
networks work as the official ones: label in [0,1], previous frame and output in [-1,1] (the
``*_raw`` methods). Face boxes are integer ``(miny, maxy, minx, maxx)`` (end exclusive) per sample,
``B,4``. Quirks kept for parity with official checkpoints: the output is never clamped inside the
chain; instance norm has no running statistics; the unet face generator uses BatchNorm, and since
the official scripts never call ``.eval()``, ``face_bn_batch_stats=True`` (default) makes it use
batch statistics at inference too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from v2v.data.dance import DanceDataConfig, build_dance_dataset
from v2v.errors import V2VError
from v2v.losses.feature_matching import feature_matching_loss
from v2v.losses.gan import GANLoss
from v2v.models.base import System, config_kwargs
from v2v.nn.patchgan import MultiscalePatchDiscriminator, PatchDiscriminator
from v2v.nn.pix2pixhd import GlobalGenerator, LocalEnhancer, UnetGenerator
from v2v.registry import register_system

__all__ = [
    "DanceDataConfig",
    "DanceGenerator",
    "DanceModelConfig",
    "DanceSystem",
    "crop_boxes",
    "paste_residual",
]


# ----------------------------------------------------------------------------------- config


@dataclass
class DanceModelConfig:
    """``model:`` section. Names follow the official options where one exists (in brackets)."""

    netG: str = "global"  # [--netG] global | local (1024x512 stage)
    label_channels: int = 3  # pose label channels (RGB rendering)
    output_nc: int = 3  # [--output_nc]
    ngf: int = 64  # [--ngf]
    n_downsample_global: int = 4  # [--n_downsample_global]
    n_blocks_global: int = 9  # [--n_blocks_global]
    n_blocks_local: int = 3  # [--n_blocks_local]
    norm: str = "instance"  # [--norm]
    face_generator: bool = True  # [--face_generator]
    face_gtype: str = "global"  # [--faceGtype] global | unet
    face_ngf: int = 64  # hard-coded 64 in the official code
    face_n_downsample: int = 3
    face_n_blocks: int = 5
    face_bn_batch_stats: bool = True  # unet face G: batch stats at inference (official: never .eval())
    face_discrim: bool = True  # [--face_discrim]
    face_ndf: int = 64  # hard-coded 64 in the official code
    ndf: int = 64  # [--ndf]
    n_layers_D: int = 3  # [--n_layers_D]
    num_D: int = 2  # [--num_D]
    gan_feat: bool = True  # [not --no_ganFeat_loss]: D returns intermediate features
    gan_mode: str = "lsgan"  # [--no_lsgan -> vanilla]
    lambda_feat: float = 10.0  # [--lambda_feat]
    vgg: bool = True  # [not --no_vgg_loss]
    vgg_weights: str | None = None  # path to vgg19-dcbb9e9d.pth, None = $V2V_WEIGHTS / hub, "random"
    l1_weight: float = 0.0  # [--use_l1 with --lambda_A]: L1 on the second frame
    train_face_only: bool = False  # official stage 2: G optimizer holds only the face generator

    @property
    def input_nc(self) -> int:
        return self.label_channels + self.output_nc


# ---------------------------------------------------------------------------------- networks


def crop_boxes(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Crop ``x: B,C,H,W`` at per-sample boxes ``B,4`` (miny, maxy, minx, maxx; all the same size)."""
    b = boxes.tolist() if torch.is_tensor(boxes) else [list(bx) for bx in boxes]
    if len(b) == 1 or all(bb == b[0] for bb in b):
        y0, y1, x0, x1 = (int(v) for v in b[0])
        return x[:, :, y0:y1, x0:x1]
    return torch.stack([x[i, :, int(y0):int(y1), int(x0):int(x1)] for i, (y0, y1, x0, x1) in enumerate(b)], 0)


def paste_residual(x: torch.Tensor, residual: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``out = x`` with ``out[box] = x[box] + residual`` per sample (differentiable, not clamped)."""
    b = boxes.tolist() if torch.is_tensor(boxes) else [list(bx) for bx in boxes]
    out = x.clone()
    if len(b) == 1 or all(bb == b[0] for bb in b):
        y0, y1, x0, x1 = (int(v) for v in b[0])
        out[:, :, y0:y1, x0:x1] = x[:, :, y0:y1, x0:x1] + residual
        return out
    for i, (y0, y1, x0, x1) in enumerate(b):
        out[i, :, int(y0):int(y1), int(x0):int(x1)] = x[i, :, int(y0):int(y1), int(x0):int(x1)] + residual[i]
    return out


class DanceGenerator(nn.Module):
    """Pose-to-image generator with temporal input and the optional face residual generator.

    Keyword arguments are the ``model:`` YAML keys (defaults live in :class:`DanceModelConfig`
    only; build with ``DanceGenerator(**config_kwargs(DanceGenerator, cfg))``).

    ``step_raw(label, prev, boxes) -> dict``: official-range single step (label [0,1], prev and
    outputs [-1,1]): ``image`` (final), ``g_out`` (before the face residual), ``residual``,
    ``face_in``. :meth:`generate_video` is the public [0,1] interface.
    """

    def __init__(self, *, netG: str, label_channels: int, output_nc: int, ngf: int, n_downsample_global: int,
                 n_blocks_global: int, n_blocks_local: int, norm: str, face_generator: bool, face_gtype: str,
                 face_ngf: int, face_n_downsample: int, face_n_blocks: int, face_bn_batch_stats: bool):
        super().__init__()
        self.output_nc = output_nc
        input_nc = label_channels + output_nc
        if netG == "global":
            self.net = GlobalGenerator(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global, norm)
        elif netG == "local":
            self.net = LocalEnhancer(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global,
                                     n_local_enhancers=1, n_blocks_local=n_blocks_local, norm=norm)
        else:
            raise V2VError(f"model.netG: expected 'global' or 'local', got {netG!r}")
        self.face = None
        self.face_bn_batch_stats = face_bn_batch_stats
        if face_generator:
            if face_gtype == "global":
                self.face = GlobalGenerator(2 * output_nc, output_nc, face_ngf, face_n_downsample, face_n_blocks, norm)
            elif face_gtype == "unet":
                self.face = UnetGenerator(2 * output_nc, output_nc, num_downs=5, ngf=face_ngf)
            else:
                raise V2VError(f"model.face_gtype: expected 'global' or 'unet', got {face_gtype!r}")

    def step_raw(self, label: torch.Tensor, prev: torch.Tensor | None, boxes=None, features: bool = False) -> dict:
        """One frame of the temporally-smoothed chain (paper, "Temporal smoothing"):
        ``G(x_t, G(x_{t-1}))`` plus the face residual ``r = G_f(x_F, G(x)_F)`` pasted into the face
        box (paper, "Face GAN")."""
        if prev is None:
            prev = torch.zeros_like(label[:, : self.output_nc])
        out = {}
        x = torch.cat([label, prev], 1)
        if features and isinstance(self.net, GlobalGenerator):
            g, out["features"] = self.net(x, return_features=True)
        else:
            g = self.net(x)
        out["g_out"] = g
        if self.face is None:
            out["image"] = g
            return out
        if boxes is None:
            raise V2VError("the face generator is enabled but no face box was given for this frame "
                           "(pass face boxes, or set model.face_generator=false)")
        face_in = torch.cat([crop_boxes(label, boxes), crop_boxes(g, boxes)], 1)
        res = self.run_face(face_in)
        out.update(face_in=face_in, residual=res, image=paste_residual(g, res, boxes))
        return out

    def run_face(self, face_in: torch.Tensor) -> torch.Tensor:
        """The face residual ``r = G_f(cat(x_F, G(x)_F))``. The official scripts never call
        ``.eval()``: with ``face_bn_batch_stats`` a BatchNorm face generator (unet) uses batch
        statistics at inference too, as they do."""
        bns = [m for m in self.face.modules() if isinstance(m, nn.BatchNorm2d)]
        if self.training or not self.face_bn_batch_stats or not bns:
            return self.face(face_in)
        for m in bns:
            m.train()
        try:
            return self.face(face_in)
        finally:
            for m in bns:
                m.eval()

    def forward(self, label, prev=None, boxes=None):
        return self.step_raw(label, prev, boxes)["image"]

    @torch.no_grad()
    def generate_video(self, labels: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """``labels: B,T,3,H,W`` in [0,1], ``boxes: B,T,4`` -> frames ``B,T,3,H,W`` in [0,1] (the
        chain feeds each unclamped raw output as the next ``prev``; outputs are clamped)."""
        prev, outs = None, []
        for t in range(labels.shape[1]):
            img = self.step_raw(labels[:, t], prev, None if boxes is None else boxes[:, t])["image"]
            outs.append(((img + 1) / 2).clamp(0, 1))
            prev = img
        return torch.stack(outs, 1)


# ---------------------------------------------------------------------------------- system


@register_system("dance", compat="v2v.compat.dance", commands="v2v.commands.dance", aliases=("edn",))
class DanceSystem(System):
    """Everybody Dance Now system: generator (+ face generator), image-pair D, face D, losses."""

    ModelConfig = DanceModelConfig
    DataConfig = DanceDataConfig

    def __init__(self, cfg: DanceModelConfig, inference: bool = False):
        super().__init__(cfg)
        self.generator = DanceGenerator(**config_kwargs(DanceGenerator, cfg))
        self.netD = self.netDface = self.gan = self.vgg = None
        if inference:
            return
        self.netD = MultiscalePatchDiscriminator(2 * cfg.label_channels + 2 * cfg.output_nc, cfg.ndf, cfg.n_layers_D,
                                                 cfg.norm, use_sigmoid=False, num_D=cfg.num_D,
                                                 get_interm_feat=cfg.gan_feat)
        if cfg.face_discrim:
            self.netDface = PatchDiscriminator(cfg.label_channels + cfg.output_nc, cfg.face_ndf, cfg.n_layers_D,
                                               "batch", use_sigmoid=False, get_interm_feat=False)
        self.gan = GANLoss(cfg.gan_mode)
        if cfg.vgg:
            from v2v.losses.perceptual import VGGLoss

            self.vgg = VGGLoss(weights=cfg.vgg_weights)

    @classmethod
    def build_dataset(cls, data_cfg: DanceDataConfig, split: str, model_cfg: DanceModelConfig | None = None):
        need_box = model_cfg is None or model_cfg.face_generator or model_cfg.face_discrim
        return build_dance_dataset(data_cfg, split, need_face_box=need_box)

    def optim_groups(self):
        g = list(self.generator.face.parameters()) if (self.cfg.train_face_only and self.generator.face is not None) \
            else list(self.generator.parameters())
        d = list(self.netD.parameters()) + (list(self.netDface.parameters()) if self.netDface is not None else [])
        return {"G": g, "D": d}

    def generator_module(self):
        return self.generator

    def _gan(self, pred, real: bool):
        if torch.is_tensor(pred):  # official GANLoss on a tensor uses input[-1] (the last sample)
            pred = pred[-1:]
        return self.gan(pred, real)

    def losses_raw(self, label0, label1, real0, real1, boxes) -> dict:
        """Official training forward (``Pix2PixHDModel.forward``). Labels in [0,1], reals in [-1,1].

        The objective: the paper's ``L_smooth`` (``netD`` judges the frame pair with both labels,
        LSGAN over scales), pix2pixHD's feature matching and VGG terms (pix2pixHD Eq. 3-4, shared
        :func:`v2v.losses.feature_matching.feature_matching_loss` / ``VGGLoss``), and the paper's
        ``L_face`` (``netDface`` on the face crops, x0.5 per frame) plus VGG on the face crops.
        Returns the official loss terms plus ``G``/``D`` totals and the generated frames."""
        cfg = self.cfg
        s0 = self.generator.step_raw(label0, None, boxes)
        I0 = s0["image"]
        s1 = self.generator.step_raw(label1, I0, boxes)
        I1 = s1["image"]
        zero = label0.new_zeros(())
        out = {k: zero for k in ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake", "G_GANface",
                                 "D_realface", "D_fakeface", "G_L1")}
        if self.netDface is not None:
            fl0, fl1 = crop_boxes(label0, boxes), crop_boxes(label1, boxes)
            ff0, ff1 = crop_boxes(I0, boxes), crop_boxes(I1, boxes)
            rf0, rf1 = crop_boxes(real0, boxes), crop_boxes(real1, boxes)
            Df = self.netDface
            out["D_fakeface"] = 0.5 * self._gan(Df(torch.cat([fl0, ff0.detach()], 1)), False) \
                + 0.5 * self._gan(Df(torch.cat([fl1, ff1.detach()], 1)), False)
            out["D_realface"] = 0.5 * self._gan(Df(torch.cat([fl0, rf0], 1)), True) \
                + 0.5 * self._gan(Df(torch.cat([fl1, rf1], 1)), True)
            out["G_GANface"] = 0.5 * self._gan(Df(torch.cat([fl0, ff0], 1)), True) \
                + 0.5 * self._gan(Df(torch.cat([fl1, ff1], 1)), True)
        pred_fake_pool = self.netD(torch.cat([label0, label1, I0.detach(), I1.detach()], 1))
        out["D_fake"] = self.gan(pred_fake_pool, False)
        pred_real = self.netD(torch.cat([label0, label1, real0, real1], 1))
        out["D_real"] = self.gan(pred_real, True)
        pred_fake = self.netD(torch.cat([label0, label1, I0, I1], 1))
        out["G_GAN"] = self.gan(pred_fake, True)
        if cfg.gan_feat:
            out["G_GAN_Feat"] = feature_matching_loss(pred_fake, pred_real, feat_weight=4.0 / (cfg.n_layers_D + 1),
                                                      d_weight=1.0 / cfg.num_D) * cfg.lambda_feat
        if self.vgg is not None:
            # the official loss feeds [-1,1] images; VGGLoss takes [0,1] (documented difference)
            v = (self.vgg((I0 + 1) / 2, (real0 + 1) / 2) + self.vgg((I1 + 1) / 2, (real1 + 1) / 2)) * cfg.lambda_feat
            if cfg.netG == "global":
                v = v * 0.5
            if self.netDface is not None:
                v = v + 0.5 * cfg.lambda_feat * (self.vgg((ff0 + 1) / 2, (rf0 + 1) / 2)
                                                 + self.vgg((ff1 + 1) / 2, (rf1 + 1) / 2))
            out["G_VGG"] = v
        if cfg.l1_weight:
            out["G_L1"] = F.l1_loss(I1, real1) * cfg.l1_weight
        out["G"] = out["G_GAN"] + out["G_GAN_Feat"] + out["G_VGG"] + out["G_GANface"] + out["G_L1"]
        out["D"] = (out["D_fake"] + out["D_real"]) * 0.5 + (out["D_realface"] + out["D_fakeface"]) * 0.5
        out["I0"], out["I1"] = I0, I1
        return out

    def train_step(self, batch: dict, step: int) -> dict:
        boxes = batch.get("face_box")
        o = self.losses_raw(batch["label0"], batch["label1"], batch["image0"] * 2 - 1, batch["image1"] * 2 - 1, boxes)
        logs = {"G": o["G"], "D": o["D"]}
        for k in ("G_GAN", "G_GAN_Feat", "G_VGG", "G_GANface", "G_L1", "D_real", "D_fake", "D_realface", "D_fakeface"):
            logs[f"loss/{k}"] = o[k].detach()
        return logs

    @torch.no_grad()
    def _pair(self, batch):
        boxes = batch.get("face_box")
        labels = torch.stack([batch["label0"], batch["label1"]], 1)
        b = None if boxes is None else torch.stack([boxes, boxes], 1)
        return self.generator.generate_video(labels, b)

    @torch.no_grad()
    def sample(self, batch: dict) -> dict:
        fake = self._pair(batch)
        return {"label": batch["label0"], "fake": fake[:, 0], "real": batch["image0"], "fake_next": fake[:, 1]}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict:
        """Generator L1 (in [0,1] units) of the two-frame chain on held-out pairs."""
        fake = self._pair(batch)
        real = torch.stack([batch["image0"], batch["image1"]], 1)
        return {"l1": float((fake - real).abs().mean())}
