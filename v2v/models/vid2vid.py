"""vid2vid (Wang et al., NeurIPS 2018): sequential label-map-to-video synthesis.

Reads top to bottom as the paper's figure:

1. :class:`Vid2VidModelConfig` / :class:`Vid2VidDataConfig`: the YAML ``model:`` / ``data:`` sections
   (field names follow the official options where one exists: ``label_nc``, ``n_frames_G``, ...).
2. :func:`encode_labels`: one-hot label maps + instance-edge channel (pix2pixHD ``get_edges``).
3. :class:`CompositeGenerator`: label and previous-frame encoders, an image head (hallucinated
   frame H_t), a flow head (w_t, in pixels) and an occlusion/weight head (m_t), composited as
   ``X_t = (1 - m_t) * warp(X_{t-1}, w_t) + m_t * H_t``; optional foreground branch (``fg``).
4. Discriminators: a multi-scale image PatchGAN on (labels, frame) and ``n_scales_temporal``
   temporal PatchGANs on ``n_frames_D`` frames + flow (frames subsampled by ``n_frames_D**s``).
5. :class:`Vid2VidStream`: constant-memory frame-by-frame generation (first frames from real
   frames, from a single given first frame, or generated from nothing).
6. :class:`Vid2VidSystem`: the trainer interface (losses: GAN, feature matching, VGG, flow, warp,
   weight-mask regularization; progressive growth of the training clip length).

Conventions at the public boundary (System methods, :class:`Vid2VidStream`): images float32 in
[0,1] (``B,3,H,W``; videos ``B,T,3,H,W``), label maps integer ids ``B,H,W`` (``B,T,H,W``),
instance maps integer ``B,H,W``, flow ``B,2,H,W`` in pixels (x then y), backward:
``out(p) = img(p + flow(p))``. The networks themselves work on images in [-1,1] (as the official
code); the conversion happens in the System / stream.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.models.base import System
from v2v.registry import register_system
from v2v.nn.patchgan import MultiscalePatchDiscriminator, PatchDiscriminator
from v2v.nn.vid2vid_blocks import Decoder, Encoder, Head

__all__ = [
    "CompositeGenerator",
    "Vid2VidDataConfig",
    "Vid2VidModelConfig",
    "Vid2VidStream",
    "Vid2VidSystem",
    "check_labels",
    "encode_labels",
    "norm_statistics",
    "temporal_d_channels",
]


# ----------------------------------------------------------------------------------------------
# 1. Configs
# ----------------------------------------------------------------------------------------------
@dataclass
class Vid2VidModelConfig:
    """``model:`` section. Names follow the official vid2vid options where one exists."""

    # generator (official CompositeGenerator options)
    label_nc: int = 35                    # number of label ids (one-hot channels); ids must be < label_nc
    use_instance: bool = True             # append an instance-edge channel per frame (needs instance maps)
    output_nc: int = 3
    n_frames_G: int = 3                   # tG: label frames seen per step; tG-1 previous frames
    ngf: int = 128
    n_downsample_G: int = 3
    n_blocks: int = 9
    norm: str = "batch"                   # batch | instance
    no_flow: bool = False                 # no flow/weight heads: X_t = H_t
    fg: bool = False                      # separate foreground branch for fg_labels
    fg_labels: list[int] = field(default_factory=lambda: [26])
    n_scales_spatial: int = 1             # only 1 is implemented (compositeLocal not yet)
    first_frame: str = "real"             # real: first tG-1 frames given (official default);
                                          # generate: official --no_first_img (zeros + raw-only first frame)
    # discriminators
    ndf: int = 64
    n_layers_D: int = 3
    num_D: int = 2
    no_ganFeat: bool = False
    n_frames_D: int = 3
    n_scales_temporal: int = 2
    # losses
    gan_mode: str = "lsgan"
    lambda_feat: float = 10.0             # feature matching (and VGG, as the official code)
    lambda_vgg: float = 10.0
    lambda_F: float = 10.0                # flow loss vs reference flow
    lambda_T: float = 10.0                # warp losses
    lambda_W: float = 1.0                 # weight-mask regularization (prefer warping where flow is reliable)
    use_vgg: bool = True
    vgg_weights: str | None = None        # path to vgg19 weights (else $V2V_WEIGHTS / torch hub cache)
    vgg_random_init: bool = False         # explicitly allow random VGG weights (tests only)
    flow_method: str = "dis"              # reference flow between real frames: dis | farneback | raft | auto
                                          # (auto = raft when its weights are found, else dis)
    flow_conf_threshold: float = 0.02     # conf = |real_t - warp(real_{t-1}, flow_ref)|^2 < thr (in [-1,1])
    # progressive temporal training: clip length grows n_frames_start, x2 every n_frames_grow_every
    # steps, up to n_frames_total (0 = no growth: always n_frames_total)
    n_frames_total: int = 6
    n_frames_start: int = 0               # 0 = n_frames_G + 1
    n_frames_grow_every: int = 0


@dataclass
class Vid2VidDataConfig:
    """``data:`` section: a vid2vid-layout folder (``{split}_A``, ``{split}_B``, ``{split}_inst``,
    optional ``{split}_flowprev`` / ``{split}_occprev`` ground-truth flow, e.g. synthetic toycity)."""

    root: str = ""
    size: list[int] = field(default_factory=lambda: [256, 512])   # H, W after resizing
    n_frames: int = 6                     # frames per training clip (>= model.n_frames_total)
    label_nc: int = 35
    use_instance: bool = True
    train_split: str = "train"
    test_split: str = "test"
    max_frames: int = 0                   # use only the first N frames of each sequence (0 = all)
    clip_step: int = 1                    # start frame step between clips


def temporal_d_channels(output_nc: int, n_frames_D: int) -> int:
    """Input channels of a temporal discriminator: tD frames then tD-1 flows (flow_ref / 20)."""
    return output_nc * n_frames_D + 2 * (n_frames_D - 1)


# ----------------------------------------------------------------------------------------------
# 2. Input encoding
# ----------------------------------------------------------------------------------------------
def check_labels(labels: torch.Tensor, label_nc: int, where: str = "label map") -> None:
    """Raise V2VError if any id is outside ``0..label_nc-1`` (names the offending value)."""
    if labels.numel() == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if hi >= label_nc or lo < 0:
        bad = hi if hi >= label_nc else lo
        raise V2VError(f"{where}: label id {bad} is outside 0..{label_nc - 1} (the model's label_nc is "
                       f"{label_nc}); remap the ids or use a model with a larger label_nc")


def instance_edges(inst: torch.Tensor) -> torch.Tensor:
    """pix2pixHD ``get_edges``: ``B,H,W`` instance ids -> ``B,1,H,W`` float, 1 where a 4-neighbour differs."""
    from v2v.ops.labels import instance_edges as _edges

    return _edges(inst)


def encode_labels(labels: torch.Tensor, instances: torch.Tensor | None, label_nc: int,
                  use_instance: bool, dtype=torch.float32) -> torch.Tensor:
    """Label ids (+ instance ids) -> generator input channels.

    Args:
        labels: integer ids ``B,H,W`` (or ``B,T,H,W``), values in ``0..label_nc-1``.
        instances: integer instance ids of the same shape (only neighbour inequality matters), or
            None when ``use_instance`` is False.
    Returns: ``B,label_nc(+1),H,W`` (or ``B,T,...``) float: one-hot channels (channel c = label==c),
        then the instance-edge channel.
    """
    if labels.dim() == 4:
        b, t = labels.shape[:2]
        inst = instances.flatten(0, 1) if instances is not None else None
        out = encode_labels(labels.flatten(0, 1), inst, label_nc, use_instance, dtype)
        return out.view(b, t, *out.shape[1:])
    onehot = F.one_hot(labels.long(), label_nc).permute(0, 3, 1, 2).to(dtype)
    if not use_instance:
        return onehot
    if instances is None:
        raise V2VError("this model uses instance maps (use_instance: true) but none were given")
    return torch.cat([onehot, instance_edges(instances).to(dtype)], 1)


@contextlib.contextmanager
def norm_statistics(module: nn.Module, mode: str):
    """Temporarily choose which statistics normalization layers use.

    ``mode="batch"``: normalize with the statistics of the current input (what the official
    test.py does, since it never calls ``.eval()``), WITHOUT updating the running buffers;
    ``mode="running"``: use the stored running statistics (``.eval()``); ``mode="module"``: leave as is.
    """
    if mode == "module":
        yield module
        return
    if mode not in ("batch", "running"):
        raise V2VError(f"norm statistics mode must be 'batch' or 'running', got '{mode}'")
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    saved = [(m, m.training, m.momentum) for m in norms]
    try:
        for m in norms:
            if mode == "batch":
                m.train(True)
                m.momentum = 0.0  # running stats: (1-0)*old + 0*new = unchanged
            else:
                m.train(False)
        yield module
    finally:
        for m, tr, mom in saved:
            m.train(tr)
            m.momentum = mom


# ----------------------------------------------------------------------------------------------
# 3. Generator
# ----------------------------------------------------------------------------------------------
class CompositeGenerator(nn.Module):
    """The vid2vid sequential generator F (official ``CompositeGenerator``, one spatial scale).

    ``down = label_encoder(labels) + prev_encoder(prev)``;
    ``H_t = tanh(image_head(image_branch(down)))``;
    ``f = flow_branch(down)``, ``w_t = 20 * flow_head(f)`` (pixels), ``m_t = sigmoid(weight_head(f))``;
    ``X_t = m_t * H_t + (1 - m_t) * warp(prev_last, w_t)``.
    With ``fg``: a foreground branch renders ``F_t`` and ``X_t = M * F_t + (1 - M) * X_t`` for the
    foreground mask M (one-hot channels of ``fg_labels`` of the current frame).

    Internal network: images in [-1,1] (see :class:`Vid2VidStream` / :class:`Vid2VidSystem` for
    the [0,1] public API).
    """

    def __init__(self, label_channels: int, prev_channels: int, output_nc: int = 3, ngf: int = 64,
                 n_downsample: int = 3, n_blocks: int = 9, norm: str = "batch", use_flow: bool = True,
                 use_fg: bool = False):
        super().__init__()
        self.use_flow = use_flow
        self.use_fg = use_fg
        self.output_nc = output_nc
        ch = ngf * 2**n_downsample
        n_enc = n_blocks - n_blocks // 2
        self.label_encoder = Encoder(label_channels, ngf, n_downsample, n_enc, norm)
        self.prev_encoder = Encoder(prev_channels, ngf, n_downsample, n_enc, norm)
        self.image_branch = Decoder(ch, n_downsample, n_blocks // 2, norm)
        self.image_head = Head(ngf, output_nc)
        if use_flow:
            self.flow_branch = Decoder(ch, n_downsample, n_blocks // 2, norm)
            self.flow_head = Head(ngf, 2)
            self.weight_head = Head(ngf, 1)
        if use_fg:
            ngf_fg = ngf // 2 if n_downsample > 2 else ngf
            self.fg_encoder = Encoder(label_channels, ngf_fg, n_downsample, 0, norm)
            self.fg_branch = Decoder(ngf_fg * 2**n_downsample, n_downsample, n_blocks, norm)
            self.fg_head = Head(ngf_fg, output_nc)

    def forward(self, labels: torch.Tensor, prev: torch.Tensor, fg_mask: torch.Tensor | None = None,
                raw_only: bool = False, return_features: bool = False) -> dict[str, torch.Tensor]:
        """One step.

        Args:
            labels: ``B, tG*Cl, H, W`` encoded label frames t-tG+1..t, oldest first.
            prev: ``B, (tG-1)*3, H, W`` previous output frames in [-1,1], oldest first.
            fg_mask: ``B,1,H,W`` foreground mask (required when the generator has ``fg``).
            raw_only: output the hallucinated image only (official ``--no_first_img`` first frame).
        Returns dict: ``image`` (X_t), ``raw_image`` (H_t) in [-1,1] ``B,3,H,W``; with flow also
            ``flow`` ``B,2,H,W`` (pixels), ``weight`` ``B,1,H,W`` (weight of H_t), ``warped_prev``;
            ``down`` (encoder sum) when ``return_features``.
        """
        from v2v.ops.warp import warp

        down = self.label_encoder(labels) + self.prev_encoder(prev)
        raw = torch.tanh(self.image_head(self.image_branch(down)))
        out = {}
        image = raw
        if self.use_flow:
            f = self.flow_branch(down)
            flow = self.flow_head(f) * 20.0
            weight = torch.sigmoid(self.weight_head(f))
            out["flow"], out["weight"] = flow, weight
            if not raw_only:
                last = prev[:, -self.output_nc:]
                warped = warp(last, flow, padding_mode="border", align_corners=True)
                out["warped_prev"] = warped
                image = raw * weight + warped * (1 - weight)
        if self.use_fg:
            if fg_mask is None:
                raise ValueError("generator has a foreground branch: fg_mask is required")
            fg = torch.tanh(self.fg_head(self.fg_branch(self.fg_encoder(labels))))
            image = fg * fg_mask + image * (1 - fg_mask)
            raw = fg * fg_mask + raw * (1 - fg_mask)
        out["image"], out["raw_image"] = image, raw
        if return_features:
            out["down"] = down
        return out


def build_generator(cfg: Vid2VidModelConfig) -> CompositeGenerator:
    """The generator described by ``cfg`` (validates the options it cannot honour)."""
    if cfg.n_scales_spatial != 1:
        raise V2VError(f"n_scales_spatial={cfg.n_scales_spatial}: only 1 spatial scale is implemented "
                       "(the official compositeLocal coarse-to-fine generators are not yet)")
    if cfg.n_frames_G < 2:
        raise V2VError(f"n_frames_G must be >= 2 (got {cfg.n_frames_G})")
    lc = cfg.label_nc + (1 if cfg.use_instance else 0)
    return CompositeGenerator(lc * cfg.n_frames_G, (cfg.n_frames_G - 1) * cfg.output_nc, cfg.output_nc,
                              cfg.ngf, cfg.n_downsample_G, cfg.n_blocks, cfg.norm,
                              use_flow=not cfg.no_flow, use_fg=cfg.fg)


def foreground_mask(encoded: torch.Tensor, fg_labels) -> torch.Tensor:
    """``B,Cl,H,W`` encoded current frame -> ``B,1,H,W`` clamp(sum of one-hot channels fg_labels)."""
    m = encoded[:, list(fg_labels)].sum(1, keepdim=True)
    return m.clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# 4. Discriminators
# ----------------------------------------------------------------------------------------------
def _multiscale_d(in_ch: int, cfg: Vid2VidModelConfig) -> MultiscalePatchDiscriminator:
    """vid2vid's MultiscaleDiscriminator: like pix2pixHD's, except scale k (``scales[k]``) has width
    ``min(64, ndf * 2**(num_D-1-k))`` (official ``ndf_max = 64``)."""
    trs = True if cfg.norm == "instance" else None
    D = MultiscalePatchDiscriminator(in_ch, cfg.ndf, cfg.n_layers_D, cfg.norm, num_D=cfg.num_D,
                                     get_interm_feat=not cfg.no_ganFeat, track_running_stats=trs)
    D.scales = nn.ModuleList(
        PatchDiscriminator(in_ch, min(64, cfg.ndf * 2 ** (cfg.num_D - 1 - k)), cfg.n_layers_D, cfg.norm,
                           get_interm_feat=not cfg.no_ganFeat, track_running_stats=trs)
        for k in range(cfg.num_D))
    return D


def build_image_discriminator(cfg: Vid2VidModelConfig) -> MultiscalePatchDiscriminator:
    """Multi-scale PatchGAN on cat(encoded labels of frame t, frame t in [-1,1])."""
    lc = cfg.label_nc + (1 if cfg.use_instance else 0)
    return _multiscale_d(lc + cfg.output_nc, cfg)


def build_temporal_discriminator(cfg: Vid2VidModelConfig) -> MultiscalePatchDiscriminator:
    """Multi-scale PatchGAN on n_frames_D frames (oldest first) + n_frames_D-1 reference flows / 20."""
    return _multiscale_d(temporal_d_channels(cfg.output_nc, cfg.n_frames_D), cfg)


# ----------------------------------------------------------------------------------------------
# 5. Streaming generation
# ----------------------------------------------------------------------------------------------
class Vid2VidStream:
    """Frame-by-frame generation with constant memory (keeps only tG label encodings and tG-1 frames).

    Args:
        generator: a :class:`CompositeGenerator`.
        cfg: its :class:`Vid2VidModelConfig`.
        first_frames: list of real first frames (``3,H,W`` or ``1,3,H,W`` in [0,1]). With tG-1 or
            more frames the first tG-1 label maps are "generated" as those frames (official test.py
            ``--use_real_img``); with fewer, the window is padded by repeating the first frame and
            first label map; with none the first frame is generated from the labels alone
            (zero previous frames, hallucinated image only: official ``--no_first_img``).
        norm_stats: ``"batch"`` (official test.py: BN statistics of each frame) or ``"running"``.
        precision: ``"fp32"`` or ``"bf16"`` (autocast).
        channels_last: run the convolutions in NHWC memory layout (0.8x-1.2x on a CPU depending on
            size; outputs equal only up to float rounding, which per-frame BatchNorm statistics can
            amplify along a sequence). Converts ``generator`` in place.

    ``step(labels, instances) -> B,3,H,W`` in [0,1]: one output frame per label map
    (``labels``: ``B,H,W`` integer ids; ``instances``: ``B,H,W`` or None).
    """

    def __init__(self, generator: CompositeGenerator, cfg: Vid2VidModelConfig, first_frames=None,
                 norm_stats: str = "batch", precision: str = "fp32", channels_last: bool = False):
        self.channels_last = channels_last
        self.G = generator.to(memory_format=torch.channels_last) if channels_last else generator
        self.cfg = cfg
        self.tG = cfg.n_frames_G
        self.first = [f if f.dim() == 4 else f.unsqueeze(0) for f in (first_frames or [])]
        self.norm_stats = norm_stats
        if precision not in ("fp32", "bf16"):
            raise V2VError(f"precision must be fp32 or bf16, got '{precision}'")
        self.precision = precision
        self.labels: collections.deque = collections.deque(maxlen=self.tG)
        self.prev: collections.deque = collections.deque(maxlen=self.tG - 1)
        self.t = 0
        self.last_outputs: dict = {}

    def _device(self):
        return next(self.G.parameters()).device

    def _encode(self, labels, instances):
        check_labels(labels, self.cfg.label_nc)
        if self.cfg.use_instance and instances is None:
            raise V2VError("this model uses instance maps (use_instance: true): give --instances "
                           "(an instance-map folder/video) or use a model without use_instance")
        dev = self._device()
        return encode_labels(labels.to(dev), None if instances is None else instances.to(dev),
                             self.cfg.label_nc, self.cfg.use_instance)

    @torch.no_grad()
    def step(self, labels: torch.Tensor, instances: torch.Tensor | None = None) -> torch.Tensor:
        """Feed label map t; returns output frame t, ``B,3,H,W`` in [0,1]."""
        enc = self._encode(labels, instances)
        t = self.t
        self.t += 1
        n_real = len(self.first)
        need = self.tG - 1
        if t < min(n_real, need):  # seed the window with a given real frame
            frame = self.first[t].to(enc.device, torch.float32) * 2 - 1
            if t == 0:
                for _ in range(need - n_real):  # fewer frames than tG-1: repeat the first one
                    self.labels.append(enc)
                    self.prev.append(frame)
            self.labels.append(enc)
            self.prev.append(frame)
            return ((frame + 1) / 2).clamp(0, 1)
        raw_only = False
        if t == 0:  # n_real == 0
            # nothing given: pad the window with the first labels and zero frames, output H_t only
            for _ in range(self.tG - 1):
                self.labels.append(enc)
                self.prev.append(torch.zeros(enc.shape[0], self.cfg.output_nc, *enc.shape[2:], device=enc.device))
            raw_only = True
        self.labels.append(enc)
        lab = torch.cat(list(self.labels), 1)
        prev = torch.cat(list(self.prev), 1)
        mask = foreground_mask(enc, self.cfg.fg_labels) if self.cfg.fg else None
        if self.channels_last:
            lab = lab.contiguous(memory_format=torch.channels_last)
            prev = prev.contiguous(memory_format=torch.channels_last)
        ctx = (torch.autocast(enc.device.type, dtype=torch.bfloat16) if self.precision == "bf16"
               else contextlib.nullcontext())
        with norm_statistics(self.G, self.norm_stats), ctx:
            out = self.G(lab, prev, mask, raw_only=raw_only)
        image = out["image"].float()
        self.last_outputs = out
        self.prev.append(image)
        return ((image + 1) / 2).clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# 6. System (training)
# ----------------------------------------------------------------------------------------------
def _masked_l1(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """official MaskedL1Loss: mean |x*m - y*m| with the mask broadcast over channels."""
    m = mask.expand_as(x)
    return F.l1_loss(x * m, y * m)


@register_system("vid2vid", compat="v2v.compat.vid2vid", commands="v2v.commands.vid2vid")
class Vid2VidSystem(System):
    """vid2vid: generator + image discriminator + temporal discriminators (see module docstring).

    Batches (from :class:`v2v.data.datasets.LabelSequenceDataset`): ``labels`` ``B,T,H,W`` long,
    ``instances`` ``B,T,H,W``, ``images`` ``B,T,3,H,W`` in [0,1], optional ``flowprev``
    ``B,T-1,2,H,W`` (pixels; entry k lives on frame k+1 and warps frame k onto it) and ``occprev``
    ``B,T-1,1,H,W`` (1 = flow invalid); without them the reference flow is estimated
    (``flow_method``).
    """

    ModelConfig = Vid2VidModelConfig
    DataConfig = Vid2VidDataConfig

    def __init__(self, cfg: Vid2VidModelConfig):
        super().__init__()
        if cfg.first_frame not in ("real", "generate"):
            raise V2VError(f"model.first_frame must be 'real' or 'generate', got '{cfg.first_frame}'")
        if cfg.fg:
            bad = [c for c in cfg.fg_labels if not 0 <= c < cfg.label_nc]
            if bad:
                raise V2VError(f"model.fg_labels {bad} outside 0..{cfg.label_nc - 1}")
        self.cfg = cfg
        self.netG = build_generator(cfg)
        self.netD = build_image_discriminator(cfg)
        self.netD_T = nn.ModuleList(build_temporal_discriminator(cfg) for _ in range(cfg.n_scales_temporal))
        self._vgg = None
        self._gan = None

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, model_cfg):
        if isinstance(model_cfg, dict):
            from v2v.config import from_dict

            model_cfg = from_dict(Vid2VidModelConfig, model_cfg, prefix="model")
        return cls(model_cfg)

    @classmethod
    def build_dataset(cls, data_cfg, split: str, model_cfg=None):
        """:class:`v2v.data.datasets.LabelSequenceDataset` clips; None when the split is absent
        (except ``train``, which must exist)."""
        import os

        from v2v.data.datasets import LabelSequenceDataset

        if model_cfg is not None:
            if data_cfg.label_nc != model_cfg.label_nc:
                raise V2VError(f"data.label_nc={data_cfg.label_nc} but model.label_nc={model_cfg.label_nc}")
            if model_cfg.use_instance and not data_cfg.use_instance:
                raise V2VError("model.use_instance is true but data.use_instance is false: the model needs "
                               "instance maps")
        name = data_cfg.train_split if split == "train" else data_cfg.test_split
        if split != "train" and not (os.path.isdir(os.path.join(data_cfg.root, f"{name}_A"))
                                     and os.path.isdir(os.path.join(data_cfg.root, f"{name}_B"))):
            return None  # no held-out split with ground-truth frames: nothing to evaluate
        return LabelSequenceDataset(data_cfg.root, split=name, n_frames=data_cfg.n_frames,
                                    label_nc=data_cfg.label_nc, use_instance=data_cfg.use_instance,
                                    size=tuple(data_cfg.size), max_frames=data_cfg.max_frames or None,
                                    clip_step=data_cfg.clip_step)

    def optim_groups(self):
        return {"G": list(self.netG.parameters()),
                "D": list(self.netD.parameters()) + list(self.netD_T.parameters())}

    def generator_module(self):
        return self.netG

    # --- helpers ------------------------------------------------------------------------------
    @property
    def gan(self):
        if self._gan is None:
            from v2v.losses.gan import GANLoss

            self._gan = GANLoss(self.cfg.gan_mode)
        return self._gan

    @property
    def vgg(self):
        if self._vgg is None and self.cfg.use_vgg:
            from v2v.losses.perceptual import VGGLoss

            weights = "random" if self.cfg.vgg_random_init else self.cfg.vgg_weights
            vgg = VGGLoss(weights=weights, normalize="pix2pixhd")
            vgg.to(next(self.parameters()).device)
            object.__setattr__(self, "_vgg", vgg)  # not a submodule: not saved, not optimized
        return self._vgg

    def frames_at(self, step: int) -> int:
        """Training clip length at ``step`` (progressive temporal training)."""
        c = self.cfg
        if c.n_frames_grow_every <= 0:
            return c.n_frames_total
        start = c.n_frames_start or (c.n_frames_G + 1)
        return int(min(c.n_frames_total, start * 2 ** (step // c.n_frames_grow_every)))

    def _encode_batch(self, batch, T):
        labels = batch["labels"][:, :T]
        inst = batch.get("instances")
        if self.cfg.use_instance and inst is None:
            raise V2VError("model.use_instance is true but the batch has no 'instances'")
        inst = inst[:, :T] if (inst is not None and self.cfg.use_instance) else None
        return encode_labels(labels, inst, self.cfg.label_nc, self.cfg.use_instance)

    def run_generator(self, enc: torch.Tensor, real: torch.Tensor | None, detach_prev: bool = True):
        """Generate frames tG-1..T-1 of a clip.

        Args:
            enc: ``B,T,Cl,H,W`` encoded labels.
            real: ``B,T,3,H,W`` real frames in [-1,1] (first tG-1 seed the generator), or None
                (``first_frame: generate``: zero previous frames, raw-only first step).
        Returns dict of ``B,N,...`` stacks (N = T-tG+1) in [-1,1]: image, raw_image, flow, weight.
        """
        tG = self.cfg.n_frames_G
        B, T = enc.shape[:2]
        H, W = enc.shape[-2:]
        if real is not None and self.cfg.first_frame == "real":
            prev = [real[:, i] for i in range(tG - 1)]
            raw_first = False
        else:
            prev = [enc.new_zeros(B, self.cfg.output_nc, H, W) for _ in range(tG - 1)]
            raw_first = True
        outs = collections.defaultdict(list)
        for t in range(tG - 1, T):
            lab = enc[:, t - tG + 1:t + 1].flatten(1, 2)
            p = torch.cat(prev[-(tG - 1):], 1)
            if detach_prev:
                p = p.detach()
            mask = foreground_mask(enc[:, t], self.cfg.fg_labels) if self.cfg.fg else None
            o = self.netG(lab, p, mask, raw_only=raw_first and t == tG - 1)
            for k in ("image", "raw_image", "flow", "weight"):
                if k in o:
                    outs[k].append(o[k])
            prev.append(o["image"])
            prev = prev[-(tG - 1):]
        return {k: torch.stack(v, 1) for k, v in outs.items()}

    def _reference_flow(self, cur01: torch.Tensor, prev01: torch.Tensor):
        """Flow warping prev onto cur (``N,2,H,W`` pixels) from the shared estimator, no grad."""
        from v2v.ops.flow_estimation import estimate_flow

        method = self.cfg.flow_method
        if method == "auto":  # RAFT when its weights are on disk, else DIS
            from v2v.weights import find_weights

            try:
                find_weights("raft_large")
                method = "raft"
            except V2VError:
                method = "dis"
        with torch.no_grad():
            return estimate_flow(cur01.float(), prev01.float(), method=method)

    def _confidence(self, cur, prev, flow):
        from v2v.ops.warp import warp

        err = (cur - warp(prev, flow, padding_mode="border", align_corners=True)).pow(2).sum(1, keepdim=True)
        return (err < self.cfg.flow_conf_threshold).float()

    # --- training -----------------------------------------------------------------------------
    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        from v2v.losses.feature_matching import feature_matching_loss
        from v2v.ops.warp import warp

        c = self.cfg
        tG, tD = c.n_frames_G, c.n_frames_D
        T = min(self.frames_at(step), batch["labels"].shape[1])
        if T < tG:
            raise V2VError(f"training clips have {T} frames; need at least n_frames_G={tG}")
        enc = self._encode_batch(batch, T)
        real = batch["images"][:, :T].float() * 2 - 1
        B, _, _, H, W = real.shape
        gen = self.run_generator(enc, real)
        N = T - tG + 1
        fake = gen["image"]                          # B,N,3,H,W
        real_cur = real[:, tG - 1:]
        real_prev = real[:, tG - 2:T - 1]
        enc_cur = enc[:, tG - 1:]
        flat = lambda x: x.reshape(B * N, *x.shape[2:])
        fake_f, real_f, real_prev_f, enc_f = flat(fake), flat(real_cur), flat(real_prev), flat(enc_cur)
        raw_f = flat(gen["raw_image"])

        # reference flow between real frames (ground truth when the data ships it: flowprev[k]
        # lives on frame k+1 and warps frame k onto it; occprev 1 = invalid)
        gt_flow = batch.get("flowprev") is not None and batch["flowprev"].shape[1] >= T - 1
        if gt_flow:
            flow_ref = flat(batch["flowprev"][:, tG - 2:T - 1].float())
            if batch.get("occprev") is not None:
                conf = 1 - flat(batch["occprev"][:, tG - 2:T - 1].float())
            else:
                conf = self._confidence(real_f, real_prev_f, flow_ref)
        else:
            flow_ref = self._reference_flow((real_f + 1) / 2, (real_prev_f + 1) / 2)
            conf = self._confidence(real_f, real_prev_f, flow_ref)

        logs = {}
        zero = fake.new_zeros(())
        g_flow = g_warp = g_w = zero
        if not c.no_flow:
            flow_f, weight_f = flat(gen["flow"]), flat(gen["weight"])
            g_flow = _masked_l1(flow_f, flow_ref, conf) * c.lambda_F
            g_warp = _masked_l1(warp(real_prev_f, flow_f, padding_mode="border", align_corners=True),
                                real_f, conf) * c.lambda_T
            g_w = _masked_l1(weight_f, torch.zeros_like(weight_f), conf) * c.lambda_W
        # warp loss on the output: X_t close to the previous OUTPUT warped by the reference flow
        fake_prev = torch.cat([real[:, tG - 2:tG - 1], fake[:, :-1].detach()], 1) \
            if c.first_frame == "real" else torch.cat([fake[:, :1].detach(), fake[:, :-1].detach()], 1)
        fake_prev_warp = warp(flat(fake_prev), flow_ref, padding_mode="border", align_corners=True)
        g_out_warp = _masked_l1(fake_f, fake_prev_warp.detach(), conf) * c.lambda_T

        # VGG
        g_vgg = zero
        if c.use_vgg:
            g_vgg = self.vgg((fake_f + 1) / 2, (real_f + 1) / 2) * c.lambda_vgg
            if not c.no_flow:
                g_vgg = g_vgg + self.vgg((raw_f + 1) / 2, (real_f + 1) / 2) * c.lambda_vgg

        # image discriminator (final and raw frames)
        g_gan = g_fm = zero
        d_loss = zero
        fakes_for_d = [fake_f] + ([raw_f] if not c.no_flow else [])
        pred_real = self.netD(torch.cat([enc_f, real_f], 1))
        for fk in fakes_for_d:
            pred_fake_d = self.netD(torch.cat([enc_f, fk.detach()], 1))
            d_loss = d_loss + 0.5 * (self.gan(pred_real, True) + self.gan(pred_fake_d, False))
            pred_fake = self.netD(torch.cat([enc_f, fk], 1))
            g_gan = g_gan + self.gan(pred_fake, True, for_discriminator=False)
            if not c.no_ganFeat:
                g_fm = g_fm + feature_matching_loss(pred_fake, pred_real) * c.lambda_feat

        # temporal discriminators: tD frames subsampled by tD**s (the last window of the clip)
        gt_gan = gt_fm = zero
        real01 = (real + 1) / 2
        for s, netDT in enumerate(self.netD_T):
            stride = tD ** s
            span = (tD - 1) * stride + 1
            if span > N:
                continue
            idx = [N - span + k * stride for k in range(tD)]
            r = real_cur[:, idx]
            f = fake[:, idx]
            if s == 0:
                fl = flow_ref.view(B, N, 2, H, W)[:, idx[1:]]
            else:
                cur = real01[:, tG - 1:][:, idx[1:]].reshape(-1, 3, H, W)
                prv = real01[:, tG - 1:][:, idx[:-1]].reshape(-1, 3, H, W)
                fl = self._reference_flow(cur, prv).view(B, tD - 1, 2, H, W)
            fl = fl.reshape(B, -1, H, W) / 20.0
            r_in = torch.cat([r.reshape(B, -1, H, W), fl], 1)
            f_in = torch.cat([f.reshape(B, -1, H, W), fl], 1)
            pr = netDT(r_in)
            pf_d = netDT(f_in.detach())
            d_loss = d_loss + 0.5 * (self.gan(pr, True) + self.gan(pf_d, False))
            pf = netDT(f_in)
            gt_gan = gt_gan + self.gan(pf, True, for_discriminator=False)
            if not c.no_ganFeat:
                gt_fm = gt_fm + feature_matching_loss(pf, pr) * c.lambda_feat

        g_loss = g_gan + g_fm + g_vgg + g_flow + g_warp + g_w + g_out_warp + gt_gan + gt_fm
        with torch.no_grad():
            l1 = (fake_f - real_f).abs().mean() / 2
        logs.update({"G": g_loss, "D": d_loss, "G/gan": g_gan.detach(), "G/feat": g_fm.detach(),
                     "G/vgg": g_vgg.detach(), "G/flow": g_flow.detach(), "G/flow_warp": g_warp.detach(),
                     "G/weight": g_w.detach(), "G/warp": g_out_warp.detach(), "G/t_gan": gt_gan.detach(),
                     "G/t_feat": gt_fm.detach(), "G/l1": l1, "frames": torch.tensor(float(T))})
        return logs

    # --- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, labels: torch.Tensor, instances: torch.Tensor | None = None,
                 first_frames: torch.Tensor | None = None) -> torch.Tensor:
        """Whole-clip generation. ``labels`` ``B,T,H,W``; ``first_frames`` ``B,k,3,H,W`` in [0,1]
        (k >= n_frames_G-1 real frames, or None for ``first_frame: generate``).
        Returns ``B,T,3,H,W`` in [0,1]: the given first frames, then the generated ones."""
        enc = encode_labels(labels, instances if self.cfg.use_instance else None, self.cfg.label_nc,
                            self.cfg.use_instance)
        real = None if first_frames is None else first_frames.float() * 2 - 1
        if real is not None and real.shape[1] < self.cfg.n_frames_G - 1:
            raise V2VError(f"need {self.cfg.n_frames_G - 1} first frames, got {real.shape[1]}")
        gen = self.run_generator(enc, real)
        tG = self.cfg.n_frames_G
        if real is not None and self.cfg.first_frame == "real":
            head = real[:, :tG - 1]
        else:  # no real frames: repeat the first generated frame for the tG-1 context slots
            head = gen["image"][:, :1].expand(-1, tG - 1, -1, -1, -1)
        return ((torch.cat([head, gen["image"]], 1) + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        imgs = batch["images"].float()
        T = imgs.shape[1]
        out = self.generate(batch["labels"], batch.get("instances"), imgs[:, :self.cfg.n_frames_G - 1])
        return {"real": imgs, "fake": out[:, :T]}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Mean L1 (in [0,1]) of the generated frames t >= n_frames_G-1 against the ground truth."""
        tG = self.cfg.n_frames_G
        imgs = batch["images"].float()
        out = self.generate(batch["labels"], batch.get("instances"), imgs[:, :tG - 1])
        return {"l1": float((out[:, tG - 1:] - imgs[:, tG - 1:]).abs().mean())}


def config_from_official_options(opt: dict) -> Vid2VidModelConfig:
    """Official option dict (opt.txt / options.json names) -> :class:`Vid2VidModelConfig`.

    Everything is derived from the options (no hardcoded sizes). Unknown options are ignored
    (they are run-environment or dataset options).
    """
    names = {f.name for f in dataclasses.fields(Vid2VidModelConfig)}
    kw = {}
    for k, v in opt.items():
        if k in names:
            kw[k] = v
    if "gan_mode" in kw and kw["gan_mode"] == "ls":
        kw["gan_mode"] = "lsgan"
    kw["use_vgg"] = not opt.get("no_vgg", False)
    if opt.get("no_first_img"):
        kw["first_frame"] = "generate"
    if opt.get("netG", "composite") not in ("composite",):
        raise V2VError(f"official option netG='{opt.get('netG')}' is not supported (only 'composite')")
    if int(opt.get("label_nc", 1)) == 0:
        raise V2VError("official option label_nc=0 (RGB/edge inputs) is not supported; vid2vid here takes label maps")
    if opt.get("use_single_G"):
        raise V2VError("official option use_single_G (separate first-frame generator) is not supported")
    from v2v.config import from_dict

    return from_dict(Vid2VidModelConfig, kw, prefix="options")
