"""windfield: clouds drifting over a meadow in a prevailing wind; one frame determines the motion.

A scene is a sky (vertical blue gradient) with streaky clouds (smooth noise stretched along the
wind, thresholded to soft white puffs) above a static meadow. The meadow's grass blades lean
downwind, and their lean grows with the wind speed, so the first frame alone tells where the
clouds go and how fast: the clouds translate horizontally by ``v`` pixels per frame with
``|v|`` uniform in ``[speed_min, speed_max]`` and the sign of the blades' lean (left or right
with equal probability). The meadow does not move.

Ground truth flow is exact (the cloud canvas is sampled at sub-pixel offsets with bilinear
interpolation of a smooth texture): backward flow ``frame_t(p) = frame_{t+1}(p + flow_t(p))``
with ``flow_t = (v, 0)`` on sky pixels and ``0`` on the meadow; ``occ_t`` marks pixels whose
target is another layer or leaves the image (see :mod:`v2v.data.synthetic.common`).

Layout written by :func:`generate_windfield` under ``out`` (read by
:class:`v2v.data.datasets.VideoFolderDataset`, videos = ``<split>/<seq>/frames``)::

    {split}/seqNNNN/frames/frame_00000.png    RGB
    {split}/seqNNNN/flow/frame_0000t.flo      t=0..T-2, pixels (x right, y down)
    {split}/seqNNNN/occ/frame_0000t.png       uint8, 255 = flow invalid
    meta.json                                 per split: seed, size, fps, per-video wind speed v

Deterministic: every draw comes from ``video_rng(seed, split, index, "windfield")``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .common import occlusion_mask, read_flo, smooth_noise, video_rng, write_flo, write_json, write_png

__all__ = ["FPS", "WindfieldVideo", "generate_windfield", "load_windfield_flow", "render_windfield"]

FPS = 8
SKY, GROUND = 0, 1


@dataclass
class WindfieldVideo:
    """One rendered video: ``rgb`` ``T,H,W,3`` uint8, ``flow`` ``T-1,H,W,2``, ``occ`` ``T-1,H,W`` bool, wind ``v``."""

    rgb: np.ndarray
    flow: np.ndarray
    occ: np.ndarray
    v: float
    info: dict


def _meadow(rng, h: int, w: int, horizon: int, lean: float):
    """Static meadow layer: colour ``h,w,3`` float32 and coverage mask (ground + blades)."""
    rgb = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), np.uint8)
    mask[horizon:] = 1
    tex = smooth_noise(rng, h, w, max(3.0, w / 12))
    base = np.array([0.25, 0.55, 0.18], np.float32) * rng.uniform(0.8, 1.1)
    shade = (0.85 + 0.25 * np.linspace(0, 1, h, dtype=np.float32)[:, None])
    rgb[:] = base * (shade * (1 + 0.12 * tex))[..., None]
    n_blades = int(w * rng.uniform(0.7, 1.0))
    for _ in range(n_blades):
        x = rng.uniform(0, w)
        y = rng.uniform(horizon + 1, h + 2)
        length = rng.uniform(0.10, 0.22) * h
        tip = (x + lean * length, y - length * np.sqrt(max(0.05, 1 - lean * lean)))
        col = tuple(float(c) for c in (base * rng.uniform(1.15, 1.5)))
        pts = np.array([[x * 16, y * 16], [tip[0] * 16, tip[1] * 16]], np.int32)
        cv2.line(rgb, tuple(pts[0]), tuple(pts[1]), col, 1, cv2.LINE_AA, shift=4)
        cv2.line(mask, tuple(pts[0]), tuple(pts[1]), 1, 1, cv2.LINE_8, shift=4)
    return rgb, mask.astype(bool)


def render_windfield(rng: np.random.Generator, frames: int, height: int, width: int,
                     speed_min: float = 0.8, speed_max: float = 1.8) -> WindfieldVideo:
    """Render one video of ``frames`` frames at ``height x width`` (module docstring)."""
    h, w, t_n = int(height), int(width), int(frames)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    v = sign * rng.uniform(speed_min, speed_max)
    lean = sign * (0.25 + 0.35 * (abs(v) - speed_min) / max(speed_max - speed_min, 1e-6))
    horizon = round(h * rng.uniform(0.58, 0.7))
    # sky: vertical gradient (invariant under horizontal drift) + cloud canvas wide enough for the drift
    top = np.array([0.20, 0.40, 0.85], np.float32) * rng.uniform(0.85, 1.1)
    bottom = np.array([0.65, 0.80, 0.95], np.float32)
    g = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = (top * (1 - g) + bottom * g) * np.ones((1, w, 1), np.float32)
    margin = int(np.ceil(abs(v) * (t_n - 1))) + 4
    cw = w + margin
    stretch = rng.uniform(1.8, 2.6)
    scale = max(4.0, h / rng.uniform(7.0, 10.0))
    lw = int(np.ceil(cw / stretch)) + 2
    low = smooth_noise(rng, h, lw, scale) + 0.5 * smooth_noise(rng, h, lw, max(2.5, scale / 2.5))
    noise = cv2.resize(low, (round(lw * stretch), h), interpolation=cv2.INTER_CUBIC)[:, :cw]
    cover = rng.uniform(-0.2, 0.4)
    alpha = np.clip((noise - cover) * 2.0, 0, 1).astype(np.float32)
    fade = np.clip((horizon - np.arange(h, dtype=np.float32)) / (0.25 * h), 0, 1)[:, None]
    alpha *= fade  # clouds thin out towards the horizon
    white = np.array([0.97, 0.97, 0.99], np.float32) * rng.uniform(0.9, 1.0)
    ground_rgb, ground = _meadow(rng, h, w, horizon, lean)
    off0 = (abs(v) * (t_n - 1) + 1) if v > 0 else 1.0  # canvas x of screen x=0 in frame 0
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.zeros((t_n, h, w, 3), np.uint8)
    layer = np.where(ground, GROUND, SKY).astype(np.int32)
    for t in range(t_n):
        a = cv2.remap(alpha, xs + (off0 - v * t), ys, interpolation=cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)[..., None]
        img = sky * (1 - a) + white * a
        img = np.where(ground[..., None], ground_rgb, img)
        rgb[t] = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    f = np.zeros((h, w, 2), np.float32)
    f[..., 0] = np.where(ground, 0.0, v)
    occ = occlusion_mask(f, layer, layer)
    flow = np.repeat(f[None], max(t_n - 1, 0), 0)
    occs = np.repeat(occ[None], max(t_n - 1, 0), 0)
    info = {"v": float(v), "horizon": horizon, "lean": float(lean)}
    return WindfieldVideo(rgb, flow, occs, float(v), info)


def generate_windfield(out, videos: int = 4, frames: int = 12, size=(64, 64), seed: int = 0,
                       split: str = "train", progress: bool = True, speed=(0.8, 1.8)) -> Path:
    """Write ``videos`` windfield videos of ``frames`` frames at ``size`` (H, W) under ``out``.

    ``speed = (min, max)``: range of the wind speed ``|v|`` in pixels per frame. Same
    ``(seed, split, speed)`` gives byte-identical files. Returns the output folder.
    """
    from tqdm import tqdm

    from v2v.errors import V2VError

    out = Path(out)
    h, w = int(size[0]), int(size[1])
    if frames < 2:
        raise V2VError(f"windfield: --frames must be at least 2 (got {frames})")
    per_video = []
    for i in tqdm(range(videos), desc=f"windfield {split}", unit="video", disable=not progress):
        vid = render_windfield(video_rng(seed, split, i, "windfield"), frames, h, w, *speed)
        seq = out / split / f"seq{i:04d}"
        for t in range(frames):
            write_png(seq / "frames" / f"frame_{t:05d}.png", vid.rgb[t])
            if t < frames - 1:
                write_flo(seq / "flow" / f"frame_{t:05d}.flo", vid.flow[t])
                write_png(seq / "occ" / f"frame_{t:05d}.png", vid.occ[t].astype(np.uint8) * 255)
        per_video.append({"name": seq.name, **vid.info})
    meta_path = out / "meta.json"
    import json

    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("dataset", "windfield") != "windfield":
        raise V2VError(f"{meta_path}: belongs to a '{meta.get('dataset')}' dataset; write windfield elsewhere")
    meta.update({"dataset": "windfield", "fps": FPS, "size": [h, w], "speed": [float(speed[0]), float(speed[1])],
                 "flow": "backward, pixels: frame_t(p) = frame_{t+1}(p + flow_t(p))"})
    meta.setdefault("splits", {})[split] = {"seed": int(seed), "videos": int(videos), "frames": int(frames),
                                            "per_video": per_video}
    write_json(meta_path, meta)
    return out


def load_windfield_flow(seq_dir: str | Path, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Flow ``count,H,W,2`` and occlusion ``count,H,W`` bool of frames ``start..start+count-1`` of one video."""
    seq_dir = Path(seq_dir)
    flows = [read_flo(seq_dir / "flow" / f"frame_{t:05d}.flo") for t in range(start, start + count)]
    occ = [cv2.imread(str(seq_dir / "occ" / f"frame_{t:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
           for t in range(start, start + count)]
    return np.stack(flows), np.stack(occ)
