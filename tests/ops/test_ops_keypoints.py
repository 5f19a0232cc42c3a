"""keypoints.py: soft-argmax, gaussians, and bit-level agreement with the FOMM fixtures."""

import numpy as np
import pytest
import torch

from v2v.ops.grid import make_grid
from v2v.ops.keypoints import (
    RandomTPS,
    heatmap_representation,
    heatmap_softargmax,
    jacobian_from_heatmap,
    kp_to_gaussian,
    softmax_heatmap,
    sparse_motions,
)
from v2v.ops.warp import sample


def test_softargmax_recovers_gaussian_centre():
    kp = torch.tensor([[[0.3, -0.2], [-0.45, 0.5], [0.0, 0.05]]])
    g = kp_to_gaussian(kp, (64, 48), kp_variance=0.01)
    assert g.shape == (1, 3, 64, 48)
    assert float(g.max()) <= 1.0
    hm = g / g.sum(dim=(2, 3), keepdim=True)
    assert (heatmap_softargmax(hm) - kp).abs().max() < 1e-3


def test_kp_to_gaussian_values():
    kp = torch.tensor([[[0.0, 0.0]]])
    g = kp_to_gaussian(kp, (5, 5), kp_variance=0.5)
    grid = make_grid(5, 5)
    assert torch.allclose(g[0, 0], torch.exp(-0.5 * grid.pow(2).sum(-1) / 0.5))
    assert float(g[0, 0, 2, 2]) == 1.0
    # leading dims are free: (T, B, K, 2)
    assert kp_to_gaussian(torch.zeros(4, 2, 3, 2), (6, 7), 0.01).shape == (4, 2, 3, 6, 7)


def test_softmax_heatmap_and_jacobian():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 6)
    hm = softmax_heatmap(logits, temperature=0.1)
    assert torch.allclose(hm.sum(dim=(2, 3)), torch.ones(2, 3))
    jac_map = torch.randn(2, 12, 5, 6)
    jac = jacobian_from_heatmap(hm, jac_map)
    ref = torch.einsum("bkhw,bkchw->bkc", hm, jac_map.view(2, 3, 4, 5, 6)).view(2, 3, 2, 2)
    assert torch.allclose(jac, ref, atol=1e-6)
    # a single shared map, constant identity -> identity jacobians
    shared_map = torch.tensor([1.0, 0, 0, 1]).view(1, 4, 1, 1).expand(2, 4, 5, 6)
    assert torch.allclose(jacobian_from_heatmap(hm, shared_map), torch.eye(2).expand(2, 3, 2, 2), atol=1e-6)


def test_fomm_fixture_bit_exact(shared):
    d = {k: torch.from_numpy(v) for k, v in np.load(shared / "fixtures/fomm/cases.npz").items()}
    for who in ("source", "driving"):
        hm = softmax_heatmap(d[f"rec_kp_{who}_heatmap_logits"], 0.1)
        assert (hm - d[f"rec_kp_{who}_heatmap"]).abs().max() <= 1e-7
        value = heatmap_softargmax(d[f"rec_kp_{who}_heatmap"])
        assert (value - d[f"rec_kp_{who}_value"]).abs().max() <= 1e-6
        jac = jacobian_from_heatmap(d[f"rec_kp_{who}_heatmap"], d[f"rec_kp_{who}_jacobian_map"])
        assert (jac - d[f"rec_kp_{who}_jacobian"]).abs().max() <= 1e-6
    ks, kd = d["rec_kp_source_value"], d["rec_kp_driving_value"]
    js, jd = d["rec_kp_source_jacobian"], d["rec_kp_driving_jacobian"]
    sm = sparse_motions(ks, kd, (16, 16), js, jd)
    assert (sm - d["rec_dm_sparse_motion"]).abs().max() <= 1e-6
    hr = heatmap_representation(kd, ks, (16, 16), 0.01)
    assert (hr - d["rec_dm_heatmap_representation"]).abs().max() <= 1e-6
    src = d["rec_dm_source_down"]
    deformed = sample(
        src.repeat(11, 1, 1, 1), sm.view(11, 16, 16, 2), align_corners=True, padding_mode="zeros"
    )
    assert (deformed.view(1, 11, 3, 16, 16) - d["rec_sparse_deformed"]).abs().max() <= 1e-6


def test_sparse_motions_semantics():
    # identical keypoints and jacobians -> every motion is the identity grid
    kp = torch.rand(2, 4, 2) * 2 - 1
    jac = torch.eye(2).expand(2, 4, 2, 2) + 0.1 * torch.randn(2, 4, 2, 2)
    sm = sparse_motions(kp, kp, (6, 7), jac, jac)
    assert torch.allclose(sm, make_grid(6, 7).expand(2, 5, 6, 7, 2), atol=1e-5)
    # no jacobians: a pure translation by kp_source - kp_driving
    kd = torch.zeros(1, 1, 2)
    ks = torch.tensor([[[0.2, -0.1]]])
    sm = sparse_motions(ks, kd, (3, 3))
    assert torch.allclose(sm[0, 1], make_grid(3, 3) + ks.view(1, 1, 2))


def test_random_tps():
    gen = torch.Generator().manual_seed(0)
    t = RandomTPS(2, sigma_affine=0.05, sigma_tps=0.005, points_tps=5, generator=gen, dtype=torch.float64)
    coords = (torch.rand(2, 7, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    jac = t.jacobian(coords)
    # FOMM's TPS uses an L1 radius (kinks on control-point rows/columns): small central steps
    eps = 1e-6
    num = []
    for e in (torch.tensor([eps, 0.0], dtype=torch.float64), torch.tensor([0.0, eps], dtype=torch.float64)):
        num.append((t.warp_coordinates(coords + e) - t.warp_coordinates(coords - e)) / (2 * eps))
    num = torch.stack(num, -1)  # B,N,2(out),2(in)
    assert (jac - num).abs().max() < 1e-6
    # an affine-only transform with explicit parameters
    theta = torch.tensor([[[1.0, 0.0, 0.25], [0.0, 1.0, -0.5]]])
    aff = RandomTPS.from_params(theta)
    pts = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    assert torch.allclose(aff.warp_coordinates(pts), pts + torch.tensor([0.25, -0.5]))
    ident = RandomTPS.from_params(torch.eye(2, 3)[None])
    frame = torch.rand(1, 3, 9, 11)
    assert (ident.transform_frame(frame) - frame).abs().max() < 1e-5
    # a zero-weight TPS is the affine part
    cp = make_grid(3, 3).view(1, 9, 2)
    tps0 = RandomTPS.from_params(theta, cp, torch.zeros(1, 1, 9))
    assert torch.allclose(tps0.warp_coordinates(pts), aff.warp_coordinates(pts))


@pytest.mark.parametrize("bad", [torch.randn(1, 6, 4, 4), torch.randn(1, 8, 4, 4)])
def test_jacobian_map_channel_errors(bad):
    with pytest.raises(ValueError):
        jacobian_from_heatmap(torch.rand(1, 3, 4, 4), bad)
