"""Synthetic datasets: exact flow (warping reproduces frames), determinism, labels, keypoints, CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from v2v.data.synthetic.common import read_flo, tree_digest, video_rng, write_flo
from v2v.data.synthetic.puppets import BODY25, generate_puppets, make_identity, render_puppets
from v2v.data.synthetic.toycity import LABEL_NC, generate_toycity, render_toycity


def _warp(img_u8: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp an H,W,3 uint8 image by an H,W,2 pixel flow (bilinear, align_corners)."""
    from v2v.ops.warp import warp

    img = torch.from_numpy(img_u8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    fl = torch.from_numpy(flow).permute(2, 0, 1)[None]
    return warp(img, fl)[0].permute(1, 2, 0).numpy()


def _psnr(a: np.ndarray, b_u8: np.ndarray, valid: np.ndarray) -> float:
    mse = ((a - b_u8.astype(np.float32) / 255) ** 2)[valid].mean()
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def _check_flow_psnr(rgb, flow, occ, flowprev, occprev):
    T = rgb.shape[0]
    for t in range(T - 1):
        valid = ~occ[t]
        assert valid.mean() > 0.5
        assert _psnr(_warp(rgb[t + 1], flow[t]), rgb[t], valid) > 30
        validp = ~occprev[t]
        assert _psnr(_warp(rgb[t], flowprev[t]), rgb[t + 1], validp) > 30
    # the flow is not trivially zero, and a zero flow does not reproduce the frames as well
    assert np.abs(flow).max() > 0.5


@pytest.fixture(scope="module")
def toycity_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("toycity")
    generate_toycity(d, videos=2, frames=4, size=(32, 64), seed=5, progress=False)
    return d


@pytest.fixture(scope="module")
def puppets_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("puppets")
    generate_puppets(d, videos=2, frames=4, size=(48, 48), seed=5, progress=False)
    return d


def _read(p, flags=cv2.IMREAD_UNCHANGED):
    img = cv2.imread(str(p), flags)
    assert img is not None, p
    return img[:, :, ::-1] if img.ndim == 3 else img


def test_toycity_flow_reproduces_frames_from_disk(toycity_dir):
    seq = "seq0000"
    T = 4
    rgb = np.stack([_read(toycity_dir / "train_B" / seq / f"frame_{t:05d}.png") for t in range(T)])
    flow = np.stack([read_flo(toycity_dir / "train_flow" / seq / f"frame_{t:05d}.flo") for t in range(T - 1)])
    occ = np.stack([_read(toycity_dir / "train_occ" / seq / f"frame_{t:05d}.png") > 127 for t in range(T - 1)])
    fp = np.stack([read_flo(toycity_dir / "train_flowprev" / seq / f"frame_{t:05d}.flo") for t in range(1, T)])
    op = np.stack([_read(toycity_dir / "train_occprev" / seq / f"frame_{t:05d}.png") > 127 for t in range(1, T)])
    assert not (toycity_dir / "train_flow" / seq / f"frame_{T - 1:05d}.flo").exists()
    assert not (toycity_dir / "train_flowprev" / seq / "frame_00000.flo").exists()
    _check_flow_psnr(rgb, flow, occ, fp, op)


def test_toycity_flow_larger_motion():
    vid = render_toycity(video_rng(11, "train", 0, "toycity"), 6, 64, 128)
    _check_flow_psnr(vid.rgb, vid.flow, vid.occ, vid.flowprev, vid.occprev)


def test_puppets_flow_reproduces_frames(puppets_dir):
    d = puppets_dir / "train" / "vid0001"
    T = 4
    rgb = np.stack([_read(d / "frames" / f"frame_{t:05d}.png") for t in range(T)])
    flow = np.stack([read_flo(d / "flow" / f"frame_{t:05d}.flo") for t in range(T - 1)])
    occ = np.stack([_read(d / "occ" / f"frame_{t:05d}.png") > 127 for t in range(T - 1)])
    fp = np.stack([read_flo(d / "flowprev" / f"frame_{t:05d}.flo") for t in range(1, T)])
    op = np.stack([_read(d / "occprev" / f"frame_{t:05d}.png") > 127 for t in range(1, T)])
    _check_flow_psnr(rgb, flow, occ, fp, op)
    # articulated motion: the figure's flow is not a single translation
    parts = _read(d / "parts" / "frame_00000.png")
    fig = flow[0][parts > 0]
    assert np.ptp(fig, axis=0).max() > 0.3


def test_puppets_flow_64():
    vid = render_puppets(make_identity(2, 3), video_rng(2, "train", 0, "puppets"), 5, 64, 64)
    _check_flow_psnr(vid.rgb, vid.flow, vid.occ, vid.flowprev, vid.occprev)


def test_determinism(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d, seed in ((a, 1), (b, 1), (c, 2)):
        generate_toycity(d, videos=1, frames=3, size=(32, 48), seed=seed, progress=False)
        generate_puppets(d, videos=1, frames=3, size=(32, 32), seed=seed, progress=False)
    assert tree_digest(a) == tree_digest(b)
    assert tree_digest(a) != tree_digest(c)
    # and per dataset, not only through meta.json
    fa = (a / "train_B" / "seq0000" / "frame_00000.png").read_bytes()
    fc = (c / "train_B" / "seq0000" / "frame_00000.png").read_bytes()
    assert fa != fc
    pa = (a / "train" / "vid0000" / "frames" / "frame_00001.png").read_bytes()
    pc = (c / "train" / "vid0000" / "frames" / "frame_00001.png").read_bytes()
    assert pa != pc


def test_toycity_labels_and_instances(toycity_dir):
    seen = set()
    for seq in ("seq0000", "seq0001"):
        for t in range(4):
            lab = _read(toycity_dir / "train_A" / seq / f"frame_{t:05d}.png")
            inst = _read(toycity_dir / "train_inst" / seq / f"frame_{t:05d}.png")
            assert lab.dtype == np.uint8 and inst.dtype == np.uint16
            assert lab.max() < LABEL_NC
            seen |= set(np.unique(lab).tolist())
            things = lab >= 5
            assert np.array_equal(inst[~things], lab[~things].astype(np.uint16))
            assert np.array_equal(inst[things] // 1000, lab[things].astype(np.uint16))
            assert (inst[things] % 1000 < 10).all()
    assert seen == set(range(7))
    meta = json.loads((toycity_dir / "meta.json").read_text())
    assert meta["label_nc"] == 7 and meta["classes"][5] == "car" and len(meta["colors"]) == 7


def test_toycity_every_class_small_set():
    """Every class appears in each of a few small videos (cars and people are kept in view)."""
    for i in range(4):
        vid = render_toycity(video_rng(0, "test", i, "toycity"), 3, 32, 64)
        assert set(np.unique(vid.label).tolist()) == set(range(7))
        k = np.unique(vid.inst[vid.label == 5])
        assert (k // 1000 == 5).all() and 1 <= len(k) <= vid.info["cars"]


def test_puppets_openpose_on_figure(puppets_dir):
    meta = json.loads((puppets_dir / "meta.json").read_text())
    assert meta["keypoints"] == BODY25 and len(meta["parts"]) == 11
    vids = meta["splits"]["train"]["videos"]
    assert [v["identity"] for v in vids] == [0, 1]
    assert vids[0]["identity_params"] != vids[1]["identity_params"]
    n_vis = 0
    for v in ("vid0000", "vid0001"):
        for t in range(4):
            d = json.loads((puppets_dir / "train" / v / "openpose" / f"frame_{t:05d}_keypoints.json").read_text())
            assert d["version"] == 1.3 and len(d["people"]) == 1
            kp = np.array(d["people"][0]["pose_keypoints_2d"], np.float32).reshape(25, 3)
            parts = _read(puppets_dir / "train" / v / "parts" / f"frame_{t:05d}.png")
            assert parts.max() <= 10 and set(np.unique(parts).tolist()) >= {0, 1, 2}
            vis = kp[:, 2] > 0
            n_vis += vis.sum()
            xy = np.rint(kp[vis, :2]).astype(int)
            assert (parts[xy[:, 1], xy[:, 0]] > 0).all()
            # anatomy: neck above mid-hip, head above neck
            assert kp[1, 1] < kp[8, 1] and kp[0, 1] < kp[1, 1]
    assert n_vis > 0.9 * 2 * 4 * 25


def test_puppets_identity_option(tmp_path):
    generate_puppets(tmp_path, videos=2, frames=2, size=(32, 32), seed=0, identity=3, progress=False)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert [v["identity"] for v in meta["splits"]["train"]["videos"]] == [3, 3]
    assert make_identity(0, 3) == make_identity(0, 3) and make_identity(0, 3) != make_identity(0, 2)


def test_flo_matches_ops_reader(tmp_path):
    from v2v.ops.flow import read_flo as ops_read
    from v2v.ops.flow import write_flo as ops_write

    f = np.random.default_rng(0).standard_normal((5, 7, 2)).astype(np.float32)
    write_flo(tmp_path / "a.flo", f)
    ops_write(tmp_path / "b.flo", f)
    assert (tmp_path / "a.flo").read_bytes() == (tmp_path / "b.flo").read_bytes()
    assert np.array_equal(ops_read(tmp_path / "a.flo"), f)


def test_cli_synth(run_cli, tmp_path):
    out = tmp_path / "tmp"
    rc, stdout, _ = run_cli("data", "synth", "toycity", "--out", out, "--videos", 2, "--frames", 5,
                            "--size", "32x64", "--seed", 1)
    assert rc == 0, stdout
    for sub, n in (("train_A", 5), ("train_B", 5), ("train_inst", 5), ("train_flow", 4), ("train_occ", 4),
                   ("train_flowprev", 4), ("train_occprev", 4)):
        for seq in ("seq0000", "seq0001"):
            assert len(list((out / sub / seq).iterdir())) == n, (sub, seq)
    assert _read(out / "train_B" / "seq0001" / "frame_00004.png").shape == (32, 64, 3)
    rc, _, _ = run_cli("data", "synth", "puppets", "--out", out / "p", "--videos", 1, "--frames", 2,
                       "--size", "32x32", "--split", "test", "--quiet")
    assert rc == 0 and (out / "p" / "test" / "vid0000" / "frames" / "frame_00001.png").is_file()
    rc, _, err = run_cli("data", "synth", "toycity", "--out", out, "--size", "big")
    assert rc == 2 and "--size" in err


@pytest.mark.parametrize("size", [(16, 16), (96, 32), (16, 200)])
def test_odd_sizes_render(size):
    h, w = size
    vid = render_toycity(video_rng(1, "train", 0, "toycity"), 3, h, w)
    assert vid.rgb.shape == (3, h, w, 3) and vid.label.max() < LABEL_NC
    pup = render_puppets(make_identity(1, 0), video_rng(1, "train", 0, "puppets"), 3, h, w)
    assert pup.rgb.shape == (3, h, w, 3) and pup.parts.max() <= 10


def test_puppets_keypoints_outside_image_are_missing():
    """A figure in a very narrow image has limbs outside: those keypoints are 0,0,0, and every
    keypoint marked visible is inside the image and on the figure."""
    vid = render_puppets(make_identity(0, 1), video_rng(0, "train", 0, "puppets"), 3, 64, 16)
    kp = vid.keypoints
    missing = kp[..., 2] == 0
    assert missing.any() and (kp[missing] == 0).all()
    vis = ~missing
    assert (kp[vis][:, 0] >= 0).all() and (kp[vis][:, 0] <= 15).all()
    for t in range(3):
        xy = np.rint(kp[t][kp[t, :, 2] > 0, :2]).astype(int)
        assert (vid.parts[t][xy[:, 1], xy[:, 0]] > 0).all()
