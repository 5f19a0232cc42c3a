"""flow.py: resize, compose, forward-backward occlusion, colour coding, .flo I/O."""

import numpy as np
import pytest
import torch

from v2v.errors import V2VError
from v2v.ops.flow import (
    compose_flow,
    fb_consistency_occlusion,
    flow_to_color,
    make_color_wheel,
    read_flo,
    resize_flow,
    write_flo,
)
from v2v.ops.warp import warp


def const_flow(dx, dy, h=12, w=16, b=1):
    f = torch.zeros(b, 2, h, w)
    f[:, 0] = dx
    f[:, 1] = dy
    return f


def test_resize_flow():
    torch.manual_seed(0)
    f = torch.randn(2, 2, 8, 10)
    assert torch.equal(resize_flow(f, (8, 10)), f)
    g = resize_flow(const_flow(1.5, -2.0, 8, 10), (16, 30))
    assert g.shape == (1, 2, 16, 30)
    assert torch.allclose(g[:, 0], torch.full((1, 16, 30), 4.5)) and torch.allclose(
        g[:, 1], torch.full((1, 16, 30), -4.0)
    )
    g = resize_flow(const_flow(4.0, 2.0, 8, 12), (4, 3), mode="area")
    assert torch.allclose(g[:, 0], torch.full((1, 4, 3), 1.0)) and torch.allclose(
        g[:, 1], torch.full((1, 4, 3), 1.0)
    )


def test_compose_flow():
    torch.manual_seed(1)
    f = torch.randn(2, 2, 12, 16) * 2
    z = torch.zeros_like(f)
    assert torch.equal(compose_flow(f, z), f)
    assert torch.equal(compose_flow(z, f), f)
    t = compose_flow(const_flow(2, 1), const_flow(-3, 0.5))
    assert torch.allclose(t, const_flow(-1, 1.5))
    # semantics: warp(c, f_ac) == warp(warp(c, f_bc), f_ab) for integer translations (interior)
    c = torch.rand(1, 3, 12, 16)
    f_ab, f_bc = const_flow(1, 2), const_flow(2, -1)
    two_step = warp(warp(c, f_bc, padding_mode="zeros"), f_ab, padding_mode="zeros")
    one_step = warp(c, compose_flow(f_ab, f_bc), padding_mode="zeros")
    assert torch.allclose(two_step[:, :, 2:-2, 1:-4], one_step[:, :, 2:-2, 1:-4], atol=1e-5)


def test_fb_consistency_moving_square():
    h, w, d = 24, 32, 4
    x0, x1, y0, y1 = 8, 16, 6, 14  # square occupies [y0, y1) x [x0, x1) in frame a
    fw = torch.zeros(1, 2, h, w)  # on a, into b: the square moves right by d
    fw[0, 0, y0:y1, x0:x1] = d
    bw = torch.zeros(1, 2, h, w)  # on b, into a
    bw[0, 0, y0:y1, x0 + d : x1 + d] = -d
    occ = fb_consistency_occlusion(fw, bw)
    assert occ.shape == (1, 1, h, w)
    expected = torch.zeros(h, w)
    expected[y0:y1, x1 : x1 + d] = 1  # background of a covered by the square in b
    assert torch.equal(occ[0, 0], expected)
    # the disoccluded band is visible from b's side (backward check)
    occ_b = fb_consistency_occlusion(bw, fw)
    exp_b = torch.zeros(h, w)
    exp_b[y0:y1, x0 : x0 + d] = 1
    assert torch.equal(occ_b[0, 0], exp_b)


def test_flow_to_color():
    wheel = make_color_wheel()
    assert wheel.shape == (55, 3) and np.allclose(wheel[0], [1, 0, 0]) and np.allclose(wheel[15], [1, 1, 0])
    f = torch.zeros(1, 2, 3, 3)
    f[0, 0, 0, 0] = 5.0  # right -> red
    f[0, 0, 0, 1] = -5.0  # left -> cyan-ish (green + blue > red)
    f[0, 1, 0, 2] = -5.0  # up -> blue/violet
    c = flow_to_color(f)
    assert c.shape == (1, 3, 3, 3) and c.min() >= 0 and c.max() <= 1
    assert torch.allclose(c[0, :, 1, 1], torch.ones(3))  # zero flow is white
    assert torch.allclose(c[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)
    left = c[0, :, 0, 1]
    assert left[0] < 0.1 and left[1] > 0.5 and left[2] > 0.5
    up = c[0, :, 0, 2]
    assert up[2] > 0.9 and up[1] < 0.1
    # half the magnitude -> half saturation
    half = flow_to_color(f, max_flow=10.0)
    assert torch.allclose(half[0, :, 0, 0], torch.tensor([1.0, 0.5, 0.5]), atol=1e-5)


def test_flo_roundtrip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.standard_normal((7, 9, 2)).astype(np.float32) * 10
    p = tmp_path / "x.flo"
    write_flo(p, arr)
    assert p.stat().st_size == 12 + 7 * 9 * 8
    back = read_flo(p)
    assert back.dtype == np.float32 and np.array_equal(back, arr)
    write_flo(p, torch.from_numpy(arr).permute(2, 0, 1)[None])  # B,2,H,W tensor
    assert np.array_equal(read_flo(p), arr)
    assert not [q for q in tmp_path.iterdir() if q.name != "x.flo"]  # no temp files left
    bad = tmp_path / "bad.flo"
    bad.write_bytes(np.array([1.0], "<f4").tobytes() + np.array([2, 2], "<i4").tobytes() + b"\0" * 32)
    with pytest.raises(V2VError, match=r"bad\.flo.*magic"):
        read_flo(bad)
    trunc = tmp_path / "trunc.flo"
    trunc.write_bytes(p.read_bytes()[:100])
    with pytest.raises(V2VError, match=r"trunc\.flo.*truncated"):
        read_flo(trunc)
    with pytest.raises(V2VError, match="missing.flo"):
        read_flo(tmp_path / "missing.flo")


def test_range_map_occlusion_moving_square():
    from v2v.ops.occlusion import occlusion_from_range, range_map

    h, w, d = 24, 32, 4
    x0, x1, y0, y1 = 8, 16, 6, 14
    bw = torch.zeros(1, 2, h, w)  # on b, into a: the square sits d px further right in b
    bw[0, 0, y0:y1, x0 + d : x1 + d] = -d
    assert torch.equal(range_map(torch.zeros(1, 2, 5, 6)), torch.ones(1, 1, 5, 6))
    rm = range_map(bw)
    assert float(rm.sum()) == h * w  # no mass leaves the image
    occ = occlusion_from_range(bw)
    expected = torch.zeros(h, w)
    expected[y0:y1, x1 : x1 + d] = 1  # same band as the forward-backward check finds
    assert torch.equal(occ[0, 0], expected)
    # a half-pixel shift splits mass evenly; mass sent out of view is dropped
    half = const_flow(0.5, 0.0, 2, 3)
    assert torch.allclose(range_map(half)[0, 0], torch.tensor([[0.5, 1.0, 1.0], [0.5, 1.0, 1.0]]))
