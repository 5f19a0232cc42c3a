"""`v2v eval` end to end on a tiny toycity video."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from v2v.data.synthetic.toycity import generate_toycity


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    d = tmp_path_factory.mktemp("city")
    generate_toycity(d, videos=1, frames=5, size=(32, 64), seed=4, progress=False)
    return d


def _write_frames(folder, frames):
    folder.mkdir(parents=True)
    for t, f in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{t:05d}.png"), f[:, :, ::-1])


def _read_frames(folder):
    return [cv2.imread(str(p))[:, :, ::-1] for p in sorted(folder.glob("*.png"))]


def test_eval_identical_noisy_shuffled(city, tmp_path, run_cli):
    gt = city / "train_B" / "seq0000"
    flow = city / "train_flowprev" / "seq0000"
    frames = _read_frames(gt)
    rng = np.random.default_rng(0)
    noisy = [np.clip(f.astype(np.int16) + rng.integers(-8, 9, f.shape), 0, 255).astype(np.uint8) for f in frames]
    _write_frames(tmp_path / "noisy", noisy)
    _write_frames(tmp_path / "shuffled", [frames[i] for i in (0, 3, 1, 4, 2)])

    out = tmp_path / "same.json"
    rc, stdout, _ = run_cli("eval", "--pred", gt, "--gt", gt, "--flow-prev", flow, "--json", out)
    assert rc == 0 and "psnr" in stdout and "warp" in stdout
    r = json.loads(out.read_text())
    v = r["videos"]["seq0000"]
    assert v["frames"] == 5 and v["psnr"] == "inf" and v["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert v["warp"] == pytest.approx(v["warp_gt"]) and v["warp"] < 0.01
    assert len(r["per_frame"]["seq0000"]["warp"]) == 4

    out = tmp_path / "noisy.json"
    rc, _, _ = run_cli("eval", "--pred", tmp_path / "noisy", "--gt", gt, "--json", out)
    assert rc == 0
    r = json.loads(out.read_text())
    mse = np.mean([((a.astype(np.float64) - b) ** 2).mean() / 255**2 for a, b in zip(noisy, frames, strict=True)])
    expected = np.mean([10 * np.log10(255**2 / ((a.astype(np.float64) - b) ** 2).mean())
                        for a, b in zip(noisy, frames, strict=True)])
    assert r["mean"]["psnr"] == pytest.approx(expected, abs=1e-3)
    assert 10 * np.log10(1 / mse) == pytest.approx(expected, abs=0.2)
    assert 0.3 < r["mean"]["ssim"] < 0.99
    assert "warp" not in r["mean"]

    out = tmp_path / "shuf.json"
    rc, _, _ = run_cli("eval", "--pred", tmp_path / "shuffled", "--gt", gt, "--flow-prev", flow,
                       "--metrics", "warp", "--json", out)
    assert rc == 0
    r = json.loads(out.read_text())["mean"]
    assert r["warp"] > r["warp_gt"] + 0.01


def test_eval_collection_and_errors(city, tmp_path, run_cli):
    gt_root = city / "train_B"
    pred_root = tmp_path / "pred"
    shutil.copytree(gt_root, pred_root)
    rc, stdout, _ = run_cli("eval", "--pred", pred_root, "--gt", gt_root, "--flow-prev", city / "train_flowprev")
    assert rc == 0 and "seq0000" in stdout
    rc, _, err = run_cli("eval", "--pred", pred_root, "--gt", gt_root, "--metrics", "psnr,bogus")
    assert rc == 2 and "bogus" in err
    rc, _, err = run_cli("eval", "--pred", pred_root, "--gt", gt_root, "--metrics", "warp")
    assert rc == 2 and "--flow-prev" in err
    small = tmp_path / "small"
    _write_frames(small, [f[:16, :32] for f in _read_frames(gt_root / "seq0000")])
    rc, _, err = run_cli("eval", "--pred", small, "--gt", gt_root / "seq0000")
    assert rc == 2 and "--resize" in err
    rc, stdout, _ = run_cli("eval", "--pred", small, "--gt", gt_root / "seq0000", "--resize")
    assert rc == 0


def test_eval_keypoints_akd_mkr(tmp_path, run_cli):
    from v2v.data.synthetic.puppets import generate_puppets

    generate_puppets(tmp_path / "p", videos=1, frames=3, size=(32, 32), seed=0, progress=False)
    vid = tmp_path / "p" / "train" / "vid0000"
    shifted = tmp_path / "kp"
    shifted.mkdir()
    for f in sorted((vid / "openpose").glob("*.json")):
        d = json.loads(f.read_text())
        kp = d["people"][0]["pose_keypoints_2d"]
        for j in range(25):
            if kp[3 * j + 2] > 0:
                kp[3 * j] += 3.0
                kp[3 * j + 1] += 4.0
        kp[3 * 4 + 2] = 0.0  # right wrist "not detected"
        (shifted / f.name).write_text(json.dumps(d))
    out = tmp_path / "kp.json"
    rc, stdout, _ = run_cli("eval", "--pred", vid / "frames", "--gt", vid / "frames", "--kp-pred", shifted,
                            "--kp-gt", vid / "openpose", "--json", out)
    assert rc == 0 and "akd" in stdout and "vid0000" in stdout
    r = json.loads(out.read_text())["videos"]["vid0000"]
    assert r["akd"] == pytest.approx(5.0, abs=1e-3)
    assert r["mkr"] == pytest.approx(1 / 25)
    rc, _, err = run_cli("eval", "--pred", vid / "frames", "--gt", vid / "frames", "--kp-pred", shifted)
    assert rc == 2 and "--kp-gt" in err
