"""vid2vid model: composite formula, first-frame modes, streaming == whole-clip, flow on real frames,
clear errors, and a short toycity training run lowering the held-out L1."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from v2v.errors import V2VError
from v2v.models.vid2vid import (
    Vid2VidModelConfig,
    Vid2VidStream,
    Vid2VidSystem,
    build_generator,
    check_labels,
    encode_labels,
    foreground_mask,
    norm_statistics,
)
from v2v.ops.warp import warp

H, W = 32, 48

TOYCITY_CFG = str(Path(__file__).resolve().parents[2] / "configs" / "vid2vid" / "toycity.yaml")


def tiny_cfg(**kw) -> Vid2VidModelConfig:
    base = {"label_nc": 5, "use_instance": True, "ngf": 4, "n_downsample_G": 2, "n_blocks": 2, "ndf": 4, "n_layers_D": 2,
                "num_D": 2, "n_scales_temporal": 1, "use_vgg": False, "n_frames_total": 4}
    base.update(kw)
    return Vid2VidModelConfig(**base)


def clip(T=5, label_nc=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, label_nc, (1, T, H // 8, W // 8), generator=g)
    labels = labels.repeat_interleave(8, 2).repeat_interleave(8, 3)
    inst = labels * 1000 + (torch.arange(W) > W // 2).long()
    images = torch.rand(1, T, 3, H, W, generator=g)
    return labels, inst, images


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # the shared 2-core machine thrashes with OpenMP spin-waits at 2 threads
    torch.manual_seed(0)


def test_encode_labels_onehot_and_edges():
    labels = torch.tensor([[[0, 1], [2, 2]]])
    inst = torch.tensor([[[7, 7], [7, 9]]])
    enc = encode_labels(labels, inst, 3, True)
    assert enc.shape == (1, 4, 2, 2)
    assert torch.equal(enc[0, :3].argmax(0), labels[0]) and torch.equal(enc[0, :3].sum(0), torch.ones(2, 2))
    # the pixel with id 9 differs from its left and upper neighbours; (0,0) has no differing neighbour
    assert enc[0, 3].tolist() == [[0.0, 1.0], [1.0, 1.0]]


def test_composite_formula_and_foreground():
    cfg = tiny_cfg(fg=True, fg_labels=[3])
    G = build_generator(cfg).scales[0].eval()
    labels, inst, images = clip()
    enc = encode_labels(labels, inst, cfg.label_nc, True)
    lab = enc[:, :3].flatten(1, 2)
    prev = images[:, :2].flatten(1, 2) * 2 - 1
    with torch.no_grad():
        zero = torch.zeros(1, 1, H, W)
        o = G(lab, prev, zero)
        expect = o["raw_image"] * o["weight"] + warp(prev[:, -3:], o["flow"]) * (1 - o["weight"])
        assert (o["image"] - expect).abs().max() < 1e-6
        assert (o["warped_prev"] - warp(prev[:, -3:], o["flow"])).abs().max() < 1e-6
        mask = foreground_mask(enc[:, 2], [3])
        assert torch.equal(mask[0, 0], (labels[0, 2] == 3).float())
        o2 = G(lab, prev, mask)
        inside = mask.expand(-1, 3, -1, -1) > 0
        # outside the foreground the composite is unchanged; inside it is the fg branch output
        assert torch.allclose(o2["image"][~inside], o["image"][~inside], atol=1e-6)
        if inside.any():
            assert (o2["image"][inside] - o["image"][inside]).abs().max() > 1e-4


def test_stream_matches_whole_clip_and_first_frame_modes():
    cfg = tiny_cfg()
    system = Vid2VidSystem(cfg).eval()
    labels, inst, images = clip(T=6)
    with torch.no_grad():
        whole = system.generate(labels, inst, images[:, :2])           # B,T,3,H,W [0,1]
    # (1) official test mode: real first frames, then generated; running statistics as eval()
    s = Vid2VidStream(system.netG, cfg, first_frames=[images[0, 0], images[0, 1]], norm_stats="running")
    outs = torch.stack([s.step(labels[:, t], inst[:, t]) for t in range(6)], 1)
    assert torch.allclose(outs[:, :2], images[:, :2], atol=1e-6)
    assert (outs - whole).abs().max() < 1e-5
    assert len(s.labels[0]) == cfg.n_frames_G and len(s.prev[0]) == cfg.n_frames_G - 1  # constant memory
    # (2) no real frames: the first frame is the hallucinated image from zero previous frames
    s = Vid2VidStream(system.netG, cfg, first_frames=None, norm_stats="running")
    f0 = s.step(labels[:, 0], inst[:, 0])
    enc0 = encode_labels(labels[:, 0], inst[:, 0], cfg.label_nc, True)
    with torch.no_grad():
        o = system.netG.scales[0](torch.cat([enc0] * 3, 1), torch.zeros(1, 6, H, W), raw_only=True)
    assert torch.allclose(f0, (o["raw_image"] + 1) / 2, atol=1e-6)
    frames = [f0] + [s.step(labels[:, t], inst[:, t]) for t in range(1, 6)]
    assert len(frames) == 6 and all(torch.isfinite(f).all() for f in frames)
    # (3) one given first frame: output 0 is that frame, output 1 uses it twice as context
    s = Vid2VidStream(system.netG, cfg, first_frames=[images[0, 0]], norm_stats="running")
    assert torch.allclose(s.step(labels[:, 0], inst[:, 0]), images[:, 0], atol=1e-6)
    f1 = s.step(labels[:, 1], inst[:, 1])
    lab = torch.cat([enc0, enc0, encode_labels(labels[:, 1], inst[:, 1], cfg.label_nc, True)], 1)
    with torch.no_grad():
        o = system.netG.scales[0](lab, torch.cat([images[:, 0]] * 2, 1) * 2 - 1)
    assert torch.allclose(f1, ((o["image"] + 1) / 2).clamp(0, 1), atol=1e-6)


def test_norm_statistics_batch_mode_keeps_running_buffers():
    cfg = tiny_cfg()
    G = build_generator(cfg).scales[0].eval()
    bn = G.model_down_seg[2]
    before = bn.running_mean.clone()
    labels, inst, images = clip()
    enc = encode_labels(labels, inst, 5, True)
    with torch.no_grad(), norm_statistics(G, "batch"):
        G(enc[:, :3].flatten(1, 2), images[:, :2].flatten(1, 2))
        assert bn.training
    assert torch.equal(bn.running_mean, before) and not bn.training


def test_errors_are_clear():
    with pytest.raises(V2VError, match="label id 40 is outside 0..34"):
        check_labels(torch.tensor([[3, 40]]), 35, where="frame_0001.png")
    cfg = tiny_cfg()
    s = Vid2VidStream(build_generator(cfg), cfg)
    with pytest.raises(V2VError, match="instance maps"):
        s.step(torch.zeros(1, H, W, dtype=torch.long), None)
    with pytest.raises(V2VError, match="n_scales_spatial must be 1, 2 or 3"):
        build_generator(tiny_cfg(n_scales_spatial=4))
    cfg2 = tiny_cfg(n_scales_spatial=2)
    s = Vid2VidStream(build_generator(cfg2), cfg2)
    with pytest.raises(V2VError, match=r"size 36x48 is not divisible by the total downsampling factor 8.*32x48"):
        s.step(torch.zeros(1, 36, 48, dtype=torch.long), torch.zeros(1, 36, 48, dtype=torch.long))


def test_training_losses_finite_and_temporal_discriminators_used():
    cfg = tiny_cfg(n_scales_temporal=2, n_frames_total=6)
    system = Vid2VidSystem(cfg).train()
    labels, inst, images = clip(T=7)
    # flowprev from the data (ground truth) path
    batch = {"labels": labels, "instances": inst, "images": images,
             "flowprev": torch.zeros(1, 6, 2, H, W), "occprev": torch.zeros(1, 6, 1, H, W)}
    out = system.train_step(batch, 0)
    for k in ("G", "D", "G/flow", "G/warp", "G/t_gan", "G/weight"):
        assert torch.isfinite(out[k]), k
    assert out["G/t_gan"] > 0          # scale 0 and 1 temporal Ds see 3 frames (span 1 and 7)
    out["G"].backward(inputs=list(system.netG.parameters()))
    assert all(p.grad is not None for p in system.netG.parameters())
    # progressive temporal training: the clip grows
    cfg2 = tiny_cfg(n_frames_total=8, n_frames_start=4, n_frames_grow_every=10)
    s2 = Vid2VidSystem(cfg2)
    assert [s2.frames_at(k) for k in (0, 9, 10, 25)] == [4, 4, 8, 8]


def test_dis_flow_warps_real_frames(shared):
    """DIS flow between consecutive real Cityscapes frames warps t+1 onto t better than no warp."""
    from v2v.data.image import read_image, resize_image, to_tensor
    from v2v.ops.flow_estimation import estimate_flow

    folder = shared / "data" / "cityscapes_seq" / "vid2vid" / "train_B" / "seq0000"
    files = sorted(folder.glob("*.jpg"))[:4]
    frames = [to_tensor(resize_image(read_image(f), (256, 512))).unsqueeze(0) for f in files]
    for a, b in itertools.pairwise(frames):
        flow = estimate_flow(a, b, method="dis")
        err_warp = (warp(b, flow) - a).abs()[..., 8:-8, 8:-8].mean()
        err_none = (b - a).abs()[..., 8:-8, 8:-8].mean()
        assert err_warp < 0.8 * err_none, (float(err_warp), float(err_none))


def test_short_toycity_training_lowers_heldout_l1(tmp_path, run_cli):
    """`v2v train` on synthetic toycity: the generator's L1 to held-out ground truth goes down."""
    from v2v.config import load_yaml
    from v2v.train.checkpoint import find_latest, load_weights

    root = tmp_path / "toy"
    assert run_cli("data", "synth", "toycity", "--out", root, "--videos", 3, "--frames", 6, "--size", "32x64",
                   "--seed", 0, "--quiet")[0] == 0
    assert run_cli("data", "synth", "toycity", "--out", root, "--videos", 2, "--frames", 6, "--size", "32x64",
                   "--seed", 5, "--split", "test", "--quiet")[0] == 0
    over = [f"data.root={root}", "data.size=[32,64]", "data.n_frames=4", "model.ngf=8", "model.n_blocks=2",
            "model.ndf=8", "model.num_D=1", "model.n_layers_D=2", "model.n_frames_total=4",
            "model.n_frames_grow_every=0", "model.n_scales_temporal=1", "train.steps=25", "train.batch_size=2",
            "train.lr={G: 2.0e-3, D: 5.0e-4}", "train.log_every=5", "train.eval_every=25", "train.sample_every=0",
            "train.ckpt_every=0", "train.eval_batches=2"]
    out = tmp_path / "run"
    rc, _, err = run_cli("train", "--config", TOYCITY_CFG, *over, "--out", out, "--no-progress")
    assert rc == 0, err
    cfg_all = load_yaml(out / "config.yaml")
    from v2v.config import from_dict
    from v2v.models.vid2vid import Vid2VidDataConfig

    mcfg = from_dict(Vid2VidModelConfig, cfg_all["model"])
    dcfg = from_dict(Vid2VidDataConfig, cfg_all["data"])
    test = Vid2VidSystem.build_dataset(dcfg, "test", mcfg)
    batch = torch.utils.data.default_collate([test[i] for i in range(len(test))])
    torch.manual_seed(123)
    fresh = Vid2VidSystem(mcfg).eval()
    before = fresh.evaluate(batch)["l1"]
    trained = Vid2VidSystem(mcfg)
    load_weights(trained, find_latest(out / "checkpoints")[0], strict=False)
    after = trained.eval().evaluate(batch)["l1"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [r["eval/l1"] for r in rows if "eval/l1" in r]
    assert logged and np.isfinite(logged[-1])
    print(f"toycity held-out L1 {before:.4f} -> {after:.4f}")
    assert after < 0.9 * before, (before, after)

    # two scales, official recipe: --load_pretrain the one-scale run as the coarse scale, train the
    # finest scale alone first (niter_fix_global), then both
    one_scale = find_latest(out / "checkpoints")[0]
    out2 = tmp_path / "run2"
    over2 = [o for o in over if not o.startswith("train.steps")] + [
        "train.steps=20", "model.n_scales_spatial=2", "model.n_blocks_local=1", f"model.load_pretrain={one_scale}",
        "model.niter_fix_global=10"]
    rc, _, err = run_cli("train", "--config", TOYCITY_CFG, *over2, "--out", out2, "--no-progress")
    assert rc == 0, err
    mcfg2 = from_dict(Vid2VidModelConfig, load_yaml(out2 / "config.yaml")["model"])
    torch.manual_seed(123)
    fresh2 = Vid2VidSystem(mcfg2).eval()                      # G0 = the one-scale run's generator
    for k, v in trained.netG.scales[0].state_dict().items():
        assert torch.equal(fresh2.netG.scales[0].state_dict()[k], v), k
    before2 = fresh2.evaluate(batch)["l1"]
    trained2 = Vid2VidSystem(mcfg2)
    load_weights(trained2, find_latest(out2 / "checkpoints")[0], strict=False)
    after2 = trained2.eval().evaluate(batch)["l1"]
    print(f"toycity two-scale held-out L1 {before2:.4f} -> {after2:.4f} (one scale: {after:.4f})")
    assert after2 < 0.9 * before2, (before2, after2)


def test_multiscale_coarse_to_fine_and_single_G_stream():
    """3 scales: each scale works on its pyramid level with its own previous frames, finer scales add
    the coarser features; the first tG-1 frames come from the single-image generator."""
    from v2v.models.vid2vid import label_pyramid

    cfg = tiny_cfg(n_scales_spatial=3, fg=True, fg_labels=[3], first_frame="single_G", first_frame_ngf=2,
                   first_frame_n_downsample=2)
    system = Vid2VidSystem(cfg, inference=True).eval()
    assert not hasattr(system, "netD") and [type(g).__name__ for g in system.netG.scales] == \
        ["CompositeGenerator", "CompositeLocalGenerator", "CompositeLocalGenerator"]
    assert [g.model_down_seg[1].out_channels for g in system.netG.scales] == [4, 2, 1]   # ngf // 2**s
    labels, inst, _ = clip(T=5)
    s = Vid2VidStream(system.netG, cfg, first_generator=system.netG_i, norm_stats="running")
    outs = [s.step(labels[:, t], inst[:, t]) for t in range(5)]
    enc = encode_labels(labels, inst, cfg.label_nc, True)
    with torch.no_grad():
        f0 = system.netG_i(enc[:, 0, :cfg.label_nc])
    assert torch.allclose(outs[0], ((f0 + 1) / 2).clamp(0, 1), atol=1e-6)
    assert [len(q) for q in s.prev] == [2, 2, 2] and [q[0].shape[-1] for q in s.prev] == [W // 4, W // 2, W]
    # the last step by hand: per-level inputs, coarse features flow into the finer scales
    pyr = list(reversed(label_pyramid(enc, 3)))
    # the windows before step 4: a fresh stream fed frames 0..3
    s2 = Vid2VidStream(system.netG, cfg, first_generator=system.netG_i, norm_stats="running")
    for t in range(4):
        s2.step(labels[:, t], inst[:, t])
    prev = [torch.cat(list(q), 1) for q in s2.prev]
    lab = [p[:, 2:5].flatten(1, 2) for p in pyr]
    masks = [foreground_mask(p[:, 4], [3]) for p in pyr]
    with torch.no_grad():
        o0 = system.netG.scales[0](lab[0], prev[0], masks[0])
        o1 = system.netG.scales[1](lab[1], prev[1], masks[1], (o0["img_feat"], o0["flow_feat"], o0["fg_feat"]))
        o2 = system.netG.scales[2](lab[2], prev[2], masks[2], (o1["img_feat"], o1["flow_feat"], o1["fg_feat"]))
    assert torch.allclose(outs[4], ((o2["image"] + 1) / 2).clamp(0, 1), atol=1e-6)
    assert o1["flow"].shape[-1] == W // 2 and o2["flow"].shape[-1] == W
    # whole-clip generate == the stream
    with torch.no_grad():
        whole = system.generate(labels, inst, norm_stats="running")
    assert (whole - torch.stack(outs, 1)).abs().max() < 1e-6


def test_niter_fix_global_trains_only_the_finest_scale():
    cfg = tiny_cfg(n_scales_spatial=2, niter_fix_global=5, n_scales_temporal=1)
    system = Vid2VidSystem(cfg).train()
    labels, inst, images = clip(T=4)
    batch = {"labels": labels, "instances": inst, "images": images,
             "flowprev": torch.zeros(1, 3, 2, H, W), "occprev": torch.zeros(1, 3, 1, H, W)}
    out = system.train_step(batch, 0)
    out["G"].backward(inputs=list(system.netG.parameters()))
    assert all(p.grad is None for p in system.netG.scales[0].parameters())
    assert all(p.grad is not None for p in system.netG.scales[1].parameters())
    system.zero_grad(set_to_none=True)
    out = system.train_step(batch, 5)               # after niter_fix_global: all scales learn
    out["G"].backward(inputs=list(system.netG.parameters()))
    # (the coarse scale's own output heads get no gradient, as upstream: only its features reach the loss)
    assert all(p.grad is not None for n, p in system.netG.scales[0].named_parameters() if "final" not in n)
