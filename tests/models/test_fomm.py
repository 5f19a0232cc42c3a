"""FOMM model invariants, streaming animation CLI on real data, short training, error messages."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from v2v.errors import V2VError
from v2v.models.fomm import Animator, FOMMModelConfig, FOMMSystem, normalize_kp
from v2v.nn.hourglass import Hourglass


def tiny_cfg(**kw) -> FOMMModelConfig:
    args = {"num_kp": 4, "image_size": 32,
            "kp_detector": {"block_expansion": 4, "max_features": 16, "num_blocks": 2, "scale_factor": 0.5},
            "generator": {"block_expansion": 4, "max_features": 16, "num_down_blocks": 2, "num_bottleneck_blocks": 1,
                          "estimate_occlusion_map": True,
                          "dense_motion": {"block_expansion": 4, "max_features": 16, "num_blocks": 2,
                                           "scale_factor": 0.5}},
            "discriminator": {"block_expansion": 4, "max_features": 16, "num_blocks": 2}}
    return FOMMModelConfig(**{**args, **kw})


def test_config_is_the_constructor_signature():
    """Unknown keys are one clear error; inference builds no discriminator; the closed-form 2x2
    inverse matches torch.inverse."""
    from v2v.ops.linalg import inverse_2x2

    with pytest.raises(V2VError, match="unknown key in model.generator 'block_expansions'"):
        FOMMSystem(tiny_cfg(generator={"block_expansions": 4}))
    with pytest.raises(V2VError, match="model.generator.dense_motion"):
        FOMMSystem(tiny_cfg(generator={"dense_motion": {"kp_varience": 0.1}}))
    assert FOMMSystem.from_config(tiny_cfg(), inference=True).discriminator is None
    assert not any(k.startswith("discriminator") for k in FOMMSystem(tiny_cfg(), inference=True).state_dict())
    m = torch.randn(64, 2, 2, dtype=torch.float64)
    assert torch.allclose(inverse_2x2(m), torch.inverse(m), atol=1e-9)


def test_hourglass_skip_keeps_input_exactly():
    torch.manual_seed(0)
    hg = Hourglass(block_expansion=4, in_features=3, num_blocks=3, max_features=8).eval()
    x = torch.rand(2, 3, 16, 16)
    y = hg(x)
    assert y.shape == (2, 4 + 3, 16, 16) and hg.out_channels == 7
    assert torch.equal(y[:, 4:], x)  # the last concatenated skip is the input itself
    assert (y[:, :4] >= 0).all()  # after ReLU


def test_fresh_jacobians_are_identity_and_keypoints_in_range():
    torch.manual_seed(0)
    sysm = FOMMSystem(tiny_cfg()).eval()
    kp = sysm.kp_detector(torch.rand(2, 3, 32, 32))
    eye = torch.eye(2).expand(2, 4, 2, 2)
    assert torch.allclose(kp["jacobian"], eye, atol=1e-6)
    assert torch.allclose(kp["heatmap"].sum((2, 3)), torch.ones(2, 4), atol=1e-5)
    assert kp["value"].abs().max() <= 1


def test_same_keypoints_give_identity_motion():
    """kp_driving == kp_source: every sparse motion is the identity, so the dense deformation is
    the identity grid and every sparsely deformed source equals the (downsampled) source."""
    from v2v.ops.grid import make_grid

    torch.manual_seed(0)
    sysm = FOMMSystem(tiny_cfg()).eval()
    src = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        kp = {k: v for k, v in sysm.kp_detector(src).items() if k in ("value", "jacobian")}
        out = sysm.generator(src, kp, kp)
    assert torch.allclose(out["deformation"][0], make_grid(16, 16), atol=1e-5)
    sd = out["sparse_deformed"]  # B,K+1,3,h,w; index 0 = identity warp of the downsampled source
    assert torch.allclose(sd, sd[:, :1].expand_as(sd), atol=1e-5)
    assert torch.allclose(out["deformed"][..., 0, 0], src[..., 0, 0], atol=1e-6)  # corners map exactly
    assert torch.allclose(out["mask"].sum(1), torch.ones(1, 16, 16), atol=1e-5)
    assert 0 < out["prediction"].min() and out["prediction"].max() < 1


def test_normalize_kp_modes():
    g = torch.Generator().manual_seed(0)
    src = {"value": torch.rand(1, 4, 2, generator=g) - 0.5, "jacobian": torch.eye(2).repeat(1, 4, 1, 1) * 1.5}
    init = {"value": torch.rand(1, 4, 2, generator=g) - 0.5, "jacobian": torch.eye(2).repeat(1, 4, 1, 1) * 2}
    drv = {"value": init["value"] + 0.1, "jacobian": init["jacobian"] * 1.5}
    rel = normalize_kp(src, drv, init, use_relative_movement=True, use_relative_jacobian=True)
    assert torch.allclose(rel["value"], src["value"] + 0.1)
    assert torch.allclose(rel["jacobian"], src["jacobian"] * 1.5)
    same = normalize_kp(src, init, init, use_relative_movement=True, use_relative_jacobian=True)
    assert torch.allclose(same["value"], src["value"]) and torch.allclose(same["jacobian"], src["jacobian"])
    ab = normalize_kp(src, drv, init)
    assert ab["value"] is drv["value"]
    # adapt scale: sqrt(area ratio); source hull twice as large in each direction -> scale 2
    sq = torch.tensor([[[-0.2, -0.2], [0.2, -0.2], [0.2, 0.2], [-0.2, 0.2]]])
    r = normalize_kp({"value": sq * 2}, {"value": sq + 0.05}, {"value": sq}, adapt_movement_scale=True,
                     use_relative_movement=True)
    assert torch.allclose(r["value"], sq * 2 + 0.1, atol=1e-6)


def test_animator_batched_equals_per_frame():
    torch.manual_seed(0)
    sysm = FOMMSystem(tiny_cfg()).eval()
    src, frames = torch.rand(1, 3, 32, 32), torch.rand(5, 3, 32, 32)
    a = Animator(sysm.kp_detector, sysm.generator, src, mode="relative", adapt_scale=True)
    batched = torch.cat([a(frames[:3]), a(frames[3:])])
    b = Animator(sysm.kp_detector, sysm.generator, src, mode="relative", adapt_scale=True, exact=True)
    single = b(frames)
    assert torch.allclose(batched, single, atol=1e-5)
    # bf16 decoder (keypoints and motion stay fp32): close to fp32
    c = Animator(sysm.kp_detector, sysm.generator, src, mode="relative", adapt_scale=True,
                 autocast_dtype=torch.bfloat16)
    lo = c(frames)
    assert lo.dtype == torch.float32
    assert 10 * torch.log10(1 / ((lo - single) ** 2).mean()) > 35
    # the first frame drives relative mode with zero displacement: same as the source's own keypoints
    with torch.no_grad():
        kp = {k: v for k, v in sysm.kp_detector(src).items() if k in ("value", "jacobian")}
        ref = sysm.generator(src, kp, kp)["prediction"]
    assert torch.allclose(batched[0:1], ref, atol=1e-5)


# ----------------------------------------------------------------------------- CLI on real data


def _short_clip(shared, tmp_path, name="08.mp4", n=8):
    from v2v.data.video import VideoWriter, open_video

    with open_video(shared / "data" / "animation" / "driving" / name) as r:
        fps = r.fps
        frames = r.read(max_frames=n)
    out = tmp_path / f"short_{name}"
    with VideoWriter(out, fps=fps) as w:
        for f in frames:
            w.write(f)
    return out, fps


def test_animate_real_data_keeps_fps_and_frame_count(shared, tmp_path, run_cli):
    from v2v.data.video import read_video

    fx = shared / "fixtures" / "fomm"
    clip, fps = _short_clip(shared, tmp_path)
    assert fps == 35
    out = tmp_path / "anim.mp4"
    rc, _stdout, err = run_cli("animate", "--config", fx / "config.yaml", "--checkpoint", fx / "00000099-checkpoint.pth.tar",
                              "--source", shared / "data" / "animation" / "source" / "doll-06.png", "--driving", clip,
                              "--out", out, "--size", 64, "--batch-frames", 3, "--adapt-scale", "--find-best-frame")
    assert rc == 0, err
    frames, meta = read_video(out)
    assert frames.shape == (8, 64, 64, 3) and meta["fps"] == 35
    from v2v.commands.fomm import _fan_available

    if not _fan_available():
        assert "keypoints instead" in err  # no FAN weights: the keypoint fallback says so
    assert frames.std() > 5  # a real picture, not a constant


def test_animate_errors_are_one_line(shared, tmp_path, run_cli):
    fx = shared / "fixtures" / "fomm"
    src = shared / "data" / "animation" / "source" / "06.png"
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    empty = tmp_path / "empty_frames"
    empty.mkdir()
    common = ["--config", fx / "config.yaml", "--checkpoint", fx / "00000099-checkpoint.pth.tar", "--source", src,
              "--size", 64]
    for driving, what in ((bad, "broken.mp4"), (empty, "empty_frames")):
        rc, _, err = run_cli("animate", *common, "--driving", driving, "--out", tmp_path / "o.mp4")
        assert rc == 2 and err.startswith("error:") and what in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.mp4").exists()


# ----------------------------------------------------------------------------- training


def test_short_training_lowers_heldout_reconstruction(tmp_path, run_cli):
    """`v2v train` on synthetic puppets (64x64, a few steps, L1 pyramid instead of VGG since no
    ImageNet weights are available offline) lowers the held-out reconstruction L1."""
    from v2v.data.synthetic.puppets import generate_puppets
    from v2v.train.config import load_experiment
    from v2v.utils import seed_everything
    from v2v.weights_io import load_weights

    data = tmp_path / "pup"
    generate_puppets(data, videos=4, frames=8, size=(64, 64), seed=0, split="train", progress=False)
    generate_puppets(data, videos=2, frames=8, size=(64, 64), seed=1, split="test", progress=False)
    over = [f"data.root={data}", "model.loss.perceptual_net=l1", "model.generator.num_bottleneck_blocks=1",
            "model.kp_detector.block_expansion=8", "model.generator.block_expansion=8",
            "model.generator.dense_motion.block_expansion=8", "data.repeats=4", "data.test_pairs=4",
            "train.steps=25", "train.batch_size=4", "train.lr=2e-3", "train.eval_every=0", "train.sample_every=0",
            "train.ckpt_every=0", "train.log_every=5", "train.lr_milestones=[]"]
    torch.set_num_threads(1)
    rc, _, err = run_cli("train", "--config", "configs/fomm/puppets.yaml", *over, "--out", tmp_path / "run",
                         "--no-progress")
    assert rc == 0, err
    cls, cfg = load_experiment("configs/fomm/puppets.yaml", over)
    seed_everything(cfg.train.seed)
    before = cls.from_config(cfg.model).eval()  # the trainer's initial weights (same seed)
    after = cls.from_config(cfg.model).eval()
    ckpt = max((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    load_weights(after, ckpt)
    test = cls.build_dataset(cfg.data, "test", cfg.model)
    batch = torch.utils.data.default_collate([test[i] for i in range(len(test))])
    l_before, l_after = before.evaluate(batch)["rec_l1"], after.evaluate(batch)["rec_l1"]
    assert l_after < 0.85 * l_before, (l_before, l_after)
    assert np.isfinite(l_after)


# ----------------------------------------------------------------------------- inference paths (issue 19)


def _official_make_animation(kp_detector, generator, source_hwc, frames_hwc):
    """The official make_animation(relative=True, adapt_movement_scale=True) loop, verbatim in
    structure: HWC float arrays permuted to NCHW views, one frame per call, the source re-encoded
    by every generator call."""
    from v2v.models.fomm import normalize_kp

    preds = []
    with torch.no_grad():
        source = torch.tensor(source_hwc[np.newaxis].astype(np.float32)).permute(0, 3, 1, 2)
        driving = torch.tensor(np.array(frames_hwc)[np.newaxis].astype(np.float32)).permute(0, 4, 1, 2, 3)
        kp_source = {k: v for k, v in kp_detector(source).items() if k in ("value", "jacobian")}
        kp_init = None
        for t in range(driving.shape[2]):
            kp_d = {k: v for k, v in kp_detector(driving[:, :, t]).items() if k in ("value", "jacobian")}
            kp_init = kp_init or kp_d
            kp_norm = normalize_kp(kp_source, kp_d, kp_init, adapt_movement_scale=True, use_relative_movement=True,
                                   use_relative_jacobian=True)
            preds.append(generator(source, kp_norm, kp_source)["prediction"][0].permute(1, 2, 0).numpy())
    return np.stack(preds)


def _run_paths(system, source_hwc, frames_hwc, batch=4):
    """(exact, fast) predictions N,H,W,3 through the CLI's Animator paths (fast: BN folded, channels_last)."""
    import copy

    from v2v.commands.fomm import _to_tensor
    from v2v.nn.fuse import fuse_for_inference

    src8 = (np.asarray(source_hwc) * 255).round().astype(np.uint8) if source_hwc.dtype != np.uint8 else source_hwc
    exact = Animator(system.kp_detector, system.generator, _to_tensor(src8, "cpu"), adapt_scale=True, exact=True)
    kp, gen = copy.deepcopy(system.kp_detector), copy.deepcopy(system.generator)
    fuse_for_inference(kp, gen)
    fast = Animator(kp, gen, _to_tensor(src8, "cpu"), adapt_scale=True)
    out_e, out_f = [], []
    for i in range(0, len(frames_hwc), batch):
        chunk = _to_tensor(list(frames_hwc[i:i + batch]), "cpu")
        out_e.append(torch.cat([exact(chunk[j:j + 1]) for j in range(len(chunk))]))
        out_f.append(fast(chunk))
    return (torch.cat(out_e).permute(0, 2, 3, 1).numpy(), torch.cat(out_f).permute(0, 2, 3, 1).numpy())


