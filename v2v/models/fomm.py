"""First Order Motion Model for image animation (Siarohin et al., NeurIPS 2019).

Reads top to bottom as the paper's figure:

1. :class:`KeypointDetector` -- an hourglass on the anti-aliased downsampled image, a 7x7
   heatmap head (temperature softmax -> soft-argmax keypoints) and a 7x7 jacobian head
   (heatmap-weighted 2x2 local affine maps; ``single_jacobian_map`` shares one map).
2. :class:`DenseMotionNetwork` -- sparse motions ``J_k (z - kp_driving_k) + kp_source_k`` (plus the
   identity for the background), the source warped by each, an hourglass on
   ``[heatmap difference, warped source]`` predicting a softmax mask over the K+1 motions and an
   occlusion map.
3. :class:`OcclusionAwareGenerator` -- encodes the source, warps its features with the dense
   deformation, multiplies by the occlusion map and decodes.
4. :class:`MultiScaleDiscriminator` -- patch discriminators on an image pyramid (optional keypoint
   gaussian input, optional spectral norm).
5. :class:`FOMMSystem` -- the trainable system (losses: VGG pyramid perceptual, equivariance of
   keypoints and jacobians under a random affine+TPS warp, optional LSGAN + feature matching) and
   :class:`Animator`, the streaming inference pipeline (source encoded once, driving frames
   batched).

Conventions (every public boundary): images float32 ``B,3,H,W`` in [0,1]; keypoints ``B,K,2``
normalised to [-1,1], x first, on the align_corners=True grid (-1/+1 = centres of the corner
pixels) of the heatmap; jacobians ``B,K,2,2`` multiplying (x, y) column vectors. Dense motion
"deformations" are sampling grids ``B,h,w,2`` in grid_sample coordinates (align_corners=True),
i.e. absolute normalised positions in the source, not pixel flow.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.models.base import System
from v2v.registry import register_system
from v2v.nn.hourglass import DownBlock2d, Hourglass, ResBlock2d, SameBlock2d, UpBlock2d
from v2v.ops.keypoints import (
    RandomTPS,
    heatmap_representation,
    heatmap_softargmax,
    jacobian_from_heatmap,
    kp_to_gaussian,
    softmax_heatmap,
    sparse_motions,
)
from v2v.ops.pyramid import AntiAliasDownsample, antialias_downsample

__all__ = [
    "Animator",
    "DenseMotionConfig",
    "DenseMotionNetwork",
    "DiscriminatorConfig",
    "FOMMDataConfig",
    "FOMMModelConfig",
    "FOMMSystem",
    "GeneratorConfig",
    "KeypointDetector",
    "KeypointDetectorConfig",
    "LossConfig",
    "MultiScaleDiscriminator",
    "OcclusionAwareGenerator",
    "PatchDiscriminator",
    "TransformConfig",
    "movement_scale",
    "normalize_kp",
]


# ----------------------------------------------------------------------------- configs


@dataclass
class KeypointDetectorConfig:
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    temperature: float = 0.1
    scale_factor: float = 0.25
    single_jacobian_map: bool = False
    pad: int = 0  # padding of the 7x7 heads (0 = valid conv, as the official default)


@dataclass
class DenseMotionConfig:
    block_expansion: int = 64
    max_features: int = 1024
    num_blocks: int = 5
    scale_factor: float = 0.25
    kp_variance: float = 0.01


@dataclass
class GeneratorConfig:
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    estimate_occlusion_map: bool = True
    dense_motion: DenseMotionConfig | None = field(default_factory=DenseMotionConfig)


@dataclass
class DiscriminatorConfig:
    scales: list[float] = field(default_factory=lambda: [1.0])
    block_expansion: int = 32
    max_features: int = 512
    num_blocks: int = 4
    sn: bool = False
    use_kp: bool = False
    kp_variance: float = 0.01


@dataclass
class TransformConfig:
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5


@dataclass
class LossConfig:
    """Training losses (official ``train_params.loss_weights`` + ``scales`` + ``transform_params``).

    ``perceptual_net``: ``vgg19`` (ImageNet VGG19 found by v2v.weights; missing = V2VError),
    ``vgg19_random`` (random VGG19, explicitly requested: smoke tests), ``l1`` (an L1 image
    pyramid with the same scales, weight = sum of the perceptual weights: no pretrained net
    needed) or ``auto`` (vgg19 when its weights are found, else l1 with a warning).
    """

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
    num_kp: int = 10
    num_channels: int = 3
    estimate_jacobian: bool = True
    image_size: int = 256  # informative: the resolution the model was built for
    kp_detector: KeypointDetectorConfig = field(default_factory=KeypointDetectorConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
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


# ----------------------------------------------------------------------------- helpers


def kp_gaussians(value: torch.Tensor, size: tuple[int, int], variance: float) -> torch.Tensor:
    """Gaussians ``exp(-0.5 |z - kp|^2 / variance)`` of keypoints ``B,K,2`` -> ``B,K,h,w``."""
    return kp_to_gaussian(value, size, variance)


# ----------------------------------------------------------------------------- keypoints


class KeypointDetector(nn.Module):
    """Unsupervised keypoint detector.

    ``forward(image B,3,H,W in [0,1]) -> {"value": B,K,2, "jacobian": B,K,2,2 (if estimated),
    "heatmap": B,K,h,w, "heatmap_logits", "jacobian_map", "input_down"}``; keypoints on the
    align_corners=True [-1,1] grid of the heatmap (h = H*scale - 6 with the valid 7x7 head).
    """

    def __init__(self, num_kp: int = 10, num_channels: int = 3, estimate_jacobian: bool = True,
                 block_expansion: int = 32, max_features: int = 1024, num_blocks: int = 5,
                 temperature: float = 0.1, scale_factor: float = 0.25, single_jacobian_map: bool = False,
                 pad: int = 0):
        super().__init__()
        self.num_kp = num_kp
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.down = AntiAliasDownsample(num_channels, scale_factor) if scale_factor != 1 else None
        self.hourglass = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        self.heatmap_head = nn.Conv2d(self.hourglass.out_channels, num_kp, 7, padding=pad)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian_head = nn.Conv2d(self.hourglass.out_channels, 4 * self.num_jacobian_maps, 7, padding=pad)
            with torch.no_grad():  # identity jacobians at init (official initialisation)
                self.jacobian_head.weight.zero_()
                self.jacobian_head.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(self.num_jacobian_maps))
        else:
            self.jacobian_head = None

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.down(image) if self.down is not None else image
        feat = self.hourglass(x)
        logits = self.heatmap_head(feat)
        heatmap = softmax_heatmap(logits, self.temperature)
        out = {"value": heatmap_softargmax(heatmap), "heatmap": heatmap, "heatmap_logits": logits, "input_down": x}
        if self.jacobian_head is not None:
            jmap = self.jacobian_head(feat)
            out["jacobian_map"] = jmap
            out["jacobian"] = jacobian_from_heatmap(heatmap, jmap)
        return out


# ----------------------------------------------------------------------------- dense motion


class DenseMotionNetwork(nn.Module):
    """Predicts the dense backward deformation and occlusion from keypoints.

    ``forward(source B,C,H,W in [0,1], kp_driving, kp_source, source_down=None)`` -> dict with
    ``deformation`` ``B,h,w,2`` (grid_sample align_corners=True coordinates into the source),
    ``mask`` ``B,K+1,h,w`` (softmax, channel 0 = background), ``sparse_deformed`` ``B,K+1,C,h,w``,
    ``sparse_motion`` ``B,K+1,h,w,2``, ``heatmap_representation`` ``B,K+1,1,h,w``,
    ``source_down`` and (if estimated) ``occlusion_map`` ``B,1,h,w``. ``source_down`` may be passed
    precomputed (the downsampled source, batch 1 or B) to skip the anti-alias filter.
    """

    def __init__(self, num_kp: int, num_channels: int, estimate_occlusion_map: bool = False,
                 block_expansion: int = 64, max_features: int = 1024, num_blocks: int = 5,
                 scale_factor: float = 0.25, kp_variance: float = 0.01):
        super().__init__()
        self.num_kp = num_kp
        self.kp_variance = kp_variance
        self.scale_factor = scale_factor
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (num_channels + 1), num_blocks, max_features)
        self.mask_head = nn.Conv2d(self.hourglass.out_channels, num_kp + 1, 7, padding=3)
        self.occlusion_head = (nn.Conv2d(self.hourglass.out_channels, 1, 7, padding=3)
                               if estimate_occlusion_map else None)
        self.down = AntiAliasDownsample(num_channels, scale_factor) if scale_factor != 1 else None

    def downsample(self, source: torch.Tensor) -> torch.Tensor:
        return self.down(source) if self.down is not None else source

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict,
                source_down: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        src = self.downsample(source) if source_down is None else source_down
        b = kp_driving["value"].shape[0]
        if src.shape[0] != b:
            src = src.expand(b, *src.shape[1:])
        _, c, h, w = src.shape
        k1 = self.num_kp + 1
        # heatmap representation: driving gaussians minus source gaussians, background zeros first
        heat = heatmap_representation(kp_driving["value"], kp_source["value"], (h, w), self.kp_variance)
        motion = sparse_motions(kp_source["value"], kp_driving["value"], (h, w), kp_source.get("jacobian"),
                                kp_driving.get("jacobian"))  # B,K+1,h,w,2, index 0 = identity
        src_rep = src.unsqueeze(1).expand(b, k1, c, h, w).reshape(b * k1, c, h, w)
        deformed = F.grid_sample(src_rep, motion.reshape(b * k1, h, w, 2), mode="bilinear",
                                 padding_mode="zeros", align_corners=True).view(b, k1, c, h, w)
        inp = torch.cat([heat, deformed], dim=2).view(b, k1 * (c + 1), h, w)
        feat = self.hourglass(inp)
        mask = F.softmax(self.mask_head(feat), dim=1)
        deformation = torch.einsum("bkhw,bkhwc->bhwc", mask, motion)
        out = {"heatmap_representation": heat, "sparse_motion": motion, "sparse_deformed": deformed,
               "mask": mask, "deformation": deformation, "source_down": src}
        if self.occlusion_head is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion_head(feat))
        return out


# ----------------------------------------------------------------------------- generator


def _resize_grid(deformation: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if deformation.shape[1:3] == (h, w):
        return deformation
    d = deformation.permute(0, 3, 1, 2)
    d = F.interpolate(d, size=(h, w), mode="bilinear", align_corners=False)
    return d.permute(0, 2, 3, 1)


def warp(inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """grid_sample ``inp`` (B,C,H,W) with ``deformation`` (B,h,w,2, resized bilinearly to H,W if
    needed); bilinear, zeros padding, align_corners=True (the torch-1.0 behaviour FOMM was trained
    with)."""
    grid = _resize_grid(deformation, inp.shape[2], inp.shape[3])
    if inp.shape[0] != grid.shape[0]:
        inp = inp.expand(grid.shape[0], *inp.shape[1:])
    return F.grid_sample(inp, grid.to(inp.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


class OcclusionAwareGenerator(nn.Module):
    """Encoder - warp - decoder generator.

    ``forward(source B,3,H,W in [0,1], kp_driving, kp_source, source_cache=None)`` -> dict with
    ``prediction`` (B,3,H,W in (0,1)), ``deformed`` (source warped at full resolution), ``mask``,
    ``sparse_deformed``, ``occlusion_map``, ``deformation``, ``encoded``, ``warped``.
    ``source_cache`` (from :meth:`encode_source`) skips re-encoding the source: the source batch
    may then be 1 while keypoints have batch B (animation of many frames from one source).
    """

    def __init__(self, num_channels: int, num_kp: int, block_expansion: int = 64, max_features: int = 512,
                 num_down_blocks: int = 2, num_bottleneck_blocks: int = 6, estimate_occlusion_map: bool = False,
                 dense_motion: DenseMotionConfig | None = None):
        super().__init__()
        self.dense_motion = (DenseMotionNetwork(num_kp, num_channels, estimate_occlusion_map,
                                                dense_motion.block_expansion, dense_motion.max_features,
                                                dense_motion.num_blocks, dense_motion.scale_factor,
                                                dense_motion.kp_variance)
                             if dense_motion is not None else None)
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
        """Per-source work shared by every driving frame: encoder features and dense-motion input."""
        cache = {"source": source, "encoded": self.encode(source)}
        if self.dense_motion is not None:
            cache["source_down"] = self.dense_motion.downsample(source)
        return cache

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict,
                source_cache: dict | None = None, with_deformed: bool = True,
                decode_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        cache = source_cache if source_cache is not None else self.encode_source(source)
        encoded = cache["encoded"]
        out = {"encoded": encoded}
        feat = encoded
        if self.dense_motion is not None:
            dm = self.dense_motion(source, kp_driving, kp_source, source_down=cache.get("source_down"))
            out["mask"] = dm["mask"]
            out["sparse_deformed"] = dm["sparse_deformed"]
            out["deformation"] = dm["deformation"]
            feat = warp(encoded, dm["deformation"])
            if "occlusion_map" in dm:
                occ = dm["occlusion_map"]
                out["occlusion_map"] = occ
                if occ.shape[2:] != feat.shape[2:]:
                    occ = F.interpolate(occ, size=feat.shape[2:], mode="bilinear", align_corners=False)
                feat = feat * occ
            if with_deformed:  # full-resolution warped source (visualisation, not needed to animate)
                out["deformed"] = warp(source, dm["deformation"])
        out["warped"] = feat
        if decode_dtype is not None:  # low-precision decoder (the bulk of the FLOPs); motion stays fp32
            with torch.autocast(device_type=feat.device.type, dtype=decode_dtype):
                out["prediction"] = self.decode(feat).float()
        else:
            out["prediction"] = self.decode(feat)
        return out


# ----------------------------------------------------------------------------- discriminator


def _spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral norm with the legacy power-iteration order (one iteration per train-mode forward,
    stored u, v used as they are in eval), as the official checkpoints were trained with; legacy
    ``weight_orig/weight_u/weight_v`` files are converted by :mod:`v2v.compat.fomm`."""
    from v2v.nn.spectral_norm import spectral_norm

    return spectral_norm(module)


