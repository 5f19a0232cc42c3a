"""PatchGAN discriminators: layer recipe, ordering of scales, and official EDN fixture parity."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from v2v.nn.patchgan import MultiscalePatchDiscriminator, PatchDiscriminator, downsample_avg, pix2pixhd_init


def official_recipe(in_nc, ndf, n_layers, norm_layer, use_sigmoid=False):
    """pix2pixHD NLayerDiscriminator written out as a list of nn.Sequential (one per block)."""
    kw, padw = 4, math.ceil((4 - 1.0) / 2)
    seq = [[nn.Conv2d(in_nc, ndf, kw, 2, padw), nn.LeakyReLU(0.2, True)]]
    nf = ndf
    for _ in range(1, n_layers):
        nf_prev, nf = nf, min(nf * 2, 512)
        seq += [[nn.Conv2d(nf_prev, nf, kw, 2, padw), norm_layer(nf), nn.LeakyReLU(0.2, True)]]
    nf_prev, nf = nf, min(nf * 2, 512)
    seq += [[nn.Conv2d(nf_prev, nf, kw, 1, padw), norm_layer(nf), nn.LeakyReLU(0.2, True)]]
    seq += [[nn.Conv2d(nf, 1, kw, 1, padw)]]
    if use_sigmoid:
        seq[-1].append(nn.Sigmoid())
    return [nn.Sequential(*s) for s in seq]


def copy_into_ours(ref_blocks, ours: PatchDiscriminator):
    with torch.no_grad():
        for ref, blk in zip(ref_blocks, ours.blocks):
            blk.conv.weight.copy_(ref[0].weight)
            blk.conv.bias.copy_(ref[0].bias)
            if len(ref) > 2 and hasattr(ref[1], "weight") and ref[1].weight is not None:
                blk.norm.weight.copy_(ref[1].weight)
                blk.norm.bias.copy_(ref[1].bias)


@pytest.mark.parametrize("norm,n_layers,ndf", [("instance", 3, 8), ("batch", 2, 4), ("instance", 4, 140)])
def test_patch_d_matches_official_recipe(norm, n_layers, ndf):
    torch.manual_seed(0)
    norm_layer = {"instance": lambda c: nn.InstanceNorm2d(c, affine=False),
                  "batch": lambda c: nn.BatchNorm2d(c, affine=True)}[norm]
    ref = official_recipe(5, ndf, n_layers, norm_layer)
    ours = PatchDiscriminator(5, ndf, n_layers, norm=norm, get_interm_feat=True)
    assert len(ours.blocks) == n_layers + 2
    if norm == "batch":
        for r in ref:
            for m in r:
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.data.normal_(1, 0.3)
                    m.bias.data.normal_(0, 0.3)
    copy_into_ours(ref, ours)
    for m in ref:
        m.train()
    x = torch.randn(2, 5, 36, 40)
    want, h = [], x
    for r in ref:
        h = r(h)
        want.append(h)
    got = ours(x)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)
    # widths are capped at 512
    assert all(b.conv.out_channels <= 512 for b in ours.blocks)
    # without intermediate features: only the logits, same values
    ours.get_interm_feat = False
    torch.testing.assert_close(ours(x), want[-1], atol=1e-5, rtol=1e-5)


def test_one_layer_constant_weights_hand_value():
    """n_layers=1, no norm, constant weights: values computed by hand on a constant input."""
    d = PatchDiscriminator(1, ndf=1, n_layers=1, norm="none", get_interm_feat=True)
    with torch.no_grad():
        for b in d.blocks:
            b.conv.weight.fill_(1.0)
            b.conv.bias.fill_(0.0)
    x = torch.ones(1, 1, 6, 6)
    with torch.no_grad():
        f0, f1, f2 = d(x)
    # block 0: 4x4 stride-2 pad-2 conv of ones: output (6+4-4)/2+1 = 4; value = number of
    # in-image taps; corner window rows {-2..1} ∩ [0,5] = 2 rows -> 2*2 = 4
    assert f0.shape == (1, 1, 4, 4)
    taps = torch.tensor([2.0, 4.0, 4.0, 2.0])  # per-axis in-image taps for outputs 0..3
    torch.testing.assert_close(f0[0, 0], taps[:, None] * taps[None, :])
    assert f1.shape == (1, 2, 5, 5) and f2.shape == (1, 1, 6, 6)
    # block 1 (stride 1, 1->2 channels, weights 1): sum over the 4x4 window of f0
    ref1 = F.conv2d(f0, torch.ones(2, 1, 4, 4), padding=2)
    torch.testing.assert_close(f1, ref1)
    assert float(f1[0, 0, 2, 2]) == float(f0.sum())  # window at (2,2) covers all 4x4 of f0


def test_sigmoid_option():
    torch.manual_seed(1)
    d = PatchDiscriminator(3, 4, 2, use_sigmoid=True)
    d2 = PatchDiscriminator(3, 4, 2, use_sigmoid=False)
    d2.load_state_dict(d.state_dict())
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(d(x), torch.sigmoid(d2(x)))


def test_param_names_regular():
    d = MultiscalePatchDiscriminator(3, 4, 3, num_D=2, norm="batch")
    keys = list(d.state_dict())
    assert "scales.0.blocks.0.conv.weight" in keys
    assert "scales.1.blocks.4.conv.bias" in keys
    assert "scales.1.blocks.1.norm.running_mean" in keys
    assert not any(".blocks.0.norm" in k for k in keys)  # first block has no norm


def test_multiscale_order_and_downsampling():
    torch.manual_seed(2)
    md = MultiscalePatchDiscriminator(3, 4, 2, num_D=3, get_interm_feat=True)
    x = torch.randn(1, 3, 37, 50)
    out = md(x)
    assert len(out) == 3 and all(len(o) == 4 for o in out)
    xi = x
    for i in range(3):
        want = md.scales[3 - 1 - i].features(xi)
        for g, w in zip(out[i], want):
            torch.testing.assert_close(g, w)
        xi = F.avg_pool2d(xi, 3, 2, 1, count_include_pad=False)
    # downsample == AvgPool2d(3, 2, [1, 1], count_include_pad=False), checked by hand at a corner
    y = downsample_avg(x)
    torch.testing.assert_close(y, nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)(x))
    torch.testing.assert_close(y[0, 0, 0, 0], x[0, 0, :2, :2].mean())
    # no intermediate features: [[logits]] per scale
    md.get_interm_feat = False
    for s in md.scales:
        s.get_interm_feat = False
    out2 = md(x)
    assert all(len(o) == 1 for o in out2)
    for a, b in zip(out, out2):
        torch.testing.assert_close(a[-1], b[0])


def test_pix2pixhd_init_stats():
    torch.manual_seed(0)
    d = pix2pixhd_init(PatchDiscriminator(3, 64, 3, norm="batch"))
    w = torch.cat([b.conv.weight.detach().flatten() for b in d.blocks])
    assert abs(float(w.std()) - 0.02) < 1e-3
    bn = d.blocks[1].norm
    assert abs(float(bn.weight.detach().mean()) - 1.0) < 0.01 and float(bn.bias.detach().abs().sum()) == 0.0


def _edn_official_to_ours(sd, num_d, n_layers):
    """Map official getIntermFeat keys scale{s}_layer{j}.0.* onto scales.{s}.blocks.{j}.conv.*."""
    out = {}
    for s in range(num_d):
        for j in range(n_layers + 2):
            for p in ("weight", "bias"):
                out[f"scales.{s}.blocks.{j}.conv.{p}"] = sd[f"scale{s}_layer{j}.0.{p}"]
    return out


def test_edn_fixture_netD_parity(shared):
    d = shared / "fixtures" / "edn"
    sd = torch.load(d / "latest_net_D.pth", map_location="cpu", weights_only=True)
    cases = np.load(d / "cases.npz")
    md = MultiscalePatchDiscriminator(12, ndf=8, n_layers=3, norm="instance", num_D=2, get_interm_feat=True)
    md.load_state_dict(_edn_official_to_ours(sd, 2, 3))
    t = {k: torch.from_numpy(cases[k]) for k in ("label_0", "label_1", "real_0", "real_1", "I_0", "I_1")}
    for kind, a, b in (("fake", "I_0", "I_1"), ("real", "real_0", "real_1")):
        out = md(torch.cat([t["label_0"], t["label_1"], t[a], t[b]], 1))
        for i in range(2):
            for j in range(5):
                want = torch.from_numpy(cases[f"D_{kind}_s{i}_f{j}"])
                torch.testing.assert_close(out[i][j], want, atol=1e-4, rtol=1e-4)


def test_edn_fixture_face_d_batchnorm_parity(shared):
    """Official EDN netDface (flat NLayerDiscriminator, BatchNorm2d) in eval and train mode."""
    d = shared / "fixtures" / "edn"
    sd = torch.load(d / "latest_net_Dface.pth", map_location="cpu", weights_only=True)
    cases = np.load(d / "cases.npz")
    n_layers = 3
    idx = {0: "blocks.0.conv", 2 + 3 * n_layers: f"blocks.{n_layers + 1}.conv"}
    for n in range(1, n_layers + 1):
        idx[2 + 3 * (n - 1)] = f"blocks.{n}.conv"
        idx[3 + 3 * (n - 1)] = f"blocks.{n}.norm"
    ours = {}
    for k, v in sd.items():
        _, i, p = k.split(".", 2)
        ours[f"{idx[int(i)]}.{p}"] = v
    face_d = PatchDiscriminator(6, ndf=16, n_layers=n_layers, norm="batch")
    face_d.load_state_dict(ours)
    for mode in ("eval", "train"):  # eval first: a train-mode call updates the running stats
        face_d.train(mode == "train")
        for kind in ("fake", "real"):
            x = torch.from_numpy(cases[f"Dface_in_{kind}_0"])
            with torch.no_grad():
                want = torch.from_numpy(cases[f"Dface_{kind}_0_{mode}"])
                torch.testing.assert_close(face_d(x), want, atol=1e-4, rtol=1e-4)
