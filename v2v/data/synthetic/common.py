"""Shared helpers for the synthetic datasets: seeding, smooth textures, layer compositing,
analytic flow/occlusion and deterministic file writers.

Every synthetic generator here describes a frame as a stack of *layers*. A layer is a texture
canvas plus, per frame, an offset ``o_t`` such that the screen pixel ``p`` shows canvas pixel
``p + o_t(p)`` (background layers may have a per-row offset, sprites a 2-vector). With that
model the ground-truth backward flow is exact:

``frame_t(p) = frame_{t+1}(p + flow_t(p))`` with ``flow_t(p) = o_t(p) - o_{t+1}(p)`` for the
layer visible at ``p`` in frame ``t``. A pixel is *occluded* (flow invalid) when the target
point leaves the image or any of its four bilinear neighbours in frame ``t+1`` belongs to a
different layer.

Flow arrays are ``H,W,2`` float32 in pixels (x right, y down); on disk they are Middlebury
``.flo`` files. Determinism: every random draw comes from ``numpy.random.Generator(PCG64)``
seeded by ``(seed, split, video index)``; PNGs are written with cv2 (no timestamps).
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path

import cv2
import numpy as np

from v2v.errors import V2VError
from v2v.utils import atomic_path

__all__ = [
    "LayerStack",
    "flow_and_occlusion",
    "occlusion_mask",
    "parse_size",
    "read_flo",
    "render_layer",
    "smooth_noise",
    "tree_digest",
    "video_rng",
    "write_flo",
    "write_json",
    "write_png",
]

FLO_MAGIC = 202021.25


def video_rng(seed: int, split: str, index: int, salt: str = "") -> np.random.Generator:
    """A Generator(PCG64) for video ``index`` of ``split``; stable across runs and platforms."""
    key = [int(seed) & 0xFFFFFFFF, zlib.crc32(split.encode()), int(index), zlib.crc32(salt.encode())]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))


def parse_size(text: str) -> tuple[int, int]:
    """``"64x128"`` -> ``(64, 128)`` (H, W)."""
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise V2VError(f"--size '{text}': expected HxW, e.g. 64x128") from None
    if h < 16 or w < 16:
        raise V2VError(f"--size '{text}': height and width must be at least 16")
    return h, w


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float, channels: int = 1) -> np.ndarray:
    """Zero-mean smooth noise ``h,w[,c]`` float32 with features about ``scale`` pixels wide.

    Drawn at low resolution and upsampled with bicubic interpolation, so it is smooth at the
    pixel scale (bilinear warping of it is accurate).
    """
    scale = max(float(scale), 2.0)
    lh, lw = max(2, int(np.ceil(h / scale)) + 2), max(2, int(np.ceil(w / scale)) + 2)
    low = rng.standard_normal((lh, lw, channels)).astype(np.float32)
    up = cv2.resize(low, (int(lw * scale), int(lh * scale)), interpolation=cv2.INTER_CUBIC)
    if up.ndim == 2:
        up = up[:, :, None]
    out = up[:h, :w]
    out = out / (out.std() + 1e-6)
    return out[:, :, 0] if channels == 1 else out


def render_layer(rgb: np.ndarray, lab: np.ndarray, map_x: np.ndarray, map_y: np.ndarray,
                 transparent: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """Sample a layer canvas at screen coordinates: bilinear for colour, nearest for labels.

    ``rgb`` is ``h,w,3`` float32, ``lab`` ``h,w`` uint8 (``transparent`` = not covered). Points
    outside the canvas are transparent.
    """
    col = cv2.remap(rgb, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    lab_out = cv2.remap(lab, map_x, map_y, interpolation=cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=transparent)
    return col, lab_out


class LayerStack:
    """Accumulates one frame: colour, label, instance id, layer index and per-pixel offset.

    Paint layers back to front with :meth:`paint`; ``offset`` is the layer's canvas offset
    ``o_t`` at the painted pixels (``...,2``), kept so flows can be computed afterwards.
    """

    def __init__(self, h: int, w: int):
        self.rgb = np.zeros((h, w, 3), np.float32)
        self.label = np.zeros((h, w), np.uint8)
        self.inst = np.zeros((h, w), np.uint16)
        self.layer = np.full((h, w), -1, np.int32)

    def paint(self, mask: np.ndarray, rgb: np.ndarray, label, inst, layer_id: int,
              y0: int = 0, x0: int = 0) -> None:
        """Paint ``mask`` (bool ``h,w``) of a region whose top-left corner is ``(y0, x0)``."""
        h, w = mask.shape
        sl = (slice(y0, y0 + h), slice(x0, x0 + w))
        self.rgb[sl][mask] = rgb[mask]
        self.label[sl][mask] = label[mask] if isinstance(label, np.ndarray) else label
        self.inst[sl][mask] = inst[mask] if isinstance(inst, np.ndarray) else inst
        self.layer[sl][mask] = layer_id


def flow_and_occlusion(layer_t: np.ndarray, off_t: dict, off_u: dict, layer_u: np.ndarray):
    """Backward flow from frame ``t`` to frame ``u`` and its occlusion mask.

    ``layer_t``/``layer_u``: ``H,W`` int layer index maps of frames t and u. ``off_t[k]`` /
    ``off_u[k]``: offset of layer ``k`` in frames t and u, either a ``(2,)`` vector (sprite) or
    an ``(H,2)`` per-row array (background). Returns ``flow`` ``H,W,2`` float32 with
    ``frame_t(p) = frame_u(p + flow(p))`` and ``occ`` ``H,W`` bool (True = not visible in u,
    or within one pixel of a layer boundary in u, so bilinear warping there is unreliable).
    """
    h, w = layer_t.shape
    flow = np.zeros((h, w, 2), np.float32)
    for k in np.unique(layer_t):
        k = int(k)
        m = layer_t == k
        d = np.asarray(off_t[k], np.float32) - np.asarray(off_u[k], np.float32)
        if d.ndim == 1:
            flow[m] = d
        else:  # per-row offsets
            rows = np.nonzero(m)[0]
            flow[m] = d[rows]
    return flow, occlusion_mask(flow, layer_t, layer_u)


def occlusion_mask(flow: np.ndarray, layer_t: np.ndarray, layer_u: np.ndarray) -> np.ndarray:
    """``H,W`` bool: True where ``p + flow(p)`` leaves the image or any of its four bilinear
    neighbours in frame ``u`` shows another layer than ``layer_t(p)``."""
    h, w = layer_t.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    qx, qy = xs + flow[..., 0], ys + flow[..., 1]
    occ = (qx < 0) | (qx > w - 1) | (qy < 0) | (qy > h - 1)
    x0 = np.clip(np.floor(qx), 0, w - 1).astype(np.int64)
    y0 = np.clip(np.floor(qy), 0, h - 1).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    for yy, xx in ((y0, x0), (y0, x1), (y1, x0), (y1, x1)):
        occ |= layer_u[yy, xx] != layer_t
    return occ


def write_png(path: str | os.PathLike, img: np.ndarray) -> None:
    """Write a PNG (uint8 gray/RGB or uint16 gray) atomically; RGB input, cv2 writes BGR."""
    if img.ndim == 3:
        img = np.ascontiguousarray(img[:, :, ::-1])
    with atomic_path(path) as tmp:
        if not cv2.imwrite(tmp, img):
            raise V2VError(f"could not write image {path}")


def write_flo(path: str | os.PathLike, flow: np.ndarray) -> None:
    """Write ``H,W,2`` flow as Middlebury .flo, atomically.

    Same bytes as :func:`v2v.ops.flow.write_flo` (tested), but without importing torch, so
    ``v2v data synth`` starts fast.
    """
    flow = np.asarray(flow, np.float32)
    h, w = flow.shape[:2]
    _write_bytes(path, np.array([FLO_MAGIC], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
                 + np.ascontiguousarray(flow, "<f4").tobytes())


def read_flo(path: str | os.PathLike) -> np.ndarray:
    """Read a Middlebury .flo file -> ``H,W,2`` float32."""
    data = Path(path).read_bytes()
    if len(data) < 12 or np.frombuffer(data[:4], "<f4")[0] != FLO_MAGIC:
        raise V2VError(f"{path}: not a Middlebury .flo file (bad magic)")
    w, h = (int(v) for v in np.frombuffer(data[4:12], "<i4"))
    if len(data) != 12 + 8 * w * h:
        raise V2VError(f"{path}: .flo size mismatch for {w}x{h}")
    return np.frombuffer(data[12:], "<f4").reshape(h, w, 2).copy()


def _write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomic write without fsync (dataset files: many small files, speed matters)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json(path: str | os.PathLike, obj, indent: int | None = 1) -> None:
    """Deterministic JSON (sorted keys) written atomically."""
    _write_bytes(path, (json.dumps(obj, indent=indent, sort_keys=True) + "\n").encode("utf-8"))


def tree_digest(root: str | os.PathLike) -> str:
    """sha256 over every file's relative path and bytes under ``root`` (sorted)."""
    root = Path(root)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()