def test_exact_and_fast_paths_on_the_official_fixture(shared):
    """exact <= 1e-4 and fast <= 1e-3 against the official make_animation arrays."""
    from v2v.compat.fomm import load_fomm

    fx = shared / "fixtures" / "fomm"
    system = load_fomm(fx / "00000099-checkpoint.pth.tar", fx / "config.yaml")
    cases = np.load(fx / "cases.npz")
    src = cases["source"][0].transpose(1, 2, 0)
    video = cases["driving_video"][0].transpose(1, 2, 3, 0)  # T,H,W,3 float in [0,1]
    import copy

    from v2v.nn.fuse import fuse_for_inference

    exact = Animator(system.kp_detector, system.generator, torch.from_numpy(src.copy())[None].permute(0, 3, 1, 2),
                     adapt_scale=True, exact=True)
    kp, gen = copy.deepcopy(system.kp_detector), copy.deepcopy(system.generator)
    fuse_for_inference(kp, gen)
    fast = Animator(kp, gen, torch.from_numpy(src.copy())[None].permute(0, 3, 1, 2), adapt_scale=True)
    frames = torch.from_numpy(video.copy()).permute(0, 3, 1, 2)
    expected = cases["anim_rel_adapt_prediction"][:, 0]
    assert np.abs(exact(frames).numpy() - expected).max() <= 1e-4
    assert np.abs(fast(frames).numpy() - expected).max() <= 1e-3


