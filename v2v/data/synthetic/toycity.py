"""toycity: procedural street-scene label-map videos (a tiny Cityscapes stand-in for vid2vid).

Classes (label ids, ``label_nc = 7``)::

    0 sky   1 road   2 sidewalk   3 building   4 vegetation   5 car   6 person

A scene is a stack of layers, back to front: sky, buildings, ground (sidewalk + road),
vegetation (trees and hedges), then cars and people sorted by the y of their bottom edge
(lower on screen = closer = painted later, so they occlude each other). The camera pans
horizontally; each background layer scrolls with its own parallax (the ground with a per-row
parallax that grows towards the bottom of the image). Cars and people translate with their own
sub-pixel velocities. Every layer carries a fixed smooth texture sampled at moved coordinates
(``cv2.remap``), so the analytic flow is exact and bilinear warping reproduces frames.

Layout written by :func:`generate_toycity` under ``out``::

    {split}_A/seqNNNN/frame_00000.png       label ids, uint8
    {split}_B/seqNNNN/frame_00000.png       RGB
    {split}_inst/seqNNNN/frame_00000.png    uint16 instance ids: car/person label*1000+k, stuff = label
    {split}_flow/seqNNNN/frame_0000t.flo    t=0..T-2: frame_t(p) = frame_{t+1}(p + flow(p))
    {split}_occ/seqNNNN/frame_0000t.png     uint8, 255 = flow invalid (occluded / out of view)
    {split}_flowprev/seqNNNN/frame_0000t.flo t=1..T-1: frame_t(p) = frame_{t-1}(p + flow(p))
    {split}_occprev/seqNNNN/frame_0000t.png
    meta.json                               classes, palette, label_nc, fps, size, seed, counts

Flow is in pixels, ``H,W,2`` on disk (Middlebury .flo), x right / y down.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .common import (
    LayerStack,
    flow_and_occlusion,
    render_layer,
    smooth_noise,
    video_rng,
    write_flo,
    write_json,
    write_png,
)

__all__ = ["CLASSES", "FPS", "LABEL_NC", "PALETTE", "ToyCityVideo", "generate_toycity", "render_toycity"]

CLASSES = ["sky", "road", "sidewalk", "building", "vegetation", "car", "person"]
LABEL_NC = len(CLASSES)
SKY, ROAD, SIDEWALK, BUILDING, VEGETATION, CAR, PERSON = range(7)
# Cityscapes colours for the same classes (visualization only)
PALETTE = [[70, 130, 180], [128, 64, 128], [244, 35, 232], [70, 70, 70], [107, 142, 35], [0, 0, 142], [220, 20, 60]]
FPS = 15
TRANSPARENT = 255


@dataclass
class ToyCityVideo:
    """One rendered toycity video (numpy, ``T`` frames of ``H,W``).

    ``rgb`` T,H,W,3 uint8; ``label`` T,H,W uint8; ``inst`` T,H,W uint16; ``flow``/``occ``
    (T-1) for t=0..T-2 towards t+1; ``flowprev``/``occprev`` (T-1) for t=1..T-1 towards t-1.
    Flows are float32 ``H,W,2`` pixels; occlusions bool (True = invalid).
    """

    rgb: np.ndarray
    label: np.ndarray
    inst: np.ndarray
    flow: np.ndarray
    occ: np.ndarray
    flowprev: np.ndarray
    occprev: np.ndarray
    info: dict


# ----------------------------------------------------------------------------- textures
def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _tint(rng, h, w, color, amp, scale) -> np.ndarray:
    """``h,w,3`` float32 in [0,1]: a colour modulated by smooth luminance noise."""
    n = smooth_noise(rng, h, w, scale)
    c = np.asarray(color, np.float32)[None, None, :] / 255.0
    return np.clip(c * (1.0 + amp * n[:, :, None]), 0, 1).astype(np.float32)


def _sky_layer(rng, h, wc, y_ground):
    rows = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    top = np.array([90, 140, 210], np.float32) / 255
    bot = np.array([190, 215, 240], np.float32) / 255
    rgb = np.broadcast_to(top * (1 - rows) + bot * rows, (h, wc, 3))
    clouds = np.clip(smooth_noise(rng, h, wc, max(8.0, h / 4)), 0, None)[:, :, None]
    rgb = np.clip(rgb + 0.12 * clouds, 0, 1).astype(np.float32)
    lab = np.full((h, wc), SKY, np.uint8)
    return rgb, lab


def _building_layer(rng, h, wc, y_ground):
    rgb = np.zeros((h, wc, 3), np.float32)
    lab = np.full((h, wc), TRANSPARENT, np.uint8)
    x = int(rng.integers(-h // 2, 0))
    palette = [(200, 190, 170), (150, 150, 155), (170, 110, 90), (215, 205, 185), (120, 125, 135)]
    while x < wc:
        bw = int(rng.integers(max(8, h // 3), max(9, int(h * 0.9))))
        top = int(rng.integers(int(0.08 * h), max(int(0.08 * h) + 1, int(0.40 * h))))
        x0, x1 = max(x, 0), min(x + bw, wc)
        if x1 > x0:
            col = palette[int(rng.integers(len(palette)))]
            tex = _tint(rng, y_ground - top, x1 - x0, col, 0.08, max(4.0, h / 10))
            # window grid: darker blurred rectangles
            win = np.zeros((y_ground - top, x1 - x0), np.float32)
            step = max(4, h // 10)
            ww = max(2, step // 2)
            for wy in range(step // 2, y_ground - top - step // 2, step):
                win[wy:wy + ww, :] = 1.0
            colmask = ((np.arange(x1 - x0) + (x0 - x)) % step) < ww
            win *= colmask[None, :]
            win = _blur(win, 0.8)
            tex = tex * (1 - 0.45 * win[:, :, None]) + 0.45 * win[:, :, None] * np.array([0.25, 0.3, 0.4], np.float32)
            rgb[top:y_ground, x0:x1] = tex
            lab[top:y_ground, x0:x1] = BUILDING
        x += bw + int(rng.integers(0, max(2, h // 8)))
    # gaps between buildings show sky: fill colour there with a neutral value so bilinear
    # sampling near edges stays close (label stays transparent)
    rgb[lab == TRANSPARENT] = rgb[lab != TRANSPARENT].mean(0) if (lab != TRANSPARENT).any() else 0.5
    return _blur(rgb, 0.6), lab


def _ground_layer(rng, h, wc, y_ground, y_road):
    rgb = np.zeros((h, wc, 3), np.float32)
    lab = np.full((h, wc), TRANSPARENT, np.uint8)
    sw = _tint(rng, y_road - y_ground, wc, (185, 180, 170), 0.07, max(3.0, h / 16))
    tiles = 0.5 + 0.5 * np.cos(2 * np.pi * np.arange(wc, dtype=np.float32) / max(4, h // 8))
    sw = sw * (1 - 0.06 * tiles[None, :, None])
    rgb[y_ground:y_road] = sw
    lab[y_ground:y_road] = SIDEWALK
    rh = h - y_road
    road = _tint(rng, rh, wc, (95, 95, 100), 0.10, max(3.0, h / 12))
    # dashed centre line
    dash = np.zeros((rh, wc), np.float32)
    cy = rh // 2
    period = max(8, h // 3)
    on = (np.arange(wc) % period) < period // 2
    dash[max(cy - 1, 0):cy + 1, :] = on[None, :]
    dash = _blur(dash, 0.7)
    road = road * (1 - dash[:, :, None]) + dash[:, :, None] * 0.9
    rgb[y_road:] = road
    lab[y_road:] = ROAD
    rgb[:y_ground] = rgb[y_ground]
    return _blur(rgb, 0.5), lab


def _vegetation_layer(rng, h, wc, y_ground, y_road):
    rgb = np.zeros((h, wc, 3), np.float32)
    mask = np.zeros((h, wc), np.uint8)
    # hedges along the building line
    x = int(rng.integers(0, h))
    while x < wc:
        hw = int(rng.integers(max(6, h // 5), max(7, h // 2)))
        hh = int(rng.integers(max(2, h // 20), max(3, h // 9)))
        cv2.ellipse(mask, (x + hw // 2, y_ground), (hw // 2, hh), 0, 180, 360, 1, -1)
        x += hw + int(rng.integers(h // 2, 2 * h))
    # trees on the sidewalk
    x = int(rng.integers(0, h // 2))
    while x < wc:
        base = int(rng.integers(y_ground + 1, max(y_ground + 2, y_road)))
        th = int(rng.integers(int(0.25 * h), int(0.45 * h)))
        tw = max(1, h // 40)
        cv2.rectangle(mask, (x - tw, base - th // 2), (x + tw, base), 1, -1)
        r = max(3, int(th * rng.uniform(0.28, 0.4)))
        cv2.ellipse(mask, (x, base - th + r // 2), (r, int(r * 1.1)), 0, 0, 360, 1, -1)
        x += int(rng.integers(h // 2, int(1.5 * h)))
    green = _tint(rng, h, wc, (70, 120, 45), 0.18, max(3.0, h / 16))
    rgb[:] = green
    lab = np.where(mask > 0, VEGETATION, TRANSPARENT).astype(np.uint8)
    return _blur(rgb, 0.6), lab


# ------------------------------------------------------------------------------ sprites
def _car_sprite(rng, ch, cw):
    h, w = ch, cw
    H, W = h + 4, w + 4
    mask = np.zeros((H, W), np.uint8)
    body = np.asarray(rng.uniform(30, 230, 3), np.float32)
    ox, oy = 2, 2
    pts_body = np.array([[ox, oy + int(0.40 * h)], [ox + w - 1, oy + int(0.40 * h)],
                         [ox + w - 1, oy + int(0.85 * h)], [ox, oy + int(0.85 * h)]], np.int32)
    cv2.fillPoly(mask, [pts_body], 1)
    cabin = np.array([[ox + int(0.18 * w), oy + int(0.42 * h)], [ox + int(0.30 * w), oy + int(0.05 * h)],
                      [ox + int(0.72 * w), oy + int(0.05 * h)], [ox + int(0.86 * w), oy + int(0.42 * h)]], np.int32)
    cv2.fillPoly(mask, [cabin], 1)
    rw = max(2, int(0.16 * h))
    wheel = np.zeros_like(mask)
    for cx in (ox + int(0.22 * w), ox + int(0.78 * w)):
        cv2.circle(wheel, (cx, oy + int(0.85 * h)), rw, 1, -1)
    mask |= wheel
    win = np.zeros_like(mask)
    inner = np.array([[ox + int(0.26 * w), oy + int(0.40 * h)], [ox + int(0.34 * w), oy + int(0.12 * h)],
                      [ox + int(0.68 * w), oy + int(0.12 * h)], [ox + int(0.78 * w), oy + int(0.40 * h)]], np.int32)
    cv2.fillPoly(win, [inner], 1)
    rgb = _tint(rng, H, W, body, 0.06, max(3.0, h / 3))
    winf = _blur(win.astype(np.float32), 0.6)[:, :, None]
    rgb = rgb * (1 - winf) + winf * np.array([0.55, 0.65, 0.75], np.float32)
    whf = _blur(wheel.astype(np.float32), 0.6)[:, :, None]
    rgb = rgb * (1 - whf) + whf * 0.08
    return _blur(rgb.astype(np.float32), 0.5), mask.astype(bool)


def _person_sprite(rng, ch, cw):
    h, w = ch, cw
    H, W = h + 4, w + 4
    ox, oy = 2, 2
    skin = np.asarray(rng.uniform([150, 100, 70], [240, 200, 170]), np.float32)
    shirt = np.asarray(rng.uniform(20, 235, 3), np.float32)
    pants = np.asarray(rng.uniform(20, 140, 3), np.float32)
    head = np.zeros((H, W), np.uint8)
    r = max(1, int(np.rint(0.11 * h)))
    cv2.circle(head, (ox + w // 2, oy + r), r, 1, -1)
    torso = np.zeros((H, W), np.uint8)
    cv2.rectangle(torso, (ox, oy + 2 * r), (ox + w - 1, oy + int(0.55 * h)), 1, -1)
    legs = np.zeros((H, W), np.uint8)
    lw = max(1, w // 3)
    cv2.rectangle(legs, (ox, oy + int(0.55 * h)), (ox + lw, oy + h - 1), 1, -1)
    cv2.rectangle(legs, (ox + w - 1 - lw, oy + int(0.55 * h)), (ox + w - 1, oy + h - 1), 1, -1)
    parts = [(legs, pants), (torso, shirt), (head, skin)]
    rgb = _tint(rng, H, W, shirt, 0.05, 3.0)
    mask = np.zeros((H, W), bool)
    for m, col in parts:
        mf = _blur(m.astype(np.float32), 0.5)[:, :, None]
        rgb = rgb * (1 - mf) + mf * (col / 255.0)
        mask |= m.astype(bool)
    return rgb.astype(np.float32), mask


@dataclass
class _Sprite:
    rgb: np.ndarray
    mask: np.ndarray
    label: int
    inst: int
    x0: float
    y0: float
    vx: float
    vy: float

    def pos(self, t):
        return self.x0 + self.vx * t, self.y0 + self.vy * t


def _make_sprites(rng, h, w, T, y_ground, y_road):
    sprites = []
    s = w / 128.0
    n_cars = int(rng.integers(1, 4))
    n_people = int(rng.integers(1, 4))
    for k in range(n_cars):
        yb = rng.uniform(y_road + 0.35 * (h - y_road), h - 1.0)
        depth = 0.6 + 0.7 * (yb - y_road) / (h - y_road)
        chh = max(6, int(np.rint(h * 0.15 * depth)))
        cww = int(np.rint(chh * rng.uniform(2.2, 2.7)))
        if cww > 0.6 * w:  # narrow images: shrink the car, keep its aspect
            chh, cww = max(4, int(chh * 0.6 * w / cww)), max(6, int(0.6 * w))
        rgb, mask = _car_sprite(rng, chh, cww)
        vx = float(rng.choice([-1, 1]) * rng.uniform(0.6, 2.2) * s)
        xm = rng.uniform(0.05 * w, max(0.05 * w, 0.95 * w - cww))
        x0 = xm - vx * (T - 1) / 2
        sprites.append(_Sprite(rgb, mask, CAR, CAR * 1000 + k, x0 - 2, yb - chh - 2, vx, 0.0))
    for k in range(n_people):
        crossing = rng.random() < 0.3
        yb = rng.uniform(y_ground + 2, y_road + 1) if not crossing else rng.uniform(y_road, h)
        depth = 0.7 + 0.6 * (yb - y_ground) / (h - y_ground)
        phh = max(8, int(np.rint(h * 0.26 * depth)))
        pww = max(3, int(np.rint(phh * 0.33)))
        rgb, mask = _person_sprite(rng, phh, pww)
        vx = float(rng.uniform(-0.8, 0.8) * s)
        vy = float(rng.uniform(-0.3, 0.3) * s) if crossing else 0.0
        xm = rng.uniform(0.05 * w, max(0.05 * w, 0.95 * w - pww))
        x0 = xm - vx * (T - 1) / 2
        sprites.append(_Sprite(rgb, mask, PERSON, PERSON * 1000 + k, x0 - 2, yb - phh - 2 - vy * (T - 1) / 2, vx, vy))
    return sprites


# ------------------------------------------------------------------------------ render
def render_toycity(rng: np.random.Generator, frames: int, height: int, width: int) -> ToyCityVideo:
    """Render one toycity video in memory (see module docstring for the scene model)."""
    T, h, w = int(frames), int(height), int(width)
    y_ground = int(np.rint(0.55 * h))
    y_road = int(np.rint(0.66 * h))
    speed = float(rng.choice([-1, 1]) * rng.uniform(0.5, 1.5) * w / 128.0)
    cams = speed * np.arange(T, dtype=np.float64)
    cams -= cams.min()
    travel = float(cams.max())
    # parallax per layer (ground: per row, growing towards the bottom)
    rows = np.arange(h, dtype=np.float32)
    par_ground = 0.6 + 0.8 * np.clip((rows - y_ground) / max(1, h - y_ground), 0, 1)
    pars = {0: np.full(h, 0.08, np.float32), 1: np.full(h, 0.35, np.float32), 2: par_ground,
            3: np.full(h, 0.75, np.float32)}
    wc = w + int(np.ceil(travel * 1.5)) + 8
    layers = {
        0: _sky_layer(rng, h, wc, y_ground),
        1: _building_layer(rng, h, wc, y_ground),
        2: _ground_layer(rng, h, wc, y_ground, y_road),
        3: _vegetation_layer(rng, h, wc, y_ground, y_road),
    }
    sprites = _make_sprites(rng, h, w, T, y_ground, y_road)

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.zeros((T, h, w, 3), np.uint8)
    label = np.zeros((T, h, w), np.uint8)
    inst = np.zeros((T, h, w), np.uint16)
    layer_maps, offsets = [], []
    for t in range(T):
        st = LayerStack(h, w)
        off = {}
        for k in range(4):
            ox = (pars[k] * cams[t] + 2.0).astype(np.float32)  # per row
            off[k] = np.stack([ox, np.zeros_like(ox)], 1)
            col, lab = render_layer(*layers[k], xs + ox[:, None], ys)
            m = lab != TRANSPARENT
            st.paint(m, col, lab, lab.astype(np.uint16), k)
        order = sorted(range(len(sprites)), key=lambda i: (sprites[i].pos(t)[1] + sprites[i].mask.shape[0], i))
        for i in order:
            sp = sprites[i]
            px, py = sp.pos(t)
            sh, sw = sp.mask.shape
            xa, xb = max(0, int(np.floor(px)) - 1), min(w, int(np.ceil(px + sw)) + 1)
            ya, yb = max(0, int(np.floor(py)) - 1), min(h, int(np.ceil(py + sh)) + 1)
            off[4 + i] = np.array([-px, -py], np.float32)
            if xb <= xa or yb <= ya:
                continue
            mx = xs[ya:yb, xa:xb] - np.float32(px)
            my = ys[ya:yb, xa:xb] - np.float32(py)
            col = cv2.remap(sp.rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            m = cv2.remap(sp.mask.astype(np.uint8), mx, my, cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
            st.paint(m, col, sp.label, sp.inst, 4 + i, ya, xa)
        rgb[t] = np.clip(np.rint(st.rgb * 255), 0, 255).astype(np.uint8)
        label[t], inst[t] = st.label, st.inst
        layer_maps.append(st.layer)
        offsets.append(off)

    flow = np.zeros((max(T - 1, 0), h, w, 2), np.float32)
    occ = np.zeros((max(T - 1, 0), h, w), bool)
    flowprev, occprev = np.zeros_like(flow), np.zeros_like(occ)
    for t in range(T - 1):
        flow[t], occ[t] = flow_and_occlusion(layer_maps[t], offsets[t], offsets[t + 1], layer_maps[t + 1])
        flowprev[t], occprev[t] = flow_and_occlusion(layer_maps[t + 1], offsets[t + 1], offsets[t], layer_maps[t])
    info = {"camera_speed": round(speed, 4), "cars": sum(s.label == CAR for s in sprites),
            "people": sum(s.label == PERSON for s in sprites)}
    return ToyCityVideo(rgb, label, inst, flow, occ, flowprev, occprev, info)


def generate_toycity(out, videos: int = 4, frames: int = 12, size=(64, 128), seed: int = 0,
                     split: str = "train", progress: bool = True) -> Path:
    """Write ``videos`` toycity videos of ``frames`` frames at ``size`` (H, W) under ``out``.

    Same ``(seed, split)`` gives byte-identical files. Returns the output folder. See the module
    docstring for the layout.
    """
    from tqdm import tqdm

    out = Path(out)
    h, w = int(size[0]), int(size[1])
    if frames < 2:
        from v2v.errors import V2VError

        raise V2VError(f"toycity: --frames must be at least 2 (got {frames})")
    bar = tqdm(total=videos * frames, desc=f"toycity {split}", unit="frame", disable=not progress)
    per_video = []
    for i in range(videos):
        vid = render_toycity(video_rng(seed, split, i, "toycity"), frames, h, w)
        seq = f"seq{i:04d}"
        for t in range(frames):
            name = f"frame_{t:05d}"
            write_png(out / f"{split}_A" / seq / f"{name}.png", vid.label[t])
            write_png(out / f"{split}_B" / seq / f"{name}.png", vid.rgb[t])
            write_png(out / f"{split}_inst" / seq / f"{name}.png", vid.inst[t])
            if t < frames - 1:
                write_flo(out / f"{split}_flow" / seq / f"{name}.flo", vid.flow[t])
                write_png(out / f"{split}_occ" / seq / f"{name}.png", vid.occ[t].astype(np.uint8) * 255)
            if t > 0:
                write_flo(out / f"{split}_flowprev" / seq / f"{name}.flo", vid.flowprev[t - 1])
                write_png(out / f"{split}_occprev" / seq / f"{name}.png", vid.occprev[t - 1].astype(np.uint8) * 255)
            bar.update(1)
        per_video.append({"name": seq, **vid.info})
    bar.close()
    meta = {
        "dataset": "toycity",
        "classes": CLASSES,
        "colors": PALETTE,
        "label_nc": LABEL_NC,
        "fps": FPS,
        "size": [h, w],
        "seed": int(seed),
        "split": split,
        "counts": {"videos": int(videos), "frames": int(frames)},
        "videos": per_video,
        "flow": "backward, pixels: frame_t(p) = frame_{t+1}(p + flow_t(p)); flowprev_t: frame_t(p) = frame_{t-1}(p + flowprev_t(p))",
        "instance_ids": "car/person: label*1000+k; stuff: label id",
    }
    _merge_meta(out / "meta.json", meta, split)
    return out


def _merge_meta(path: Path, meta: dict, split: str) -> None:
    """meta.json keeps one entry per split so train and test can share a folder."""
    import json

    existing = {}
    if path.is_file():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = {}
    splits = existing.get("splits", {}) if existing.get("dataset") == meta["dataset"] else {}
    splits[split] = {k: meta.pop(k) for k in ("seed", "size", "counts", "videos")}
    meta.pop("split")
    meta["splits"] = dict(sorted(splits.items()))
    # top-level convenience copies of the last written split
    meta.update({k: splits[split][k] for k in ("seed", "size", "counts")})
    write_json(path, meta)
