"""pyramid.py (FOMM anti-alias, gaussian pyramid) and labels.py."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from v2v.errors import V2VError
from v2v.ops.labels import instance_edges, one_hot
from v2v.ops.pyramid import (
    AntiAliasDownsample,
    antialias_downsample,
    antialias_params,
    gaussian_kernel2d,
    gaussian_pyramid,
    image_pyramid,
)


def test_antialias_params_and_kernel():
    sigma, k, ka, kb, stride = antialias_params(0.25)
    assert (sigma, k, ka, kb, stride) == (1.5, 13, 6, 6, 4)
    g = gaussian_kernel2d(k, sigma)
    assert abs(float(g.sum()) - 1) < 1e-6
    # separable, symmetric, peak at the centre, ratio of neighbours = exp(-1/(2 sigma^2))
    assert torch.allclose(g, g.t()) and torch.allclose(g, g.flip(0))
    assert int(g.argmax()) == 6 * 13 + 6
    assert abs(float(g[6, 7] / g[6, 6]) - np.exp(-1 / (2 * 1.5**2))) < 1e-6


def test_antialias_constant_interior_and_rederivation():
    x = torch.full((1, 2, 32, 32), 0.7)
    y = antialias_downsample(x, 0.25)
    assert y.shape == (1, 2, 8, 8)
    assert torch.allclose(y[:, :, 2:-2, 2:-2], torch.full_like(y[:, :, 2:-2, 2:-2], 0.7), atol=1e-6)
    assert float(y[0, 0, 0, 0]) < 0.7  # zero padding darkens the border, as in FOMM
    # direct re-derivation on random input
    torch.manual_seed(0)
    x = torch.rand(2, 3, 20, 20)
    sigma = (1 / 0.5 - 1) / 2
    k = 2 * round(sigma * 4) + 1
    ax = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    g1 = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g1[:, None] * g1[None, :]
    g = (g / g.sum()).expand(3, 1, k, k)
    ref = F.conv2d(F.pad(x, (k // 2,) * 4), g, groups=3)[:, :, ::2, ::2]
    assert (antialias_downsample(x, 0.5) - ref).abs().max() < 1e-6
    assert antialias_downsample(x, 1.0) is x


def test_antialias_matches_fomm_fixture(shared):
    d = np.load(shared / "fixtures/fomm/cases.npz")
    src = torch.from_numpy(d["source"])
    for key, img in [
        ("rec_kp_source_input_down", src),
        ("rec_kp_driving_input_down", torch.from_numpy(d["driving"])),
    ]:
        exp = torch.from_numpy(d[key])
        assert (antialias_downsample(img, 0.25) - exp).abs().max() <= 1e-6
    mod = AntiAliasDownsample(3, 0.25)
    assert mod.weight.shape == (3, 1, 13, 13) and "weight" in mod.state_dict()
    assert (mod(src) - torch.from_numpy(d["rec_dm_source_down"])).abs().max() <= 1e-6
    pyr = image_pyramid(src, [1, 0.25])
    assert pyr[1.0] is src and torch.equal(pyr[0.25], antialias_downsample(src, 0.25))


def test_antialias_weight_loads_from_official_checkpoint(shared):
    ck = torch.load(
        shared / "fixtures/fomm/00000099-checkpoint.pth.tar", map_location="cpu", weights_only=True
    )
    w = ck["kp_detector"]["down.weight"]
    assert (AntiAliasDownsample(3, 0.25).weight - w).abs().max() == 0


def test_gaussian_pyramid():
    x = torch.full((1, 3, 17, 16), 0.3)
    pyr = gaussian_pyramid(x, 4)
    assert [tuple(p.shape[-2:]) for p in pyr] == [(17, 16), (9, 8), (5, 4), (3, 2)]
    for p in pyr:  # binomial kernel sums to 1 and reflect padding keeps constants constant
        assert torch.allclose(p, torch.full_like(p, 0.3), atol=1e-6)
    # matches OpenCV's pyrDown (same kernel, reflect-101 border) on random data
    import cv2
    torch.manual_seed(0)
    img = torch.rand(1, 1, 16, 20)
    ref = cv2.pyrDown(img[0, 0].numpy())
    assert np.abs(gaussian_pyramid(img, 2)[1][0, 0].numpy() - ref).max() < 1e-5


def test_one_hot_roundtrip_and_errors():
    torch.manual_seed(0)
    lab = torch.randint(0, 7, (2, 5, 6))
    oh = one_hot(lab, 7)
    assert oh.shape == (2, 7, 5, 6) and oh.dtype == torch.float32
    assert torch.equal(oh.argmax(1), lab) and torch.all(oh.sum(1) == 1)
    assert torch.equal(one_hot(lab.unsqueeze(1), 7), oh)
    bad = lab.clone()
    bad[0, 0, 0] = 9
    with pytest.raises((ValueError, V2VError), match=r"9.*num_classes=7"):
        one_hot(bad, 7)


def test_instance_edges_hand_made():
    inst = torch.tensor(
        [
            [1, 1, 1, 2],
            [1, 1, 1, 2],
            [3, 3, 1, 2],
            [3, 3, 1, 2],
        ]
    )[None]
    # a pixel is an edge iff a 4-neighbour has another id (both sides of a boundary)
    exp = torch.tensor(
        [
            [0, 0, 1, 1],
            [1, 1, 1, 1],
            [1, 1, 1, 1],
            [0, 1, 1, 1],
        ],
        dtype=torch.float32,
    )
    e = instance_edges(inst)
    assert e.shape == (1, 1, 4, 4)
    assert torch.equal(e[0, 0], exp)
    assert torch.equal(instance_edges(torch.zeros(1, 5, 5, dtype=torch.long)), torch.zeros(1, 1, 5, 5))
