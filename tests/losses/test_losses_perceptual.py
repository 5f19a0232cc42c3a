"""VGG19 perceptual losses with random weights (explicitly requested) and the weight lookup."""
from __future__ import annotations

import pytest
import torch

from v2v.errors import V2VError
from v2v.losses.perceptual import VGG19_LAYERS, VGG19Features, VGGLoss, VGGPyramidLoss


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return VGG19Features(weights="random")


def test_layer_indices_match_torchvision():
    assert [VGG19_LAYERS[k] for k in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")] == [1, 6, 11, 20, 29]


def test_vgg_loss_zero_on_identical_positive_otherwise(vgg):
    loss = VGGLoss(vgg=vgg)
    torch.manual_seed(1)
    x = torch.rand(1, 3, 16, 16)
    assert float(loss(x, x.clone())) == 0.0
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    v = float(loss(x, y))
    assert v > 0
    # the loss is a weighted sum of per-layer L1s: check the value by hand
    fx, fy = vgg(x), vgg(y)
    want = sum(w * (a - b).abs().mean() for w, a, b in zip([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1], fx, fy))
    assert v == pytest.approx(float(want), rel=1e-5)
    # gradients reach x, not the frozen VGG; VGG is not part of the loss' state/params
    xr = x.clone().requires_grad_(True)
    loss(xr, y).backward()
    assert xr.grad is not None and float(xr.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in vgg.parameters())
    assert list(loss.parameters()) == [] and loss.state_dict() == {}


def test_normalization_modes(vgg):
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(vgg.prepare(x), (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                               / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    v2 = VGG19Features(layers=["relu1_1"], weights="random", normalize="pix2pixhd")
    torch.testing.assert_close(v2.prepare(x), 2 * x - 1)
    assert len(v2.features) == 2  # truncated after the last requested layer


def test_pyramid_loss():
    import v2v.ops.pyramid  # noqa: F401 - the pyramid the loss uses
    torch.manual_seed(2)
    vgg = VGG19Features(weights="random", widths=(8, 8, 16, 16, 16))  # small look-alike: fast
    loss = VGGPyramidLoss(scales=[1, 0.5], vgg=vgg)
    x = torch.rand(1, 3, 32, 32)  # scale 0.5 -> 16x16, the least VGG reaches relu5_1 with
    assert float(loss(x, x.clone())) == 0.0
    y = torch.rand(1, 3, 32, 32)
    v = float(loss(x, y))
    one = float(VGGPyramidLoss(scales=[1], vgg=vgg)(x, y))
    half = float(VGGPyramidLoss(scales=[0.5], vgg=vgg)(x, y))
    assert v > 0 and v == pytest.approx(one + half, rel=1e-5)
    # scale 1 is FOMM's identity and the default weights are 10 per layer
    fx, fy = vgg(x), vgg(y)
    assert one == pytest.approx(float(sum(10 * (a - b).abs().mean() for a, b in zip(fx, fy))), rel=1e-5)
    # scale 0.5 goes through FOMM's anti-aliased downsample
    from v2v.ops.pyramid import antialias_downsample

    hx, hy = vgg(antialias_downsample(x, 0.5)), vgg(antialias_downsample(y, 0.5))
    assert half == pytest.approx(float(sum(10 * (a - b).abs().mean() for a, b in zip(hx, hy))), rel=1e-5)


def test_missing_weights_error_names_file(tmp_path, monkeypatch):
    monkeypatch.setenv("V2V_WEIGHTS", str(tmp_path / "nothing"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(V2VError, match="vgg19-dcbb9e9d.pth"):
        VGG19Features()
    with pytest.raises(V2VError, match="not found"):
        VGGLoss(weights=tmp_path / "missing.pth")


def test_load_from_explicit_path_and_env(tmp_path, monkeypatch):
    torch.manual_seed(3)
    src = VGG19Features(layers=["relu2_1"], weights="random")
    # a torchvision-style file: features.{i}.* plus classifier keys that are ignored
    sd = {f"features.{k}": v.clone() for k, v in src.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(sd, path)
    got = VGG19Features(layers=["relu2_1"], weights=path)
    for (ka, a), (kb, b) in zip(src.features.state_dict().items(), got.features.state_dict().items()):
        assert ka == kb
        assert torch.equal(a, b)
    monkeypatch.setenv("V2V_WEIGHTS", str(tmp_path))
    got2 = VGG19Features(layers=["relu2_1"])
    assert got2.weights_path == str(path)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(got2(x)[0], src(x)[0])
    # a file without the needed keys is a V2VError naming the key
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(V2VError, match="features.0.bias"):
        VGG19Features(layers=["relu2_1"], weights=bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(V2VError, match="junk.pth"):
        VGG19Features(layers=["relu1_1"], weights=junk)


def test_bad_layer_name():
    with pytest.raises(V2VError, match="relu5_l.*did you mean"):
        VGG19Features(layers=["relu5_l"], weights="random")


def test_matches_torchvision_vgg19_slices():
    """Our truncated build == torchvision's vgg19 features, sliced like pix2pixHD/FOMM (2, 7, 12, ...)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(4)
    tv = make_layers(cfgs["E"][:7], batch_norm=False).eval()  # torchvision features[0:12]
    sd = {f"features.{k}": v for k, v in tv.state_dict().items()}
    ours = VGG19Features(["relu1_1", "relu2_1", "relu3_1"], weights=sd, normalize="none")
    assert len(ours.features) == 12
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        got = ours(x)
        h, want = x, []
        for a, b in ((0, 2), (2, 7), (7, 12)):
            h = tv[a:b](h)
            want.append(h)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_img2vid_fixture_vgg_loss(shared):
    """Img2Vid's my_vgg (12 relu maps, avg-pool, small widths, weights from the official checkpoint)."""
    import numpy as np

    d = shared / "fixtures" / "img2vid"
    sd = torch.load(d / "000000_model.pth.tar", map_location="cpu", weights_only=True)["vae"]
    vsd = {k[len("vgg_net.vgg."):]: v for k, v in sd.items() if k.startswith("vgg_net.vgg.")}
    layers = ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu3_4",
              "relu4_1", "relu4_2", "relu4_3", "relu4_4"]
    vgg = VGG19Features(layers, weights=vsd, widths=(4, 8, 12, 16, 16), pool="avg")
    video = torch.from_numpy(np.load(d / "inputs.npz")["video"])
    warped = torch.from_numpy(np.load(d / "case_a_eval.npz")["warped"])
    c = np.load(d / "case_c_losses.npz")
    t = warped.shape[1]
    pred = warped.reshape(-1, *warped.shape[2:])
    gt = video[0:1, 1:1 + t].reshape(-1, *video.shape[2:])
    with torch.no_grad():
        per = torch.stack([(a - b).abs().mean() for a, b in zip(vgg(pred), vgg(gt))])
        total = VGGLoss(vgg=vgg, layer_weights=[1.0] * 12)(pred, gt)
    torch.testing.assert_close(per, torch.from_numpy(c["eval_vgg_per_layer"]), atol=1e-6, rtol=1e-5)
    assert float(total) == pytest.approx(float(c["eval_vgg_loss"]), abs=1e-5)
