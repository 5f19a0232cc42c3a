"""MoCoGAN-HD system: motion generator, discriminators, training steps, CLI generate, stylegan2 trainer output."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from v2v.errors import V2VError
from v2v.models.mocogan_hd import (
    MoCoGANHDConfig,
    MoCoGANHDSystem,
    MotionGenerator,
    fit_pca,
    load_pca,
    sample_warp_params,
    warp,
)

TINY = {"style_gan_size": 16, "latent_dimension": 8, "n_mlp": 2, "stylegan_channels": {4: 8, 8: 8, 16: 8},
        "h_dim": 8, "n_pca": 4, "n_frames_G": 4, "video_frame_size": 16, "num_D": 1, "ndf_3d": 4, "ndf_max_3d": 4,
        "ndf_img": 4, "G_step": 1, "pca_samples": 200}


def tiny(**kw) -> MoCoGANHDSystem:
    torch.manual_seed(0)
    return MoCoGANHDSystem.from_config(MoCoGANHDConfig(**{**TINY, **kw}))


def test_motion_generator_unrolls_and_uses_w_residual():
    m = MotionGenerator(8, 6, 4, w_residual=0.5)
    w0 = torch.randn(2, 8)
    tr = m(w0, 12)
    assert tr.latents.shape == (2, 12, 8) and tr.e.shape == (2, 11, 8) and tr.e_rec.shape == (2, 11, 8)
    assert torch.equal(tr.latents[:, 0], w0)
    basis = m.pca_comp * m.pca_stdev[:, None]
    assert torch.allclose(tr.latents[:, 1] - tr.latents[:, 0], 0.5 * tr.step[:, 0] @ basis, atol=1e-6)


def test_pca_fit_and_load(tmp_path):
    lin = torch.nn.Linear(4, 4)
    st = fit_pca(lin, 4, n_samples=400)
    comp = st["pca_comp"]
    assert np.allclose(comp @ comp.T, np.eye(4), atol=1e-6)
    assert np.all(np.diff(st["pca_stdev"]) <= 1e-9)
    for k, v in st.items():
        np.save(tmp_path / f"{k}.npy", v)
    c, _s = load_pca(str(tmp_path), 3, 4)
    assert c.dtype == torch.float32 and c.shape == (4, 4)
    with pytest.raises(V2VError, match="n_pca=8"):
        load_pca(str(tmp_path), 8, 4)
    with pytest.raises(V2VError, match="dimension 4"):
        load_pca(str(tmp_path), 2, 16)


def test_generate_frames_interpolate_truncation():
    s = tiny().eval()
    z = torch.randn(2, 8)
    assert s.generate(z, 12).shape == (2, 12, 3, 16, 16)  # 3 x n_frames_G (LSTM unrolled)
    assert s.generate(z, 4, interpolate=True).shape == (2, 7, 3, 16, 16)
    a = s.generate(z, 4, truncation=0.5, generator=torch.Generator().manual_seed(0))
    b = s.generate(z, 4, truncation=1.0, generator=torch.Generator().manual_seed(0))
    assert a.shape == b.shape and not torch.equal(a, b)


def test_noise_is_per_video():
    s = tiny().eval()
    for conv in [s.generator.conv1, *s.generator.convs]:
        conv.noise.weight.data.fill_(1.0)
    lat = torch.randn(1, 1, 8).expand(2, 3, 8).contiguous()
    v = s.render(lat, s.generator.make_noise(2))
    assert torch.allclose(v[:, 0], v[:, 2], atol=1e-6)  # same w, same noise map for every frame
    assert not torch.allclose(v[0], v[1])  # another video gets another map


def test_warp_identity_params_and_shapes():
    x = torch.rand(2, 3, 16, 16)
    p = {"cutout": torch.tensor([[0, 0, 0], [0, 0, 0]]), "op": torch.tensor([0, 2]), "flip": torch.tensor([0, 0]),
         "color_channel": torch.tensor([-1, -1]), "color_shift": torch.zeros(2),
         "affine": torch.tensor([[0.0, 0, 0, 1], [0.0, 0, 0, 1]])}
    assert torch.allclose(warp(x, p), x, atol=1e-5)
    random.seed(0)
    q = sample_warp_params(2, 16, 16)
    assert warp(x, q).shape == x.shape and set(q) == set(p)


@pytest.mark.parametrize("cross", [True, False])
def test_train_steps_update_queues_and_ema(cross):
    r = 32 if cross else 16  # the BigGAN D needs >= 32 px
    kw = {"cross_domain": cross, "D_ch": 1, "l_len": 8, "q_len": 8, "world_batch_size": 2, "style_gan_size": r,
          "video_frame_size": r, "stylegan_channels": {4: 8, 8: 8, 16: 4, 32: 4}}
    s = tiny(**kw).train()
    groups = s.optim_groups()
    assert set(groups) == {"G", "D_img", "D_3d"}
    opts = {k: torch.optim.Adam(v, 1e-3) for k, v in groups.items()}
    batch = {"video": torch.rand(2, 4, 3, r, r)}
    random.seed(0)
    before = [p.clone() for p in groups["G"]]
    for step in range(2):
        out = s.train_step(batch, step)
        assert {"G", "D_img", "D_3d"} <= set(out) and all(torch.isfinite(v).all() for v in out.values())
        for k in ("G", "D_img", "D_3d"):
            opts[k].zero_grad()
            out[k].backward(inputs=groups[k], retain_graph=True)
            opts[k].step()
    assert any(not torch.equal(a, b) for a, b in zip(before, groups["G"]))
    assert all(p.grad is None for p in s.generator.parameters())  # the image generator stays frozen
    if cross:
        assert int(s.D_img.q_ptr) == 4 % s.D_img.q_len_eff
        s.train_step(batch, 2)  # momentum update of modelD_ema after the D step
        assert any(not torch.equal(a, b) for a, b in zip(s.D_img.modelD.parameters(), s.D_img.modelD_ema.parameters()))


def test_stylegan2_training_output_feeds_mocogan(tmp_path, run_cli):
    """v2v train (stylegan2) -> checkpoint accepted by --image-generator and written as rosinality .pt."""
    import yaml

    cfg = {"system": "stylegan2",
           "model": {"size": 16, "latent": 8, "n_mlp": 2, "channels": {4: 8, 8: 8, 16: 8}, "d_reg_every": 2,
                     "g_reg_every": 2},
           "data": {"synthetic": "puppets", "num_videos": 2, "frames": 3},
           "train": {"steps": 2, "batch_size": 4, "lr": 2e-3, "betas": [0.0, 0.99], "log_every": 1,
                     "sample_every": 0, "eval_every": 0, "ckpt_every": 2, "out_dir": str(tmp_path / "run")}}
    (tmp_path / "sg.yaml").write_text(yaml.safe_dump(cfg))
    rc, _, err = run_cli("train", "--config", tmp_path / "sg.yaml", "--no-progress")
    assert rc == 0, err
    ckpt = max((tmp_path / "run" / "checkpoints").glob("step_*.safetensors"))
    rc, _, err = run_cli("convert", "stylegan2", ckpt, "--out", tmp_path / "G.pt")
    assert rc == 0, err
    d = torch.load(tmp_path / "G.pt", weights_only=True)
    assert set(d) == {"g", "d", "g_ema", "latent_avg"} and "style.1.weight" in d["g_ema"]
    assert "convs.0.conv.blur.kernel" in d["g_ema"] and "final_linear.1.weight" in d["d"]
    # both files work as the MoCoGAN-HD image generator (v2v checkpoint and rosinality .pt)
    m = MoCoGANHDSystem.from_config(MoCoGANHDConfig(**{**TINY, "image_generator": str(ckpt)}), inference=True)
    m2 = MoCoGANHDSystem.from_config(MoCoGANHDConfig(**{**TINY, "image_generator": str(tmp_path / "G.pt")}),
                                     inference=True)
    z = torch.randn(1, 8)
    assert torch.allclose(m.generator(z), m2.generator(z))
    assert torch.equal(m.generator.state_dict()["style.1.weight"], d["g_ema"]["style.1.weight"])
    with pytest.raises(V2VError, match="16px with latent dimension 8"):
        MoCoGANHDSystem.from_config(MoCoGANHDConfig(**{**TINY, "latent_dimension": 16, "image_generator": str(ckpt)}))


def test_generate_cli_fixture(shared, tmp_path, run_cli):
    fx = shared / "fixtures" / "mocogan_hd"
    base = ["generate", "mocogan-hd", "--config", fx / "opt.txt", "--checkpoint", fx / "checkpoints/modelR_epoch_0.pth",
            "--image-generator", fx / "pretrained_models/stylegan2.pt", "--pca", fx / "pca_stats"]
    from v2v.data.video import open_video

    rc, _, err = run_cli(*base, "--frames", "12", "--num-videos", "2", "--out", tmp_path / "many")
    assert rc == 0, err
    vids = sorted((tmp_path / "many").glob("*.mp4"))
    assert len(vids) == 2
    with open_video(vids[0]) as r:
        assert r.read().shape == (12, 64, 64, 3)  # 3 x n_frames_G
    rc, _, err = run_cli(*base, "--interpolate", "--out", tmp_path / "i.mp4")
    assert rc == 0, err
    with open_video(tmp_path / "i.mp4") as r:
        assert r.read().shape[0] == 7
