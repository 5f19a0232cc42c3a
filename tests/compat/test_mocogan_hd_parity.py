"""MoCoGAN-HD parity against the official fixture (../shared/fixtures/mocogan_hd) + must-fail + errors."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def fx(request):
    shared = request.getfixturevalue("shared")
    return shared / "fixtures" / "mocogan_hd"


def test_parity_cli_passes(fx, run_cli):
    rc, out, _ = run_cli("parity", "mocogan-hd", fx)
    assert rc == 0, out
    assert "61/61" in out or "PASS" in out
    from v2v.compat.report import load_cases

    n_arrays = sum(not k.startswith("in_") for k in load_cases(fx / "cases.npz"))
    assert f"{n_arrays}/{n_arrays}" in out


def test_parity_must_fail(fx, tmp_path, run_cli):
    dst = tmp_path / "fx"
    shutil.copytree(fx, dst)
    with np.load(dst / "cases.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["frames"] = arrays["frames"] + np.float32(1e-3)
    np.savez(dst / "cases.npz", **arrays)
    rc, out, _ = run_cli("parity", "mocogan_hd", dst)
    assert rc != 0
    assert "FAIL frames" in out


def test_convert_then_generate_matches_official(fx, tmp_path, run_cli):
    rc, _out, err = run_cli("convert", "mocogan-hd", fx / "checkpoints/modelR_epoch_0.pth", "--opt", fx / "opt.txt",
                           "--out", tmp_path / "conv")
    assert rc == 0, err
    from v2v.commands.mocogan_hd import build_generator

    ours, _ = build_generator(str(tmp_path / "conv/mocogan-hd.yaml"), str(tmp_path / "conv/mocogan-hd.safetensors"))
    off, _ = build_generator(str(fx / "opt.txt"), str(fx / "checkpoints/modelR_epoch_0.pth"),
                             str(fx / "pretrained_models/stylegan2.pt"), str(fx / "pca_stats"))
    z = torch.randn(2, ours.cfg.latent_dimension, generator=torch.Generator().manual_seed(3))
    a = ours.generate(z, 5, generator=torch.Generator().manual_seed(1))
    b = off.generate(z, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    import v2v

    for src in (tmp_path / "conv", fx / "checkpoints/modelR_epoch_0.pth"):  # Python API: converted and official
        s = v2v.load(src)
        assert type(s).system_name == "mocogan-hd"
        assert torch.equal(s.generate(z, 5, generator=torch.Generator().manual_seed(1)), a)


def test_one_line_errors(fx, tmp_path, run_cli):
    base = ["generate", "mocogan-hd", "--config", fx / "opt.txt", "--checkpoint", fx / "checkpoints/modelR_epoch_0.pth",
            "--image-generator", fx / "pretrained_models/stylegan2.pt", "--out", tmp_path / "v.mp4"]
    # PCA stats: missing, wrong latent dimension, too few components
    rc, _, err = run_cli(*base, "--pca", tmp_path / "nope")
    assert rc == 2 and "PCA stats not found" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "pca_dim"
    bad.mkdir()
    np.save(bad / "pca_comp.npy", np.eye(32))
    np.save(bad / "pca_stdev.npy", np.ones(32))
    rc, _, err = run_cli(*base, "--pca", bad)
    assert rc == 2 and "dimension 32" in err
    few = tmp_path / "pca_few"
    few.mkdir()
    np.save(few / "pca_comp.npy", np.eye(64)[:16])
    np.save(few / "pca_stdev.npy", np.ones(16))
    rc, _, err = run_cli(*base, "--pca", few)
    assert rc == 2 and "n_pca=48" in err
    # image generator of another size / latent dimension
    from v2v.nn.stylegan2 import StyleGAN2Generator

    g = StyleGAN2Generator(32, 64, 8, channels={4: 8, 8: 8, 16: 8, 32: 8})
    torch.save({"g_ema": g.state_dict()}, tmp_path / "g32.pt")
    args = [a if a != fx / "pretrained_models/stylegan2.pt" else tmp_path / "g32.pt" for a in base]
    rc, _, err = run_cli(*args, "--pca", fx / "pca_stats")
    assert rc == 2 and "32px" in err and "style_gan_size 64" in err
    # checkpoint / config mismatch names keys and shapes
    args = [a if a != fx / "checkpoints/modelR_epoch_0.pth" else fx / "checkpoints/modelD_3d_epoch_0.pth" for a in base]
    rc, _, err = run_cli(*args, "--pca", fx / "pca_stats")
    assert rc == 2 and "motion.w (48,48)" in err and "unexpected" in err
    assert not (tmp_path / "v.mp4").exists()
