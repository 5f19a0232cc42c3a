"""Smoke test of `v2v demo --quick` (the CI check of issue 7) and unit checks of its pieces."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from v2v.demo.assets import ASSET_DIR, MODELS, asset_files

REPO = Path(__file__).resolve().parents[2]


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    from v2v.cli import main

    out = tmp_path_factory.mktemp("demo") / "out"
    rc = main(["demo", "--quick", "--out", str(out), "--no-progress", "--device", "cpu"])
    assert rc == 0
    return out


def test_quick_demo_report_and_videos(quick_demo):
    html = (quick_demo / "index.html").read_text(encoding="utf-8")
    assert "<table>" in html and "<svg" in html  # metric tables and loss-curve plots
    refs = [r for r in re.findall(r"(?:src|href)='([^']+)'", html) if not r.startswith("#")]
    anchors = set(re.findall(r"<section id='([^']+)'", html))
    for a in re.findall(r"href='#([^']+)'", html):  # every landing-section card jumps to a section
        assert a in anchors, a
    mp4 = [r for r in refs if r.endswith(".mp4")]
    gif = [r for r in refs if r.endswith(".gif")]
    assert len(mp4) >= 2 and len(gif) >= 2
    for r in refs:
        p = quick_demo / r
        assert p.is_file() and p.stat().st_size > 1000, r
    assert not any(r.startswith("/") for r in refs)  # relative: the folder can be moved
    # the side-by-side videos decode and have the expected frame count (6 puppet frames)
    from v2v.data.video import read_video

    frames, info = read_video(quick_demo / "videos" / "fomm_vid0000.mp4")
    assert len(frames) == 6 and info["num_frames"] == 6
    # panel 2 (driving = ground truth, x2 nearest) matches the dataset frame up to H.264 loss
    from v2v.data.image import read_image

    gt = read_image(quick_demo / "data" / "puppets" / "test" / "vid0000" / "frames" / "frame_00003.png")
    x0, y0 = 4 + 128 + 4, 4 + 14
    panel = frames[3, y0:y0 + 128:2, x0:x0 + 128:2].astype(np.float64)
    assert np.abs(panel - gt).mean() < 12


def test_quick_demo_metrics_json(quick_demo):
    m = json.loads((quick_demo / "metrics.json").read_text())
    nums = list(_numbers(m["results"]))
    assert len(nums) > 20 and all(math.isfinite(v) for v in nums)
    for task in ("fomm_puppets", "vid2vid_toycity"):
        table = {r["method"]: r for r in m["results"][task]["table"]}
        gt = table.pop("ground truth (floor)")
        assert gt["psnr"] == "inf" and gt["ssim"] == 1.0
        for row in table.values():
            assert 5 < row["psnr"] < 60 and 0 < row["ssim"] <= 1 and row["warp_error"] >= 0
            assert row["warp_error"] > gt["warp_error"] * 0.5 or row["method"].startswith("FOMM")
        # the copy-first-frame baseline's PSNR equals a direct numpy computation
    d = quick_demo / "data" / "puppets" / "test"
    from v2v.data.image import read_image

    vals = []
    for v in sorted(d.iterdir()):
        fr = [read_image(f).astype(np.float64) / 255 for f in sorted((v / "frames").glob("*.png"))]
        vals.append(np.mean([10 * np.log10(1 / np.mean((fr[0] - f) ** 2)) for f in fr[1:]]))
    row = next(r for r in m["results"]["fomm_puppets"]["table"] if r["method"] == "baseline: copy first frame")
    assert row["psnr"] == pytest.approx(float(np.mean(vals)), abs=1e-3)
    assert m["timings_s"]["total"] > 0


def test_held_out_split_differs_from_training(quick_demo):
    meta = json.loads((quick_demo / "data" / "toycity" / "meta.json").read_text())
    assert meta["splits"]["train"]["seed"] != meta["splits"]["test"]["seed"]
    meta = json.loads((quick_demo / "data" / "puppets" / "meta.json").read_text())
    assert meta["splits"]["train"]["seed"] != meta["splits"]["test"]["seed"]


def test_class_mean_colors_known_values(tmp_path):
    from v2v.data.synthetic.common import write_png
    from v2v.demo.tasks import class_mean_colors

    lab = np.array([[0, 0], [1, 1]], np.uint8)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    rgb[0, 1] = (30, 40, 50)
    rgb[1] = (255, 0, 0)
    write_png(tmp_path / "train_A" / "seq0000" / "frame_00000.png", lab)
    write_png(tmp_path / "train_B" / "seq0000" / "frame_00000.png", rgb)
    c = class_mean_colors(tmp_path, "train", 3)
    assert torch.allclose(c[0], torch.tensor([20, 30, 40]) / 255.0, atol=1e-6)
    assert torch.allclose(c[1], torch.tensor([1.0, 0, 0]))
    assert torch.allclose(c[2], torch.full((3,), 0.5))  # unseen class


def test_side_by_side_layout():
    from v2v.demo.media import side_by_side

    a = torch.zeros(3, 3, 4, 5)
    b = torch.ones(3, 4, 5)
    out = side_by_side([("a", a), ("b", b)], scale=2, gutter=4, caption_h=10)
    assert out.shape[0] == 3 and out.shape[1] % 2 == 0 and out.shape[2] % 2 == 0
    y0 = 4 + 10
    assert (out[:, y0:y0 + 8, 4:14] == 0).all()          # panel a, upscaled x2
    assert (out[:, y0:y0 + 8, 18:28] == 255).all()       # panel b repeated over time


def test_shipped_assets_recorded():
    from v2v.train.checkpoint import read_metadata

    for name in MODELS:
        f = asset_files(name)
        assert f["config"].read_bytes() == (REPO / "configs" / "demo" / f"{name}.yaml").read_bytes()
        if not f["weights"].is_file():
            pytest.skip(f"{name}: shipped checkpoint not present")
        assert f["weights"].stat().st_size < 5 * 2**20
        rec = json.loads(f["record"].read_text())
        assert rec["command"] and rec["train_wall_time_s"] > 0 and rec["step"] > 0
        meta = json.loads(read_metadata(f["weights"])["config"])  # relative paths only
        assert not Path(meta["data"]["root"]).is_absolute() and not Path(meta["train"]["out_dir"]).is_absolute()
        assert f["metrics"].stat().st_size > 0
    assert ASSET_DIR.is_dir()


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from v2v.demo.assets import load_demo_model
    from v2v.errors import V2VError

    with pytest.raises(V2VError, match="demo checkpoint not found.*--train"):
        load_demo_model(tmp_path / "nope.safetensors", asset_files("fomm_puppets")["config"])


def test_shipped_checkpoints_load_and_match_their_record():
    """The shipped weights load (strictly, per inference part) into the recorded configs."""
    from v2v.demo.assets import INFERENCE_PARTS, load_demo_model

    for name, (system, _, _) in MODELS.items():
        f = asset_files(name)
        if not f["weights"].is_file():
            pytest.skip(f"{name}: shipped checkpoint not present")
        sysm, cfg = load_demo_model(f["weights"], f["config"])
        assert cfg.system == system
        for part in INFERENCE_PARTS[system]:
            params = list(getattr(sysm, part).parameters())
            assert params and all(torch.isfinite(p).all() for p in params)


@pytest.mark.slow
def test_quick_demo_with_training(tmp_path):
    """`v2v demo --quick --train`: 2 training steps of each model with the recorded configs."""
    from v2v.cli import main

    out = tmp_path / "out"
    assert main(["demo", "--quick", "--train", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["trained_now"] is True
    for name in MODELS:
        assert list((out / "train" / name / "checkpoints").glob("step_00000002.safetensors"))
        assert m["models"][name]["train_seconds"] > 0


def test_foreign_data_folder_is_not_deleted(tmp_path):
    from v2v.demo.pipeline import QUICK, _make_data
    from v2v.errors import V2VError

    d = tmp_path / "data" / "puppets"
    d.mkdir(parents=True)
    (d / "meta.json").write_text('{"dataset": "something else"}')
    with pytest.raises(V2VError, match="not a v2v puppets dataset"):
        _make_data(str(tmp_path / "data"), QUICK, progress=False)
    assert (d / "meta.json").is_file()


def test_dance_section_in_quick_demo(quick_demo):
    """The dance plug-in section: its anchor, table (model + 3 baselines), stage video and thumbnail."""
    html = (quick_demo / "index.html").read_text(encoding="utf-8")
    assert "<section id='dance_puppets'" in html and "dance_cross_identity.mp4" in html
    r = json.loads((quick_demo / "metrics.json").read_text())["results"]["dance_puppets"]
    assert [row["method"].split(":")[0] for row in r["table"]] == ["EDN generator (v2v)", *["baseline"] * 3]
    assert r["lead_metric"] == "psnr" and r["frames_evaluated"] == 6
    # the held-out frames continue the training video: same target, frames never trained on
    meta = json.loads((quick_demo / "data" / "dance" / "meta.json").read_text())
    assert set(meta) >= {"train", "test", "source"}
