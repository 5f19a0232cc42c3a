"""Image and label-map I/O.

Conventions (the same at every v2v boundary):

* A decoded image is ``np.uint8`` of shape ``(H, W, 3)`` in **RGB** order.
* A tensor image is float32 ``3,H,W`` or ``B,3,H,W`` in ``[0, 1]``.
* A label map is ``np.int32`` of shape ``(H, W)`` holding integer ids (never one-hot).
* Sizes passed to functions here are ``(H, W)``; an ``int`` means a square ``(n, n)``.

Decoding rules, applied by :func:`read_image` and by the video readers in
:mod:`v2v.data.video`:

* **RGBA / LA -> RGB: composited over WHITE** using the alpha channel,
  ``rgb = round(c * a + 255 * (1 - a))`` with ``a = alpha / max_alpha``. A fully transparent
  pixel becomes ``(255, 255, 255)``; a fully opaque one keeps its colour unchanged.
* **Grayscale -> RGB** by replicating the channel.
* **16-bit** images are scaled to 8 bits with ``round(v / 257)`` (65535 -> 255, exact for
  values that came from 8-bit data).
* Palette PNGs are expanded to their colours by :func:`read_image`; :func:`read_label_map`
  returns their palette *indices* instead (Pascal-VOC style label maps).
* JPEG EXIF orientation is applied (OpenCV's default).

Every reader raises :class:`v2v.errors.V2VError` naming the file when it is missing or
cannot be decoded. Every writer is atomic (temp file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from v2v.errors import V2VError
from v2v.utils import atomic_path

__all__ = [
    "IMAGE_EXTENSIONS",
    "load_image_tensor",
    "read_image",
    "read_label_map",
    "resize_image",
    "to_rgb_uint8",
    "to_tensor",
    "to_uint8",
    "write_image",
    "write_label_map",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _size_hw(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0:
        raise V2VError(f"size {tuple(size)!r}: expected positive (H, W)")
    return (h, w)


def _decode_raw(path: str, flags: int) -> np.ndarray:
    """cv2 decode of a file (works with non-ASCII paths); None-safe with a PIL fallback."""
    if not os.path.exists(path):
        raise V2VError(f"{path}: file not found")
    if os.path.isdir(path):
        raise V2VError(f"{path}: is a folder, expected an image file")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise V2VError(f"{path}: cannot read ({e.strerror or e})") from None
    arr = cv2.imdecode(buf, flags) if buf.size else None
    if arr is None:
        arr = _decode_pil(path)
        if arr is not None and arr.ndim == 3 and arr.shape[2] in (3, 4):
            # PIL gives RGB(A); match cv2's BGR(A) for the caller. Gray+alpha (H,W,2) has no
            # colour order: reversing it would swap gray and alpha.
            arr = arr[..., [2, 1, 0, 3]] if arr.shape[2] == 4 else arr[..., ::-1]
        if arr is not None and flags == cv2.IMREAD_COLOR:
            arr = to_rgb_uint8(arr, bgr=True, name=path)[..., ::-1]  # cv2's IMREAD_COLOR contract: BGR uint8
    if arr is None:
        raise V2VError(f"{path}: cannot decode (not an image or truncated)")
    return np.ascontiguousarray(arr)


def _decode_pil(path: str, palette_indices: bool = False) -> np.ndarray | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return None
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "P" and not palette_indices:
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im, dtype=np.uint16).copy()
            elif im.mode == "I":
                a = np.asarray(im, dtype=np.int32)
                if a.size and a.min() >= 0 and a.max() < 65536:
                    return a.astype(np.uint16)  # 16-bit gray that Pillow widened to int32
                return a.copy()
            elif im.mode == "1":
                im = im.convert("L")
            elif im.mode not in ("L", "RGB", "RGBA", "LA", "P"):
                im = im.convert("RGB")
            return np.asarray(im).copy()
    except Exception:  # noqa: BLE001 - Pillow raises many types for bad files
        return None


def to_rgb_uint8(arr: np.ndarray, bgr: bool = False, name: str = "image") -> np.ndarray:
    """Normalise a decoded array to ``uint8 (H, W, 3)`` RGB with the module's rules.

    Accepts ``H,W`` gray, ``H,W,1``, ``H,W,2`` (gray+alpha), ``H,W,3`` and ``H,W,4`` arrays of
    dtype uint8 or uint16 (16-bit -> ``round(v/257)``), or float in [0, 1]. ``bgr=True`` when
    the channels come from OpenCV (BGR/BGRA). RGBA is composited over **white**.
    """
    a = np.asarray(arr)
    if a.dtype == np.uint8:
        alpha_max = 255.0
    elif a.dtype == np.uint16:
        alpha_max = 65535.0
    elif np.issubdtype(a.dtype, np.floating):
        alpha_max = 1.0
    else:
        raise V2VError(f"{name}: unsupported pixel type {a.dtype} (expected uint8, uint16 or float)")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise V2VError(f"{name}: unsupported image shape {tuple(np.asarray(arr).shape)} (expected H,W[,1-4])")
    c = a.shape[2]
    alpha = None
    if c in (2, 4):
        alpha = a[..., -1:]
        a = a[..., :-1]
        c -= 1
    if c == 3 and bgr:
        a = a[..., ::-1]
    if alpha is not None:
        af = alpha.astype(np.float32) / alpha_max
        if np.all(af >= 1.0):
            alpha = None  # fully opaque: exact, no float round trip
        else:
            col = a.astype(np.float32)
            a = col * af + alpha_max * (1.0 - af)
            a = np.clip(np.rint(a) if alpha_max > 1 else a, 0, alpha_max)
    if alpha_max == 65535.0:
        a = np.rint(np.asarray(a, dtype=np.float32) / 257.0)
    elif alpha_max == 1.0:
        a = np.rint(np.clip(np.asarray(a, dtype=np.float32), 0.0, 1.0) * 255.0)
    a = np.asarray(a).astype(np.uint8, copy=False)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``np.uint8 (H, W, 3)`` RGB.

    RGBA is composited over white (``c*a + 255*(1-a)``), gray is replicated to 3 channels,
    16-bit is scaled to 8-bit by ``round(v/257)``. Raises V2VError naming the file when it is
    missing or cannot be decoded.
    """
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext in (".jpg", ".jpeg"):
        arr = _decode_raw(p, cv2.IMREAD_COLOR)  # applies EXIF orientation; BGR
        return to_rgb_uint8(arr, bgr=True, name=p)
    arr = _decode_raw(p, cv2.IMREAD_UNCHANGED)
    return to_rgb_uint8(arr, bgr=True, name=p)


