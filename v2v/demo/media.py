"""Side-by-side comparison videos for the demo report (MP4 + GIF).

Panels are videos ``T,3,H,W`` float in [0,1] (a single image ``3,H,W`` is repeated over time).
They are upscaled by an integer factor with nearest-neighbour sampling (the demo clips are tiny),
separated by a white gutter, and captioned in a strip above each panel.
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import torch

__all__ = ["label_palette_video", "side_by_side", "write_mp4_gif"]


def _panel_uint8(panel: torch.Tensor, T: int) -> np.ndarray:
    """``T,3,H,W`` or ``3,H,W`` float [0,1] -> ``T,H,W,3`` uint8."""
    p = panel.detach().float().cpu().clamp(0, 1)
    if p.dim() == 3:
        p = p.unsqueeze(0).expand(T, *p.shape)
    if p.shape[0] != T:
        raise ValueError(f"side_by_side: panel has {p.shape[0]} frames, expected {T}")
    return (p.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def side_by_side(panels: list[tuple[str, torch.Tensor]], scale: int = 2, gutter: int = 4,
                 caption_h: int = 14) -> np.ndarray:
    """Compose captioned panels horizontally. ``panels``: [(caption, video ``T,3,H,W`` or image
    ``3,H,W`` in [0,1])], all with the same H,W; the frame count is the longest video's.
    Returns ``T,H',W',3`` uint8 (even H', W' so H.264 yuv420p needs no padding)."""
    T = max(p.shape[0] for _, p in panels if p.dim() == 4)
    arrs = [_panel_uint8(p, T) for _, p in panels]
    H, W = arrs[0].shape[1:3]
    h, w = H * scale, W * scale
    n = len(arrs)
    out_w = n * w + (n + 1) * gutter
    out_h = h + caption_h + 2 * gutter
    out_w += out_w % 2
    out_h += out_h % 2
    canvas = np.full((T, out_h, out_w, 3), 255, np.uint8)
    font_scale = 0.33
    for i, ((cap, _), a) in enumerate(zip(panels, arrs)):
        x0 = gutter + i * (w + gutter)
        y0 = gutter + caption_h
        up = a.repeat(scale, 1).repeat(scale, 2)
        canvas[:, y0:y0 + h, x0:x0 + w] = up
        text = cap
        while text and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0][0] > w:
            text = text[:-1]
        for t in range(T):
            cv2.putText(canvas[t], text, (x0, gutter + caption_h - 4), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                        (20, 20, 20), 1, cv2.LINE_AA)
    return canvas


def write_mp4_gif(frames: np.ndarray, stem: str, fps: float) -> tuple[str, str]:
    """Write ``T,H,W,3`` uint8 frames to ``stem.mp4`` (H.264) and ``stem.gif``; atomic writes
    through :class:`v2v.data.video.VideoWriter`. Returns the two paths."""
    from v2v.data.video import write_video

    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    mp4, gif = stem + ".mp4", stem + ".gif"
    write_video(mp4, list(frames), fps, quality=9)
    write_video(gif, list(frames), fps)
    return mp4, gif


def label_palette_video(labels: torch.Tensor, colors) -> torch.Tensor:
    """Label ids ``T,H,W`` -> colour video ``T,3,H,W`` in [0,1] with ``colors`` (list of RGB 0..255)."""
    pal = torch.tensor(colors, dtype=torch.float32) / 255.0
    return pal[labels.long()].permute(0, 3, 1, 2).contiguous()
