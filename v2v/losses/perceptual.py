"""VGG19 perceptual losses (pix2pixHD / vid2vid / EDN ``VGGLoss``, FOMM pyramid perceptual loss).

Weights: the torchvision ImageNet VGG19 file ``vgg19-dcbb9e9d.pth``, found by
:func:`v2v.weights.find_weights` (explicit path, ``$V2V_WEIGHTS``, torch hub cache). v2v never
downloads it. ``weights="random"`` builds a randomly initialised VGG19 and must be asked for
explicitly (tests, smoke runs); a missing file is a :class:`v2v.errors.V2VError` that names the
file and where to put it.

The VGG weights are frozen constants (``requires_grad=False``). :class:`VGGLoss` and
:class:`VGGPyramidLoss` hold their :class:`VGG19Features` *unregistered* (attribute ``.vgg``):
it is not in the loss's ``parameters()``, ``buffers()`` or ``state_dict()``, so a system that owns
such a loss does not save 80 MB of ImageNet weights in its checkpoints, no optimizer or DDP
buffer broadcast touches it, and loading a checkpoint never needs it. ``.to(device)``,
``.half()`` etc. on the loss (or on a system holding it) still move it.

Inputs of every public call are images ``B,3,H,W`` float in [0,1]; the ``normalize`` option
says how they are fed to VGG:

- ``"imagenet"`` (default, FOMM): ``(x - mean) / std`` with the ImageNet statistics;
- ``"pix2pixhd"``: ``2x - 1``, i.e. the [-1,1] image fed raw, as pix2pixHD/vid2vid/EDN do;
- ``"none"``: ``x`` unchanged.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from v2v.errors import V2VError, unknown_key_message
from v2v.weights import KNOWN_WEIGHTS, find_weights

__all__ = ["VGG19_CFG", "VGG19_LAYERS", "VGG19Features", "VGGLoss", "VGGPyramidLoss",
           "load_vgg19_state_dict"]

# torchvision vgg19 (config "E", no batch norm): conv widths, "M" = max-pool.
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
             512, 512, 512, 512, "M")


def _layer_names() -> dict[str, int]:
    names, idx, block, k = {}, 0, 1, 1
    for v in VGG19_CFG:
        if v == "M":
            names[f"pool{block}"] = idx
            idx += 1
            block, k = block + 1, 1
        else:
            names[f"conv{block}_{k}"] = idx
            names[f"relu{block}_{k}"] = idx + 1
            idx += 2
            k += 1
    return names


#: layer name -> index in torchvision ``vgg19().features`` (``relu1_1``: 1, ``relu2_1``: 6,
#: ``relu3_1``: 11, ``relu4_1``: 20, ``relu5_1``: 29, ...).
VGG19_LAYERS = _layer_names()
DEFAULT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZE_MODES = ("imagenet", "pix2pixhd", "none")


def _build_features(last_index: int, widths: Sequence[int] = (64, 128, 256, 512, 512),
                    pool: str = "max") -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in, block = 3, 0
    for v in VGG19_CFG:
        if len(layers) > last_index:
            break
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
            block += 1
        else:
            w = int(widths[block])
            layers.append(nn.Conv2d(c_in, w, kernel_size=3, padding=1))
            layers.append(nn.ReLU(inplace=False))
            c_in = w
    return nn.Sequential(*layers[: last_index + 1])


def load_vgg19_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a torchvision VGG19 state dict (``features.{i}.weight`` ...) with ``weights_only=True``.

    Accepts a bare state dict or one wrapped under ``"state_dict"``, with or without a
    ``module.`` prefix. Raises V2VError if the file cannot be read.
    """
    try:
        sd = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / not a torch file
        raise V2VError(f"cannot read VGG19 weights {path}: {type(e).__name__}: {e}") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise V2VError(f"VGG19 weights {path}: expected a state dict, got {type(sd).__name__}")
    return {(k.removeprefix("module.")): v for k, v in sd.items()}