class _DiscBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: bool, pool: bool, sn: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=4)
        if sn:
            self.conv = _spectral_norm(self.conv)
        self.norm = nn.InstanceNorm2d(cout, affine=True) if norm else None
        self.pool = pool

    def forward(self, x):
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        if self.pool:
            out = F.avg_pool2d(out, 2)
        return out


class PatchDiscriminator(nn.Module):
    """One-scale patch discriminator: 4x4 valid convs, InstanceNorm (blocks>=1), LeakyReLU(0.2),
    avg-pool (all but last), then a 1x1 conv. ``forward(image B,3,H,W in [0,1], kp=None)`` ->
    (feature maps list, prediction map ``B,1,h,w``). With ``use_kp`` keypoint gaussians (``B,K,2``
    values) are concatenated to the input."""

    def __init__(self, num_channels: int = 3, num_kp: int = 10, block_expansion: int = 64, num_blocks: int = 4,
                 max_features: int = 512, sn: bool = False, use_kp: bool = False, kp_variance: float = 0.01):
        super().__init__()
        self.use_kp = use_kp
        self.kp_variance = kp_variance
        blocks = []
        for i in range(num_blocks):
            cin = num_channels + num_kp * int(use_kp) if i == 0 else min(max_features, block_expansion * 2 ** i)
            cout = min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(_DiscBlock(cin, cout, norm=i != 0, pool=i != num_blocks - 1, sn=sn))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cout, 1, kernel_size=1)
        if sn:
            self.head = _spectral_norm(self.head)

    def forward(self, x: torch.Tensor, kp: torch.Tensor | None = None):
        out = x
        if self.use_kp:
            if kp is None:
                raise ValueError("this discriminator was built with use_kp=True and needs keypoints")
            out = torch.cat([out, kp_gaussians(kp, x.shape[2:], self.kp_variance)], dim=1)
        feats = []
        for block in self.blocks:
            out = block(out)
            feats.append(out)
        return feats, self.head(out)


