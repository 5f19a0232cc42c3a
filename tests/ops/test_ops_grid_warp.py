"""grid.py / warp.py: exact identities, shifts, and agreement with kornia / grid_sample."""

import pytest
import torch

from v2v.ops.grid import make_grid, norm_to_pixel, pixel_grid, pixel_to_norm
from v2v.ops.warp import flow_to_grid, sample, warp


def test_make_grid_values():
    g = make_grid(3, 5, align_corners=True)
    assert g.shape == (3, 5, 2)
    assert torch.allclose(g[0, :, 0], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    assert torch.allclose(g[:, 0, 1], torch.tensor([-1.0, 0.0, 1.0]))
    g2 = make_grid(2, 4, align_corners=False)
    assert torch.allclose(g2[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(g2[:, 0, 1], torch.tensor([-0.5, 0.5]))
    p = pixel_grid(2, 3)
    assert p[1, 2].tolist() == [2.0, 1.0]


@pytest.mark.parametrize("ac", [True, False])
def test_pixel_norm_roundtrip(ac):
    xy = torch.rand(10, 2) * torch.tensor([12.0, 6.0])
    n = pixel_to_norm(xy, (7, 13), align_corners=ac)
    assert torch.allclose(norm_to_pixel(n, (7, 13), align_corners=ac), xy, atol=1e-5)
    grid_px = norm_to_pixel(make_grid(7, 13, align_corners=ac), (7, 13), align_corners=ac)
    assert torch.allclose(grid_px, pixel_grid(7, 13), atol=1e-5)


@pytest.mark.parametrize("backend", ["grid_sample", "gather"])
@pytest.mark.parametrize("padding", ["border", "zeros", "reflection"])
@pytest.mark.parametrize("ac", [True, False])
def test_zero_flow_is_exact_identity(padding, ac, backend):
    torch.manual_seed(0)
    for h, w in [(7, 9), (33, 64), (100, 37)]:
        img = torch.rand(2, 3, h, w)
        zero = torch.zeros(2, 2, h, w)
        assert torch.equal(warp(img, zero, padding, ac, backend=backend), img)
        assert torch.equal(warp(img, zero, padding, ac, mode="nearest", backend=backend), img)
        # also inside autograd, with gradients requested on both inputs
        out = warp(
            img.clone().requires_grad_(True), zero.clone().requires_grad_(True), padding, ac, backend=backend
        )
        assert torch.equal(out.detach(), img)


def test_partially_zero_flow_exact_where_zero_and_grads_flow():
    torch.manual_seed(1)
    img = torch.rand(1, 3, 16, 16)
    flow = torch.randn(1, 2, 16, 16)
    flow[:, :, :8] = 0  # static top half
    out = warp(img, flow)
    assert torch.equal(out[:, :, :8], img[:, :, :8])
    assert (out[:, :, 8:] - warp(img, flow, backend="gather")[:, :, 8:]).abs().max() < 1e-5
    # the exact-value select keeps grid_sample's gradient w.r.t. the flow at zero-flow pixels
    fz = torch.zeros(1, 2, 16, 16, requires_grad=True)
    g = torch.autograd.grad(warp(img, fz).sum(), fz)[0]
    plain = torch.nn.functional.grid_sample(img, flow_to_grid(fz), align_corners=True, padding_mode="border")
    gg = torch.autograd.grad(plain.sum(), fz)[0]
    assert g.abs().sum() > 0 and (g - gg).abs().max() < 1e-4


@pytest.mark.parametrize("backend", ["grid_sample", "gather"])
@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_integer_flow_is_shift(padding, backend):
    torch.manual_seed(1)
    img = torch.rand(1, 3, 20, 24)
    dx, dy = 3, -2
    flow = torch.zeros(1, 2, 20, 24)
    flow[:, 0] = dx
    flow[:, 1] = dy
    out = warp(img, flow, padding_mode=padding, backend=backend)
    # out[i, j] = img[i + dy, j + dx] wherever that is inside the image
    if backend == "gather":
        assert torch.equal(out[:, :, 2:, : 24 - 3], img[:, :, :-2, 3:])
    else:
        assert (out[:, :, 2:, : 24 - 3] - img[:, :, :-2, 3:]).abs().max() < 1e-5  # grid rounding
    if padding == "zeros":
        assert out[:, :, :, 24 - 3 :].abs().max() < 1e-6 and out[:, :, :2].abs().max() < 1e-6
    else:
        assert (out[:, :, 5, 23] - img[:, :, 3, 23]).abs().max() < 1e-6  # clamped to the border column


def test_warp_matches_kornia_remap():
    import kornia
    torch.manual_seed(2)
    img = torch.rand(2, 3, 16, 21)
    flow = torch.randn(2, 2, 16, 21) * 3
    base = pixel_grid(16, 21)
    map_x = base[..., 0] + flow[:, 0]
    map_y = base[..., 1] + flow[:, 1]
    for pad in ["zeros", "border"]:
        ref = kornia.geometry.transform.remap(img, map_x, map_y, align_corners=True, padding_mode=pad)
        assert (warp(img, flow, padding_mode=pad) - ref).abs().max() < 1e-5
        assert (warp(img, flow, padding_mode=pad, backend="gather") - ref).abs().max() < 1e-5


@pytest.mark.parametrize("padding", ["border", "zeros", "reflection"])
@pytest.mark.parametrize("ac", [True, False])
def test_exact_path_matches_grid_sample_path(padding, ac):
    torch.manual_seed(3)
    img = torch.rand(2, 3, 11, 13)
    flow = torch.randn(2, 2, 11, 13) * 5
    a = warp(img, flow, padding, ac)
    b = warp(img, flow, padding, ac, backend="gather")
    assert (a - b).abs().max() < 1e-5
    an = warp(img, flow.round() + 0.25, padding, ac, mode="nearest")
    bn = warp(img, flow.round() + 0.25, padding, ac, mode="nearest", backend="gather")
    assert torch.equal(an, bn)


def test_warp_gradients_match_grid_sample():
    torch.manual_seed(4)
    img = torch.rand(1, 2, 9, 10)
    flow = (torch.randn(1, 2, 9, 10) * 2).requires_grad_(True)
    g1 = torch.autograd.grad(warp(img, flow).square().sum(), flow)[0]
    g2 = torch.autograd.grad(warp(img, flow, backend="gather").square().sum(), flow)[0]
    assert (g1 - g2).abs().max() < 1e-4


def test_sample_with_flow_grid_equals_warp():
    torch.manual_seed(5)
    img = torch.rand(1, 3, 12, 15)
    flow = torch.randn(1, 2, 12, 15)
    out = sample(img, flow_to_grid(flow, align_corners=True), align_corners=True, padding_mode="zeros")
    assert (out - warp(img, flow, padding_mode="zeros")).abs().max() < 1e-5


def test_warp_rejects_bad_shapes():
    with pytest.raises(ValueError, match="flow must be"):
        warp(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="padding_mode"):
        warp(torch.rand(1, 3, 4, 4), torch.rand(1, 2, 4, 4), padding_mode="wrap")