def test_exact_and_fast_paths_on_a_long_moving_clip(shared):
    """72 frames of the real driving clip (moving face) at 64x64 with the fixture's official
    checkpoint: the exact path stays within 1e-4 of the official per-frame loop on every frame,
    the fast path within 1e-3."""
    from v2v.commands.fomm import square_resize
    from v2v.compat.fomm import load_fomm
    from v2v.data.image import read_image
    from v2v.data.video import open_video

    fx = shared / "fixtures" / "fomm"
    system = load_fomm(fx / "00000099-checkpoint.pth.tar", fx / "config.yaml")
    with open_video(shared / "data" / "animation" / "driving" / "00.mp4") as r:
        frames = np.stack([square_resize(f, 64) for f in r.read(max_frames=72)])
    src = square_resize(read_image(shared / "data" / "animation" / "source" / "statue-02.png"), 64)
    assert len(frames) == 72
    motion = np.abs(frames.astype(np.float32) - frames[:1]).mean(axis=(1, 2, 3)) / 255
    assert motion.max() > 0.03  # the clip moves
    ref = _official_make_animation(system.kp_detector, system.generator, src / 255.0, frames / 255.0)
    exact, fast = _run_paths(system, src, frames)
    d_exact = np.abs(exact - ref).max(axis=(1, 2, 3))
    d_fast = np.abs(fast - ref).max(axis=(1, 2, 3))
    assert d_exact.max() <= 1e-4, d_exact.max()
    assert d_fast.max() <= 1e-3, d_fast.max()
    assert np.abs(ref - ref[:1]).max() > 0.05  # the predictions move too


