"""Every PNG colour type and bit depth decodes the same through OpenCV and the Pillow fallback."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

import v2v.data.image as image_mod
from v2v.data.image import read_image, read_label_map


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png(samples: np.ndarray, color_type: int, depth: int, plte=None, trns=None) -> bytes:
    """A minimal PNG encoder: ``samples`` (H, W, C) of ints < 2**depth, filter 0, one IDAT."""
    h, w, _c = samples.shape
    rows = []
    for y in range(h):
        row = samples[y].reshape(-1)
        if depth == 16:
            raw = row.astype(">u2").tobytes()
        elif depth == 8:
            raw = row.astype(np.uint8).tobytes()
        else:  # pack sub-byte samples big-endian
            per = 8 // depth
            pad = (-len(row)) % per
            r = np.concatenate([row, np.zeros(pad, row.dtype)]).reshape(-1, per).astype(np.uint8)
            shifts = np.array([8 - depth * (i + 1) for i in range(per)], np.uint8)
            raw = (r << shifts).sum(1).astype(np.uint8).tobytes()
        rows.append(b"\x00" + raw)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
    if plte is not None:
        out += _chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).reshape(-1)))
    if trns is not None:
        out += _chunk(b"tRNS", bytes(trns))
    return out + _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b"")


def _expected(samples, color_type, depth, plte=None, trns=None):
    """RGB uint8 by the module's rules (alpha over white, 16-bit /257, low depths scaled)."""
    s = samples.astype(np.float64)
    top = 2**depth - 1
    if color_type == 3:
        rgb = np.asarray(plte, np.float64)[samples[..., 0]]
        a = np.full(samples.shape[:2] + (1,), 255.0)
        if trns is not None:
            alpha = np.full(len(plte), 255.0)
            alpha[: len(trns)] = list(trns)
            a = alpha[samples[..., 0]][..., None]
        return np.rint(rgb * a / 255 + 255 * (1 - a / 255)).astype(np.uint8)
    v = s / top * 255.0
    col, alpha = (v[..., :-1], v[..., -1:]) if color_type in (4, 6) else (v, None)
    if alpha is not None:
        col = col * alpha / 255 + 255 * (1 - alpha / 255)
    if col.shape[2] == 1:
        col = np.repeat(col, 3, axis=2)
    return np.rint(col).astype(np.uint8)


CASES = [(0, d) for d in (1, 2, 4, 8, 16)] + [(2, 8), (2, 16)] + [(3, d) for d in (1, 2, 4, 8)] + \
    [(4, 8), (4, 16), (6, 8), (6, 16)]


@pytest.mark.parametrize(("color_type", "depth"), CASES)
def test_png_types_agree_across_decoders(tmp_path, monkeypatch, color_type, depth):
    rng = np.random.default_rng(color_type * 100 + depth)
    c = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    samples = rng.integers(0, 2**depth, size=(5, 7, c))
    plte = trns = None
    if color_type == 3:
        plte = rng.integers(0, 256, size=(2**depth, 3))
        trns = list(rng.integers(0, 256, size=min(3, 2**depth)))
    if color_type in (4, 6):
        samples[0, :, -1] = 0  # fully transparent row -> white
        samples[1, :, -1] = 2**depth - 1  # opaque row keeps its colour
    p = tmp_path / f"t{color_type}_{depth}.png"
    p.write_bytes(_png(samples, color_type, depth, plte, trns))
    want = _expected(samples, color_type, depth, plte, trns)
    via_cv2 = read_image(p)
    monkeypatch.setattr(image_mod.cv2, "imdecode", lambda buf, flags: None)  # force the Pillow path
    via_pil = read_image(p)
    tol = 1 if depth == 16 else 0  # Pillow narrows 16-bit colour to 8 bits itself (>>8, not /257)
    assert via_cv2.shape == via_pil.shape == want.shape
    assert np.abs(via_cv2.astype(int) - want).max() <= (1 if depth == 16 else 0), (color_type, depth)
    assert np.abs(via_pil.astype(int) - via_cv2).max() <= tol, (color_type, depth)
    if color_type == 4 and depth == 8:
        assert (via_pil[1] != 255).any()  # the gray+alpha swap made every opaque pixel 255


def test_gray_alpha_label_map_through_pillow(tmp_path, monkeypatch):
    samples = np.stack([np.arange(12).reshape(3, 4), np.full((3, 4), 255)], -1)
    p = tmp_path / "la.png"
    p.write_bytes(_png(samples, 4, 8))
    monkeypatch.setattr(image_mod.cv2, "imdecode", lambda buf, flags: None)
    assert read_label_map(p).tolist() == np.arange(12).reshape(3, 4).tolist()
    assert cv2 is image_mod.cv2
