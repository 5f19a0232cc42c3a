"""vid2vid (Wang et al., NeurIPS 2018): sequential, coarse-to-fine label-map-to-video synthesis.

Reads top to bottom as the paper's figure:

1. :class:`Vid2VidModelConfig`: the YAML ``model:`` section (official option names where one exists).
2. :func:`encode_labels`, :func:`label_pyramid`: one-hot labels + instance edges, and the spatial
   pyramid every scale reads (official ``encode_input`` / ``build_pyr``).
3. :class:`CompositeGenerator` (coarsest scale) and :class:`CompositeLocalGenerator` (finer
   scales): the sequential generator F of Eq. (4),
   ``x_t = (1 - m_t) * warp(x_{t-1}, w_t) + m_t * h_t``, with a foreground branch (Eq. 5);
   :class:`Vid2VidGenerator` runs them coarse to fine (Sec. 3.2 "spatio-temporally progressive").
4. Discriminators (training only): image PatchGAN D_I and temporal PatchGANs D_V (Sec. 3.1).
5. :class:`Vid2VidStream`: constant-memory frame-by-frame generation; the first frames are real,
   made by the single-image pix2pixHD generator (``use_single_G``) or generated from nothing.
6. :class:`Vid2VidSystem`: the trainer interface (losses of Eq. 6-8).

Public boundary: images [0,1] (``B,3,H,W``; clips ``B,T,3,H,W``), label maps integer ``B,H,W``,
flows ``B,2,H,W`` in pixels (x, y), backward. Networks work in [-1,1] as the official code.
Networks keep the official layout: an official ``latest_net_G<s>.pth`` IS the state dict of ``scales.<s>``.
"""
from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from v2v.errors import V2VError
from v2v.models.base import System
from v2v.nn.pix2pixhd import GlobalGenerator, LocalEnhancer, ResnetBlock, down_layers, stem_layers, up_layers
from v2v.nn.vid2vid_blocks import check_labels, encode_labels, foreground_mask, label_pyramid, norm_statistics
from v2v.registry import register_system

__all__ = ["CompositeGenerator", "CompositeLocalGenerator", "Vid2VidDataConfig", "Vid2VidGenerator",
           "Vid2VidModelConfig", "Vid2VidStream", "Vid2VidSystem", "build_first_frame_generator",
           "build_generator", "check_labels", "check_size", "encode_labels", "foreground_mask",
           "label_pyramid", "norm_statistics", "temporal_d_channels"]


# ----------------------------------------------------------------------------------------------
# 1. Config
# ----------------------------------------------------------------------------------------------
@dataclass
class Vid2VidModelConfig:
    """``model:`` section. Names follow the official vid2vid options where one exists."""

    label_nc: int = 35                    # label ids (one-hot channels); ids must be < label_nc
    use_instance: bool = True             # + an instance-edge channel per frame
    output_nc: int = 3
    n_frames_G: int = 3                   # tG: label frames per step; tG-1 previous frames
    ngf: int = 128                        # width of the coarsest scale; scale s has ngf // 2**s
    n_downsample_G: int = 3
    n_blocks: int = 9
    n_blocks_local: int = 3               # residual blocks of every finer scale
    n_scales_spatial: int = 1             # 1..3 coarse-to-fine scales (G0 coarsest)
    norm: str = "batch"                   # batch | instance
    no_flow: bool = False
    fg: bool = False
    fg_labels: list[int] = field(default_factory=lambda: [26])
    first_frame: str = "real"             # real | generate (--no_first_img) | single_G (--use_single_G)
    # the single-image first-frame generator (official load_single_G): global | local
    first_frame_G: str = "global"
    first_frame_ngf: int = 64
    first_frame_n_downsample: int = 4
    n_local_enhancers: int = 1
    # discriminators
    ndf: int = 64
    n_layers_D: int = 3
    num_D: int = 2
    no_ganFeat: bool = False
    n_frames_D: int = 3
    n_scales_temporal: int = 2
    # losses
    gan_mode: str = "lsgan"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_F: float = 10.0
    lambda_T: float = 10.0
    lambda_W: float = 1.0
    use_vgg: bool = True
    vgg_weights: str | None = None
    vgg_random_init: bool = False
    flow_method: str = "dis"              # reference flow: dis | farneback | raft | auto
    flow_conf_threshold: float = 0.02
    # schedule: clip length grows from n_frames_start x2 every n_frames_grow_every steps
    n_frames_total: int = 6
    n_frames_start: int = 0
    n_frames_grow_every: int = 0
    niter_fix_global: int = 0             # steps (official: epochs) training only the finest scale
    load_pretrain: str = ""               # v2v checkpoint of a lower-resolution run: its scales seed ours


