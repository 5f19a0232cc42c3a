"""Optical-flow utilities: resizing, composition, forward-backward occlusion, colour coding, .flo I/O.

Flow convention (v2v-wide): ``B,2,H,W`` float, in **pixels**, channel 0 = x (right), channel 1 =
y (down). A flow ``f_ab`` "from a to b" lives on the pixel grid of frame ``a`` and points into
frame ``b``: pixel ``p`` of ``a`` corresponds to ``p + f_ab(p)`` in ``b``. It is a *backward* flow
for warping ``b`` onto ``a``: ``warp(b, f_ab) ≈ a`` (see :func:`v2v.ops.warp.warp`).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from v2v.errors import V2VError
from v2v.utils import atomic_path

from ._check import check_shape
from .warp import warp

__all__ = [
    "FLO_MAGIC",
    "compose_flow",
    "fb_consistency_occlusion",
    "flow_to_color",
    "make_color_wheel",
    "read_flo",
    "resize_flow",
    "write_flo",
]

FLO_MAGIC = 202021.25


def resize_flow(
    flow: torch.Tensor, size_hw, mode: str = "bilinear", align_corners: bool = False
) -> torch.Tensor:
    """Resize a pixel flow ``B,2,H,W`` to ``size_hw = (H', W')`` and rescale its values.

    The field is interpolated with ``F.interpolate`` (``mode``: ``"bilinear"``, ``"nearest"``,
    ``"area"``, ``"bicubic"``; ``align_corners`` for the (bi)linear/cubic modes), then channel x
    is multiplied by ``W'/W`` and channel y by ``H'/H`` so displacements stay in pixels of the new
    size. Resizing to the same size returns the input unchanged.

    Args:
        flow: ``B,2,H,W`` flow in pixels (x first).
        size_hw: target ``(H', W')``.
        mode, align_corners: interpolation, as in ``F.interpolate``.

    Returns:
        ``B,2,H',W'`` flow in pixels of the new size.

    Example:
        >>> resize_flow(torch.ones(1, 2, 4, 4), (8, 2))[0, :, 0, 0]
        tensor([0.5000, 2.0000])
    """
    check_shape(flow, "B,2,H,W", "resize_flow: flow")
    h, w = flow.shape[-2:]
    nh, nw = int(size_hw[0]), int(size_hw[1])
    if (nh, nw) == (h, w):
        return flow
    kw = {"align_corners": align_corners} if mode in ("bilinear", "bicubic") else {}
    out = F.interpolate(flow, size=(nh, nw), mode=mode, **kw)
    scale = torch.tensor([nw / w, nh / h], dtype=out.dtype, device=out.device).view(1, 2, 1, 1)
    return out * scale


def compose_flow(f_ab: torch.Tensor, f_bc: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Chain two flows: ``f_ac(p) = f_ab(p) + f_bc(p + f_ab(p))``.

    ``f_ab``: ``B,2,H,W`` on frame a pointing into b; ``f_bc``: on frame b pointing into c (pixels,
    x first). The result lives on frame a and points into c, so
    ``warp(c, f_ac) ≈ warp(warp(c, f_bc), f_ab)``. ``f_bc`` is sampled bilinearly at
    ``p + f_ab(p)`` with ``padding_mode`` (border by default). A zero ``f_ab`` gives ``f_bc``
    exactly and a zero ``f_bc`` gives ``f_ab`` exactly; two constant translations add.

    Args:
        f_ab: ``B,2,H,W`` pixels, on frame a, into b.
        f_bc: ``B,2,H,W`` pixels, on frame b, into c.
        padding_mode: how ``f_bc`` is sampled outside the image.

    Returns:
        ``B,2,H,W`` flow ``f_ac`` in pixels.

    Example:
        >>> compose_flow(torch.ones(1, 2, 3, 3), 2 * torch.ones(1, 2, 3, 3))[0, :, 1, 1]
        tensor([3., 3.])
    """
    check_shape(f_ab, "B,2,H,W", "compose_flow: f_ab")
    check_shape(f_bc, "B,2,H,W", "compose_flow: f_bc")
    return f_ab + warp(f_bc, f_ab, padding_mode=padding_mode)


