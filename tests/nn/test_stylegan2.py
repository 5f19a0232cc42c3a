"""Shared StyleGAN2 (v2v/nn/stylegan2.py): formulations agree, rosinality layout, loader checks."""
from __future__ import annotations

import pytest
import torch

from v2v.errors import V2VError
from v2v.nn.stylegan2 import (
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    generator_config_from_state_dict,
    load_generator_state_dict,
    modulated_conv2d_batched,
    read_rosinality,
)
from v2v.ops.modconv import modulated_conv2d

CH = {4: 8, 8: 8, 16: 4}


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demod", [True, False])
def test_batched_modconv_equals_grouped(up, demod):
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 5, 8, 8), torch.randn(6, 5, 3, 3), torch.rand(3, 5) + 0.5
    a = modulated_conv2d(x, w, s, demod, up=up)
    b = modulated_conv2d_batched(x, w, s, demod, up=up)
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=1e-5)


def test_generator_fused_and_batched_identical_outputs():
    torch.manual_seed(0)
    g1 = StyleGAN2Generator(16, 8, 2, channels=CH)
    g2 = StyleGAN2Generator(16, 8, 2, channels=CH, fused_modconv=False)
    g2.load_state_dict(g1.state_dict())
    z = torch.randn(2, 8)
    noise = g1.make_noise(2)
    assert torch.allclose(g1(z, noise), g2(z, noise), atol=1e-5)


def test_rosinality_keys_and_config_roundtrip():
    g = StyleGAN2Generator(16, 8, 3, channels=CH)
    keys = set(g.state_dict())
    for k in ("style.1.weight", "style.3.bias", "input.input", "conv1.conv.weight", "conv1.conv.modulation.weight",
              "conv1.noise.weight", "conv1.activate.bias", "to_rgb1.bias", "convs.0.conv.blur.kernel",
              "to_rgbs.1.upsample.kernel", "noises.noise_4"):
        assert k in keys
    assert g.state_dict()["conv1.conv.weight"].shape == (1, 8, 8, 3, 3)
    cfg = generator_config_from_state_dict(g.state_dict())
    assert cfg == {"size": 16, "style_dim": 8, "n_mlp": 3, "channels": CH}
    d = StyleGAN2Discriminator(16, channels=CH)
    assert d(torch.randn(4, 3, 16, 16)).shape == (4, 1)
    assert "final_linear.1.weight" in d.state_dict() and "convs.1.conv2.1.weight" in d.state_dict()


def test_loader_official_semantics_and_errors(tmp_path):
    g = StyleGAN2Generator(16, 8, 2, channels=CH)
    sd = g.state_dict()
    sd["modelR.w"] = torch.zeros(3)  # extra keys are ignored (strict=False)
    del sd["noises.noise_0"]  # missing keys keep the model's values
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(8)}, tmp_path / "g.pt")
    ck = read_rosinality(tmp_path / "g.pt")
    g2 = StyleGAN2Generator(16, 8, 2, channels=CH)
    assert load_generator_state_dict(g2, ck["g_ema"]) == ["noises.noise_0"]
    z = torch.randn(2, 8)
    assert torch.equal(g(z), g2(z))
    with pytest.raises(V2VError, match="32px with latent dimension 8"):
        load_generator_state_dict(StyleGAN2Generator(32, 8, 2, channels={**CH, 32: 4}), ck["g_ema"], "g.pt")
    with pytest.raises(V2VError, match="latent dimension 16"):
        load_generator_state_dict(StyleGAN2Generator(16, 16, 2, channels=CH), ck["g_ema"], "g.pt")
    with pytest.raises(V2VError, match="does not match"):
        load_generator_state_dict(StyleGAN2Generator(16, 8, 2, channels={4: 8, 8: 8, 16: 6}), ck["g_ema"])
    (tmp_path / "x.pt").write_bytes(b"junk")
    with pytest.raises(V2VError):
        read_rosinality(tmp_path / "x.pt")
    with pytest.raises(V2VError, match="not found"):
        read_rosinality(tmp_path / "missing.pt")


def test_fixture_generator_loads(shared):
    ck = read_rosinality(shared / "fixtures/mocogan_hd/pretrained_models/stylegan2.pt")
    cfg = generator_config_from_state_dict(ck["g_ema"])
    g = StyleGAN2Generator(**cfg)
    load_generator_state_dict(g, ck["g_ema"])
    assert g(torch.randn(1, cfg["style_dim"])).shape == (1, 3, cfg["size"], cfg["size"])