@dataclass
class Vid2VidDataConfig:
    """``data:`` section: a vid2vid-layout folder (``{split}_A``, ``{split}_B``, ``{split}_inst``,
    optional ``{split}_flowprev`` / ``{split}_occprev`` ground-truth flow, e.g. synthetic toycity)."""

    root: str = ""
    size: list[int] = field(default_factory=lambda: [256, 512])
    n_frames: int = 6
    label_nc: int = 35
    use_instance: bool = True
    train_split: str = "train"
    test_split: str = "test"
    max_frames: int = 0
    clip_step: int = 1


def temporal_d_channels(output_nc: int, n_frames_D: int) -> int:
    """Input channels of a temporal discriminator: tD frames then tD-1 flows (flow_ref / 20)."""
    return output_nc * n_frames_D + 2 * (n_frames_D - 1)


# ----------------------------------------------------------------------------------------------
# 2. Inputs
# ----------------------------------------------------------------------------------------------
def check_size(hw, cfg: Vid2VidModelConfig, where: str = "label maps") -> None:
    """V2VError unless H and W are multiples of the total downsampling 2**(n_downsample_G + n_scales - 1)."""
    f = 2 ** (cfg.n_downsample_G + cfg.n_scales_spatial - 1)
    h, w = int(hw[0]), int(hw[1])
    if h % f or w % f:
        raise V2VError(f"{where}: size {h}x{w} is not divisible by the total downsampling factor {f} "
                       f"(2**(n_downsample_G + n_scales_spatial - 1)); resize to e.g. "
                       f"{max(f, h // f * f)}x{max(f, w // f * f)} (--size)")


# ----------------------------------------------------------------------------------------------
# 3. Generators
# ----------------------------------------------------------------------------------------------
def _head(ngf: int, out: int, act: nn.Module | None) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out, 7), *([act] if act is not None else []))


class _Composite(nn.Module):
    """Shared forward of both composite generators (Eq. 4 and 5)."""

    scale = 0

    def _heads(self, ngf, output_nc, no_flow):
        self.model_final_img = _head(ngf, output_nc, nn.Tanh())
        if not no_flow:
            self.model_final_flow = _head(ngf, 2, None)
            self.model_final_w = _head(ngf, 1, nn.Sigmoid())

    def forward(self, labels: torch.Tensor, prev: torch.Tensor, fg_mask: torch.Tensor | None = None,
                coarse: tuple | None = None, raw_only: bool = False) -> dict[str, torch.Tensor]:
        """One step at this scale.

        Args:
            labels: ``B, tG*Cl, h, w`` encoded label frames t-tG+1..t (oldest first).
            prev: ``B, (tG-1)*3, h, w`` previous outputs of this scale in [-1,1], oldest first.
            fg_mask: ``B,1,h,w`` foreground mask (with ``fg``).
            coarse: ``(img_feat, flow_feat, fg_feat)`` of the next coarser scale (finer scales).
            raw_only: output the hallucinated image only (``--no_first_img`` first step).
        Returns: dict with ``image`` (x_t), ``raw_image`` (h_t), ``flow`` (w_t, pixels of this scale),
            ``weight`` (m_t), ``warped_prev``, and the features ``img_feat``, ``flow_feat``, ``fg_feat``.
        """
        from v2v.ops.warp import warp

        down = self.model_down_seg(labels) + self.model_down_img(prev)
        c_img, c_flow, c_fg = coarse if coarse is not None else (None, None, None)
        out = {"down": down, "img_feat": self._image_features(down, c_img)}
        raw = self.model_final_img(out["img_feat"])
        image = raw
        if not self.no_flow:
            out["flow_feat"] = f = self._flow_features(down, c_flow)
            out["flow"] = self.model_final_flow(f) * (20.0 * 2**self.scale)
            out["weight"] = w = self.model_final_w(f)
            if not raw_only:
                out["warped_prev"] = warp(prev[:, -self.output_nc:], out["flow"])
                image = raw * w + out["warped_prev"] * (1 - w)
        if self.fg:
            if fg_mask is None:
                raise V2VError("this generator has a foreground branch (fg): a foreground mask is required")
            out["fg_feat"] = self._fg_features(labels, c_fg)
            fg = self.indv_final(out["fg_feat"])
            image = fg * fg_mask + image * (1 - fg_mask)
            raw = fg * fg_mask + raw * (1 - fg_mask)
        out["image"], out["raw_image"] = image, raw
        return out