def fb_consistency_occlusion(
    flow_fw: torch.Tensor, flow_bw: torch.Tensor, alpha1: float = 0.01, alpha2: float = 0.5
) -> torch.Tensor:
    """Forward-backward consistency occlusion mask (Sundaram et al. 2010; UnFlow, Meister 2018).

    ``flow_fw`` = ``f_ab`` (on frame a, into b) and ``flow_bw`` = ``f_ba`` (on frame b, into a),
    both ``B,2,H,W`` pixels. With ``f_ba~(p) = f_ba(p + f_ab(p))`` (bilinear, border padding), a
    pixel of **frame a** is marked occluded (1.0) where

        |f_ab + f_ba~|^2 > alpha1 * (|f_ab|^2 + |f_ba~|^2) + alpha2

    and 0.0 elsewhere.

    Args:
        flow_fw: ``B,2,H,W`` pixels, ``f_ab``.
        flow_bw: ``B,2,H,W`` pixels, ``f_ba``.
        alpha1: relative tolerance (unitless).
        alpha2: absolute tolerance in squared pixels.

    Returns:
        float mask ``B,1,H,W`` on frame a (1 = not visible in b).

    Example:
        >>> f = torch.ones(1, 2, 4, 4)
        >>> fb_consistency_occlusion(f, -f).sum().item()   # consistent flows: nothing occluded
        0.0
    """
    check_shape(flow_fw, "B,2,H,W", "fb_consistency_occlusion: flow_fw")
    check_shape(flow_bw, "B,2,H,W", "fb_consistency_occlusion: flow_bw")
    bw = warp(flow_bw, flow_fw, padding_mode="border")
    diff = (flow_fw + bw).pow(2).sum(1, keepdim=True)
    mag = flow_fw.pow(2).sum(1, keepdim=True) + bw.pow(2).sum(1, keepdim=True)
    return (diff > alpha1 * mag + alpha2).to(flow_fw.dtype)


def make_color_wheel() -> np.ndarray:
    """Middlebury colour wheel: ``(55, 3)`` float RGB in [0, 1] (segments RY 15, YG 6, GC 4,
    CB 11, BM 13, MR 6: red -> yellow -> green -> cyan -> blue -> magenta -> red).

    Returns:
        ``(55, 3)`` float32 array, row k the colour of hue k.

    Example:
        >>> make_color_wheel()[0].tolist()
        [1.0, 0.0, 0.0]
    """
    segs = [(15, (1, 0, 0), (1, 1, 0)), (6, (1, 1, 0), (0, 1, 0)), (4, (0, 1, 0), (0, 1, 1)),
            (11, (0, 1, 1), (0, 0, 1)), (13, (0, 0, 1), (1, 0, 1)), (6, (1, 0, 1), (1, 0, 0))]  # fmt: skip
    rows = []
    for n, c0, c1 in segs:
        t = np.arange(n, dtype=np.float64) / n
        c0a, c1a = np.array(c0, np.float64), np.array(c1, np.float64)
        rows.append(c0a[None] + t[:, None] * (c1a - c0a)[None])
    return np.concatenate(rows, 0).astype(np.float32)


