"""Video discriminators: DVD-GAN D_S/D_T parity with the official style_dvdgan fixture, 3-D PatchGAN values."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from v2v.losses.gan import GANLoss, gradient_penalty, relativistic_lsgan_loss
from v2v.nn.spectral_norm import convert_legacy_spectral_norm
from v2v.nn.video_discriminators import (
    DVDSpatialDiscriminator,
    DVDTemporalDiscriminator,
    MultiscaleVideoDiscriminator,
    VideoPatchDiscriminator3d,
    sample_frames,
)

_ATTN = {"query_conv": "query", "key_conv": "key", "value_conv": "value", "gamma": "gamma"}


def _map_keys(sd, rules):
    out = {}
    for k, v in sd.items():
        k = k.replace(".module.", ".")
        for pat, rep in rules:
            k2 = re.sub(pat, rep, k)
            if k2 != k:
                k = k2
                break
        for a, b in _ATTN.items():
            k = re.sub(rf"^(blocks\.\d+)\.{a}", rf"\1.{b}", k)
        out[k] = v
    return convert_legacy_spectral_norm(out)


def ds_from_official(sd):
    rules = [(r"^pre_conv\.0\.", "blocks.0.conv0."), (r"^pre_conv\.2\.", "blocks.0.conv1."),
             (r"^pre_skip\.", "blocks.0.conv_sc."), (r"^conv1\.", "blocks.1."), (r"^attn\.", "blocks.2."),
             (r"^conv2\.(\d)\.", lambda m: f"blocks.{3 + int(m.group(1))}.")]
    return _map_keys(sd, rules)


def dt_from_official(sd):
    rules = [(r"^pre_conv\.0\.", "blocks3d.0.conv0."), (r"^pre_conv\.2\.", "blocks3d.0.conv1."),
             (r"^pre_skip\.", "blocks3d.0.conv_sc."), (r"^res3d\.", "blocks3d.1."), (r"^self_attn\.", "blocks.0."),
             (r"^conv\.(\d)\.", lambda m: f"blocks.{1 + int(m.group(1))}.")]
    return _map_keys(sd, rules)


@pytest.fixture(scope="module")
def dvd(shared):
    d = shared / "fixtures" / "style_dvdgan"
    c = np.load(d / "cases.npz")
    load = lambda n: torch.load(d / n, map_location="cpu", weights_only=True)
    return {"cases": {k: torch.from_numpy(c[k]) for k in c.files}, "Ds": ds_from_official(load("latest_netDs.pth")),
            "Dt": dt_from_official(load("latest_netDt.pth"))}


def fresh_ds(dvd):
    m = DVDSpatialDiscriminator(6, ch=2)
    m.load_state_dict(dvd["Ds"])
    return m.train()


def fresh_dt(dvd, prepool):
    m = DVDTemporalDiscriminator(3, ch=2, prepool=prepool)
    m.load_state_dict(dvd["Dt"])
    return m.train()


def _stack(c, video, idx):
    return torch.stack([torch.cat([c["input_image"], video[:, int(i)]], 1) for i in idx])


def test_dvd_spatial_parity(dvd):
    c = dvd["cases"]
    for kind, video in (("fake", c["g_video"]), ("real", c["target_video"])):
        s = _stack(c, video, c[f"b_ds_idx_{kind}"])
        with torch.no_grad():
            out = fresh_ds(dvd)(s)
        torch.testing.assert_close(out, c[f"b_ds_{kind}"], atol=1e-4, rtol=1e-4)
    # GP with the official per-slot alphas (K,1,1,1,1): norm over rows k
    s_real = _stack(c, c["target_video"], c["b_ds_idx_real"])
    s_fake = _stack(c, c["g_video"], c["b_ds_idx_fake"])
    gp = gradient_penalty(fresh_ds(dvd), s_real, s_fake, alpha=c["alpha_ds"])
    assert float(gp.detach()) == pytest.approx(float(c["b_gp_ds_fresh"]), abs=1e-4)


@pytest.mark.parametrize("prepool", [0, 1])
def test_dvd_temporal_parity(dvd, prepool):
    c = dvd["cases"]
    with torch.no_grad():
        out = fresh_dt(dvd, bool(prepool))(c["g_video"])
        out_r = fresh_dt(dvd, bool(prepool))(c["target_video"])
    torch.testing.assert_close(out, c[f"b_dt_fake_prepool{prepool}"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_r, c[f"b_dt_real_prepool{prepool}"], atol=1e-4, rtol=1e-4)
    if not prepool:  # configured switch for this set
        gp = gradient_penalty(fresh_dt(dvd, False), c["target_video"], c["g_video"], alpha=c["alpha_dt"])
        assert float(gp.detach()) == pytest.approx(float(c["b_gp_dt_fresh"]), abs=1e-4)


def test_dvd_wgan_loss_sequence(dvd):
    """Official case (c): SN state carries over Ds forwards #1..#3; WGAN losses with our GANLoss('wgan')."""
    c = dvd["cases"]
    ds = fresh_ds(dvd)
    w = GANLoss("wgan")
    s_fake = _stack(c, c["g_video"], c["c_idx_ds_fake"])
    s_real = _stack(c, c["target_video"], c["c_idx_ds_real"])
    with torch.no_grad():
        fake = ds(s_fake)
        real = ds(s_real)
    assert float(fake.mean()) == pytest.approx(float(c["c_loss_Ds_fake"][0]), abs=1e-4)
    assert float(real.mean()) == pytest.approx(float(c["c_loss_Ds_real"][0]), abs=1e-4)
    gp = gradient_penalty(ds, s_real, s_fake, alpha=c["alpha_ds"])
    assert float(gp.detach()) == pytest.approx(float(c["c_loss_Ds_GP"][0]), abs=1e-4)
    # repo sign convention: L_D = mean D(real) - mean D(fake) + GP = -(wgan real + wgan fake) + GP
    ld = -(w(real, True) + w(fake, False)) + gp
    assert float(ld.detach()) == pytest.approx(float(c["c_loss_Ds"][0]), abs=1e-4)