def _png_is_palette(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return False
    return len(head) >= 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[25] == 3


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """Read an integer label map losslessly as ``np.int32 (H, W)``.

    8- and 16-bit single-channel PNGs are read unchanged (so Cityscapes ``instanceIds`` such as
    ``26003 = labelId*1000 + k`` survive). Palette PNGs return the palette indices. A 3-channel
    file is accepted only when its three channels are identical (a gray map saved as RGB);
    a real colour image raises V2VError naming the file.
    """
    p = os.fspath(path)
    if _png_is_palette(p):
        arr = _decode_pil(p, palette_indices=True)
        if arr is None:
            raise V2VError(f"{p}: cannot decode (not an image or truncated)")
    else:
        arr = _decode_raw(p, cv2.IMREAD_UNCHANGED)
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):  # drop alpha
            arr = arr[..., :-1]
        if arr.shape[2] == 1 or (
            arr.shape[2] == 3
            and np.array_equal(arr[..., 0], arr[..., 1])
            and np.array_equal(arr[..., 0], arr[..., 2])
        ):
            arr = arr[..., 0]
        else:
            raise V2VError(
                f"{p}: is a colour image ({arr.shape[2]} different channels), expected a "
                "single-channel label map of integer ids"
            )
    if np.issubdtype(arr.dtype, np.floating):
        raise V2VError(f"{p}: float pixels ({arr.dtype}), expected an integer label map")
    return arr.astype(np.int32, copy=False)