def flow_to_color(flow: torch.Tensor, max_flow: float | None = None) -> torch.Tensor:
    """Middlebury colour coding of a flow ``B,2,H,W`` (pixels, x first) -> RGB ``B,3,H,W`` in [0, 1].

    Hue = direction on the Middlebury wheel (``atan2(-y, -x)``): motion to the right is red,
    down yellow, left cyan, up blue/violet. Saturation = magnitude / ``max_flow``; zero flow is
    white. ``max_flow=None`` normalizes each sample by its own largest magnitude. Magnitudes above
    ``max_flow`` are darkened (x0.75), as in the Middlebury reference code. Non-finite flow is
    shown black.

    Args:
        flow: ``B,2,H,W`` pixels, x first.
        max_flow: magnitude in pixels shown at full saturation (None: per-sample maximum).

    Returns:
        ``B,3,H,W`` RGB in [0, 1].

    Example:
        >>> flow_to_color(torch.zeros(1, 2, 2, 2))[0, :, 0, 0]   # no motion is white
        tensor([1., 1., 1.])
    """
    check_shape(flow, "B,2,H,W", "flow_to_color: flow")
    wheel = torch.from_numpy(make_color_wheel()).to(device=flow.device, dtype=torch.float32)
    ncols = wheel.shape[0]
    f = flow.to(torch.float32)
    finite = torch.isfinite(f).all(1, keepdim=True)
    f = torch.where(finite, f, torch.zeros_like(f))
    u, v = f[:, 0], f[:, 1]
    rad = torch.sqrt(u * u + v * v)
    if max_flow is None:
        maxr = rad.flatten(1).amax(1).view(-1, 1, 1)
    else:
        maxr = torch.full_like(rad[:, :1, :1], float(max_flow))
    rad = rad / maxr.clamp_min(1e-8)
    a = torch.atan2(-v, -u) / np.pi
    fk = (a + 1) / 2 * (ncols - 1)
    k0 = torch.floor(fk).long().clamp(0, ncols - 1)
    k1 = torch.where(k0 + 1 == ncols, torch.zeros_like(k0), k0 + 1)
    frac = (fk - k0.to(fk.dtype)).unsqueeze(-1)
    col = (1 - frac) * wheel[k0] + frac * wheel[k1]  # B,H,W,3
    r = rad.unsqueeze(-1)
    col = torch.where(r <= 1, 1 - r * (1 - col), col * 0.75)
    col = col.permute(0, 3, 1, 2)
    return torch.where(finite, col, torch.zeros_like(col)).clamp(0, 1)


def read_flo(path) -> np.ndarray:
    """Read a Middlebury ``.flo`` file -> ``np.float32`` array ``(H, W, 2)`` (x, y in pixels).

    Format: float32 magic 202021.25, int32 width, int32 height, then H*W*2 float32 (x, y
    interleaved, row-major), little endian. Raises V2VError naming the file on a missing file,
    bad magic, implausible size or truncated data.

    Args:
        path: the ``.flo`` file.

    Returns:
        ``(H, W, 2)`` float32 array, pixels, x first.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "f.flo")
        >>> write_flo(p, np.ones((2, 3, 2), np.float32)); read_flo(p).shape
        (2, 3, 2)
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise V2VError(f"cannot read flow file {path}: {e.strerror or e}") from e
    if len(data) < 12:
        raise V2VError(f"{path}: not a .flo file (only {len(data)} bytes; expected a 12-byte header)")
    magic = np.frombuffer(data, "<f4", 1, 0)[0]
    if magic != np.float32(FLO_MAGIC):
        raise V2VError(
            f"{path}: bad .flo magic {float(magic)!r} (expected {FLO_MAGIC}); not a Middlebury flow file"
        )
    w, h = (int(x) for x in np.frombuffer(data, "<i4", 2, 4))
    if w <= 0 or h <= 0 or w * h > 1 << 30:
        raise V2VError(f"{path}: implausible .flo size width={w} height={h}")
    need = 12 + 8 * w * h
    if len(data) < need:
        raise V2VError(f"{path}: truncated .flo file ({len(data)} bytes, expected {need} for {w}x{h})")
    return np.frombuffer(data, "<f4", 2 * w * h, 12).reshape(h, w, 2).astype(np.float32)


def write_flo(path, flow) -> None:
    """Write a flow ``(H, W, 2)`` numpy array or tensor (a ``2,H,W`` / ``1,2,H,W`` tensor also
    accepted) to a Middlebury ``.flo`` file, atomically (temp file + ``os.replace``).

    Args:
        path: destination file.
        flow: ``(H, W, 2)`` array or ``2,H,W`` / ``1,2,H,W`` tensor, pixels, x first.

    Example:
        >>> import tempfile, os
        >>> write_flo(os.path.join(tempfile.mkdtemp(), "f.flo"), torch.zeros(1, 2, 4, 4))
    """
    if isinstance(flow, torch.Tensor):
        t = flow.detach().cpu()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"write_flo: one flow per file, got batch {t.shape[0]}")
            t = t[0]
        if t.dim() == 3 and t.shape[0] == 2 and t.shape[-1] != 2:
            t = t.permute(1, 2, 0)
        flow = t.numpy()
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"write_flo: flow must be (H, W, 2), got shape {arr.shape}")
    h, w = arr.shape[:2]
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(np.array([FLO_MAGIC], "<f4").tobytes())
        fh.write(np.array([w, h], "<i4").tobytes())
        fh.write(np.ascontiguousarray(arr, dtype="<f4").tobytes())