def test_sample_frames():
    v = torch.arange(2 * 5.0).view(2, 5, 1, 1, 1).expand(2, 5, 3, 2, 2)
    frames, idx = sample_frames(v, 3, first=1, generator=torch.Generator().manual_seed(0))
    assert frames.shape == (3, 2, 3, 2, 2) and len(set(idx.tolist())) == 3 and min(idx.tolist()) >= 1
    for k, i in enumerate(idx.tolist()):
        assert torch.equal(frames[k], v[:, i])
    frames2, _ = sample_frames(v, 2, indices=[4, 0])
    assert torch.equal(frames2[0], v[:, 4]) and torch.equal(frames2[1], v[:, 0])


def test_patch3d_hand_values_and_multiscale():
    d = VideoPatchDiscriminator3d(1, ndf=1, n_layers=1, norm="none", get_interm_feat=True, temporal_kernel=1)
    with torch.no_grad():
        for b in d.blocks:
            b.conv.weight.fill_(1.0)
            b.conv.bias.zero_()
        f0, _, f2 = d(torch.ones(1, 2, 1, 6, 6))
    # temporal kernel 1 keeps frames independent: every frame equals the 2-D hand value
    taps = torch.tensor([2.0, 4.0, 4.0, 2.0])
    assert f0.shape == (1, 1, 2, 4, 4)
    for t in range(2):
        torch.testing.assert_close(f0[0, 0, t], taps[:, None] * taps[None, :])
    assert f2.shape == (1, 1, 2, 6, 6)
    torch.manual_seed(0)
    md = MultiscaleVideoDiscriminator(3, ndf=4, n_layers=2, num_D=2, get_interm_feat=True, downsample="spacetime")
    v = torch.randn(1, 4, 3, 16, 16)
    out = md(v)
    assert len(out) == 2 and all(len(o) == 4 for o in out)
    v2 = F.avg_pool3d(v.transpose(1, 2), 3, 2, 1, count_include_pad=False).transpose(1, 2)
    with torch.no_grad():
        torch.testing.assert_close(out[1][-1], md.scales[0].features(v2)[-1])
        torch.testing.assert_close(out[0][-1], md.scales[1].features(v)[-1])
        assert float(GANLoss("lsgan")(out, True)) > 0


def test_mocogan_hd_d3d_parity(shared):
    """Official MoCoGAN-HD D_3d (2 scales, IN with running stats) in eval and train mode."""
    d = shared / "fixtures" / "mocogan_hd"
    sd = torch.load(d / "checkpoints" / "modelD_3d_epoch_0.pth", map_location="cpu", weights_only=True)
    c = np.load(d / "cases.npz")
    ours = {}
    for k, v in sd.items():
        m = re.match(r"module\.netD\.scale(\d)_layer(\d)\.(\d)\.(.+)", k)
        ours[f"scales.{m[1]}.blocks.{m[2]}.{'conv' if m[3] == '0' else 'norm'}.{m[4]}"] = v
    md = MultiscaleVideoDiscriminator(3, ndf=4, n_layers=3, num_D=2, get_interm_feat=True, temporal_kernel=4,
                                      temporal_stride=2, track_running_stats=True, pool_kernel=(3, 3, 3),
                                      pool_stride=(1, 2, 2))
    md.load_state_dict(ours)
    md.eval()
    fake = torch.from_numpy(c["video_ds"])
    real = torch.from_numpy(c["in_x_real"])
    with torch.no_grad():
        out, out_r = md(fake), md(real)
        for i in range(2):
            for j in range(5):
                torch.testing.assert_close(out[i][j], torch.from_numpy(c[f"d3d_fake_s{i}_l{j}"]), atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(out_r[i][-1], torch.from_numpy(c[f"d3d_real_s{i}_final"]), atol=1e-4, rtol=1e-4)
        # relativistic average LSGAN on these outputs (official loss values of the fixture)
        assert float(relativistic_lsgan_loss(out_r, out, True)) == pytest.approx(float(c["loss_D_real_3d"]), abs=1e-5)
        assert float(relativistic_lsgan_loss(out, out_r, False)) == pytest.approx(float(c["loss_D_fake_3d"]), abs=1e-5)
        g = 0.5 * (relativistic_lsgan_loss(out, out_r, True) + relativistic_lsgan_loss(out_r, out, False))
        assert float(g) == pytest.approx(float(c["loss_G_3d"]), abs=1e-5)
    gp = gradient_penalty(md, real, fake, alpha=torch.from_numpy(c["in_gp_alpha"]), per_scale=True, norm_dim=2,
                          weight=10 / 2)
    assert float(gp.detach()) == pytest.approx(float(c["loss_gp_3d"]), rel=1e-5)
    with torch.no_grad():
        md.train()
        out_t = md(fake)
        for i in range(2):
            torch.testing.assert_close(out_t[i][-1], torch.from_numpy(c[f"d3d_train_fake_s{i}_final"]),
                                       atol=1e-4, rtol=1e-4)