def _as_uint8_hwc(img, name: str = "image") -> np.ndarray:
    """uint8 HWC (RGB) from a uint8 array (HW / HWC) or a float tensor/array ``3,H,W`` / ``1,3,H,W`` in [0,1]."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(img, torch.Tensor):
        return to_uint8(img)
    a = np.asarray(img)
    if a.dtype == np.uint8:
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
            return to_rgb_uint8(a, name=name)
        raise V2VError(f"{name}: uint8 image of shape {a.shape}, expected H,W,3")
    if np.issubdtype(a.dtype, np.floating):
        return to_uint8(a)
    raise V2VError(f"{name}: unsupported image type {a.dtype} (expected uint8 HWC or float 3,H,W in [0,1])")


def write_image(path: str | os.PathLike, img) -> None:
    """Write an image atomically; the format follows the extension (png, jpg, bmp, webp, tif).

    ``img`` is ``np.uint8 (H,W,3)`` RGB (``H,W`` gray also accepted) or a float tensor/array
    ``3,H,W`` (or ``1,3,H,W``) in [0, 1]. JPEGs are written at quality 95.
    """
    p = os.fspath(path)
    arr = _as_uint8_hwc(img, name=p)
    ext = os.path.splitext(p)[1].lower() or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(arr[..., ::-1]), params)
    if not ok:
        raise V2VError(f"{p}: cannot encode an image with extension '{ext}'")
    with atomic_path(p) as tmp:
        buf.tofile(tmp)


def write_label_map(path: str | os.PathLike, labels) -> None:
    """Write an integer label map ``(H, W)`` atomically as a lossless PNG.

    Stored as 8-bit when ``max < 256``, else 16-bit; negative values or values >= 65536 raise
    V2VError. Accepts numpy arrays or integer tensors (``H,W`` or ``1,H,W``).
    """
    p = os.fspath(path)
    try:
        import torch

        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(labels)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2 or not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        raise V2VError(f"{p}: label map must be an integer (H, W) array, got {a.dtype} {a.shape}")
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if lo < 0 or hi >= 65536:
        raise V2VError(f"{p}: label ids must be in [0, 65535], got range [{lo}, {hi}]")
    a = a.astype(np.uint8 if hi < 256 else np.uint16)
    ext = os.path.splitext(p)[1].lower()
    if ext not in ("", ".png"):
        raise V2VError(f"{p}: label maps are written as lossless PNG, got extension '{ext}'")
    ok, buf = cv2.imencode(".png", a)
    if not ok:  # pragma: no cover
        raise V2VError(f"{p}: cannot encode label map")
    with atomic_path(p) as tmp:
        buf.tofile(tmp)


def to_tensor(img: np.ndarray):
    """``np.uint8 (H,W,3)`` RGB (or ``(H,W)`` gray) -> float32 tensor ``3,H,W`` in [0, 1]."""
    import torch

    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise V2VError(f"to_tensor: expected uint8 HWC, got {a.dtype} {a.shape}")
    a = to_rgb_uint8(a)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float().div_(255.0)


def to_uint8(t) -> np.ndarray:
    """Float ``3,H,W`` or ``B,3,H,W`` (tensor or array) in [0, 1] -> ``np.uint8`` HWC / BHWC (RGB).

    Values are clamped to [0, 1] and rounded (``round(x*255)``).
    """
    try:
        import torch

        if isinstance(t, torch.Tensor):
            t = t.detach().to("cpu", torch.float32).numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(t, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)
    elif a.ndim == 4 and a.shape[1] in (1, 3):
        a = a.transpose(0, 2, 3, 1)
    else:
        raise V2VError(f"to_uint8: expected a float 3,H,W or B,3,H,W image, got shape {a.shape}")
    out = np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out)


def resize_image(img, size, mode: str = "auto"):
    """Resize to ``size = (H, W)`` (int -> square).

    * ``np.uint8 (H,W,C)`` / ``(H,W)``: OpenCV; ``mode="auto"`` uses INTER_AREA to shrink and
      INTER_LINEAR to enlarge (nearest for int32/int64 arrays, i.e. label maps); ``"nearest"``; also ``"bilinear"``, ``"bicubic"``,
      ``"area"``.
    * float tensor ``3,H,W`` / ``B,3,H,W``: ``torch.nn.functional.interpolate`` (``"auto"`` =
      bilinear with antialias, align_corners=False); integer tensors always use nearest.
    Returns the same kind of object it was given.
    """
    hw = _size_hw(size)
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(img, torch.Tensor):
        import torch.nn.functional as F

        x = img
        squeeze = x.dim() == 3
        if x.dim() == 2:
            x = x[None, None]
        elif squeeze:
            x = x[None]
        if tuple(x.shape[-2:]) == hw:
            out = x
        elif not x.is_floating_point() or mode == "nearest":
            out = F.interpolate(x.float(), size=hw, mode="nearest-exact").to(x.dtype)
        else:
            m = {"auto": "bilinear", "bilinear": "bilinear", "bicubic": "bicubic", "area": "area"}.get(mode)
            if m is None:
                raise V2VError(
                    f"resize_image: unknown mode '{mode}' (valid: auto, nearest, bilinear, bicubic, area)"
                )
            kw = {"align_corners": False, "antialias": True} if m in ("bilinear", "bicubic") else {}
            out = F.interpolate(x, size=hw, mode=m, **kw)
            if m == "bicubic":
                out = out.clamp(0, 1)
        if img.dim() == 2:
            return out[0, 0]
        return out[0] if squeeze else out
    a = np.asarray(img)
    h0, w0 = a.shape[:2]
    if (h0, w0) == hw:
        return a.copy()
    if mode == "auto" and a.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        interp = cv2.INTER_NEAREST_EXACT  # int32/int64/bool: label maps
    elif mode == "auto":
        interp = cv2.INTER_AREA if hw[0] * hw[1] < h0 * w0 else cv2.INTER_LINEAR
    else:
        interp = {
            "nearest": cv2.INTER_NEAREST_EXACT,
            "bilinear": cv2.INTER_LINEAR,
            "bicubic": cv2.INTER_CUBIC,
            "area": cv2.INTER_AREA,
        }.get(mode)
        if interp is None:
            raise V2VError(
                f"resize_image: unknown mode '{mode}' (valid: auto, nearest, bilinear, bicubic, area)"
            )
    src = a
    if a.dtype not in (np.uint8, np.uint16, np.float32, np.float64, np.int16):
        if interp != cv2.INTER_NEAREST_EXACT:
            raise V2VError(f"resize_image: {a.dtype} arrays can only be resized with mode='nearest'")
        src = a.astype(np.float64)
    out = cv2.resize(src, (hw[1], hw[0]), interpolation=interp)
    if a.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out.astype(a.dtype, copy=False)


def load_image_tensor(path: str | os.PathLike, size=None, device=None):
    """Read an image file as a float32 tensor ``1,3,H,W`` in [0, 1] (RGB), optionally resized.

    ``size`` is ``(H, W)`` (int -> square; resized with INTER_AREA when shrinking). ``device``
    is a torch device or string; default CPU.
    """
    img = read_image(Path(path))
    if size is not None:
        img = resize_image(img, size)
    t = to_tensor(img)[None]
    return t if device is None else t.to(device)
