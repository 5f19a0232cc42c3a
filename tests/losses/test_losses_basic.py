"""Elementary losses on known values."""
from __future__ import annotations

import math

import pytest
import torch

from v2v.losses.basic import kl_normal, l1_loss, l2_loss, smoothness_loss, tv_loss


def test_l1_l2_masked():
    a = torch.zeros(1, 2, 2, 2)
    b = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2).repeat(1, 2, 1, 1)
    assert float(l1_loss(a, b)) == pytest.approx(2.5)
    assert float(l2_loss(a, b)) == pytest.approx(7.5)
    m = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 2, 2)
    assert float(l1_loss(a, b, m)) == pytest.approx(2.5)  # (1+4)/2
    m2 = torch.tensor([0.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    assert float(l2_loss(a, b, m2)) == pytest.approx(4.0)
    assert float(l1_loss(a, b, torch.zeros_like(m))) == 0.0  # empty mask


def test_tv_constant_and_ramp():
    assert float(tv_loss(torch.full((2, 3, 5, 7), 0.3))) == 0.0
    w = torch.arange(7.0) * 0.25
    ramp = w.view(1, 1, 1, 7).expand(2, 3, 5, 7)
    assert float(tv_loss(ramp)) == pytest.approx(0.25)
    assert float(tv_loss(ramp, squared=True)) == pytest.approx(0.0625)
    diag = ramp + (torch.arange(5.0) * 2).view(1, 1, 5, 1)
    assert float(tv_loss(diag)) == pytest.approx(2.25)
    # videos B,T,C,H,W work too
    assert float(tv_loss(ramp.unsqueeze(1))) == pytest.approx(0.25)


def test_edge_aware_smoothness():
    flow = (torch.arange(6.0)).view(1, 1, 1, 6).expand(1, 2, 4, 6)
    flat = torch.zeros(1, 3, 4, 6)
    assert float(smoothness_loss(flow, flat)) == pytest.approx(float(tv_loss(flow)))
    img = flat.clone()
    img[..., 3:] = 1.0  # a vertical edge between columns 2 and 3
    # dx = 1 everywhere (5 columns); weight exp(-10) on the edge column, 1 elsewhere
    want = (4 + math.exp(-10)) / 5
    assert float(smoothness_loss(flow, img)) == pytest.approx(want, rel=1e-6)
    assert smoothness_loss(flow, None).item() == pytest.approx(1.0)


def test_kl_normal():
    z = torch.zeros(4, 8)
    assert float(kl_normal(z, z)) == 0.0
    mu, logvar = torch.full((2, 3), 1.0), torch.full((2, 3), math.log(2.0))
    per = 0.5 * (2.0 + 1.0 - 1 - math.log(2.0))  # 0.5*(sigma^2 + mu^2 - 1 - log sigma^2)
    assert float(kl_normal(mu, logvar)) == pytest.approx(3 * per)
    assert float(kl_normal(mu, logvar, "sum")) == pytest.approx(6 * per)
    assert float(kl_normal(mu, logvar, "mean")) == pytest.approx(per)


def test_masked_reduction_mean_is_vid2vid():
    a = torch.zeros(1, 2, 2, 2)
    b = torch.ones(1, 2, 2, 2) * 2
    m = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 2, 2)
    assert float(l1_loss(a, b, m, reduction="mean")) == pytest.approx(2 * 2 / 8)
    assert float(l1_loss(a, b, m)) == pytest.approx(2.0)


def test_warp_loss_shift_and_flow_loss():
    from v2v.losses.temporal import flow_loss, video_warp_loss, warp_loss

    torch.manual_seed(0)
    img = torch.rand(1, 3, 8, 10)
    nxt = torch.roll(img, shifts=1, dims=3)  # content moves 1 px right: nxt(p) = img(p - (1, 0))
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0] = -1.0
    interior = torch.zeros(1, 1, 8, 10)
    interior[..., 1:] = 1.0  # the wrapped-around column is not explained by the flow
    assert float(warp_loss(nxt, img, flow, interior)) == pytest.approx(0.0, abs=1e-6)
    assert float(warp_loss(nxt, img, torch.zeros_like(flow), interior)) > 0.05
    video = torch.stack([img, nxt], 1)
    assert float(video_warp_loss(video, flow.unsqueeze(1), interior.unsqueeze(1))) == pytest.approx(0.0, abs=1e-6)
    ref = torch.ones(1, 2, 4, 4)
    conf = torch.zeros(1, 1, 4, 4)
    conf[..., :2, :] = 1.0
    assert float(flow_loss(torch.zeros(1, 2, 4, 4), ref, conf)) == pytest.approx(0.5)
