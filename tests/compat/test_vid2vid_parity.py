"""vid2vid against the official fixtures: parity CLI, convert, generate on real Cityscapes labels, errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # the shared 2-core machine thrashes with OpenMP spin-waits at 2 threads


def _fix(shared, sub=""):
    return shared / "fixtures" / "vid2vid" / sub if sub else shared / "fixtures" / "vid2vid"


def test_parity_cli_public_fixture(shared, run_cli):
    rc, out, err = run_cli("parity", "vid2vid", _fix(shared))
    assert rc == 0, out + err
    lines = [ln for ln in out.splitlines() if ln.startswith(("ok", "FAIL"))]
    assert len(lines) >= 100 and all(ln.startswith("ok") for ln in lines)
    # every kind of case ran: both norm modes, single steps and chains, image D and both temporal Ds
    for needle in ("eval step2 fake_image", "train step0 flow", "train chain step2 fake_image",
                   "D train fake s1 l3", "D_T0 train fake s0 l2", "D_T1 eval real s1 l4", "encode real_A"):
        assert any(needle in ln for ln in lines), needle


def test_parity_cli_cityscapes35_real_frames(shared, run_cli):
    rc, out, err = run_cli("parity", "vid2vid", _fix(shared, "cityscapes35"))
    assert rc == 0, out + err
    assert "train chain step2 fake_image" in out and "FAIL" not in out


def test_parity_fails_beyond_tolerance(shared, tmp_path, run_cli):
    """A perturbed checkpoint must make the runner exit non-zero."""
    src = _fix(shared)
    for f in ("opt.txt", "cases.npz", "latest_net_D.pth", "latest_net_D_T0.pth", "latest_net_D_T1.pth"):
        (tmp_path / f).symlink_to(src / f)
    sd = torch.load(src / "latest_net_G0.pth", map_location="cpu", weights_only=True)
    sd["model_final_img.1.bias"] = sd["model_final_img.1.bias"] + 1e-2
    torch.save(sd, tmp_path / "latest_net_G0.pth")
    from v2v.compat.vid2vid import run_parity

    rep = run_parity(tmp_path, chain=False)
    bad = [r.name for r in rep.rows if not r.ok]
    assert not rep.ok and bad and not any(n.startswith("D") or "encode" in n for n in bad)


def test_convert_with_and_without_num_batches_tracked(shared, tmp_path, run_cli):
    from v2v.weights_io import read_weights

    src = _fix(shared)
    rc, _out, err = run_cli("convert", "vid2vid", src / "latest_net_G0.pth", "--opt", src / "opt.txt",
                           "--out", tmp_path / "a")
    assert rc == 0, err
    a, _meta = read_weights(tmp_path / "a" / "vid2vid.safetensors")
    assert any(k.startswith("netD_T.1.") for k in a) and any(k.startswith("netD.") for k in a)
    # the same weights saved by a newer torch (with num_batches_tracked) convert identically
    sd = torch.load(src / "latest_net_G0.pth", map_location="cpu", weights_only=True)
    for k in [k for k in sd if k.endswith("running_mean")]:
        sd[k.replace("running_mean", "num_batches_tracked")] = torch.tensor(7)
    torch.save({"module." + k: v for k, v in sd.items()}, tmp_path / "latest_net_G0.pth")
    rc, _, err = run_cli("convert", "vid2vid", tmp_path / "latest_net_G0.pth", "--opt", src / "options.json",
                         "--out", tmp_path / "b")
    assert rc == 0, err
    b, _ = read_weights(tmp_path / "b" / "vid2vid.safetensors")
    for k, v in b.items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, a[k]), k
    # values: converted weights == official ones through the key map
    assert torch.equal(a["netG.scales.0.model_down_seg.1.weight"], sd["model_down_seg.1.weight"])
    assert torch.equal(a["netG.scales.0.model_up_img.4.running_var"], sd["model_up_img.4.running_var"])


def test_generate_stuttgart_30_frames(shared, tmp_path, run_cli):
    """Real Cityscapes label ids (2048x1024) with the 35-class official checkpoint -> 30-frame video."""
    from v2v.compat.vid2vid import load_official
    from v2v.data.image import read_image, read_label_map
    from v2v.data.video import open_video
    from v2v.models.vid2vid import Vid2VidStream

    fx = _fix(shared, "cityscapes35")
    seq = shared / "data" / "cityscapes_seq" / "vid2vid" / "test_A" / "stuttgart_00"
    out = tmp_path / "stuttgart.mp4"
    rc, _stdout, err = run_cli("generate", "vid2vid", "--config", fx / "opt.txt", "--checkpoint",
                              fx / "latest_net_G0.pth", "--labels", seq, "--out", out, "--size", "64x128",
                              "--no-progress")
    assert rc == 0, err
    with open_video(out) as v:
        frames = v.read()
    assert frames.shape == (30, 64, 128, 3)
    # lossless folder output for frames 0..2 equals the in-process stream (instances from test_inst)
    rc, _, err = run_cli("generate", "vid2vid", "--config", fx / "opt.txt", "--checkpoint", fx / "latest_net_G0.pth",
                         "--labels", seq, "--out", str(tmp_path / "png") + "/", "--size", "64x128", "--frames", 3,
                         "--no-progress")
    assert rc == 0, err
    cfg, system = load_official(str(fx / "latest_net_G0.pth"), str(fx / "opt.txt"))
    s = Vid2VidStream(system.netG, cfg)
    inst_dir = shared / "data" / "cityscapes_seq" / "vid2vid" / "test_inst" / "stuttgart_00"
    labs = sorted(seq.glob("*.png"))[:3]
    for i, f in enumerate(labs):
        lab = torch.from_numpy(read_label_map(f)[8::16, 8::16].copy()).long()[None]
        inst = torch.from_numpy(read_label_map(inst_dir / f.name)[8::16, 8::16].copy()).long()[None]
        ref = (s.step(lab, inst)[0].permute(1, 2, 0).numpy() * 255).round()
        got = read_image(sorted((tmp_path / "png").glob("*.png"))[i]).astype(np.float64)
        assert np.abs(got - ref).max() <= 1.0
    assert np.abs(frames[5].astype(float) - frames[4].astype(float)).mean() < 60  # a coherent video


def test_generate_errors(shared, tmp_path, run_cli):
    from v2v.data.image import write_label_map

    fx = _fix(shared, "cityscapes35")
    bad = tmp_path / "test_A" / "seq"
    bad.mkdir(parents=True)
    write_label_map(bad / "f_000001.png", np.full((64, 128), 40, np.int32))
    (tmp_path / "test_inst" / "seq").mkdir(parents=True)
    write_label_map(tmp_path / "test_inst" / "seq" / "f_000001.png", np.zeros((64, 128), np.int32))
    rc, _, err = run_cli("generate", "vid2vid", "--config", fx / "opt.txt", "--checkpoint", fx / "latest_net_G0.pth",
                         "--labels", bad, "--out", tmp_path / "o.mp4", "--size", "64x128", "--no-progress")
    assert rc == 2 and "label id 40 is outside 0..34" in err and "f_000001.png" in err
    lonely = tmp_path / "x_A" / "seq"
    lonely.mkdir(parents=True)
    write_label_map(lonely / "f_000001.png", np.full((64, 128), 7, np.int32))
    rc, _, err = run_cli("generate", "vid2vid", "--config", fx / "opt.txt", "--checkpoint", fx / "latest_net_G0.pth",
                         "--labels", lonely, "--out", tmp_path / "o.mp4", "--no-progress")
    assert rc == 2 and "instance maps" in err and len(err.strip().splitlines()) == 1
    # checkpoint from another option set: names the first mismatched keys and shapes
    rc, _, err = run_cli("generate", "vid2vid", "--config", _fix(shared) / "opt.txt", "--checkpoint",
                         fx / "latest_net_G0.pth", "--labels", bad, "--out", tmp_path / "o.mp4", "--no-progress")
    assert rc == 2 and "shape mismatch" in err and "netG.scales.0.model_down_seg.1.weight" in err
    assert "file (8,108,7,7) vs model (8,27,7,7)" in err
    assert not (tmp_path / "o.mp4").exists()


def _official_generator_keys(n_down: int, n_blocks: int, fg: bool) -> list[str]:
    """Official CompositeGenerator state-dict names, from its documented nn.Sequential layout."""
    conv, bn = ("weight", "bias"), ("weight", "bias", "running_mean", "running_var")
    keys = []

    def enc(name, n_res):
        keys.extend(f"{name}.1.{p}" for p in conv)
        keys.extend(f"{name}.2.{p}" for p in bn)
        for i in range(n_down):
            keys.extend(f"{name}.{4 + 3 * i}.{p}" for p in conv)
            keys.extend(f"{name}.{5 + 3 * i}.{p}" for p in bn)
        for b in range(n_res):
            res(f"{name}.{4 + 3 * n_down + b}")

    def res(prefix):
        for j, ps in (("1", conv), ("2", bn), ("5", conv), ("6", bn)):
            keys.extend(f"{prefix}.conv_block.{j}.{p}" for p in ps)

    def up(name):
        for i in range(n_down):
            keys.extend(f"{name}.{3 * i}.{p}" for p in conv)
            keys.extend(f"{name}.{3 * i + 1}.{p}" for p in bn)

    enc("model_down_seg", n_blocks - n_blocks // 2)
    enc("model_down_img", n_blocks - n_blocks // 2)
    for br in ("img", "flow"):
        for b in range(n_blocks // 2):
            res(f"model_res_{br}.{b}")
        up(f"model_up_{br}")
    for h in ("model_final_img", "model_final_flow", "model_final_w"):
        keys.extend(f"{h}.1.{p}" for p in conv)
    if fg:
        enc("indv_down", 0)
        for b in range(n_blocks):
            res(f"indv_res.{b}")
        up("indv_up")
        keys.extend(f"indv_final.1.{p}" for p in conv)
    return keys


@pytest.mark.parametrize("n_down,n_blocks,fg", [(2, 3, False), (3, 3, True), (2, 4, True), (3, 9, True)])
def test_generator_has_the_official_key_layout(n_down, n_blocks, fg):
    """Our CompositeGenerator state dict IS the official one (names from the documented layout)."""
    from v2v.models.vid2vid import Vid2VidModelConfig, build_generator

    cfg = Vid2VidModelConfig(label_nc=4, ngf=4, n_downsample_G=n_down, n_blocks=n_blocks, fg=fg)
    ours = {k for k in build_generator(cfg).scales[0].state_dict() if not k.endswith("num_batches_tracked")}
    assert ours == set(_official_generator_keys(n_down, n_blocks, fg))


def test_generate_label_loading_matches_official_loader(shared):
    """The CLI's label/instance reading + resize reproduces the fixture's official inputs exactly."""
    from v2v.commands.vid2vid import MapSource, _nearest_resize, _sibling_instances

    z = np.load(_fix(shared, "cityscapes35") / "cases.npz")
    seq = shared / "data" / "cityscapes_seq" / "vid2vid" / "train_A" / "seq0000"
    inst_dir = _sibling_instances(str(seq))
    assert inst_dir is not None and inst_dir.endswith("train_inst/seq0000")
    labs = [_nearest_resize(a, (128, 256)) for a, _ in itertools.islice(MapSource(str(seq), "labels"), 5)]
    insts = [_nearest_resize(a, (128, 256)) for a, _ in itertools.islice(MapSource(inst_dir, "instances"), 5)]
    assert np.array_equal(np.stack(labs), z["label_map"][0, :, 0].astype(np.int32))
    assert np.array_equal(np.stack(insts), z["inst_map"][0, :, 0].astype(np.int32))


def test_generate_from_converted_checkpoint_equals_official(shared, tmp_path, run_cli):
    """convert -> v2v YAML + safetensors generates exactly what the official .pth + opt.txt generate."""
    from v2v.data.image import read_image

    fx = _fix(shared, "cityscapes35")
    seq = shared / "data" / "cityscapes_seq" / "vid2vid" / "train_A" / "seq0001"
    first = shared / "data" / "cityscapes_seq" / "vid2vid" / "train_B" / "seq0001"
    assert run_cli("convert", "vid2vid", fx / "latest_net_G0.pth", "--opt", fx / "opt.txt", "--out", tmp_path / "c")[0] == 0
    common = ["--labels", seq, "--first-frames", first, "--size", "64x128", "--frames", 4, "--no-progress"]
    rc1, _, e1 = run_cli("generate", "vid2vid", "--config", fx / "opt.txt", "--checkpoint", fx / "latest_net_G0.pth",
                         "--out", str(tmp_path / "a") + "/", *common)
    rc2, _, e2 = run_cli("generate", "vid2vid", "--config", tmp_path / "c" / "vid2vid.yaml", "--checkpoint",
                         tmp_path / "c" / "vid2vid.safetensors", "--out", str(tmp_path / "b") + "/", *common)
    assert rc1 == 0 and rc2 == 0, e1 + e2
    a = [read_image(f) for f in sorted((tmp_path / "a").glob("*.png"))]
    b = [read_image(f) for f in sorted((tmp_path / "b").glob("*.png"))]
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert np.abs(a[3].astype(int) - a[1].astype(int)).mean() > 0  # frames 2, 3 are generated, not copies


def test_generate_bf16_close_to_fp32_or_refused(shared, tmp_path, run_cli):
    """--precision bf16 on a real label sequence: refused in one line where the CPU would only emulate
    it (v2v.precision); where native, the first generated frame stays close to fp32."""
    from v2v.data.image import read_image
    from v2v.precision import native_modes

    fx = _fix(shared, "cityscapes35")
    data = shared / "data" / "cityscapes_seq" / "vid2vid"
    frames = {}
    native = native_modes("cpu").get("bf16") is None
    for prec in ("fp32", "bf16"):
        rc, _, err = run_cli("generate", "vid2vid", "--config", fx / "opt.txt", "--checkpoint", fx / "latest_net_G0.pth",
                             "--labels", data / "train_A" / "seq0001", "--first-frames", data / "train_B" / "seq0001",
                             "--size", "64x128", "--frames", 3, "--precision", prec, "--out", str(tmp_path / prec) + "/",
                             "--no-progress", "--device", "cpu")
        if prec == "bf16" and not native:
            assert rc == 2 and "--precision bf16 refused" in err and not (tmp_path / prec).exists()
            return
        assert rc == 0, err
        frames[prec] = read_image(sorted((tmp_path / prec).glob("*.png"))[2]).astype(np.float64)
    mse = ((frames["fp32"] - frames["bf16"]) ** 2).mean()
    assert 0 < mse and 10 * np.log10(255**2 / mse) > 35  # measured 47 dB at 128x256


def test_generate_from_lossless_label_videos(shared, tmp_path, run_cli):
    """Label and instance maps given as lossless (FFV1 gray) videos generate the same frames as the folders."""
    import imageio_ffmpeg

    from v2v.data.image import read_image, read_label_map

    fx = _fix(shared, "cityscapes35")
    data = shared / "data" / "cityscapes_seq" / "vid2vid"
    seq, inst = data / "test_A" / "stuttgart_00", data / "test_inst" / "stuttgart_00"
    for folder, name in ((seq, "labels.mkv"), (inst, "inst.mkv")):
        w = imageio_ffmpeg.write_frames(str(tmp_path / name), (128, 64), pix_fmt_in="gray", pix_fmt_out="gray",
                                        codec="ffv1", fps=17, macro_block_size=1)
        w.send(None)
        for f in sorted(folder.glob("*.png"))[:3]:
            w.send(np.ascontiguousarray(read_label_map(f)[8::16, 8::16].astype(np.uint8)))
        w.close()
    common = ["--config", fx / "opt.txt", "--checkpoint", fx / "latest_net_G0.pth", "--size", "64x128",
              "--frames", 3, "--no-progress"]
    rc1, _, e1 = run_cli("generate", "vid2vid", "--labels", seq, "--out", str(tmp_path / "a") + "/", *common)
    rc2, _, e2 = run_cli("generate", "vid2vid", "--labels", tmp_path / "labels.mkv", "--instances",
                         tmp_path / "inst.mkv", "--out", str(tmp_path / "b") + "/", *common)
    assert rc1 == 0 and rc2 == 0, e1 + e2
    for fa, fb in zip(sorted((tmp_path / "a").glob("*.png")), sorted((tmp_path / "b").glob("*.png"))):
        assert np.array_equal(read_image(fa), read_image(fb))


# ---------------------------------------------------------------------------------------------
# multi-scale (label2city_1024_g1 architecture) + use_single_G
# ---------------------------------------------------------------------------------------------
def _link_folder(src, dst, skip=()):
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name not in skip:
            (dst / f.name).symlink_to(f)
    return dst


def test_parity_cli_multiscale(shared, run_cli):
    rc, out, err = run_cli("parity", "vid2vid", _fix(shared, "multiscale"))
    assert rc == 0, out + err
    lines = [ln for ln in out.splitlines() if ln.startswith(("ok", "FAIL"))]
    assert len(lines) >= 200 and all(ln.startswith("ok") for ln in lines)
    for needle in ("syn_single_G eval frames", "real_single_G train prev_G0", "syn_G0 eval step2 flow",
                   "syn_G1 train step0 fg_feat", "syn_G1 train step0 img_feat", "real_G2 train step1 weight",
                   "real_G2 train chain step2 fake_image", "syn_real_A_G0 (pyramid)"):
        assert any(needle in ln for ln in lines), needle


def test_parity_multiscale_perturbed_array_fails(shared, tmp_path, run_cli):
    """Must-fail: one stored array moved by 1e-3 (10x the single-step tolerance) -> exit 1, named."""
    src = _fix(shared, "multiscale")
    dst = _link_folder(src, tmp_path / "fx", skip=("cases.npz",))
    z = dict(np.load(src / "cases.npz"))
    z["syn_g_eval_G1_flow"] = z["syn_g_eval_G1_flow"] + np.float32(1e-3)
    np.savez(dst / "cases.npz", **z)
    rc, out, _ = run_cli("parity", "vid2vid", dst, "--no-chain")
    assert rc == 1
    bad = [ln for ln in out.splitlines() if ln.startswith("FAIL")]
    assert bad and all("syn_G1 eval" in ln and "flow" in ln for ln in bad)


def test_multiscale_folder_errors(shared, tmp_path, run_cli):
    from v2v.compat.vid2vid import read_official

    src = _fix(shared, "multiscale")
    no_g2 = _link_folder(src, tmp_path / "a", skip=("latest_net_G2.pth",))
    with pytest.raises(Exception, match=r"scale 2's generator is missing: looked for .*a/latest_net_G2.pth"):
        read_official(str(no_g2))
    extra = _link_folder(src, tmp_path / "b")
    (extra / "latest_net_G3.pth").symlink_to(src / "latest_net_G2.pth")
    with pytest.raises(Exception, match=r"n_scales_spatial=3 but .*latest_net_G3.pth exists"):
        read_official(str(extra))
    no_single = _link_folder(src, tmp_path / "c", skip=("label2city_single",))   # options.json asks for it
    seq = shared / "data" / "cityscapes_seq" / "vid2vid" / "test_A" / "stuttgart_00"
    rc, _, err = run_cli("generate", "vid2vid", "--config", no_single / "opt.txt", "--checkpoint", no_single,
                         "--labels", seq, "--out", tmp_path / "o.mp4", "--size", "64x128", "--no-progress")
    assert rc == 2 and "c/label2city_single/latest_net_G_1024.pth" in err and "--first-frame-generator" in err
    rc, _, err = run_cli("generate", "vid2vid", "--config", src / "opt.txt", "--checkpoint", src, "--labels", seq,
                         "--out", tmp_path / "o.mp4", "--size", "72x136", "--no-progress")
    assert rc == 2 and "not divisible by the total downsampling factor 16" in err and "64x128" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o.mp4").exists()


def test_generate_multiscale_fixture_on_cityscapes(shared, tmp_path, run_cli):
    """The released folder layout on real label maps: one frame per label map, the first tG-1 by the
    single-image generator (per-image InstanceNorm statistics, as official test.py)."""
    from v2v.compat.vid2vid import load_official
    from v2v.data.image import read_image, read_label_map
    from v2v.models.vid2vid import encode_labels, norm_statistics

    fx = _fix(shared, "multiscale")
    seq = shared / "data" / "cityscapes_seq" / "vid2vid" / "test_A" / "stuttgart_00"
    rc, _, err = run_cli("generate", "vid2vid", "--config", fx / "opt.txt", "--checkpoint", fx, "--labels", seq,
                         "--out", str(tmp_path / "png") + "/", "--size", "64x128", "--frames", 4, "--no-progress")
    assert rc == 0, err
    files = sorted((tmp_path / "png").glob("*.png"))
    assert len(files) == 4
    cfg, system = load_official(str(fx))
    lab = torch.from_numpy(read_label_map(min(seq.glob("*.png")))[8::16, 8::16].copy()).long()[None]
    with torch.no_grad(), norm_statistics(system.netG_i, "batch"):
        f0 = system.netG_i(encode_labels(lab, None, cfg.label_nc, False))
    ref = (((f0 + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(read_image(files[0]).astype(np.float64) - ref).max() <= 1.0
    assert np.abs(read_image(files[3]).astype(float) - read_image(files[2]).astype(float)).mean() < 60


def test_convert_multiscale_one_file(shared, tmp_path, run_cli):
    from v2v.data.image import read_image
    from v2v.weights_io import read_weights

    fx = _fix(shared, "multiscale")
    rc, _, err = run_cli("convert", "vid2vid", fx, "--out", tmp_path / "c")
    assert rc == 0, err
    sd, _ = read_weights(tmp_path / "c" / "vid2vid.safetensors")
    assert {k.split(".")[2] for k in sd if k.startswith("netG.scales.")} == {"0", "1", "2"}
    assert any(k.startswith("netG_i.model.") for k in sd)
    off = torch.load(fx / "latest_net_G2.pth", map_location="cpu", weights_only=True)
    assert torch.equal(sd["netG.scales.2.model_up_flow.3.weight"], off["model_up_flow.3.weight"])
    seq = shared / "data" / "cityscapes_seq" / "vid2vid" / "test_A" / "stuttgart_00"
    common = ["--labels", seq, "--size", "64x128", "--frames", 3, "--no-progress"]
    assert run_cli("generate", "vid2vid", "--config", fx / "opt.txt", "--checkpoint", fx,
                   "--out", str(tmp_path / "a") + "/", *common)[0] == 0
    assert run_cli("generate", "vid2vid", "--config", tmp_path / "c" / "vid2vid.yaml", "--checkpoint",
                   tmp_path / "c" / "vid2vid.safetensors", "--out", str(tmp_path / "b") + "/", *common)[0] == 0
    for fa, fb in zip(sorted((tmp_path / "a").glob("*.png")), sorted((tmp_path / "b").glob("*.png")), strict=True):
        assert np.array_equal(read_image(fa), read_image(fb))


def test_2048_architecture_folder_loads(shared, tmp_path):
    """A label2city_2048-style folder (n_downsample_G 3, LocalEnhancer single G beside the folder,
    shrunk widths): everything read from opt.txt and the files, weights round-trip exactly."""
    from v2v.compat.vid2vid import load_official
    from v2v.models.vid2vid import Vid2VidSystem

    text = (_fix(shared, "multiscale") / "opt.txt").read_text()
    text = text.replace("loadSize: 1024", "loadSize: 2048").replace("n_downsample_G: 2", "n_downsample_G: 3")
    text = text.replace("use_single_G: False", "use_single_G: True")
    run = tmp_path / "checkpoints" / "label2city_2048"
    run.mkdir(parents=True)
    (run / "opt.txt").write_text(text)
    from v2v.compat.vid2vid import config_from_official, read_official_options

    cfg = config_from_official({**read_official_options(run), "single_G_ngf": 2})
    assert (cfg.first_frame, cfg.first_frame_G, cfg.first_frame_n_downsample) == ("single_G", "local", 4)
    torch.manual_seed(0)
    ref = Vid2VidSystem(cfg, inference=True)
    for s, G in enumerate(ref.netG.scales):
        torch.save({k: v for k, v in G.state_dict().items() if not k.endswith("num_batches_tracked")},
                   run / f"latest_net_G{s}.pth")
    (tmp_path / "checkpoints" / "label2city_single").mkdir()
    torch.save(ref.netG_i.state_dict(), tmp_path / "checkpoints" / "label2city_single" / "latest_net_G_2048.pth")
    cfg2, system = load_official(str(run))
    assert cfg2 == cfg and type(system.netG_i).__name__ == "LocalEnhancer"
    for k, v in ref.state_dict().items():
        assert torch.equal(system.state_dict()[k], v), k
    labels = torch.randint(0, 35, (1, 3, 64, 128))
    out = system.generate(labels, labels)
    assert out.shape == (1, 3, 3, 64, 128) and torch.isfinite(out).all()
