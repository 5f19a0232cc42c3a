"""First Order Motion Model for image animation (Siarohin et al., NeurIPS 2019), as its Fig. 2:
:class:`KeypointDetector` (Sec. 3.1) -> :class:`DenseMotionNetwork` (Eq. 4-6) ->
:class:`OcclusionAwareGenerator` (Eq. 7); :func:`normalize_kp` and :class:`Animator` animate
(Sec. 3.4); :class:`FOMMSystem` trains (Sec. 3.3; discriminator: :mod:`v2v.nn.kp_discriminator`).

Config is the constructor signature: the YAML ``model.kp_detector``, ``model.generator`` (with
``dense_motion``) and ``model.discriminator`` mappings are the keyword arguments of the classes,
whose defaults (the official constructors') live only here. Images ``B,3,H,W`` in [0,1];
keypoints ``B,K,2`` in [-1,1] (x first, align_corners=True grid); jacobians ``B,K,2,2``;
deformations are ``grid_sample(align_corners=True)`` grids ``B,h,w,2``.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError, unknown_key_message
from v2v.losses.feature_matching import feature_matching_loss
from v2v.losses.gan import GANLoss
from v2v.losses.pyramid import build_pyramid_loss
from v2v.models.base import System
from v2v.nn.hourglass import DownBlock2d, Hourglass, ResBlock2d, SameBlock2d, UpBlock2d
from v2v.nn.kp_discriminator import MultiScaleKeypointDiscriminator, scale_name
from v2v.ops.grid import make_grid
from v2v.ops.keypoints import (
    RandomTPS,
    heatmap_representation,
    heatmap_softargmax,
    jacobian_from_heatmap,
    softmax_heatmap,
)
from v2v.ops.linalg import inverse_2x2
from v2v.ops.pyramid import AntiAliasDownsample
from v2v.registry import register_system

__all__ = [
    "Animator",
    "DenseMotionNetwork",
    "FOMMDataConfig",
    "FOMMModelConfig",
    "FOMMSystem",
    "KeypointDetector",
    "LossConfig",
    "MultiScaleKeypointDiscriminator",
    "OcclusionAwareGenerator",
    "TransformConfig",
    "movement_scale",
    "normalize_kp",
]


# ----------------------------------------------------------------------------- configs


@dataclass
class TransformConfig:
    """Random affine + TPS warp of the equivariance losses (official ``transform_params``)."""

    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5


@dataclass
class LossConfig:
    """Training losses (official ``loss_weights``, ``scales``, ``transform_params``);
    ``perceptual_net``: see :func:`v2v.losses.pyramid.build_pyramid_loss`."""

    scales: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.25, 0.125])
    perceptual: list[float] = field(default_factory=lambda: [10.0] * 5)
    perceptual_net: str = "vgg19"
    vgg_weights: str | None = None
    generator_gan: float = 0.0
    discriminator_gan: float = 1.0
    feature_matching: list[float] = field(default_factory=lambda: [10.0] * 4)
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 10.0
    transform: TransformConfig = field(default_factory=TransformConfig)


@dataclass
class FOMMModelConfig:
    """The YAML ``model:`` section (official ``common_params`` at the top level).

    ``kp_detector``, ``generator`` and ``discriminator`` are the keyword arguments of
    :class:`KeypointDetector`, :class:`OcclusionAwareGenerator` (its ``dense_motion`` those of
    :class:`DenseMotionNetwork`) and :class:`MultiScaleKeypointDiscriminator`; omitted keys take the
    constructors' defaults. ``image_size`` is the resolution the model was trained at.
    """

    num_kp: int = 10
    num_channels: int = 3
    estimate_jacobian: bool = True
    image_size: int = 256
    kp_detector: dict = field(default_factory=dict)
    generator: dict = field(default_factory=dict)
    discriminator: dict = field(default_factory=dict)
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class FOMMDataConfig:
    """Video folders ``root/{split}/<video>/frames/*.png`` (or mp4/gif files) sampled as pairs."""

    root: str = "data/puppets"
    size: list[int] = field(default_factory=lambda: [256, 256])  # H, W
    horizontal_flip: bool = True
    time_flip: bool = True
    jitter: float = 0.0  # colour jitter (brightness/contrast/saturation/hue), 0 = off
    repeats: int = 1  # dataset length multiplier (official num_repeats)
    test_pairs: int = 16  # held-out (source, driving) pairs per evaluation pass


def build(cls, kwargs: dict | None, where: str, **common):
    """``cls(**common, **kwargs)``; a key that is not a constructor argument is one V2VError."""
    kwargs = dict(kwargs or {})
    params = [p for p in inspect.signature(cls).parameters if p not in common]
    for k in kwargs:
        if k not in params:
            raise V2VError(unknown_key_message(f"key in {where}", k, params))
    return cls(**common, **kwargs)


# ----------------------------------------------------------------------------- keypoints


class KeypointDetector(nn.Module):
    """Keypoints and local affine jacobians (Sec. 3.1): an hourglass on the anti-aliased
    downsampled image, a 7x7 heatmap head (softmax with ``temperature``, soft-argmax) and a 7x7
    jacobian head (heatmap-weighted 2x2 maps; ``single_jacobian_map`` shares one map).

    ``forward(image B,3,H,W in [0,1]) -> {"value": B,K,2, "jacobian": B,K,2,2 (if estimated),
    "heatmap": B,K,h,w, "heatmap_logits", "jacobian_map", "input_down"}``.
    """

    def __init__(self, num_kp: int = 10, num_channels: int = 3, estimate_jacobian: bool = False,
                 block_expansion: int = 32, max_features: int = 1024, num_blocks: int = 5,
                 temperature: float = 0.1, scale_factor: float = 1.0, single_jacobian_map: bool = False,
                 pad: int = 0):
        super().__init__()
        self.num_kp = num_kp
        self.temperature = temperature
        self.down = AntiAliasDownsample(num_channels, scale_factor) if scale_factor != 1 else None
        self.hourglass = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        self.heatmap_head = nn.Conv2d(self.hourglass.out_channels, num_kp, 7, padding=pad)
        self.jacobian_head = None
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian_head = nn.Conv2d(self.hourglass.out_channels, 4 * self.num_jacobian_maps, 7, padding=pad)
            with torch.no_grad():  # identity jacobians at initialisation (official)
                self.jacobian_head.weight.zero_()
                self.jacobian_head.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(self.num_jacobian_maps))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.down(image) if self.down is not None else image
        feat = self.hourglass(x)
        logits = self.heatmap_head(feat)
        heatmap = softmax_heatmap(logits, self.temperature)
        out = {"value": heatmap_softargmax(heatmap), "heatmap": heatmap, "heatmap_logits": logits, "input_down": x}
        if self.jacobian_head is not None:
            out["jacobian_map"] = jmap = self.jacobian_head(feat)
            out["jacobian"] = jacobian_from_heatmap(heatmap, jmap)
        return out


# ----------------------------------------------------------------------------- dense motion


class DenseMotionNetwork(nn.Module):
    """Dense motion ``T_{S<-D}`` and occlusion from keypoints (Sec. 3.2).

    ``forward(source B,C,H,W, kp_driving, kp_source, source_down=None)`` -> ``deformation``
    ``B,h,w,2``, ``mask`` ``B,K+1,h,w``, ``sparse_deformed`` ``B,K+1,C,h,w``, ``sparse_motion``
    ``B,K+1,h,w,2``, ``heatmap_representation``, ``source_down``, ``occlusion_map`` ``B,1,h,w``.
    """

    def __init__(self, num_kp: int = 10, num_channels: int = 3, estimate_occlusion_map: bool = False,
                 block_expansion: int = 64, max_features: int = 1024, num_blocks: int = 5,
                 scale_factor: float = 1.0, kp_variance: float = 0.01):
        super().__init__()
        self.num_kp = num_kp
        self.kp_variance = kp_variance
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (num_channels + 1), num_blocks, max_features)
        self.mask_head = nn.Conv2d(self.hourglass.out_channels, num_kp + 1, 7, padding=3)
        self.occlusion_head = (nn.Conv2d(self.hourglass.out_channels, 1, 7, padding=3)
                               if estimate_occlusion_map else None)
        self.down = AntiAliasDownsample(num_channels, scale_factor) if scale_factor != 1 else None

    def downsample(self, source: torch.Tensor) -> torch.Tensor:
        return self.down(source) if self.down is not None else source

    def create_heatmap_representations(self, kp_driving: dict, kp_source: dict, size) -> torch.Tensor:
        """Eq. 6: ``H_k(z) = exp(-|T_{D<-R}(p_k) - z|^2 / s) - exp(-|T_{S<-R}(p_k) - z|^2 / s)``,
        a zero background channel first -> ``B,K+1,1,h,w``."""
        return heatmap_representation(kp_driving["value"], kp_source["value"], size, self.kp_variance)

    def create_sparse_motions(self, kp_driving: dict, kp_source: dict, size) -> torch.Tensor:
        """Eq. 4: ``T_{S<-D}(z) ~ T_{S<-R}(p_k) + J_k (z - T_{D<-R}(p_k))`` with
        ``J_k = J_{S,k} J_{D,k}^{-1}`` (closed-form 2x2 inverse), the identity first (background)
        -> ``B,K+1,h,w,2``."""
        h, w = size
        value_d = kp_driving["value"]
        b, k = value_d.shape[:2]
        grid = make_grid(h, w, align_corners=True, device=value_d.device, dtype=value_d.dtype).view(1, 1, h, w, 2)
        coords = grid - value_d.view(b, k, 1, 1, 2)
        if "jacobian" in kp_driving:
            jac = torch.matmul(kp_source["jacobian"], inverse_2x2(kp_driving["jacobian"]))
            coords = torch.matmul(jac.view(b, k, 1, 1, 2, 2), coords.unsqueeze(-1)).squeeze(-1)
        motion = coords + kp_source["value"].view(b, k, 1, 1, 2)
        return torch.cat([grid.expand(b, 1, h, w, 2), motion], dim=1)

    def create_deformed_source_image(self, source_down: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """The source warped by each sparse motion: ``S(T_k(z))`` -> ``B,K+1,C,h,w``."""
        b, k1, h, w, _ = motion.shape
        c = source_down.shape[1]
        src = source_down.unsqueeze(1).expand(b, k1, c, h, w).reshape(b * k1, c, h, w)
        deformed = F.grid_sample(src, motion.reshape(b * k1, h, w, 2), mode="bilinear", padding_mode="zeros",
                                 align_corners=True)
        return deformed.view(b, k1, c, h, w)

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict,
                source_down: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        src = self.downsample(source) if source_down is None else source_down
        b = kp_driving["value"].shape[0]
        if src.shape[0] != b:
            src = src.expand(b, *src.shape[1:])
        _, _c, h, w = src.shape
        heat = self.create_heatmap_representations(kp_driving, kp_source, (h, w))
        motion = self.create_sparse_motions(kp_driving, kp_source, (h, w))
        deformed = self.create_deformed_source_image(src, motion)
        feat = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, h, w))
        mask = F.softmax(self.mask_head(feat), dim=1)
        # Eq. 5: T_{S<-D}(z) = M_0 z + sum_k M_k (T_{S<-R}(p_k) + J_k (z - T_{D<-R}(p_k)))
        deformation = (mask.unsqueeze(-1) * motion).sum(dim=1)
        out = {"heatmap_representation": heat, "sparse_motion": motion, "sparse_deformed": deformed,
               "mask": mask, "deformation": deformation, "source_down": src}
        if self.occlusion_head is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion_head(feat))
        return out


# ----------------------------------------------------------------------------- generator


def warp(inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """``f_w(inp, T)``: grid_sample ``inp`` (B,C,H,W) with ``deformation`` (B,h,w,2, resized
    bilinearly, align_corners=False, to H,W if needed); bilinear, zeros padding,
    align_corners=True (the torch-1.0 behaviour FOMM was trained with)."""
    h, w = inp.shape[2:]
    if deformation.shape[1:3] != (h, w):
        d = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False)
        deformation = d.permute(0, 2, 3, 1)
    if inp.shape[0] != deformation.shape[0]:
        inp = inp.expand(deformation.shape[0], *inp.shape[1:])
    return F.grid_sample(inp, deformation.to(inp.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


class OcclusionAwareGenerator(nn.Module):
    """Encoder - warp - occlude - decoder generator (Sec. 3.2).

    ``forward(source B,3,H,W in [0,1], kp_driving, kp_source, source_cache=None)`` -> dict with
    ``prediction`` (B,3,H,W in (0,1)), ``deformed`` (source warped at full resolution, when
    ``with_deformed``), ``mask``, ``sparse_deformed``, ``occlusion_map``, ``deformation``,
    ``encoded``, ``warped``. ``source_cache`` (from :meth:`encode_source`) skips re-encoding the
    source, whose batch may then be 1 while the keypoints have batch B.
    """

    def __init__(self, num_channels: int = 3, num_kp: int = 10, block_expansion: int = 64,
                 max_features: int = 512, num_down_blocks: int = 2, num_bottleneck_blocks: int = 6,
                 estimate_occlusion_map: bool = False, dense_motion: dict | None = None):
        super().__init__()
        self.dense_motion = None
        if dense_motion is not None:
            self.dense_motion = build(DenseMotionNetwork, dense_motion, "model.generator.dense_motion",
                                      num_kp=num_kp, num_channels=num_channels,
                                      estimate_occlusion_map=estimate_occlusion_map)
        self.stem = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)
        width = [min(max_features, block_expansion * 2 ** i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(width[i], width[i + 1]) for i in range(num_down_blocks))
        self.bottleneck = nn.Sequential(*[ResBlock2d(width[-1]) for _ in range(num_bottleneck_blocks)])
        self.up_blocks = nn.ModuleList(UpBlock2d(width[num_down_blocks - i], width[num_down_blocks - i - 1])
                                       for i in range(num_down_blocks))
        self.head = nn.Conv2d(block_expansion, num_channels, 7, padding=3)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        out = self.stem(source)
        for block in self.down_blocks:
            out = block(out)
        return out

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        out = self.bottleneck(feat)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.head(out))

    def encode_source(self, source: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-source work shared by every driving frame: encoder features, dense-motion input."""
        cache = {"source": source, "encoded": self.encode(source)}
        if self.dense_motion is not None:
            cache["source_down"] = self.dense_motion.downsample(source)
        return cache

    def occlude(self, feat: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
        """Eq. 7: ``xi' = O * f_w(xi, T)`` (the occlusion map resized bilinearly if needed)."""
        if occlusion.shape[2:] != feat.shape[2:]:
            occlusion = F.interpolate(occlusion, size=feat.shape[2:], mode="bilinear", align_corners=False)
        return feat * occlusion

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict, source_cache: dict | None = None,
                with_deformed: bool = True, decode_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        cache = source_cache if source_cache is not None else self.encode_source(source)
        out = {"encoded": cache["encoded"]}
        feat = cache["encoded"]
        if self.dense_motion is not None:
            dm = self.dense_motion(source, kp_driving, kp_source, source_down=cache.get("source_down"))
            out.update(mask=dm["mask"], sparse_deformed=dm["sparse_deformed"], deformation=dm["deformation"])
            feat = warp(feat, dm["deformation"])
            if "occlusion_map" in dm:
                out["occlusion_map"] = dm["occlusion_map"]
                feat = self.occlude(feat, dm["occlusion_map"])
            if with_deformed:  # full-resolution warped source (visualisation only)
                out["deformed"] = warp(source, dm["deformation"])
        out["warped"] = feat
        if decode_dtype is not None:  # low-precision decoder (most FLOPs); motion stays fp32
            with torch.autocast(device_type=feat.device.type, dtype=decode_dtype):
                out["prediction"] = self.decode(feat).float()
        else:
            out["prediction"] = self.decode(feat)
        return out


# ----------------------------------------------------------------------------- animation


def movement_scale(kp_source_value: torch.Tensor, kp_initial_value: torch.Tensor) -> float:
    """sqrt(hull area of source kps) / sqrt(hull area of initial driving kps), batch element 0
    (official ``normalize_kp(adapt_movement_scale=True)``)."""
    from scipy.spatial import ConvexHull

    a = ConvexHull(kp_source_value[0].detach().float().cpu().numpy()).volume
    b = ConvexHull(kp_initial_value[0].detach().float().cpu().numpy()).volume
    return float(math.sqrt(a) / math.sqrt(b))


def normalize_kp(kp_source: dict, kp_driving: dict, kp_driving_initial: dict, adapt_movement_scale: bool = False,
                 use_relative_movement: bool = False, use_relative_jacobian: bool = False,
                 scale: float | None = None) -> dict:
    """Relative motion transfer (Sec. 3.4, Eq. 12): absolute mode returns the driving keypoints;
    relative mode moves the source keypoints by the driving displacement since the initial frame
    (times the convex-hull movement scale when ``adapt_movement_scale``; ``scale`` overrides the
    hull computation) and composes jacobians ``J_drv J_init^{-1} J_src``."""
    if adapt_movement_scale:
        s = scale if scale is not None else movement_scale(kp_source["value"], kp_driving_initial["value"])
    else:
        s = 1.0
    kp_new = dict(kp_driving)
    if use_relative_movement:
        kp_new["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * s + kp_source["value"]
        if use_relative_jacobian and "jacobian" in kp_driving:
            diff = torch.matmul(kp_driving["jacobian"], inverse_2x2(kp_driving_initial["jacobian"]))
            kp_new["jacobian"] = torch.matmul(diff, kp_source["jacobian"])
    return kp_new


def _kp_only(kp: dict) -> dict:
    return {k: v for k, v in kp.items() if k in ("value", "jacobian")}


class Animator:
    """Streaming FOMM animation of one source image by a driving video.

    Call it on consecutive chunks of driving frames ``N,3,H,W`` in [0,1] (the source's size); it
    returns the ``N,3,H,W`` predictions. The first frame ever seen is the initial driving frame of
    relative mode (or :meth:`set_initial`). The source is encoded once (keypoints, encoder
    features, dense-motion downsample), so memory does not depend on the video's length.

    - ``exact=True``: every frame goes through the networks alone, in the memory layout it comes
      in, as the official ``make_animation`` loop does (<= 1e-4 from it).
    - ``exact=False`` (fast): the chunk runs as one batch in channels_last; use with
      :func:`v2v.nn.fuse.fuse_for_inference` (<= 1e-3 from the official loop).

    ``autocast_dtype``: the decoder under autocast (motion stays fp32). ``return_all=True``
    returns the generator's dict plus keypoints.
    """

    def __init__(self, kp_detector: KeypointDetector, generator: OcclusionAwareGenerator, source: torch.Tensor,
                 mode: str = "relative", adapt_scale: bool = False, exact: bool = False,
                 autocast_dtype: torch.dtype | None = None):
        if mode not in ("relative", "absolute"):
            raise V2VError(f"animation mode must be 'relative' or 'absolute', got {mode!r}")
        self.kp_detector, self.generator = kp_detector, generator
        self.mode, self.adapt_scale, self.exact = mode, adapt_scale, exact
        self.autocast_dtype = autocast_dtype
        self.source = source if exact else source.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            self.kp_source = _kp_only(kp_detector(self.source))
            self.cache = generator.encode_source(self.source)
        self.kp_initial = None
        self.scale = None

    def set_initial(self, frame: torch.Tensor) -> None:
        """Use ``frame`` (``1,3,H,W``) as the initial driving frame of relative mode."""
        with torch.inference_mode():
            self.kp_initial = {k: v[:1].clone() for k, v in _kp_only(self.kp_detector(frame)).items()}
        if self.adapt_scale and self.mode == "relative":
            self.scale = movement_scale(self.kp_source["value"], self.kp_initial["value"])

    def _step(self, frames: torch.Tensor, return_all: bool) -> dict:
        n = frames.shape[0]
        kp_drv = _kp_only(self.kp_detector(frames))
        if self.kp_initial is None:
            self.kp_initial = {k: v[:1].clone() for k, v in kp_drv.items()}
            if self.adapt_scale and self.mode == "relative":
                self.scale = movement_scale(self.kp_source["value"], self.kp_initial["value"])
        kp_src = {k: v.expand(n, *v.shape[1:]) for k, v in self.kp_source.items()}
        kp_init = {k: v.expand(n, *v.shape[1:]) for k, v in self.kp_initial.items()}
        rel = self.mode == "relative"
        kp_norm = normalize_kp(kp_src, kp_drv, kp_init, adapt_movement_scale=self.adapt_scale and rel,
                               use_relative_movement=rel, use_relative_jacobian=rel, scale=self.scale)
        out = self.generator(self.source, kp_norm, kp_src, source_cache=self.cache, with_deformed=return_all,
                             decode_dtype=self.autocast_dtype)
        if return_all:
            out = dict(out, kp_norm=kp_norm, kp_driving=kp_drv)
        return out

    def __call__(self, frames: torch.Tensor, return_all: bool = False):
        with torch.inference_mode():
            if not self.exact:
                out = self._step(frames.contiguous(memory_format=torch.channels_last), return_all)
                return out if return_all else out["prediction"].float().contiguous()
            outs = [self._step(frames[i:i + 1], return_all) for i in range(frames.shape[0])]
            if not return_all:
                return torch.cat([o["prediction"].float() for o in outs])
            keys = [k for k in outs[0] if torch.is_tensor(outs[0][k])]
            res = {k: torch.cat([o[k] for o in outs]) for k in keys}
            for k in ("kp_norm", "kp_driving"):
                res[k] = {j: torch.cat([o[k][j] for o in outs]) for j in outs[0][k]}
            return res


# ----------------------------------------------------------------------------- training


@register_system("fomm", compat="v2v.compat.fomm", commands="v2v.commands.fomm")
class FOMMSystem(System):
    """The trainable FOMM system: ``kp_detector``, ``generator`` and (training only)
    ``discriminator``. Batches: ``{"source": B,3,H,W, "driving": B,3,H,W}`` in [0,1] (two frames
    of one video). ``inference=True`` builds no discriminator."""

    ModelConfig = FOMMModelConfig
    DataConfig = FOMMDataConfig

    def __init__(self, cfg: FOMMModelConfig, inference: bool = False):
        super().__init__(cfg)
        common = {"num_kp": cfg.num_kp, "num_channels": cfg.num_channels}
        self.kp_detector = build(KeypointDetector, cfg.kp_detector, "model.kp_detector",
                                 estimate_jacobian=cfg.estimate_jacobian, **common)
        self.generator = build(OcclusionAwareGenerator, cfg.generator, "model.generator", **common)
        self.discriminator = None
        if not inference:
            self.discriminator = build(MultiScaleKeypointDiscriminator, cfg.discriminator, "model.discriminator", **common)
        self._perceptual = None
        self._gan = GANLoss("lsgan")

    @classmethod
    def build_dataset(cls, data_cfg: FOMMDataConfig, split: str, model_cfg=None):
        """(source, driving) frame pairs of one video: ``root/{split}/<video>`` (mp4/gif/frame
        folder, or ``<video>/frames/*.png`` as written by ``v2v data synth``). Train: the official
        flips (+ jitter); test: fixed draws (seed 0) so held-out metrics are comparable."""
        import os

        from v2v.data.datasets import VideoFolderDataset

        if not os.path.isdir(os.path.join(data_cfg.root, split)):
            if split == "train":
                raise V2VError(f"data.root: no '{split}' folder in {data_cfg.root}")
            return None
        train = split == "train"
        aug = {"flip": data_cfg.horizontal_flip, "time_flip": data_cfg.time_flip}
        if data_cfg.jitter:
            aug["jitter"] = data_cfg.jitter
        ds = VideoFolderDataset(data_cfg.root, mode="pairs", size=tuple(data_cfg.size),
                                repeats=data_cfg.repeats if train else 1, augment=aug if train else None,
                                split=split, seed=None if train else 0)
        if not train and data_cfg.test_pairs and len(ds) > data_cfg.test_pairs:
            ds = torch.utils.data.Subset(ds, list(range(data_cfg.test_pairs)))
        return ds

    @property
    def gan_enabled(self) -> bool:
        return self.cfg.loss.generator_gan != 0 and self.discriminator is not None

    def optim_groups(self):
        groups = {"G": list(self.generator.parameters()) + list(self.kp_detector.parameters())}
        if self.gan_enabled:
            groups["D"] = list(self.discriminator.parameters())
        return groups

    def generator_module(self):
        return None

    @property
    def perceptual(self) -> nn.Module:
        if self._perceptual is None:
            lc = self.cfg.loss
            p = build_pyramid_loss(lc.perceptual_net, lc.scales, lc.perceptual, lc.vgg_weights)
            dev = next(self.generator.parameters()).device
            object.__setattr__(self, "_perceptual", p.to(dev))  # not a registered submodule: not saved
        return self._perceptual

    def reconstruct(self, source: torch.Tensor, driving: torch.Tensor) -> dict:
        """Reconstruction (training / evaluation): keypoints of both frames, generator output."""
        kp_source = self.kp_detector(source)
        kp_driving = self.kp_detector(driving)
        out = self.generator(source, _kp_only(kp_driving), _kp_only(kp_source))
        out["kp_source"] = kp_source
        out["kp_driving"] = kp_driving
        return out

    def gan_losses(self, pred: torch.Tensor, driving: torch.Tensor, kp: torch.Tensor) -> dict:
        """Sec. 3.3 / official ``GeneratorFullModel``: LSGAN on every scale's patch map plus
        feature matching with per-layer weights (``loss.feature_matching``)."""
        lc = self.cfg.loss
        d_fake, d_real = self.discriminator(pred, kp), self.discriminator(driving, kp)
        names = [scale_name(s) for s in self.discriminator.scales]
        gan = lc.generator_gan * self._gan([[d_fake[f"prediction_map_{s}"]] for s in names], True, False)
        nw = len(lc.feature_matching)
        fm = feature_matching_loss([d_fake[f"feature_maps_{s}"][:nw] for s in names],
                                   [d_real[f"feature_maps_{s}"][:nw] for s in names],
                                   layer_weights=lc.feature_matching, d_weight=1.0, skip_last=False)
        return {"G/gan": gan, "G/feature_matching": fm}

    def equivariance_losses(self, driving: torch.Tensor, kp_driving: dict) -> dict:
        """Sec. 3.3: keypoints of a randomly warped frame ``Y = T_{X<-Y}^{-1}(X)`` must map back,
        ``T_{X<-R}(p_k) = T_{X<-Y}(T_{Y<-R}(p_k))`` (Eq. 10), and the jacobians must compose,
        ``I = J_X^{-1} (dT_{X<-Y}) J_Y`` (Eq. 11); L1 on both."""
        lc, tc = self.cfg.loss, self.cfg.loss.transform
        tr = RandomTPS(driving.shape[0], tc.sigma_affine, tc.sigma_tps, tc.points_tps, device=driving.device,
                       dtype=driving.dtype)
        kp_t = self.kp_detector(tr.transform_frame(driving))
        out = {}
        if lc.equivariance_value:
            ev = (kp_driving["value"] - tr.warp_coordinates(kp_t["value"])).abs().mean()
            out["G/equivariance_value"] = lc.equivariance_value * ev
        if lc.equivariance_jacobian and "jacobian" in kp_driving:
            jt = torch.matmul(tr.jacobian(kp_t["value"]), kp_t["jacobian"])
            val = torch.matmul(inverse_2x2(kp_driving["jacobian"]), jt)
            eye = torch.eye(2, device=val.device, dtype=val.dtype).view(1, 1, 2, 2)
            out["G/equivariance_jacobian"] = lc.equivariance_jacobian * (eye - val).abs().mean()
        return out

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        lc = self.cfg.loss
        source, driving = batch["source"], batch["driving"]
        gen = self.reconstruct(source, driving)
        pred = gen["prediction"]
        terms = {}
        if sum(lc.perceptual) != 0:  # Sec. 3.3: multi-resolution perceptual reconstruction loss
            terms["G/perceptual"] = self.perceptual(pred, driving)
        kp_det = gen["kp_driving"]["value"].detach()
        if self.gan_enabled:
            terms.update(self.gan_losses(pred, driving, kp_det))
        if lc.equivariance_value + lc.equivariance_jacobian != 0:
            terms.update(self.equivariance_losses(driving, gen["kp_driving"]))
        total = sum(terms.values(), pred.new_zeros(()))
        out = {"G": total, **{k: v.detach() for k, v in terms.items()},
               "G/rec_l1": (pred - driving).abs().mean().detach()}
        if self.gan_enabled:
            d_fake = self.discriminator(pred.detach(), kp_det)
            d_real = self.discriminator(driving, kp_det)
            names = [scale_name(s) for s in self.discriminator.scales]
            out["D"] = lc.discriminator_gan * (self._gan([[d_real[f"prediction_map_{s}"]] for s in names], True)
                                               + self._gan([[d_fake[f"prediction_map_{s}"]] for s in names], False))
        return out

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        gen = self.reconstruct(batch["source"], batch["driving"])
        out = {"source": batch["source"], "driving": batch["driving"], "prediction": gen["prediction"]}
        if "deformed" in gen:
            out["deformed"] = gen["deformed"]
        return out

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Reconstruction L1 (mean |prediction - driving|) on held-out (source, driving) pairs."""
        gen = self.reconstruct(batch["source"], batch["driving"])
        return {"rec_l1": float((gen["prediction"] - batch["driving"]).abs().mean())}
