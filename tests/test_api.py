"""The public Python API: v2v.load for every format, save_pretrained round trips, the job calls,
and the issue's acceptance one-liners run as a user would (from the repository root)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import v2v
from v2v.errors import V2VError
from v2v.models.toy import ToyModelConfig, ToySystem
from v2v.weights_io import save_weights

REPO = Path(__file__).resolve().parent.parent


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


# ------------------------------------------------------------------------ acceptance one-liners


def _one_liner(shared, checkpoint: str, config: str | None = None) -> str:
    """Run the acceptance line in a fresh interpreter from the repository root, where the
    fixtures are '../shared/...' (or $V2V_SHARED)."""
    rel = lambda p: str(p) if shared != REPO.parent / "shared" else str(Path("..") / p.relative_to(REPO.parent))
    arg = f"{rel(checkpoint)!r}" + (f", config={rel(config)!r}" if config else "")
    code = f"import v2v; s = v2v.load({arg}); print(type(s).__name__)"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_acceptance_fomm_official_checkpoint_and_yaml(shared):
    fx = shared / "fixtures" / "fomm"
    assert _one_liner(shared, fx / "00000099-checkpoint.pth.tar", fx / "config.yaml") == "FOMMSystem"


@pytest.mark.parametrize("system,form", [("vid2vid", "folder"), ("vid2vid", "generator+opt"),
                                         ("edn", "folder"), ("edn", "generator+opt")])
def test_acceptance_vid2vid_and_edn_folder_or_generator_with_opt(shared, system, form):
    """The same call in-process (the FOMM line above checks it from a fresh interpreter)."""
    fx = shared / "fixtures" / system
    gen = {"vid2vid": "latest_net_G0.pth", "edn": "latest_net_G.pth"}[system]
    s = v2v.load(fx) if form == "folder" else v2v.load(fx / gen, config=fx / "opt.txt")
    assert type(s).__name__ == {"vid2vid": "Vid2VidSystem", "edn": "DanceSystem"}[system]
    assert not any("netD" in k or "discriminator" in k for k in s.state_dict())


# ------------------------------------------------------------------------------- round trips


def test_official_load_is_inference_built_and_save_pretrained_round_trips_bit_exactly(shared, tmp_path):
    s = v2v.load(shared / "fixtures" / "edn")
    assert s.netD is None and s.netDface is None and not s.training  # no discriminator at inference
    assert all(k.startswith("generator.") for k in s.state_dict())
    paths = s.save_pretrained(tmp_path / "edn")
    assert Path(paths["weights"]).name == "dance.safetensors" and Path(paths["config"]).name == "dance.yaml"
    back = v2v.load(tmp_path / "edn")
    assert type(back) is type(s) and back.cfg == s.cfg
    _same_state(s, back)
    c = np.load(shared / "fixtures" / "edn" / "cases.npz")
    box = torch.from_numpy(c["face_coords"]).long().view(1, 4)
    with torch.no_grad():
        out = back.generator.step_raw(torch.from_numpy(c["label_0"]), None, box)["image"]
    assert np.abs(out.numpy() - c["I_0"]).max() < 1e-4


def test_toy_round_trip_from_a_training_system(tmp_path):
    torch.manual_seed(0)
    s = ToySystem(ToyModelConfig(width=6, num_classes=5))
    s.save_pretrained(tmp_path / "toy")  # a training-built system: the discriminator is saved too
    back = v2v.load(tmp_path / "toy", device="cpu")
    assert back.discriminator is None and back.cfg == s.cfg
    sd = s.state_dict()
    for k, v in back.state_dict().items():
        assert torch.equal(v, sd[k]), k
    again = tmp_path / "again"
    back.save_pretrained(again)
    _same_state(back, v2v.load(again / "toy.safetensors"))


def test_trainer_checkpoint_loads_with_its_embedded_config_and_ema(tmp_path, run_cli):
    import json

    cfg = REPO / "configs" / "toy" / "squares.yaml"
    rc, _out, err = run_cli("train", "--config", cfg, "--out", tmp_path / "run", "--steps", "2", "--no-progress",
                            "train.ema=0.5", "train.batch_size=2", "model.width=5")
    assert rc == 0, err
    ckpt = max((tmp_path / "run").rglob("step_*.safetensors"))
    s = v2v.load(ckpt)
    assert isinstance(s, ToySystem) and s.cfg.width == 5 and s.discriminator is None
    e = v2v.load(ckpt, ema=True)
    assert not torch.equal(e.generator.conv1.weight, s.generator.conv1.weight)
    # a bare safetensors file without metadata needs its YAML
    bare = tmp_path / "bare.safetensors"
    save_weights({k: v for k, v in s.state_dict().items()}, bare)
    with pytest.raises(V2VError, match="no model config in the file's metadata"):
        v2v.load(bare)
    yml = tmp_path / "toy.yaml"
    yml.write_text(json.dumps({"system": "toy", "model": {"width": 5}}))
    _same_state(s, v2v.load(bare, config=yml))


def test_mismatch_is_one_line_naming_keys_and_shapes(shared, tmp_path):
    s = ToySystem(ToyModelConfig(width=6))
    s.save_pretrained(tmp_path / "toy")
    (tmp_path / "toy" / "toy.safetensors").unlink()
    save_weights(ToySystem(ToyModelConfig(width=7)), tmp_path / "toy" / "toy.safetensors",
                 metadata={"system": "toy", "model": '{"width": 6}'})
    with pytest.raises(V2VError) as exc:
        v2v.load(tmp_path / "toy")
    msg = str(exc.value)
    assert "\n" not in msg and "generator.conv1.weight: file (7,4,3,3) vs model (6,4,3,3)" in msg
    with pytest.raises(V2VError, match="checkpoint not found"):
        v2v.load(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(V2VError, match="no system recognises it"):
        v2v.load(tmp_path / "junk.pth")


# ---------------------------------------------------------------------------------- job calls


def test_transfer_streams_the_official_chain(shared):
    fx = shared / "fixtures" / "edn"
    s = v2v.load(fx)
    c = np.load(fx / "cases.npz")
    box = c["face_coords"].reshape(4)
    frames = list(v2v.transfer(s, [torch.from_numpy(c["label_0"][0]), torch.from_numpy(c["label_1"][0])], [box, box]))
    assert len(frames) == 2 and frames[0].shape == (3, 64, 128)
    assert np.abs(frames[0].numpy() - np.clip((c["I_0"][0] + 1) / 2, 0, 1)).max() < 1e-4
    assert np.abs(frames[1].numpy() - np.clip((c["I_1"][0] + 1) / 2, 0, 1)).max() < 2e-3  # README chain tolerance
    with pytest.raises(V2VError, match="needs a 'fomm' system"):
        next(v2v.animate(s, frames[0], frames))


def test_animate_streams_one_frame_per_driving_frame(shared):
    fx = shared / "fixtures" / "fomm"
    s = v2v.load(fx / "00000099-checkpoint.pth.tar", config=fx / "config.yaml")
    n = s.cfg.image_size
    src = torch.rand(3, n, n)
    drv = [torch.rand(3, n // 2, n // 2) for _ in range(3)]  # resized to the model's size
    out = list(v2v.animate(s, src, drv, batch_frames=2))
    assert len(out) == 3 and out[0].shape == (3, n, n) and 0 <= float(out[1].min()) <= float(out[1].max()) <= 1


def test_generate_streams_vid2vid_frames(shared):
    s = v2v.load(shared / "fixtures" / "vid2vid")
    g = torch.Generator().manual_seed(0)
    labels = [torch.randint(0, s.cfg.label_nc, (64, 128), generator=g) for _ in range(3)]
    insts = [torch.randint(0, 3, (64, 128), generator=g) for _ in range(3)]
    out = list(v2v.generate(s, labels, insts))
    assert len(out) == 3 and out[0].shape == (3, 64, 128)
    assert 0 <= float(min(f.min() for f in out)) and float(max(f.max() for f in out)) <= 1
