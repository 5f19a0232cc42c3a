"""Checkpoint I/O, config errors, data order and schedules (all in-process, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from v2v.errors import V2VError
from v2v.models.toy import ToyDataConfig, ToyModelConfig, ToySystem
from v2v.train import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "toy" / "squares.yaml"


def _toy(width=16, seed=0):
    torch.manual_seed(seed)
    return ToySystem(ToyModelConfig(width=width))


def test_save_load_weights_roundtrip_and_ema(tmp_path):
    a, b = _toy(seed=0), _toy(seed=1)
    p = tmp_path / "w.safetensors"
    sd = dict(a.state_dict())
    sd["ema.generator.conv1.weight"] = torch.full_like(sd["generator.conv1.weight"], 0.5)
    ckpt.save_weights(sd, p, {"system": "toy", "step": 7})
    meta = ckpt.load_weights(b, p)
    assert meta["system"] == "toy" and meta["step"] == "7" and meta["format"] == ckpt.FORMAT
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k
    ckpt.load_weights(b, p, ema=True)
    assert torch.equal(b.generator.conv1.weight, torch.full_like(b.generator.conv1.weight, 0.5))
    g = _toy(seed=2).generator
    ckpt.load_weights(g, p, prefix="generator.")
    assert torch.equal(g.conv2.weight, a.generator.conv2.weight)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temp file


def test_mismatched_checkpoint_names_keys_and_shapes(tmp_path):
    p = tmp_path / "w.safetensors"
    ckpt.save_weights(_toy(width=16), p)
    with pytest.raises(V2VError) as e:
        ckpt.load_weights(_toy(width=8), p)
    msg = str(e.value)
    assert "generator.conv1.weight: file (16,4,3,3) vs model (8,4,3,3)" in msg
    assert str(p) in msg and "\n" not in msg
    # missing / unexpected keys
    sd = _toy().state_dict()
    sd.pop("discriminator.conv2.bias")
    sd["extra.weight"] = torch.zeros(2, 3)
    ckpt.save_weights(sd, p)
    with pytest.raises(
        V2VError, match=r"missing 1: discriminator.conv2.bias \(1\).*unexpected 1: extra.weight \(2,3\)"
    ):
        ckpt.load_weights(_toy(), p)
    ckpt.load_weights(_toy(), p, strict=False)  # non-strict tolerates both


def test_foreign_files_are_clear_errors(tmp_path):
    pth = tmp_path / "official.pth"
    torch.save({"generator": _toy().generator.state_dict()}, pth)
    with pytest.raises(V2VError, match="not a v2v weights file.*torch.save pickle.*v2v convert"):
        ckpt.load_weights(_toy(), pth)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(V2VError, match="not a v2v weights file"):
        ckpt.load_weights(_toy(), junk)
    with pytest.raises(V2VError, match="checkpoint not found"):
        ckpt.load_weights(_toy(), tmp_path / "nope.safetensors")
    with pytest.raises(V2VError, match="not a v2v trainer state file"):
        ckpt.load_state(pth)


def test_resume_with_other_widths_is_one_line_cli_error(tmp_path, run_cli):
    p = tmp_path / "run" / "checkpoints"
    w, s = ckpt.checkpoint_paths(p, 3)
    ckpt.save_weights(_toy(width=16), w)
    ckpt.save_state({"system": "toy", "step": 3, "epoch": 0, "batch_index": 3, "optimizers": {}}, s)
    rc, _, err = run_cli(
        "train",
        "--config",
        CONFIG,
        "--out",
        tmp_path / "run",
        "--resume",
        "--no-progress",
        "--device",
        "cpu",
        "model.width=8",
        "train.steps=4",
    )
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "generator.conv1.weight: file (16,4,3,3) vs model (8,4,3,3)" in err


def test_unknown_config_key_cli(run_cli):
    rc, _, err = run_cli("train", "--config", CONFIG, "train.stpes=3")
    assert rc == 2 and err.count("\n") == 1
    assert "train.stpes" in err and "did you mean 'train.steps'" in err
    rc, _, err = run_cli("train", "--config", CONFIG, "model.widht=3")
    assert rc == 2 and "did you mean 'model.width'" in err
    rc, _, err = run_cli("train", "--config", CONFIG, "train.lr={G: 1.0e-3, Dd: 1.0e-3}")
    assert rc == 2 and "'Dd'" in err and "did you mean 'D'" in err


def test_unknown_key_in_yaml_file(tmp_path, run_cli):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(CONFIG.read_text().replace("  keep_last: 2", "  keep_lats: 2"))
    rc, _, err = run_cli("train", "--config", cfg)
    assert rc == 2 and "train.keep_lats" in err and "train.keep_last" in err


def test_resume_spec_and_latest(tmp_path):
    d = tmp_path / "checkpoints"
    for step in (2, 4):
        w, s = ckpt.checkpoint_paths(d, step)
        ckpt.save_weights(_toy(), w)
        ckpt.save_state({"step": step}, s)
    w6, _ = ckpt.checkpoint_paths(d, 6)
    ckpt.save_weights(_toy(), w6)  # weights without state: incomplete, ignored
    assert ckpt.find_latest(d)[0].endswith("step_00000004.safetensors")
    assert ckpt.resolve_resume("latest", tmp_path) == ckpt.checkpoint_paths(d, 4)
    assert ckpt.resolve_resume(str(ckpt.checkpoint_paths(d, 2)[1]), tmp_path) == ckpt.checkpoint_paths(d, 2)
    assert ckpt.resolve_resume("latest", tmp_path / "empty") is None
    with pytest.raises(V2VError, match="not found"):
        ckpt.resolve_resume(str(w6), tmp_path)
    assert ckpt.prune_checkpoints(d, 1) == [2]
    assert ckpt.list_checkpoints(d) == [4]


def test_data_order_is_resumable_and_rank_split():
    from v2v.train.data import ResumableBatchSampler

    full = ResumableBatchSampler(10, 4, seed=3)
    it = iter(full)
    seq = [next(it) for _ in range(6)]  # 2 batches per epoch -> 3 epochs
    idx = [[i for i, _ in b] for b in seq]
    assert len(set(idx[0] + idx[1])) == 8  # no repeats within an epoch
    assert idx[0:2] != idx[2:4]  # a new permutation each epoch
    # starting at (epoch 1, batch 1) continues exactly
    it2 = iter(ResumableBatchSampler(10, 4, seed=3, epoch=1, batch_index=1))
    assert [next(it2) for _ in range(3)] == seq[3:6]
    # two ranks: their halves concatenate to the single-process batch, same item seeds
    r0 = iter(ResumableBatchSampler(10, 4, seed=3, rank=0, world_size=2))
    r1 = iter(ResumableBatchSampler(10, 4, seed=3, rank=1, world_size=2))
    for b in seq[:4]:
        assert next(r0) + next(r1) == b
    with pytest.raises(V2VError, match="not divisible"):
        ResumableBatchSampler(10, 3, seed=0, world_size=2)


def test_seeded_items_make_augmentation_reproducible():
    from v2v.train.data import SeededItems

    ds = SeededItems(ToySystem.build_dataset(ToyDataConfig(augment=True), "train"))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    flips = [ds[(5, s)]["label"] for s in range(16)]
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is untouched
    assert any(not torch.equal(flips[0], f) for f in flips)  # some seeds flip, some do not
    assert torch.equal(ds[(5, 3)]["label"], flips[3])  # same seed -> same augmentation


def test_lr_schedules():
    from v2v.train.config import TrainConfig, lr_factor

    c = TrainConfig(steps=100, lr_schedule="step", lr_milestones=[10, 50], lr_gamma=0.5)
    assert [lr_factor(c, s) for s in (0, 9, 10, 49, 50, 99)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    c = TrainConfig(steps=100, lr_schedule="linear", lr_decay_start=60)
    assert lr_factor(c, 59) == 1.0 and lr_factor(c, 80) == pytest.approx(0.5) and lr_factor(c, 100) == 0.0
    assert lr_factor(TrainConfig(), 10_000) == 1.0


def test_toy_dataset_values():
    ds = ToySystem.build_dataset(ToyDataConfig(size=16, seed=0), "train")
    a, b = ds[3], ds[3]
    assert torch.equal(a["image"], b["image"]) and a["label"].dtype == torch.int64
    assert 0.0 <= a["image"].min() and a["image"].max() <= 1.0
    assert (a["label"] > 0).any() and (a["label"] == 0).any()
    # each class is painted with its palette color (times the shading column)
    from v2v.models.toy import _palette

    pal = _palette(4)
    y, x = (a["label"] > 0).nonzero()[0].tolist()
    c = int(a["label"][y, x])
    shade = 0.8 + 0.2 * x / 15
    torch.testing.assert_close(a["image"][:, y, x], pal[c] * shade, atol=1e-6, rtol=0)
    assert not torch.equal(ds[3]["label"], ds[4]["label"])


def test_loader_batches_independent_of_worker_count():
    from v2v.train.data import ResumableBatchSampler, make_train_loader

    ds = ToySystem.build_dataset(ToyDataConfig(augment=True, num_train=12), "train")

    def batches(workers):
        it = iter(make_train_loader(ds, ResumableBatchSampler(12, 4, seed=5), workers, seed=5))
        return [next(it) for _ in range(4)]  # crosses an epoch boundary (3 batches per epoch)

    a, b = batches(0), batches(2)
    for x, y in zip(a, b):
        assert torch.equal(x["label"], y["label"]) and torch.equal(x["image"], y["image"])


def test_logger_video_samples_and_jsonl_truncation(tmp_path):
    import json

    from imageio.v3 import imread

    def read_image(path):
        return torch.from_numpy(imread(path)).permute(2, 0, 1)

    from v2v.train.logger import RunLogger, truncate_jsonl

    lg = RunLogger(str(tmp_path), total_steps=10, tensorboard=False, progress=False)
    video = torch.zeros(2, 3, 3, 8, 8)  # B=2 clips, T=3 frames
    for t in range(3):
        video[:, t] = t / 2  # frame t has value t/2
    paths = lg.samples(5, {"clip": video, "img": torch.ones(3, 1, 8, 8)})
    strip = read_image(paths[0]).float() / 255
    assert tuple(strip.shape) == (3, 2 * 9 + 1, 3 * 9 + 1)  # one row per clip, frames left to right
    for t in range(3):
        assert strip[0, 1, 1 + 9 * t].item() == pytest.approx(t / 2, abs=1 / 255)
    assert (tmp_path / "samples" / "step_00000005_clip.gif").stat().st_size > 0
    img = read_image(paths[1]).float() / 255
    assert tuple(img.shape) == (3, 10, 28) and img[:, 1, 1].tolist() == [1.0, 1.0, 1.0]  # gray -> RGB
    for s in (1, 2, 3):
        lg.scalars(s, {"G": float(s)})
    lg.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "G": 4.0')  # a partial line from a killed process
    truncate_jsonl(str(tmp_path / "metrics.jsonl"), 2)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["G"] for r in rows] == [1.0, 2.0]


def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path, run_cli):
    w, s = ckpt.checkpoint_paths(tmp_path / "checkpoints", 50)
    ckpt.save_weights(_toy(), w)
    ckpt.save_state({"step": 50}, s)
    rc, _, err = run_cli("train", "--config", CONFIG, "--out", tmp_path, "--steps", "1")
    assert rc == 2 and "holds checkpoints up to step 50" in err and "--resume" in err


class _GOnlyOnOdd(ToySystem):
    """Toy variant whose D is updated on even steps only (the "D" key is absent on odd steps)."""

    def train_step(self, batch, step):
        out = super().train_step(batch, step)
        if step % 2:
            out.pop("D")
        return out


def test_trainer_protocol_groups_clip_and_lr(tmp_path):
    from v2v.train.config import TrainConfig
    from v2v.train.trainer import Trainer

    torch.manual_seed(0)
    system = _GOnlyOnOdd(ToyModelConfig())
    ds = ToySystem.build_dataset(ToyDataConfig(num_train=8), "train")
    cfg = TrainConfig(steps=1, batch_size=4, lr={"G": 1e-3, "D": 5e-4}, grad_clip={"G": 1e-6, "default": None},
                      log_every=1, sample_every=0, eval_every=0, ckpt_every=0)  # fmt: skip
    tr = Trainer(system, cfg, tmp_path, "cpu", ds, progress=False)
    d0 = {k: v.clone() for k, v in system.discriminator.state_dict().items()}
    g0 = {k: v.clone() for k, v in system.generator.state_dict().items()}
    tr.fit()  # step 0: G and D stepped
    d1 = {k: v.clone() for k, v in system.discriminator.state_dict().items()}
    g1 = {k: v.clone() for k, v in system.generator.state_dict().items()}
    # Adam's first step moves a weight by lr * g / (|g| + 1e-8): ~lr for D (unclipped, lr 5e-4);
    # G's grads are clipped to norm 1e-6, so eps is no longer negligible and the step is < lr
    dg = max((g1[k] - g0[k]).abs().max().item() for k in g0)
    dd = max((d1[k] - d0[k]).abs().max().item() for k in d0)
    assert dd == pytest.approx(5e-4, rel=1e-4)
    assert 0.5e-3 < dg < 0.99e-3
    tr.cfg.steps = 2
    tr.fit()  # step 1: only G; the G loss backprops through D but must not change D
    for k, v in system.discriminator.state_dict().items():
        assert torch.equal(v, d1[k]), k
    assert max((system.generator.state_dict()[k] - g1[k]).abs().max().item() for k in g1) > 1e-5
    assert tr.step == 2 and tr.optimizers["D"].state_dict()["state"][0]["step"] == 1


@pytest.mark.parametrize(
    "path", sorted((REPO / "configs").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_repo_config_parses(path):
    """Every experiment YAML in configs/ maps onto its system's typed config (no unknown keys)."""
    import yaml

    from v2v.train.config import load_experiment

    if "system" not in (yaml.safe_load(path.read_text()) or {}):
        pytest.skip("not an experiment config")
    _, cfg = load_experiment(path)
    assert cfg.train.steps >= 1 and cfg.train.batch_size >= 1