def scale_name(s: float) -> str:
    """Printable scale: 1 -> "1", 0.5 -> "0.5" (output keys ``prediction_map_<name>``)."""
    return f"{float(s):g}"


def _scale_key(s: float) -> str:
    return scale_name(s).replace(".", "-")


class MultiScaleDiscriminator(nn.Module):
    """Patch discriminators over an anti-aliased image pyramid (one per scale).

    ``forward(image B,3,H,W in [0,1], kp=None)`` -> ``{"feature_maps_<s>": [...],
    "prediction_map_<s>": B,1,h,w, "input_<s>": image at scale s}`` with ``<s> = str(scale)``.
    """

    def __init__(self, scales=(1,), **kwargs):
        super().__init__()
        self.scales = list(scales)
        self.discs = nn.ModuleDict({_scale_key(s): PatchDiscriminator(**kwargs) for s in self.scales})

    def forward(self, image: torch.Tensor, kp: torch.Tensor | None = None) -> dict:
        out = {}
        for s in self.scales:
            x = antialias_downsample(image, float(s))
            feats, pred = self.discs[_scale_key(s)](x, kp)
            name = scale_name(s)
            out[f"input_{name}"] = x
            out[f"feature_maps_{name}"] = feats
            out[f"prediction_map_{name}"] = pred
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
    """Official ``normalize_kp``: absolute mode returns the driving keypoints; relative mode moves
    the source keypoints by the driving displacement since the initial frame (times the convex-hull
    movement scale when ``adapt_movement_scale``) and composes jacobians
    ``J_drv inv(J_drv_initial) J_src``. ``scale`` overrides the hull computation (cache)."""
    if adapt_movement_scale:
        s = scale if scale is not None else movement_scale(kp_source["value"], kp_driving_initial["value"])
    else:
        s = 1.0
    kp_new = dict(kp_driving)
    if use_relative_movement:
        kp_new["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * s + kp_source["value"]
        if use_relative_jacobian and "jacobian" in kp_driving:
            diff = torch.matmul(kp_driving["jacobian"], torch.inverse(kp_driving_initial["jacobian"]))
            kp_new["jacobian"] = torch.matmul(diff, kp_source["jacobian"])
    return kp_new


def _kp_only(kp: dict) -> dict:
    return {k: v for k, v in kp.items() if k in ("value", "jacobian")}


class Animator:
    """Streaming FOMM animation of one source image by a driving video.

    ``Animator(kp_detector, generator, source, mode="relative"|"absolute", adapt_scale=False)``;
    then call it on consecutive chunks of driving frames ``N,3,H,W`` in [0,1] (same size as the
    source); it returns the ``N,3,H,W`` predictions in [0,1]. The first frame ever seen is the
    initial driving frame of relative mode. The source is encoded once (keypoints, encoder
    features, dense-motion downsample); memory is independent of the video length.
    ``return_all=True`` returns the generator's full output dict (plus ``kp_norm``) instead.
    ``autocast_dtype`` (e.g. ``torch.bfloat16``) runs the generator's decoder (bottleneck + up
    blocks, most of the FLOPs) under autocast; keypoints, dense motion and warps stay float32 so
    sampling positions keep full precision.
    """

    def __init__(self, kp_detector: KeypointDetector, generator: OcclusionAwareGenerator, source: torch.Tensor,
                 mode: str = "relative", adapt_scale: bool = False, autocast_dtype: torch.dtype | None = None):
        if mode not in ("relative", "absolute"):
            raise V2VError(f"animation mode must be 'relative' or 'absolute', got {mode!r}")
        self.kp_detector = kp_detector
        self.generator = generator
        self.mode = mode
        self.adapt_scale = adapt_scale
        self.autocast_dtype = autocast_dtype
        self.source = source
        with self._ctx():
            self.kp_source = _kp_only(kp_detector(source))
            self.cache = generator.encode_source(source)
        self.kp_initial = None
        self.scale = None

    def _ctx(self):
        return torch.inference_mode()

    def set_initial(self, frame: torch.Tensor) -> None:
        """Use ``frame`` (``1,3,H,W``) as the initial driving frame of relative mode (e.g. the
        frame closest to the source pose); predictions do not depend on frame order otherwise."""
        with self._ctx():
            self.kp_initial = {k: v[:1].clone() for k, v in _kp_only(self.kp_detector(frame)).items()}
        if self.adapt_scale and self.mode == "relative":
            self.scale = movement_scale(self.kp_source["value"], self.kp_initial["value"])

    def __call__(self, frames: torch.Tensor, return_all: bool = False):
        with self._ctx():
            n = frames.shape[0]
            # keypoints one frame at a time: the temperature-0.1 softmax amplifies the batch-size
            # dependent rounding of batched convs, so per-frame keypoints keep the output
            # independent of the batch size (and equal to the per-frame official loop); the
            # detector is a small share of the FLOPs
            per = [_kp_only(self.kp_detector(frames[i:i + 1])) for i in range(n)]
            kp_drv = {k: torch.cat([p[k] for p in per]) for k in per[0]}
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
                out = dict(out)
                out["kp_norm"] = kp_norm
                out["kp_driving"] = kp_drv
                return out
            return out["prediction"].float()


# ----------------------------------------------------------------------------- training


class _L1Pyramid(nn.Module):
    """Stand-in for the VGG pyramid when no VGG weights are wanted: sum_s w * mean|x_s - y_s|."""

    def __init__(self, scales, weight: float):
        super().__init__()
        self.scales = [float(s) for s in scales]
        self.weight = float(weight)

    def forward(self, x, y):
        loss = x.new_zeros(())
        for s in self.scales:
            xs, ys = antialias_downsample(x, s), antialias_downsample(y, s)
            loss = loss + self.weight * (xs - ys.detach()).abs().mean()
        return loss


def _build_perceptual(cfg: LossConfig) -> nn.Module:
    net = cfg.perceptual_net
    if net == "auto":
        from v2v.weights import find_weights

        try:
            find_weights("vgg19", cfg.vgg_weights)
            net = "vgg19"
        except V2VError as exc:
            warnings.warn(f"{exc}; FOMM perceptual loss falls back to an L1 image pyramid", stacklevel=2)
            net = "l1"
    if net == "l1":
        return _L1Pyramid(cfg.scales, sum(cfg.perceptual))
    from v2v.losses.perceptual import VGGPyramidLoss

    if net == "vgg19":
        return VGGPyramidLoss(scales=cfg.scales, layer_weights=cfg.perceptual, weights=cfg.vgg_weights)
    if net == "vgg19_random":
        return VGGPyramidLoss(scales=cfg.scales, layer_weights=cfg.perceptual, weights="random")
    raise V2VError(f"model.loss.perceptual_net: expected vgg19, vgg19_random, l1 or auto, got {net!r}")


@register_system("fomm", compat="v2v.compat.fomm", commands="v2v.commands.fomm")
class FOMMSystem(System):
    """The trainable FOMM system: ``kp_detector``, ``generator``, ``discriminator``.

    Batches: ``{"source": B,3,H,W, "driving": B,3,H,W}`` in [0,1] (two frames of one video).
    """

    ModelConfig = FOMMModelConfig
    DataConfig = FOMMDataConfig

    def __init__(self, cfg: FOMMModelConfig):
        super().__init__()
        self.cfg = cfg
        kc, gc, dc = cfg.kp_detector, cfg.generator, cfg.discriminator
        self.kp_detector = KeypointDetector(cfg.num_kp, cfg.num_channels, cfg.estimate_jacobian, kc.block_expansion,
                                            kc.max_features, kc.num_blocks, kc.temperature, kc.scale_factor,
                                            kc.single_jacobian_map, kc.pad)
        self.generator = OcclusionAwareGenerator(cfg.num_channels, cfg.num_kp, gc.block_expansion, gc.max_features,
                                                 gc.num_down_blocks, gc.num_bottleneck_blocks,
                                                 gc.estimate_occlusion_map, gc.dense_motion)
        self.discriminator = MultiScaleDiscriminator(dc.scales, num_channels=cfg.num_channels, num_kp=cfg.num_kp,
                                                     block_expansion=dc.block_expansion, num_blocks=dc.num_blocks,
                                                     max_features=dc.max_features, sn=dc.sn, use_kp=dc.use_kp,
                                                     kp_variance=dc.kp_variance)
        self._perceptual = None

    @classmethod
    def from_config(cls, model_cfg: FOMMModelConfig) -> FOMMSystem:
        return cls(model_cfg)

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
        return self.cfg.loss.generator_gan != 0

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
            p = _build_perceptual(self.cfg.loss)
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

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        lc = self.cfg.loss
        source, driving = batch["source"], batch["driving"]
        gen = self.reconstruct(source, driving)
        pred = gen["prediction"]
        logs = {}
        total = pred.new_zeros(())
        if sum(lc.perceptual) != 0:
            perc = self.perceptual(pred, driving)
            logs["G/perceptual"] = perc.detach()
            total = total + perc
        kp_drv = gen["kp_driving"]
        if self.gan_enabled:
            kp_det = kp_drv["value"].detach()
            d_fake = self.discriminator(pred, kp_det)
            d_real = self.discriminator(driving, kp_det)
            gan = pred.new_zeros(())
            fm = pred.new_zeros(())
            for s in self.discriminator.scales:
                gan = gan + lc.generator_gan * ((1 - d_fake[f"prediction_map_{scale_name(s)}"]) ** 2).mean()
                for i, (a, b) in enumerate(zip(d_real[f"feature_maps_{scale_name(s)}"], d_fake[f"feature_maps_{scale_name(s)}"])):
                    if i < len(lc.feature_matching) and lc.feature_matching[i]:
                        fm = fm + lc.feature_matching[i] * (a.detach() - b).abs().mean()
            logs["G/gan"] = gan.detach()
            logs["G/feature_matching"] = fm.detach()
            total = total + gan + fm
        if lc.equivariance_value + lc.equivariance_jacobian != 0:
            tc = lc.transform
            tr = RandomTPS(driving.shape[0], tc.sigma_affine, tc.sigma_tps, tc.points_tps, device=driving.device,
                           dtype=driving.dtype)
            kp_t = self.kp_detector(tr.transform_frame(driving))
            if lc.equivariance_value:
                ev = (kp_drv["value"] - tr.warp_coordinates(kp_t["value"])).abs().mean()
                logs["G/equivariance_value"] = ev.detach()
                total = total + lc.equivariance_value * ev
            if lc.equivariance_jacobian and "jacobian" in kp_drv:
                jt = torch.matmul(tr.jacobian(kp_t["value"]), kp_t["jacobian"])
                val = torch.matmul(torch.inverse(kp_drv["jacobian"]), jt)
                eye = torch.eye(2, device=val.device, dtype=val.dtype).view(1, 1, 2, 2)
                ej = (eye - val).abs().mean()
                logs["G/equivariance_jacobian"] = ej.detach()
                total = total + lc.equivariance_jacobian * ej
        logs["G/rec_l1"] = (pred - driving).abs().mean().detach()
        out = {"G": total, **logs}
        if self.gan_enabled:
            kp_det = kp_drv["value"].detach()
            d_fake = self.discriminator(pred.detach(), kp_det)
            d_real = self.discriminator(driving, kp_det)
            dl = pred.new_zeros(())
            for s in self.discriminator.scales:
                v = (1 - d_real[f"prediction_map_{scale_name(s)}"]) ** 2 + d_fake[f"prediction_map_{scale_name(s)}"] ** 2
                dl = dl + lc.discriminator_gan * v.mean()
            out["D"] = dl
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
