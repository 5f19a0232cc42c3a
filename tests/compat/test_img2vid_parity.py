"""Img2Vid (seg2vid) against the official fixtures: parity CLI, must-fail, other options, convert,
generate on a real Cityscapes frame, one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _fix(shared):
    return shared / "fixtures" / "img2vid"


def test_parity_cli_public_fixture(shared, run_cli):
    rc, out, err = run_cli("parity", "img2vid", _fix(shared))
    assert rc == 0, out + err
    lines = [ln for ln in out.splitlines() if ln.startswith(("ok", "FAIL"))]
    assert len(lines) >= 80 and all(ln.startswith("ok") for ln in lines)
    for needle in ("case_a_eval/warped", "case_a2_eval_batch2/crop_refined", "case_b_train/z",
                   "case_b_train/bn_after_train_refine_c6_running_var", "case_c_losses/train_total",
                   "case_c_losses/eval_vgg_per_layer", "inputs/bg_mask"):
        assert any(needle in ln for ln in lines), needle


def test_parity_fails_on_a_perturbed_array(shared, tmp_path, run_cli):
    src = _fix(shared)
    for f in src.iterdir():
        if f.name != "case_a_eval.npz":
            (tmp_path / f.name).symlink_to(f)
    with np.load(src / "case_a_eval.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["flow"] = arrays["flow"] + 1e-3
    np.savez(tmp_path / "case_a_eval.npz", **arrays)
    rc, out, _ = run_cli("parity", "img2vid", tmp_path)
    assert rc != 0
    assert "FAIL case_a_eval/flow" in out and "FAIL case_a_eval/warped" not in out


def _make_official_fixture(root, *, size=(128, 128), T=2, nbg=3, nfg=2, bg=24, fg=8, prefix_module=True):
    """An official-format fixture folder at other options, made with our model: opt.json, a legacy
    .pth.tar with 'module.' keys and a VGG, inputs.npz and case files in the fixture layout."""
    from v2v.compat.img2vid import run_parity  # noqa: F401  (import check)
    from v2v.models.img2vid import Img2VidModelConfig, Img2VidSystem, build_vgg

    widths = {"num_bg_classes": nbg, "num_fg_classes": nfg, "enc_widths": [4, 6, 8, 12], "motion_widths": [4, 6, 8, 4],
              "z_dim": bg + fg, "code_ch": 3, "head_ch": 4, "refine_widths": [4, 4, 6, 6, 8], "refine_dim": 8,
              "vgg_widths": [4, 4, 8, 8, 8]}
    cfg = Img2VidModelConfig(size=list(size), num_predicted_frames=T, bg_dim=bg, fg_dim=fg,
                             **{k: v for k, v in widths.items() if k != "vgg_widths"}, vgg_widths=widths["vgg_widths"])
    torch.manual_seed(3)
    s = Img2VidSystem(cfg)
    for m in s.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    vgg = build_vgg(dataclasses_replace(cfg, vgg_random_init=True))
    sd = {("module." if prefix_module else "") + k[len("vae."):]: v for k, v in s.state_dict().items()}
    sd.update({"module.vgg_net.vgg." + k: v for k, v in vgg.state_dict().items() if k.startswith("features.")})
    torch.save({"vae": sd, "optimizer": {}}, root / "000000_model.pth.tar", _use_new_zipfile_serialization=False)
    opts = {"opt": {"input_size": list(size), "num_frames": T + 1, "num_predicted_frames": T, "input_channel": 3,
                    "mask_channel": nbg + nfg, "alpha_recon_image": 0.85, "batch_size": 2},
            "vae_ctor": {"hallucination": False, "refine": True, "bg": bg, "fg": fg},
            "fixture_width_options": widths}
    (root / "opt.json").write_text(json.dumps(opts))
    g = torch.Generator().manual_seed(0)
    H, W = size
    R = s.vae.rows_per_sample
    video = (torch.rand(2, T + 1, 3, H, W, generator=g) * 255).round() / 255
    labels = torch.randint(0, nbg + nfg, (2, H, W), generator=g)
    noise = torch.randn(2, 3, H, W, generator=g)
    z_m, eps = torch.randn(2 * R, bg + fg, generator=g), torch.randn(2 * R, bg + fg, generator=g)
    np.savez(root / "inputs.npz", video=video.numpy(), label_map=labels.int().numpy(), noise_bg=noise.numpy(),
             z_m=z_m.numpy(), eps=eps.numpy())
    s.eval()
    bgm, fgm = s.masks(labels)
    with torch.no_grad():
        a = s.vae(video[:1, 0], bgm[:1], fgm[:1], noise[:1], z=z_m[:R], frames=video[:1])
    np.savez(root / "case_a_eval.npz", **{k: a[k].numpy() for k in ("flow", "warped", "refined", "mu", "codey")})
    s.train()
    b = s.vae(video[:, 0], bgm, fgm, noise, frames=video, eps=eps)
    np.savez(root / "case_b_train.npz", z=b["z"].detach().numpy(), mu=b["mu"].detach().numpy(),
             crop_windows_hw=np.array([[0, 0], [H // 2 - 8, W // 2 - 8]], np.int32),
             crop_refined=np.stack([b["refined"][..., h:h + 16, w:w + 16].detach().numpy()
                                    for h, w in ((0, 0), (H // 2 - 8, W // 2 - 8))]))


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_parity_reads_every_option_from_the_files(tmp_path):
    """Other widths, size, T, class split and bg/fg split, 'module.' keys: all read from opt.json/inputs."""
    from v2v.compat.img2vid import run_parity

    _make_official_fixture(tmp_path)
    rep = run_parity(tmp_path)
    assert rep.ok, "\n".join(rep.lines())
    assert any(r.name == "case_b_train/crop_refined" for r in rep.rows)
    arrays = dict(np.load(tmp_path / "case_a_eval.npz"))
    arrays["mu"][0, 0] += 1e-3
    np.savez(tmp_path / "case_a_eval.npz", **arrays)
    rep = run_parity(tmp_path)
    assert not rep.ok and [r.name for r in rep.rows if not r.ok] == ["case_a_eval/mu"]


def test_convert_roundtrip(shared, tmp_path, run_cli):
    from v2v.commands.img2vid import load_system
    from v2v.compat.img2vid import load_official_system

    src = _fix(shared)
    rc, _, err = run_cli("convert", "img2vid", src / "000000_model.pth.tar", "--opt", src / "opt.json",
                         "--out", tmp_path)
    assert rc == 0, err
    ours, _ = load_system(str(tmp_path / "img2vid.yaml"), str(tmp_path / "img2vid.safetensors"))
    ref, _ = load_official_system(str(src / "000000_model.pth.tar"), str(src / "opt.json"))
    for k, v in ref.state_dict().items():
        assert torch.equal(v, ours.state_dict()[k]), k
    # the checkpoint's VGG19, extracted as offline perceptual-loss weights, loads into the model's VGG
    from v2v.models.img2vid import build_vgg

    vgg = build_vgg(ours.cfg.__class__(**{**ours.cfg.__dict__, "vgg_weights": str(tmp_path / "vgg19.safetensors")}))
    official = torch.load(src / "000000_model.pth.tar", map_location="cpu", weights_only=True)["vae"]
    assert torch.equal(vgg.features[25].weight, official["vgg_net.vgg.features.25.weight"])


CS = "data/cityscapes_seq/vid2vid/train_{}/seq0000/aachen_000000_000000_leftImg8bit.{}"
GROUPS = "0,1,9;2,3,4;5,6,7,8;10;11,12;13,14,15,16;17,18,19"


def _gen_args(shared, out, *extra):
    f = _fix(shared)
    return ["generate", "img2vid", "--config", f / "opt.json", "--checkpoint", f / "000000_model.pth.tar",
            "--labels", shared / CS.format("A", "png"), "--out", out, "--label-ids", "cityscapes",
            "--label-groups", GROUPS, *extra]


def test_generate_real_cityscapes_frame(shared, tmp_path, run_cli):
    """2048x1024 Cityscapes frame + labelIds map -> 1+T frames at the requested fps; N samples side by side."""
    from v2v.data.video import open_video

    out = tmp_path / "clip.mp4"
    rc, _, err = run_cli(*_gen_args(shared, out, "--first-frame", shared / CS.format("B", "jpg"),
                                    "--fps", 5, "--size", "128x256", "--samples", 2))
    assert rc == 0, err
    v = open_video(out)
    frames = list(v)
    assert len(frames) == 1 + 3 and abs(v.fps - 5) < 1e-6 and frames[0].shape == (128, 512, 3)


def test_generate_labels_only_with_first_frame_generator(shared, tmp_path, run_cli):
    """Stage 1 (pix2pixHD, official file format + opt.txt) makes the first frame from the labels."""
    from v2v.models.img2vid import FirstFrameConfig, FirstFrameGenerator

    torch.manual_seed(0)
    G = FirstFrameGenerator(FirstFrameConfig(ngf=4, n_downsample_global=2, n_blocks_global=1, use_instance=False))
    torch.save(G.netG.state_dict(), tmp_path / "latest_net_G.pth")
    (tmp_path / "opt.txt").write_text("------------ Options -------------\nlabel_nc: 35\nnetG: global\nngf: 4\n"
                                      "n_downsample_global: 2\nn_blocks_global: 1\nno_instance: True\n"
                                      "norm: instance\n-------------- End ----------------\n")
    out = tmp_path / "frames"
    rc, _, err = run_cli(*_gen_args(shared, str(out) + "/", "--first-frame-generator", tmp_path / "latest_net_G.pth"))
    assert rc == 0, err
    assert len(list(out.glob("*.png"))) == 4


@pytest.mark.parametrize("extra,needle", [
    (["--size", "100x250"], "nearest valid size 128x256"),
    (["--label-groups", "0;1;2;3;4;5;6"], "outside the configured classes"),
])
def test_generate_errors_one_line_no_output(shared, tmp_path, run_cli, extra, needle):
    out = tmp_path / "x.mp4"
    args = _gen_args(shared, out, "--first-frame", shared / CS.format("B", "jpg"))
    i = args.index("--label-groups")
    if "--label-groups" in extra:
        del args[i:i + 2]
    rc, _, err = run_cli(*args, *extra)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


def test_width_mismatch_names_keys_and_shapes(shared, tmp_path, run_cli):
    src = _fix(shared)
    assert run_cli("convert", "img2vid", src / "000000_model.pth.tar", "--opt", src / "opt.json",
                   "--out", tmp_path / "c")[0] == 0
    cfg = (tmp_path / "c" / "img2vid.yaml").read_text().replace("code_ch: 4", "code_ch: 5")
    (tmp_path / "bad.yaml").write_text(cfg)
    out = tmp_path / "x.mp4"
    rc, _, err = run_cli("generate", "img2vid", "--config", tmp_path / "bad.yaml", "--checkpoint",
                         tmp_path / "c" / "img2vid.safetensors", "--labels", shared / CS.format("A", "png"),
                         "--first-frame", shared / CS.format("B", "jpg"), "--out", out, "--label-ids", "cityscapes",
                         "--label-groups", GROUPS)
    assert rc == 2 and "vae.zconv.main.0.weight: file (12,32,3,3) vs model (15,32,3,3)" in err
    assert not out.exists()
