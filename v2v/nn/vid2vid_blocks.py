"""vid2vid inputs, shared by the model, its compat module and its commands.

- :func:`encode_labels`: one-hot label maps + the instance-edge channel (official ``encode_input``).
- :func:`label_pyramid`: the spatial pyramid of the coarse-to-fine generator (official ``build_pyr``).
- :func:`foreground_mask`: the mask of the foreground branch (official ``compute_mask``).
- :func:`check_labels`: ids within ``0..label_nc-1``.
- :func:`norm_statistics`: which statistics the norm layers use (official test.py: per-frame batch).
- :func:`multiscale_discriminator`: vid2vid's image / temporal PatchGAN stack.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError

__all__ = ["check_labels", "encode_labels", "foreground_mask", "label_pyramid", "multiscale_discriminator",
           "norm_statistics"]


def check_labels(labels: torch.Tensor, label_nc: int, where: str = "label map") -> None:
    """V2VError if an id is outside ``0..label_nc-1`` (names the value)."""
    if labels.numel() == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if hi >= label_nc or lo < 0:
        bad = hi if hi >= label_nc else lo
        raise V2VError(f"{where}: label id {bad} is outside 0..{label_nc - 1} (the model's label_nc is "
                       f"{label_nc}); remap the ids or use a model with a larger label_nc")


def encode_labels(labels: torch.Tensor, instances: torch.Tensor | None, label_nc: int,
                  use_instance: bool, dtype=torch.float32) -> torch.Tensor:
    """Label ids (+ instance ids) -> ``B,label_nc(+1),H,W`` (or ``B,T,...``): one-hot, then edges."""
    from v2v.ops.labels import instance_edges

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


def label_pyramid(x: torch.Tensor, n_levels: int) -> list[torch.Tensor]:
    """Official ``build_pyr``: level 0 = ``x`` (``...,C,H,W``), level k = AvgPool2d(3, 2, 1,
    count_include_pad=False) applied k times (fractional one-hot values at coarse levels)."""
    out = [x]
    for _ in range(n_levels - 1):
        y = out[-1]
        p = F.avg_pool2d(y.flatten(0, -4), 3, stride=2, padding=1, count_include_pad=False)
        out.append(p.view(*y.shape[:-3], *p.shape[-3:]))
    return out


def foreground_mask(encoded: torch.Tensor, fg_labels) -> torch.Tensor:
    """``B,Cl,H,W`` encoded frame -> ``B,1,H,W`` clamp(sum of the ``fg_labels`` channels, 0, 1)."""
    return encoded[:, list(fg_labels)].sum(1, keepdim=True).clamp(0, 1)


@contextlib.contextmanager
def norm_statistics(module: nn.Module, mode: str):
    """Temporarily pick the statistics of every norm layer: ``batch`` (of the current input, as
    official test.py, which never calls ``.eval()``; running buffers untouched), ``running``
    (``.eval()``) or ``module`` (as is)."""
    if mode == "module":
        yield module
        return
    if mode not in ("batch", "running"):
        raise V2VError(f"norm statistics mode must be 'batch' or 'running', got '{mode}'")
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    saved = [(m, m.training, m.momentum) for m in norms]
    try:
        for m in norms:
            m.train(mode == "batch")
            if mode == "batch":
                m.momentum = 0.0  # (1-0)*old + 0*new: running buffers unchanged
        yield module
    finally:
        for m, tr, mom in saved:
            m.train(tr)
            m.momentum = mom


def multiscale_discriminator(input_nc: int, ndf: int = 64, n_layers_D: int = 3, norm: str = "batch", num_D: int = 2,
                             no_ganFeat: bool = False) -> nn.Module:
    """vid2vid's MultiscaleDiscriminator: pix2pixHD's, except scale k has width ``min(64, ndf * 2**(num_D-1-k))``
    (official ``ndf_max = 64``); instance norm keeps running statistics as the official ``get_norm_layer``.

    Args:
        input_nc: channels of ``B,C,H,W`` inputs. ndf, n_layers_D, norm, num_D, no_ganFeat: official options.

    Returns:
        a :class:`v2v.nn.patchgan.MultiscalePatchDiscriminator` (official ``scale{k}_layer{j}`` weights map
        onto ``scales.{k}.blocks.{j}``).

    Example:
        >>> D = multiscale_discriminator(6, ndf=8, n_layers_D=2, num_D=2)
        >>> [o[-1].shape[1] for o in D(torch.rand(1, 6, 32, 32))]
        [1, 1]
    """
    from v2v.nn.patchgan import MultiscalePatchDiscriminator, PatchDiscriminator

    trs = True if norm == "instance" else None
    D = MultiscalePatchDiscriminator(input_nc, ndf, n_layers_D, norm, num_D=num_D, get_interm_feat=not no_ganFeat,
                                     track_running_stats=trs)
    D.scales = nn.ModuleList(PatchDiscriminator(input_nc, min(64, ndf * 2 ** (num_D - 1 - k)), n_layers_D, norm,
                                                get_interm_feat=not no_ganFeat, track_running_stats=trs)
                             for k in range(num_D))
    return D
