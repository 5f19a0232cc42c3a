"""Everybody Dance Now model, training on synthetic puppets and the `v2v dance` pipeline."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from v2v.errors import V2VError
from v2v.models.base import config_kwargs
from v2v.models.dance import DanceGenerator, DanceModelConfig, DanceSystem
from v2v.nn.pix2pixhd import GlobalGenerator, LocalEnhancer, UnetGenerator

PUPPETS_CFG = str(Path(__file__).resolve().parents[2] / "configs" / "dance" / "puppets.yaml")
TINY = ["model.ngf=8", "model.n_blocks_global=1", "model.ndf=8", "model.face_ngf=4", "model.face_ndf=8",
        "model.face_n_blocks=1", "model.l1_weight=100.0"]


def _cfg(**kw):
    base = {"ngf": 4, "n_downsample_global": 2, "n_blocks_global": 1, "face_ngf": 4, "face_n_downsample": 2, "face_n_blocks": 1,
                "ndf": 4, "n_layers_D": 2, "face_ndf": 4, "vgg": False}
    base.update(kw)
    return DanceModelConfig(**base)


def test_face_residual_only_inside_box_and_chain_uses_previous_output():
    torch.manual_seed(0)
    g = DanceGenerator(**config_kwargs(DanceGenerator, _cfg())).eval()
    label = torch.rand(2, 3, 32, 48)
    box = torch.tensor([[4, 20, 8, 24], [10, 26, 20, 36]])
    out = g.step_raw(label, None, box)
    img, raw = out["image"], out["g_out"]
    mask = torch.zeros_like(img, dtype=torch.bool)
    for i, (y0, y1, x0, x1) in enumerate(box.tolist()):
        mask[i, :, y0:y1, x0:x1] = True
        assert torch.allclose(img[i, :, y0:y1, x0:x1], raw[i, :, y0:y1, x0:x1] + out["residual"][i], atol=1e-6)
    assert torch.equal(img[~mask], raw[~mask])  # outside the face box the output is exactly G's
    # the second frame depends on the first (temporal input) and zeros == no previous frame
    assert torch.equal(g.step_raw(label, torch.zeros(2, 3, 32, 48), box)["image"], img)
    assert not torch.allclose(g.step_raw(label, img, box)["image"], img)
    video = g.generate_video(torch.stack([label, label], 1), torch.stack([box, box], 1))
    assert video.shape == (2, 2, 3, 32, 48) and video.min() >= 0 and video.max() <= 1
    assert torch.allclose(video[:, 0], ((img + 1) / 2).clamp(0, 1), atol=1e-6)
    with pytest.raises(V2VError, match="face box"):
        g.step_raw(label, None, None)


def test_generators_structure_and_widths():
    torch.manual_seed(0)
    gg = GlobalGenerator(6, 3, ngf=8, n_downsampling=3, n_blocks=2)
    y, feats = gg(torch.rand(1, 6, 32, 64), return_features=True)
    assert y.shape == (1, 3, 32, 64) and feats["bottleneck"].shape == (1, 64, 4, 8)
    assert torch.allclose(torch.tanh(feats["pre_tanh"]), y)
    le = LocalEnhancer(6, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1)
    assert le.model[1].out_channels == 8  # the inner global generator is 2x wider
    assert le(torch.rand(1, 6, 32, 64)).shape == (1, 3, 32, 64)
    un = UnetGenerator(6, 3, ngf=4)
    assert un(torch.rand(2, 6, 32, 32)).shape == (2, 3, 32, 32)
    s = DanceSystem(_cfg(face_ndf=16, face_ngf=8))
    assert s.netDface.blocks[0].conv.out_channels == 16 and s.generator.face.model[1].out_channels == 8
    assert DanceModelConfig().face_ngf == 64 and DanceModelConfig().face_ndf == 64  # official defaults
    groups = s.optim_groups()
    assert set(groups) == {"G", "D"}
    n_face = sum(p.numel() for p in s.generator.face.parameters())
    assert sum(p.numel() for p in groups["G"]) == sum(p.numel() for p in s.generator.parameters())
    assert sum(p.numel() for p in groups["D"]) == sum(p.numel() for p in s.netD.parameters()) + \
        sum(p.numel() for p in s.netDface.parameters())
    s2 = DanceSystem(_cfg(train_face_only=True))
    assert sum(p.numel() for p in s2.optim_groups()["G"]) == sum(p.numel() for p in s2.generator.face.parameters())
    assert n_face > 0


def test_train_step_losses_are_finite_and_official_terms():
    torch.manual_seed(0)
    s = DanceSystem(_cfg(l1_weight=10.0))
    batch = {"label0": torch.rand(2, 3, 32, 32), "label1": torch.rand(2, 3, 32, 32), "image0": torch.rand(2, 3, 32, 32),
             "image1": torch.rand(2, 3, 32, 32), "face_box": torch.tensor([[0, 8, 0, 8], [8, 16, 8, 16]])}
    out = s.train_step(batch, 0)
    for k in ("G", "D", "loss/G_GAN", "loss/G_GAN_Feat", "loss/G_GANface", "loss/D_realface", "loss/G_L1"):
        assert torch.isfinite(out[k]).all(), k
    total = sum(float(out[f"loss/{k}"]) for k in ("G_GAN", "G_GAN_Feat", "G_VGG", "G_GANface", "G_L1"))
    assert abs(float(out["G"].detach()) - total) < 1e-4
    d = 0.5 * (float(out["loss/D_fake"]) + float(out["loss/D_real"])) + \
        0.5 * (float(out["loss/D_realface"]) + float(out["loss/D_fakeface"]))
    assert abs(float(out["D"].detach()) - d) < 1e-5
    with pytest.raises(V2VError, match="vgg19-dcbb9e9d.pth"):
        DanceSystem(_cfg(vgg=True, vgg_weights="/nonexistent/vgg19-dcbb9e9d.pth"))


@pytest.fixture(scope="module")
def puppets(tmp_path_factory):
    """One target video (identity 0) whose last 4 frames are held out (EDN trains on one video of
    one subject in one scene), and a source clip of another identity."""
    import shutil

    from v2v.cli import main

    root = tmp_path_factory.mktemp("puppets")
    assert main(["data", "synth", "puppets", "--out", str(root), "--videos", "1", "--frames", "14",
                 "--size", "64x64", "--seed", "2", "--identity", "0", "--quiet"]) == 0
    for sub in ("frames", "openpose"):
        src, dst = root / "train" / "vid0000" / sub, root / "test" / "vid0000" / sub
        dst.mkdir(parents=True)
        for f in sorted(src.iterdir())[10:]:
            shutil.move(str(f), str(dst / f.name))
    other = tmp_path_factory.mktemp("source")
    assert main(["data", "synth", "puppets", "--out", str(other), "--videos", "1", "--frames", "4", "--size",
                 "64x64", "--seed", "5", "--identity", "1", "--quiet"]) == 0
    return root, other / "train" / "vid0000"


def _eval_l1(system, ds):
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    system.eval()
    return system.evaluate(batch)["l1"]


@pytest.fixture(scope="module")
def trained(puppets, tmp_path_factory):
    from v2v.train.config import load_experiment
    from v2v.utils import seed_everything

    torch.set_num_threads(1)
    root, _ = puppets
    out = tmp_path_factory.mktemp("run")
    ov = [f"data.root={root}", "train.steps=16", "train.batch_size=2", "train.lr=2.0e-3", "train.eval_every=0",
          "train.sample_every=0", "train.ckpt_every=0", "train.log_every=4", "train.eval_batches=4",
          "train.lr_schedule=constant", *TINY]
    cls, cfg = load_experiment(PUPPETS_CFG, ov)
    seed_everything(cfg.train.seed)  # the trainer builds the system right after this same seeding
    before = _eval_l1(cls.from_config(cfg.model), cls.build_dataset(cfg.data, "test", cfg.model))
    from v2v.cli import main

    assert main(["train", "--config", PUPPETS_CFG, "--out", str(out), "--no-progress", *ov]) == 0
    return out, before, cfg


def test_short_training_lowers_heldout_l1(trained):
    from v2v.train.checkpoint import find_latest, load_weights
    from v2v.train.config import load_experiment

    out, before, cfg = trained
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    after = [r["eval/l1"] for r in rows if "eval/l1" in r][-1]
    cls, _ = load_experiment(PUPPETS_CFG, [])
    s = cls.from_config(cfg.model)
    load_weights(s, find_latest(str(out / "checkpoints"))[0], strict=True)
    assert abs(_eval_l1(s, cls.build_dataset(cfg.data, "test", cfg.model)) - after) < 1e-4
    assert after < before - 0.02, (before, after)


def test_dance_end_to_end_on_another_identity(trained, puppets, run_cli, tmp_path):
    from v2v.data.video import read_video
    from v2v.train.checkpoint import find_latest

    out, _, _ = trained
    _, source = puppets
    ckpt = find_latest(str(out / "checkpoints"))[0]
    target = puppets[0] / "train" / "vid0000"
    video = tmp_path / "dance.mp4"
    rc, _so, se = run_cli("dance", "--config", PUPPETS_CFG, "--checkpoint", ckpt,
                         "--source-video", source, "--target-stats", target, "--out", video,
                         "--labels-out", tmp_path / "labels", "--no-progress")
    assert rc == 0, se
    frames, meta = read_video(video)
    n_src = len(list((source / "openpose").glob("*.json")))
    assert frames.shape == (n_src, 64, 64, 3) and meta["fps"] == 15.0
    assert len(list((tmp_path / "labels").glob("*.png"))) == n_src
    assert frames.std() > 1.0  # not a blank video


def test_edn_layout_dataset_and_missing_face_box(shared, tmp_path):
    import shutil

    from v2v.data.dance import DanceDataConfig, EDNFolderDataset

    root = shared / "data" / "edn_sample" / "train"
    cfg = DanceDataConfig(root=str(root), size=[256, 512])
    ds = DanceSystem.build_dataset(cfg, "train", _cfg())
    assert isinstance(ds, EDNFolderDataset) and len(ds) == 2
    item = ds[0]
    assert item["label0"].shape == (3, 256, 512) and item["image1"].shape == (3, 256, 512)
    assert item["face_box"].tolist() == [11 // 2, 139 // 2, 504 // 2, 632 // 2]  # 11 139 504 632 at 512x1024
    assert float(item["label0"].min()) < 0.5 and float(item["label0"].max()) == 1.0  # white background
    copy = tmp_path / "edn"
    shutil.copytree(root, copy)
    (copy / "train_facetexts128" / "frame020005.txt").unlink()
    ds2 = EDNFolderDataset(DanceDataConfig(root=str(copy)), "train")
    with pytest.raises(V2VError, match="missing face box: .*frame020005.txt"):
        ds2[0]
