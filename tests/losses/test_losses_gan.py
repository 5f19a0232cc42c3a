"""GAN losses, gradient penalties and feature matching on known values (+ EDN official losses)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from v2v.errors import V2VError
from v2v.losses.feature_matching import FeatureMatchingLoss, feature_matching_loss
from v2v.losses.gan import GANLoss, gradient_penalty, r1_penalty


def test_lsgan_known_values():
    g = GANLoss("lsgan")
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert float(g(ones, True)) == 0.0
    assert float(g(zeros, False)) == 0.0
    assert float(g(ones, False)) == 1.0
    x = torch.full((1, 1, 2, 2), 0.5)
    assert float(g(x, True)) == pytest.approx(0.25)
    # nested multiscale output with features: only the last of each scale, summed over scales
    feats = [[torch.full((1, 4, 2, 2), 100.0), ones], [torch.full((1, 4, 2, 2), -7.0), x]]
    assert float(g(feats, True)) == pytest.approx(0.0 + 0.25)
    # flat list (one D with features): last element only
    assert float(g([torch.full((1, 1, 2, 2), 9.0), x], True)) == pytest.approx(0.25)


def test_vanilla_hinge_wgan_known_values():
    x = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    v = GANLoss("vanilla")
    assert float(v(torch.zeros(3), True)) == pytest.approx(math.log(2))
    want = np.mean([math.log1p(math.exp(-t)) for t in (0.0, 2.0, -1.0, 0.5)])
    assert float(v(x, True)) == pytest.approx(want, rel=1e-6)
    assert float(GANLoss("nonsaturating")(x, True, for_discriminator=False)) == pytest.approx(want, rel=1e-6)
    h = GANLoss("hinge")
    # D real: mean(relu(1-x)) = (1 + 0 + 2 + 0.5)/4
    assert float(h(x, True)) == pytest.approx(3.5 / 4)
    # D fake: mean(relu(1+x)) = (1 + 3 + 0 + 1.5)/4
    assert float(h(x, False)) == pytest.approx(5.5 / 4)
    # G: -mean(x)
    assert float(h(x, True, for_discriminator=False)) == pytest.approx(-1.5 / 4)
    w = GANLoss("wgan")
    assert float(w(x, True)) == pytest.approx(-1.5 / 4)
    assert float(w(x, False)) == pytest.approx(1.5 / 4)
    with pytest.raises(V2VError, match="hinge"):
        GANLoss("hinj")


class LinearD(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_wgan_gp_linear_d_known_penalty():
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4)
    d = LinearD(w)
    real, fake = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    gp = gradient_penalty(d, real, fake)
    # grad of a linear D is w everywhere: (||w|| - 1)^2, whatever alpha is
    want = (w.norm() - 1) ** 2
    torch.testing.assert_close(gp, want.detach())
    assert float(gradient_penalty(d, real, fake, weight=10.0, alpha=torch.tensor([0.0, 1.0])).detach()) == \
        pytest.approx(10 * float(want), rel=1e-5)
    gp.backward()  # differentiable w.r.t. D's parameters
    torch.testing.assert_close(d.w.grad, (2 * (w.norm() - 1) * w / w.norm()).detach(), atol=1e-5, rtol=1e-5)


def test_r1_quadratic_d_known_value():
    # D(x) = sum(x^2)/2 -> grad = x -> R1 = mean_b sum(x^2)
    real = torch.randn(3, 2, 4, 4, requires_grad=True)
    out = 0.5 * (real ** 2).flatten(1).sum(1)
    r1 = r1_penalty(out, real)
    torch.testing.assert_close(r1, (real.detach() ** 2).flatten(1).sum(1).mean())
    r1.backward()  # create_graph: second-order works
    torch.testing.assert_close(real.grad, 2 * real.detach() / 3)


def test_feature_matching_values():
    torch.manual_seed(0)
    # 2 scales, D with n_layers=2 -> 4 outputs each (3 features + logits)
    real = [[torch.randn(1, 2, 4, 4) for _ in range(4)] for _ in range(2)]
    same = [[t.clone() for t in s] for s in real]
    assert float(feature_matching_loss(same, real)) == 0.0
    shifted = [[t + 0.5 for t in s] for s in real]
    shifted[0][-1] = shifted[0][-1] + 100  # logits are ignored
    # 2 scales * 3 layers * (1/2) * (4/3) * 0.5 = 2.0
    torch.testing.assert_close(feature_matching_loss(shifted, real), torch.tensor(2.0))
    torch.testing.assert_close(FeatureMatchingLoss(feat_weight=1.0, d_weight=1.0)(shifted, real),
                               torch.tensor(3.0))
    # FOMM style: per-layer weights, no skip of the last map
    fm = feature_matching_loss([[t + 0.5 for t in real[0]]], [real[0]], layer_weights=[10, 0, 10, 10],
                               d_weight=1.0, skip_last=False)
    torch.testing.assert_close(fm, torch.tensor(15.0))
    # gradient flows to fake, not real
    fake = [[t.clone().requires_grad_(True) for t in s] for s in shifted]
    rr = [[t.clone().requires_grad_(True) for t in s] for s in real]
    feature_matching_loss(fake, rr).backward()
    assert fake[0][0].grad is not None and rr[0][0].grad is None


def test_edn_fixture_losses(shared):
    """GANLoss(lsgan) + FM on the official EDN netD reproduce G_GAN, G_GAN_Feat, D_real, D_fake."""
    from v2v.nn.patchgan import MultiscalePatchDiscriminator

    d = shared / "fixtures" / "edn"
    sd = torch.load(d / "latest_net_D.pth", map_location="cpu", weights_only=True)
    cases = np.load(d / "cases.npz")
    md = MultiscalePatchDiscriminator(12, ndf=8, n_layers=3, num_D=2, get_interm_feat=True)
    md.load_state_dict({f"scales.{s}.blocks.{j}.conv.{p}": sd[f"scale{s}_layer{j}.0.{p}"]
                        for s in range(2) for j in range(5) for p in ("weight", "bias")})
    t = {k: torch.from_numpy(cases[k]) for k in ("label_0", "label_1", "real_0", "real_1", "I_0", "I_1")}
    lab = torch.cat([t["label_0"], t["label_1"]], 1)
    with torch.no_grad():
        fake = md(torch.cat([lab, t["I_0"], t["I_1"]], 1))
        real = md(torch.cat([lab, t["real_0"], t["real_1"]], 1))
    gan = GANLoss("lsgan")
    names = ['G_GAN', 'G_GAN_Feat', 'G_VGG', 'D_real', 'D_fake', 'G_GANface', 'D_realface', 'D_fakeface']
    want = dict(zip(names, cases["losses"].tolist()))
    got = {"G_GAN": float(gan(fake, True)), "G_GAN_Feat": 10 * float(feature_matching_loss(fake, real)),
           "D_real": float(gan(real, True)), "D_fake": float(gan(fake, False))}
    for k, v in got.items():
        assert v == pytest.approx(want[k], abs=1e-4, rel=1e-4), (k, v, want[k])


def test_relativistic_lsgan_known_value():
    from v2v.losses.gan import relativistic_lsgan_loss

    pred = torch.tensor([1.0, 3.0])
    other = torch.tensor([0.0, 2.0])  # mean 1 -> d = [0, 2]
    assert float(relativistic_lsgan_loss(pred, other, True)) == pytest.approx(1.0)   # ((0-1)^2 + (2-1)^2)/2
    assert float(relativistic_lsgan_loss(pred, other, False)) == pytest.approx(2.0)  # (0 + 4)/2
    # two scales with features: last element of each, summed
    two = [[torch.zeros(3), pred], [torch.zeros(3), pred]]
    oth = [[torch.zeros(3), other], [torch.zeros(3), other]]
    assert float(relativistic_lsgan_loss(two, oth, True)) == pytest.approx(2.0)


def test_feature_matching_without_features_is_zero():
    logits_only = [[torch.ones(1, 1, 2, 2)], [torch.ones(1, 1, 2, 2)]]
    assert float(feature_matching_loss(logits_only, [[torch.zeros(1, 1, 2, 2)]] * 2)) == 0.0
