"""PSNR / SSIM known values and warp_error against exact synthetic motion."""
from __future__ import annotations

import math

import torch

from v2v.metrics.image import psnr, ssim
from v2v.metrics.temporal import warp_error


def test_psnr_known_values():
    a = torch.rand(3, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    assert torch.isinf(psnr(a, a)).all()
    # constant offset 0.1 -> MSE 0.01 -> 20 dB; offset 0.01 -> 40 dB (values chosen inside [0,1])
    base = torch.full((2, 3, 8, 8), 0.5)
    off = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.01)])
    p = psnr(base, base + off)
    assert torch.allclose(p, torch.tensor([20.0, 40.0]), atol=1e-4)
    # max_val 255 scale invariance
    assert torch.allclose(psnr(base * 255, (base + off) * 255, max_val=255.0), p, atol=1e-4)
    # per-image: MSE = mean of squared error
    x = torch.zeros(1, 1, 2, 2)
    y = torch.tensor([[[[0.0, 0.2], [0.0, 0.0]]]])
    assert math.isclose(float(psnr(x, y)), 10 * math.log10(1 / (0.04 / 4)), rel_tol=1e-5)


def test_ssim_values():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 3, 24, 24, generator=g)
    s = ssim(a, a)
    assert torch.allclose(s, torch.ones(2), atol=1e-5)
    noisy = (a + 0.2 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    s2 = ssim(a, noisy)
    assert (s2 < 0.9).all() and (s2 > 0).all()
    # more noise -> lower ssim
    noisier = (a + 0.5 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    assert (ssim(a, noisier) < s2).all()


def _translating_video(T=5, H=24, W=32, dx=1.5, dy=-0.5):
    """A smooth pattern moving by (dx, dy) px per frame, and its exact backward flow to t-1."""
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64),
                            indexing="ij")
    frames = []
    for t in range(T):
        u, v = xs - dx * t, ys - dy * t
        img = torch.stack([0.5 + 0.4 * torch.sin(u / 3.0), 0.5 + 0.4 * torch.cos(v / 4.0),
                           0.5 + 0.3 * torch.sin((u + v) / 5.0)])
        frames.append(img)
    video = torch.stack(frames)[None].float()  # 1,T,3,H,W
    # frame_t(p) = frame_{t-1}(p - (dx, dy))  -> flow_prev = (-dx, -dy)
    flow = torch.empty(1, T - 1, 2, H, W)
    flow[:, :, 0], flow[:, :, 1] = -dx, -dy
    return video, flow


def test_warp_error_exact_motion_and_shuffled():
    video, flow = _translating_video()
    # border pixels that come from outside the frame are invalid: mask them
    occ = torch.zeros(1, 4, 1, 24, 32)
    occ[..., :, :2] = 1
    occ[..., -1:, :] = 1
    e = warp_error(video, flow, occ)
    assert e.shape == (1,) and float(e) < 5e-3  # bilinear interpolation error of a smooth pattern
    per = warp_error(video, flow, occ, reduction="none")
    assert per.shape == (1, 4) and torch.allclose(per.mean(1), e)
    shuffled = video[:, [0, 3, 1, 4, 2]]
    assert float(warp_error(shuffled, flow, occ)) > 10 * float(e) + 0.03
    # a wrong flow (zero) is also penalised
    assert float(warp_error(video, torch.zeros_like(flow), occ)) > 0.02


def test_warp_error_on_toycity_ground_truth():
    import numpy as np

    from v2v.data.synthetic.common import video_rng
    from v2v.data.synthetic.toycity import render_toycity

    vid = render_toycity(video_rng(3, "train", 0, "toycity"), 4, 32, 64)
    frames = torch.from_numpy(vid.rgb.astype(np.float32) / 255).permute(0, 3, 1, 2)[None]
    fp = torch.from_numpy(vid.flowprev).permute(0, 3, 1, 2)[None]
    occ = torch.from_numpy(vid.occprev.astype(np.float32))[None, :, None]
    e = float(warp_error(frames, fp, occ))
    assert e < 0.01
    assert float(warp_error(frames[:, [0, 2, 1, 3]], fp, occ)) > e + 0.01