class VGG19Features(nn.Module):
    """Frozen torchvision-VGG19 feature extractor returning the activations of ``layers``.

    Args:
        layers: names from :data:`VGG19_LAYERS` (default relu1_1, relu2_1, relu3_1, relu4_1,
            relu5_1 as pix2pixHD/FOMM), returned in this order.
        weights: ``None`` = look up ``vgg19-dcbb9e9d.pth`` via :func:`v2v.weights.find_weights`
            (``$V2V_WEIGHTS``, torch hub cache); a path = that file; a state dict (mapping with
            ``features.{i}.weight/bias`` keys, e.g. the frozen VGG stored inside an official
            checkpoint); ``"random"`` = random init (only when explicitly requested).
        normalize: ``"imagenet"``, ``"pix2pixhd"`` or ``"none"`` (module docstring).
        widths: conv widths of the five VGG stages (torchvision: 64, 128, 256, 512, 512; smaller
            look-alikes appear in test fixtures).
        pool: ``"max"`` (torchvision) or ``"avg"`` (AvgPool2d(2, 2) in place of the max-pools, as
            Img2Vid's ``my_vgg`` and style-transfer code use).

    ``forward(x)``: ``x`` images ``B,3,H,W`` in [0,1] -> list of feature maps ``B,C_l,H_l,W_l``.
    Modules are ``features.{i}`` with torchvision indices; parameters are frozen.
    """

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS,
                 weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
                 normalize: str = "imagenet", widths: Sequence[int] = (64, 128, 256, 512, 512), pool: str = "max"):
        super().__init__()
        layers = tuple(layers)
        for name in layers:
            if name not in VGG19_LAYERS:
                raise V2VError(unknown_key_message("VGG19 layer", name, VGG19_LAYERS))
        if normalize not in NORMALIZE_MODES:
            raise V2VError(unknown_key_message("VGG input normalization", normalize, NORMALIZE_MODES))
        self.layers = layers
        self.normalize = normalize
        self.indices = [VGG19_LAYERS[n] for n in layers]
        if pool not in ("max", "avg"):
            raise V2VError(f"VGG19 pool must be 'max' or 'avg', got {pool!r}")
        if len(widths) != 5:
            raise V2VError(f"VGG19 widths: expected 5 stage widths, got {list(widths)}")
        self.features = _build_features(max(self.indices), widths, pool)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if isinstance(weights, str) and weights == "random":
            self.weights_path = None
        elif isinstance(weights, Mapping):
            self.load_features_state_dict(weights, "state dict")
            self.weights_path = None
        else:
            path = find_weights("vgg19", weights)
            self.load_torchvision(path)
            self.weights_path = path
        self._freeze()

    def load_torchvision(self, path: str | os.PathLike) -> None:
        """Copy the ``features.*`` tensors of a torchvision VGG19 file into this module."""
        self.load_features_state_dict(load_vgg19_state_dict(path), path)

    @torch.no_grad()
    def load_features_state_dict(self, sd: Mapping[str, torch.Tensor], path="state dict") -> None:
        """Copy ``features.{i}.weight/bias`` of a (torchvision-layout) state dict; extra keys are ignored."""
        fname = KNOWN_WEIGHTS["vgg19"].filename
        for i, m in enumerate(self.features):
            if not isinstance(m, nn.Conv2d):
                continue
            for pname in ("weight", "bias"):
                key = f"features.{i}.{pname}"
                if key not in sd:
                    raise V2VError(f"VGG19 weights {path}: missing key '{key}' "
                                   f"(expected a torchvision vgg19 state dict such as {fname})")
                t = getattr(m, pname)
                if tuple(sd[key].shape) != tuple(t.shape):
                    raise V2VError(f"VGG19 weights {path}: '{key}' has shape {tuple(sd[key].shape)}, "
                                   f"expected {tuple(t.shape)}")
                t.copy_(sd[key].to(t.dtype))

    def _freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the input normalization to images ``B,3,H,W`` in [0,1]."""
        if self.normalize == "imagenet":
            return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        if self.normalize == "pix2pixhd":
            return x * 2 - 1
        return x

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.prepare(x)
        out, want, last = [], set(self.indices), max(self.indices)
        feats = {}
        for i, m in enumerate(self.features):
            h = m(h)
            if i in want:
                feats[i] = h
            if i >= last:
                break
        for i in self.indices:
            out.append(feats[i])
        return out


def _resolve_vgg(vgg, weights, normalize, layers) -> VGG19Features:
    if vgg is not None:
        return vgg
    return VGG19Features(layers=layers, weights=weights, normalize=normalize)


class _HoldsVGG(nn.Module):
    """Keeps ``self.vgg`` out of the module tree but moves it along with ``.to()``/``.half()``."""

    def _set_vgg(self, vgg: VGG19Features) -> None:
        object.__setattr__(self, "vgg", vgg)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.vgg._apply(fn, *args, **kwargs)
        return self


class VGGLoss(_HoldsVGG):
    """pix2pixHD/vid2vid/EDN perceptual loss: ``sum_l w_l * L1(vgg_l(x), vgg_l(y).detach())``.

    Args:
        weights: VGG19 weights (None = default lookup, a path, or ``"random"``).
        layer_weights: default ``[1/32, 1/16, 1/8, 1/4, 1]`` for relu1_1..relu5_1.
        normalize: input normalization (default ``"imagenet"``; pix2pixHD feeds its [-1,1]
            images raw: use ``"pix2pixhd"`` for that behaviour).
        vgg: share an existing :class:`VGG19Features` instead of building one.

    ``forward(x, y)``: images ``B,3,H,W`` in [0,1] (``y`` the target) -> scalar.
    """

    def __init__(self, weights: str | os.PathLike | None = None,
                 layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
                 normalize: str = "imagenet", layers: Sequence[str] = DEFAULT_LAYERS,
                 vgg: VGG19Features | None = None):
        super().__init__()
        self._set_vgg(_resolve_vgg(vgg, weights, normalize, layers))
        self.layer_weights = [float(w) for w in layer_weights]
        if len(self.layer_weights) != len(self.vgg.layers):
            raise V2VError(f"VGGLoss: {len(self.layer_weights)} layer weights for "
                           f"{len(self.vgg.layers)} VGG layers {list(self.vgg.layers)}")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # the target's features need no graph: computing them under no_grad (rather than one
        # pass over cat(x, y)) halves the backward work (tools/bench_losses.py)
        with torch.no_grad():
            fy = self.vgg(y)
        fx = self.vgg(x)
        loss = x.new_zeros(())
        for w, a, b in zip(self.layer_weights, fx, fy):
            if w:
                loss = loss + w * (a - b).abs().mean()
        return loss


class VGGPyramidLoss(_HoldsVGG):
    """FOMM pyramid perceptual loss.

    ``sum_{s in scales} sum_l w_l * mean|vgg_l(down_s(x)) - vgg_l(down_s(y)).detach()|`` where
    ``down_s`` is FOMM's anti-aliased downsample (:func:`v2v.ops.pyramid.antialias_downsample`,
    identity at scale 1).

    Args:
        scales: default ``(1, 0.5, 0.25, 0.125)`` (FOMM ``train_params.scales``).
        layer_weights: default ``(10,) * 5`` (FOMM ``loss_weights.perceptual``).
        weights, normalize (default ``"imagenet"``, as FOMM), vgg: as :class:`VGGLoss`.

    ``forward(x, y)``: images ``B,3,H,W`` in [0,1] -> scalar.
    """

    def __init__(self, scales: Sequence[float] = (1, 0.5, 0.25, 0.125),
                 layer_weights: Sequence[float] = (10, 10, 10, 10, 10),
                 weights: str | os.PathLike | None = None, normalize: str = "imagenet",
                 layers: Sequence[str] = DEFAULT_LAYERS, vgg: VGG19Features | None = None):
        super().__init__()
        self._set_vgg(_resolve_vgg(vgg, weights, normalize, layers))
        self.scales = [float(s) for s in scales]
        self.layer_weights = [float(w) for w in layer_weights]
        if len(self.layer_weights) != len(self.vgg.layers):
            raise V2VError(f"VGGPyramidLoss: {len(self.layer_weights)} layer weights for "
                           f"{len(self.vgg.layers)} VGG layers {list(self.vgg.layers)}")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from v2v.ops.pyramid import antialias_downsample

        loss = x.new_zeros(())
        for s in self.scales:
            with torch.no_grad():
                fy = self.vgg(y if s == 1 else antialias_downsample(y, s))
            fx = self.vgg(x if s == 1 else antialias_downsample(x, s))
            for w, a, b in zip(self.layer_weights, fx, fy):
                if w:
                    loss = loss + w * (a - b).abs().mean()
        return loss