class CompositeGenerator(_Composite):
    """The coarsest-scale sequential generator (official ``CompositeGenerator``, G0).

    ``down = model_down_seg(labels) + model_down_img(prev)``; image branch
    ``model_up_img(model_res_img(down))``; flow branch likewise; fg branch
    ``indv_up(indv_res(indv_down(labels)))`` of width ``ngf // 2`` when ``n_downsample_G > 2``.
    """

    def __init__(self, input_nc: int, prev_output_nc: int, output_nc: int = 3, ngf: int = 128,
                 n_downsample_G: int = 3, n_blocks: int = 9, norm: str = "batch", fg: bool = False,
                 no_flow: bool = False):
        super().__init__()
        self.output_nc, self.fg, self.no_flow = output_nc, fg, no_flow
        trs = True if norm == "instance" else None
        n = n_downsample_G

        def encoder(cin, width, n_res):
            layers = stem_layers(cin, width, norm, trs)
            for i in range(n):
                layers += down_layers(width * 2**i, width * 2 ** (i + 1), norm, trs)
            return layers + [ResnetBlock(width * 2**n, norm, track_running_stats=trs) for _ in range(n_res)]

        def res(width, k):
            return nn.Sequential(*[ResnetBlock(width * 2**n, norm, track_running_stats=trs) for _ in range(k)])

        def up(width):
            return nn.Sequential(*[layer for i in range(n)
                                   for layer in up_layers(width * 2 ** (n - i), width * 2 ** (n - i) // 2, norm, trs)])

        n_enc = n_blocks - n_blocks // 2
        self.model_down_seg = nn.Sequential(*encoder(input_nc, ngf, n_enc))
        self.model_down_img = nn.Sequential(*encoder(prev_output_nc, ngf, n_enc))
        self.model_res_img, self.model_up_img = res(ngf, n_blocks // 2), up(ngf)
        if not no_flow:
            self.model_res_flow, self.model_up_flow = res(ngf, n_blocks // 2), up(ngf)
        if fg:
            ngf_indv = ngf // 2 if n > 2 else ngf
            self.indv_down = nn.Sequential(*encoder(input_nc, ngf_indv, 0))
            self.indv_res, self.indv_up = res(ngf_indv, n_blocks), up(ngf_indv)
            self.indv_final = _head(ngf_indv, output_nc, nn.Tanh())
        self._heads(ngf, output_nc, no_flow)

    def _image_features(self, down, coarse):
        return self.model_up_img(self.model_res_img(down))

    def _flow_features(self, down, coarse):
        return self.model_up_flow(self.model_res_flow(down))

    def _fg_features(self, labels, coarse):
        return self.indv_up(self.indv_res(self.indv_down(labels)))


class CompositeLocalGenerator(_Composite):
    """A finer scale s >= 1 (official ``CompositeLocalGenerator``): one downsampling, then the
    coarser scale's features are ADDED before ``n_blocks_local`` residual blocks and one upsampling;
    flows are in pixels of this scale (x ``20 * 2**scale``)."""

    def __init__(self, input_nc: int, prev_output_nc: int, output_nc: int = 3, ngf: int = 64,
                 n_downsample_G: int = 3, n_blocks_local: int = 3, norm: str = "batch", fg: bool = False,
                 no_flow: bool = False, scale: int = 1):
        super().__init__()
        self.output_nc, self.fg, self.no_flow, self.scale = output_nc, fg, no_flow, scale
        trs = True if norm == "instance" else None

        def front(cin, width):
            return nn.Sequential(*stem_layers(cin, width, norm, trs), *down_layers(width, 2 * width, norm, trs))

        def back(width):
            blocks = [ResnetBlock(2 * width, norm, track_running_stats=trs) for _ in range(n_blocks_local)]
            return nn.Sequential(*blocks, *up_layers(2 * width, width, norm, trs))

        self.model_down_seg, self.model_down_img = front(input_nc, ngf), front(prev_output_nc, ngf)
        self.model_up_img = back(ngf)
        if not no_flow:
            self.model_up_flow = back(ngf)
        if fg:
            ngf_indv = ngf // 2 if n_downsample_G > 2 else ngf
            self.indv_down, self.indv_up = front(input_nc, ngf_indv), back(ngf_indv)
            self.indv_final = _head(ngf_indv, output_nc, nn.Tanh())
        self._heads(ngf, output_nc, no_flow)

    def _image_features(self, down, coarse):
        return self.model_up_img(down + coarse)

    def _flow_features(self, down, coarse):
        return self.model_up_flow(down + coarse)

    def _fg_features(self, labels, coarse):
        return self.indv_up(self.indv_down(labels) + coarse)


class Vid2VidGenerator(nn.Module):
    """G0 (coarsest, :class:`CompositeGenerator`) .. G{n-1} (finest, :class:`CompositeLocalGenerator`
    of width ``ngf // 2**s``), run coarse to fine; ``scales[s]`` = official ``netG<s>``."""

    def __init__(self, label_nc: int = 35, use_instance: bool = True, output_nc: int = 3, n_frames_G: int = 3,
                 ngf: int = 128, n_downsample_G: int = 3, n_blocks: int = 9, n_blocks_local: int = 3,
                 n_scales_spatial: int = 1, norm: str = "batch", no_flow: bool = False, fg: bool = False):
        super().__init__()
        if not 1 <= n_scales_spatial <= 3:
            raise V2VError(f"n_scales_spatial must be 1, 2 or 3, got {n_scales_spatial}")
        if n_frames_G < 2:
            raise V2VError(f"n_frames_G must be >= 2 (got {n_frames_G})")
        cin = (label_nc + (1 if use_instance else 0)) * n_frames_G
        cprev = (n_frames_G - 1) * output_nc
        common = {"output_nc": output_nc, "n_downsample_G": n_downsample_G, "norm": norm, "fg": fg, "no_flow": no_flow}
        self.scales = nn.ModuleList(
            [CompositeGenerator(cin, cprev, ngf=ngf, n_blocks=n_blocks, **common)]
            + [CompositeLocalGenerator(cin, cprev, ngf=ngf // 2**s, n_blocks_local=n_blocks_local, scale=s, **common)
               for s in range(1, n_scales_spatial)])

    def forward(self, labels: list, prev: list, masks: list | None = None, raw_only: bool = False,
                grad_scales: int | None = None) -> list[dict]:
        """One step, coarse to fine. ``labels[s]``, ``prev[s]``, ``masks[s]``: the inputs of scale s
        (s = 0 coarsest). ``grad_scales=k``: only the k finest scales build a graph (the others run
        under no_grad, official ``niter_fix_global``). Returns the per-scale output dicts."""
        outs, coarse = [], None
        n = len(self.scales)
        for s, G in enumerate(self.scales):
            frozen = grad_scales is not None and s < n - grad_scales
            with torch.no_grad() if frozen else contextlib.nullcontext():
                o = G(labels[s], prev[s], None if masks is None else masks[s], coarse, raw_only)
            coarse = (o["img_feat"], o.get("flow_feat"), o.get("fg_feat"))
            outs.append(o)
        return outs


def build_generator(cfg: Vid2VidModelConfig) -> Vid2VidGenerator:
    """The generator described by ``cfg`` (config keys = constructor keywords)."""
    return Vid2VidGenerator(cfg.label_nc, cfg.use_instance, cfg.output_nc, cfg.n_frames_G, cfg.ngf,
                            cfg.n_downsample_G, cfg.n_blocks, cfg.n_blocks_local, cfg.n_scales_spatial, cfg.norm,
                            cfg.no_flow, cfg.fg)


def build_first_frame_generator(cfg: Vid2VidModelConfig) -> nn.Module:
    """The single-image pix2pixHD generator of ``use_single_G`` (official ``load_single_G``): one-hot
    labels (no edges) -> frame; InstanceNorm with running buffers; n_blocks shared with G0."""
    common = {"norm": "instance", "max_channels": 1024, "track_running_stats": True}
    if cfg.first_frame_G == "global":
        return GlobalGenerator(cfg.label_nc, cfg.output_nc, cfg.first_frame_ngf, cfg.first_frame_n_downsample,
                               cfg.n_blocks, **common)
    if cfg.first_frame_G == "local":
        return LocalEnhancer(cfg.label_nc, cfg.output_nc, cfg.first_frame_ngf, cfg.first_frame_n_downsample,
                             cfg.n_blocks, cfg.n_local_enhancers, cfg.n_blocks_local, **common)
    raise V2VError(f"first_frame_G must be 'global' or 'local', got '{cfg.first_frame_G}'")


# ----------------------------------------------------------------------------------------------
# 4. Discriminators (training only)
# ----------------------------------------------------------------------------------------------
def build_image_discriminator(cfg: Vid2VidModelConfig) -> nn.Module:
    """D_I on cat(encoded labels of frame t, frame t in [-1,1])."""
    from v2v.nn.vid2vid_blocks import multiscale_discriminator

    return multiscale_discriminator(cfg.label_nc + (1 if cfg.use_instance else 0) + cfg.output_nc, cfg.ndf,
                                    cfg.n_layers_D, cfg.norm, cfg.num_D, cfg.no_ganFeat)


def build_temporal_discriminator(cfg: Vid2VidModelConfig) -> nn.Module:
    """D_V on n_frames_D frames (oldest first) + n_frames_D-1 reference flows / 20."""
    from v2v.nn.vid2vid_blocks import multiscale_discriminator

    return multiscale_discriminator(temporal_d_channels(cfg.output_nc, cfg.n_frames_D), cfg.ndf, cfg.n_layers_D,
                                    cfg.norm, cfg.num_D, cfg.no_ganFeat)


# ----------------------------------------------------------------------------------------------
# 5. Streaming generation
# ----------------------------------------------------------------------------------------------
class Vid2VidStream:
    """Frame-by-frame generation with constant memory: per scale, the last tG label encodings and
    tG-1 outputs of that scale (official ``fake_B_prev[si]``).

    Args:
        generator: a :class:`Vid2VidGenerator`.
        cfg: its config.
        first_frames: real first frames (``3,H,W`` / ``1,3,H,W`` in [0,1]); fewer than tG-1 are
            padded by repeating the first one. Else ``first_generator`` (``use_single_G``) makes the
            first tG-1 frames; with neither, frame 0 is hallucinated (``--no_first_img``).
        norm_stats: ``batch`` (official test.py), ``running`` (eval()) or ``module``.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast; :func:`v2v.precision.resolve_precision`
            decides whether the device runs it natively).
        channels_last: NHWC memory layout (converts the generators in place).

    ``step(labels B,H,W, instances B,H,W | None) -> B,3,H,W`` in [0,1], one frame per label map.
    """

    def __init__(self, generator: Vid2VidGenerator, cfg: Vid2VidModelConfig, first_frames=None,
                 first_generator: nn.Module | None = None, norm_stats: str = "batch", precision: str = "fp32",
                 channels_last: bool = False):
        if precision not in ("fp32", "bf16", "fp16"):
            raise V2VError(f"precision must be fp32, bf16 or fp16, got '{precision}'")
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.G = generator.to(memory_format=fmt) if channels_last else generator
        self.first_G = first_generator
        self.cfg, self.tG, self.n = cfg, cfg.n_frames_G, cfg.n_scales_spatial
        self.first = [f if f.dim() == 4 else f.unsqueeze(0) for f in (first_frames or [])]
        self.norm_stats, self.precision, self.fmt = norm_stats, precision, fmt
        self.labels = [collections.deque(maxlen=self.tG) for _ in range(self.n)]    # per scale, coarse first
        self.prev = [collections.deque(maxlen=self.tG - 1) for _ in range(self.n)]
        self.t = 0
        self.last_outputs: list = []

    def _ctx(self, device):
        if self.precision != "fp32":
            return torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[self.precision])
        return contextlib.nullcontext()

    def _push_frame(self, frame: torch.Tensor) -> None:
        for s, f in enumerate(reversed(label_pyramid(frame, self.n))):
            self.prev[s].append(f)

    @torch.no_grad()
    def step(self, labels: torch.Tensor, instances: torch.Tensor | None = None) -> torch.Tensor:
        """Feed label map t; returns output frame t, ``B,3,H,W`` in [0,1]."""
        c = self.cfg
        check_labels(labels, c.label_nc)
        check_size(labels.shape[-2:], c)
        if c.use_instance and instances is None:
            raise V2VError("this model uses instance maps (use_instance: true): give --instances "
                           "(an instance-map folder/video) or use a model without use_instance")
        dev = next(self.G.parameters()).device
        enc = encode_labels(labels.to(dev), None if instances is None else instances.to(dev), c.label_nc,
                            c.use_instance)
        pyr = list(reversed(label_pyramid(enc, self.n)))    # coarse first
        t, need = self.t, self.tG - 1
        self.t += 1
        frame = None
        if t < min(len(self.first), need):                   # given real frames
            frame = self.first[t].to(dev, torch.float32) * 2 - 1
        elif t < need and not self.first and self.first_G is not None:   # single-image generator
            with norm_statistics(self.first_G, self.norm_stats), self._ctx(dev):
                frame = self.first_G(enc[:, :c.label_nc]).float()
        if frame is not None:
            reps = max(1, need - len(self.first) + 1) if (t == 0 and self.first) else 1
            for _ in range(reps):
                for s in range(self.n):
                    self.labels[s].append(pyr[s])
                self._push_frame(frame)
            return ((frame + 1) / 2).clamp(0, 1)
        raw_only = t == 0
        if raw_only:  # nothing given: pad with the first labels and zero frames, output h_t only
            for _ in range(need):
                for s in range(self.n):
                    self.labels[s].append(pyr[s])
                self._push_frame(torch.zeros(enc.shape[0], c.output_nc, *enc.shape[2:], device=dev))
        for s in range(self.n):
            self.labels[s].append(pyr[s])
        lab = [torch.cat(list(q), 1).contiguous(memory_format=self.fmt) for q in self.labels]
        prev = [torch.cat(list(q), 1).contiguous(memory_format=self.fmt) for q in self.prev]
        masks = [foreground_mask(p, c.fg_labels) for p in pyr] if c.fg else None
        with norm_statistics(self.G, self.norm_stats), self._ctx(dev):
            outs = self.G(lab, prev, masks, raw_only=raw_only)
        for s, o in enumerate(outs):
            self.prev[s].append(o["image"].float())
        self.last_outputs = outs
        return ((outs[-1]["image"].float() + 1) / 2).clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# 6. System
# ----------------------------------------------------------------------------------------------
@register_system("vid2vid", compat="v2v.compat.vid2vid", commands="v2v.commands.vid2vid")
class Vid2VidSystem(System):
    """vid2vid: generator ``netG`` (all scales), optional first-frame generator ``netG_i``, and for
    training the image discriminator ``netD`` and temporal discriminators ``netD_T``.

    Batches (:class:`v2v.data.datasets.LabelSequenceDataset`): ``labels`` ``B,T,H,W``, ``instances``,
    ``images`` ``B,T,3,H,W`` in [0,1], optional ground-truth ``flowprev`` / ``occprev``.
    """

    ModelConfig = Vid2VidModelConfig
    DataConfig = Vid2VidDataConfig

    def __init__(self, cfg: Vid2VidModelConfig, inference: bool = False):
        super().__init__()
        if cfg.first_frame not in ("real", "generate", "single_G"):
            raise V2VError(f"model.first_frame must be real, generate or single_G, got '{cfg.first_frame}'")
        bad = [c for c in cfg.fg_labels if not 0 <= c < cfg.label_nc] if cfg.fg else []
        if bad:
            raise V2VError(f"model.fg_labels {bad} outside 0..{cfg.label_nc - 1}")
        self.cfg = cfg
        self.netG = build_generator(cfg)
        if cfg.first_frame == "single_G":
            self.netG_i = build_first_frame_generator(cfg)
        if not inference:
            self.netD = build_image_discriminator(cfg)
            self.netD_T = nn.ModuleList(build_temporal_discriminator(cfg) for _ in range(cfg.n_scales_temporal))
            if cfg.load_pretrain:
                self._load_pretrain(cfg.load_pretrain)

    @classmethod
    def from_config(cls, model_cfg, inference: bool = False):
        if isinstance(model_cfg, dict):
            from v2v.config import from_dict

            model_cfg = from_dict(Vid2VidModelConfig, model_cfg, prefix="model")
        return cls(model_cfg, inference=inference)

    def _load_pretrain(self, path: str) -> None:
        """Official ``--load_pretrain``: the scales of a lower-resolution run become our coarsest ones."""
        from v2v.weights_io import check_state_dict, read_weights

        sd, _ = read_weights(path)
        got = {int(k.split(".")[2]) for k in sd if k.startswith("netG.scales.")}
        if not got or max(got) >= len(self.netG.scales):
            raise V2VError(f"load_pretrain {path}: holds generator scales {sorted(got)}; this model has "
                           f"{len(self.netG.scales)} (a pretrained run must have fewer)")
        for s in sorted(got):
            pre = f"netG.scales.{s}."
            part = {k[len(pre):]: v for k, v in sd.items() if k.startswith(pre)}
            check_state_dict(self.netG.scales[s].state_dict(), part, f"{path} (scale {s})")
            self.netG.scales[s].load_state_dict(part)

    @classmethod
    def build_dataset(cls, data_cfg, split: str, model_cfg=None):
        """:class:`v2v.data.datasets.LabelSequenceDataset` clips; None for an absent held-out split."""
        import os

        from v2v.data.datasets import LabelSequenceDataset

        if model_cfg is not None and data_cfg.label_nc != model_cfg.label_nc:
            raise V2VError(f"data.label_nc={data_cfg.label_nc} but model.label_nc={model_cfg.label_nc}")
        if model_cfg is not None and model_cfg.use_instance and not data_cfg.use_instance:
            raise V2VError("model.use_instance is true but data.use_instance is false: the model needs instance maps")
        name = data_cfg.train_split if split == "train" else data_cfg.test_split
        if split != "train" and not all(os.path.isdir(os.path.join(data_cfg.root, f"{name}_{x}")) for x in "AB"):
            return None  # no held-out split with ground-truth frames: nothing to evaluate
        return LabelSequenceDataset(data_cfg.root, split=name, n_frames=data_cfg.n_frames, label_nc=data_cfg.label_nc,
                                    use_instance=data_cfg.use_instance, size=tuple(data_cfg.size),
                                    max_frames=data_cfg.max_frames or None, clip_step=data_cfg.clip_step)

    def optim_groups(self):
        return {"G": list(self.netG.parameters()),
                "D": list(self.netD.parameters()) + list(self.netD_T.parameters())}

    def generator_module(self):
        return self.netG

    def frames_at(self, step: int) -> int:
        """Training clip length at ``step`` (progressive temporal training)."""
        c = self.cfg
        if c.n_frames_grow_every <= 0:
            return c.n_frames_total
        start = c.n_frames_start or (c.n_frames_G + 1)
        return int(min(c.n_frames_total, start * 2 ** (step // c.n_frames_grow_every)))

    def run_generator(self, enc: torch.Tensor, real: torch.Tensor | None, grad_scales: int | None = None):
        """Generate frames tG-1..T-1 of a clip (all scales, coarse to fine).

        Args:
            enc: ``B,T,Cl,H,W`` encoded labels.
            real: ``B,T,3,H,W`` real frames in [-1,1] (the first tG-1 seed every scale through the
                pyramid), or None (zero previous frames, raw-only first step).
        Returns dict of finest-scale ``B,N,...`` stacks (N = T-tG+1): image, raw_image, flow, weight.
        """
        tG, n = self.cfg.n_frames_G, self.cfg.n_scales_spatial
        B, T = enc.shape[:2]
        lab_pyr = list(reversed(label_pyramid(enc, n)))                       # coarse first, B,T,C,h,w
        if real is not None and self.cfg.first_frame != "generate":
            prev = [list(p.unbind(1)) for p in reversed(label_pyramid(real[:, :tG - 1], n))]
            raw_first = False
        else:
            prev = [[lp.new_zeros(B, self.cfg.output_nc, *lp.shape[-2:])] * (tG - 1) for lp in lab_pyr]
            raw_first = True
        outs = collections.defaultdict(list)
        for t in range(tG - 1, T):
            lab = [lp[:, t - tG + 1:t + 1].flatten(1, 2) for lp in lab_pyr]
            p = [torch.cat(q[-(tG - 1):], 1).detach() for q in prev]
            masks = [foreground_mask(lp[:, t], self.cfg.fg_labels) for lp in lab_pyr] if self.cfg.fg else None
            o = self.netG(lab, p, masks, raw_only=raw_first and t == tG - 1, grad_scales=grad_scales)
            for s in range(n):
                prev[s] = prev[s][-(tG - 1):] + [o[s]["image"]]
            for k in ("image", "raw_image", "flow", "weight"):
                if k in o[-1]:
                    outs[k].append(o[-1][k])
        return {k: torch.stack(v, 1) for k, v in outs.items()}

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        from v2v.losses.vid2vid import vid2vid_losses

        return vid2vid_losses(self, batch, step)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, instances: torch.Tensor | None = None,
                 first_frames: torch.Tensor | None = None, norm_stats: str = "module") -> torch.Tensor:
        """Whole clip: ``labels`` ``B,T,H,W``; ``first_frames`` ``B,k,3,H,W`` in [0,1] (or None: the
        single-image generator when there is one, else generated). Returns ``B,T,3,H,W`` in [0,1]."""
        first = None if first_frames is None else list(first_frames.float().unbind(1))
        if first is not None and len(first) < self.cfg.n_frames_G - 1:
            raise V2VError(f"need {self.cfg.n_frames_G - 1} first frames, got {len(first)}")
        s = Vid2VidStream(self.netG, self.cfg, first_frames=first, first_generator=getattr(self, "netG_i", None),
                          norm_stats=norm_stats)
        inst = instances if self.cfg.use_instance else None
        return torch.stack([s.step(labels[:, t], None if inst is None else inst[:, t])
                            for t in range(labels.shape[1])], 1)

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        imgs = batch["images"].float()
        out = self.generate(batch["labels"], batch.get("instances"), imgs[:, :self.cfg.n_frames_G - 1])
        return {"real": imgs, "fake": out[:, :imgs.shape[1]]}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Mean L1 (in [0,1]) of the generated frames t >= n_frames_G-1 against the ground truth."""
        tG = self.cfg.n_frames_G
        imgs = batch["images"].float()
        out = self.generate(batch["labels"], batch.get("instances"), imgs[:, :tG - 1])
        return {"l1": float((out[:, tG - 1:] - imgs[:, tG - 1:]).abs().mean())}