def test_precision_refusal_is_one_fast_line(tmp_path, run_cli, monkeypatch):
    """bf16/fp16 on a CPU without native support: one line, before anything is read (the files
    named here do not exist; the refusal comes first). Its latency is measured by the benchmark."""
    from v2v.precision import native_modes

    monkeypatch.setattr("v2v.precision.cpu_info", lambda: ("Test CPU", frozenset({"avx2"})))
    assert native_modes("cpu")["bf16"] is not None
    rc, _, err = run_cli("animate", "--config", "x.yaml", "--checkpoint", "x.pth.tar", "--source", "x.png",
                         "--driving", "x.mp4", "--out", tmp_path / "o.mp4", "--precision", "bf16", "--device", "cpu")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "no native bf16" in err and "fp32" in err
    monkeypatch.setattr("v2v.precision.cpu_info", lambda: ("Test CPU", frozenset({"avx2", "amx_bf16"})))
    from v2v.precision import resolve_precision

    assert resolve_precision("auto", "cpu") == "bf16" and resolve_precision("bf16", "cpu") == "bf16"
    rc, _, err = run_cli("animate", "--config", "x.yaml", "--checkpoint", "x.pth.tar", "--source", "x.png",
                         "--driving", "x.mp4", "--out", tmp_path / "o.mp4", "--precision", "bf16", "--exact",
                         "--device", "cpu")
    assert rc == 2 and "--exact runs in fp32" in err
