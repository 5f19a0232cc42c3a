"""Pose files (OpenPose JSON, EDN OpenCV-YAML), rendering, normalisation, smoothing, backends."""
from __future__ import annotations

import json

import numpy as np
import pytest

from v2v.data.pose import (
    BODY_23,
    BODY_25,
    PoseFrame,
    list_pose_files,
    map_body25_to_body23,
    read_openpose_json,
    read_pose,
    read_pose_sequence,
)
from v2v.errors import V2VError


def test_openpose_json_counts_and_missing_joints(shared):
    files = list_pose_files(shared / "data" / "pose" / "poses-openpose" / "001_001")
    assert [f.rsplit("/", 1)[-1] for f in files] == ["frame000100.json", "frame000101.json", "frame000102.json"]
    fr = read_pose(files[0])
    assert fr.format == "BODY_25" and fr.num_people == 1
    assert fr.body.shape == (25, 3) and fr.face.shape == (70, 3)
    assert fr.hand_left.shape == (21, 3) and fr.hand_right.shape == (21, 3)
    with open(files[0]) as fh:
        raw = json.load(fh)["people"][0]
    assert np.array_equal(fr.body.reshape(-1), np.array(raw["pose_keypoints_2d"], dtype=np.float64))
    assert np.array_equal(fr.hand_right.reshape(-1), np.array(raw["hand_right_keypoints_2d"], dtype=np.float64))
    assert fr.joint("LEar").tolist() == [0.0, 0.0, 0.0]  # body index 18 is undetected in frame000100
    assert fr.joint("Nose")[2] > 0 and (fr.face[:, 2] > 0).all()
    assert fr.names == BODY_25 and fr.joint("MidHip")[0] == raw["pose_keypoints_2d"][24]


def test_edn_yaml_body23_named_joints(shared):
    d = shared / "data" / "edn_sample" / "train" / "keypoints"
    seq = read_pose_sequence(d)
    assert len(seq) == 3
    fr = seq[0]
    assert fr.format == "BODY_23" and fr.names == BODY_23 and fr.names[18] == "Nose" and fr.names[7] == "MidHip"
    assert fr.joint("Neck")[:2].tolist() == pytest.approx([980.697754, 247.778152])
    assert fr.joint("Nose")[:2].tolist() == pytest.approx([1065.93713, 159.440704])
    # MidHip lies midway between the hips (the README's sanity check of the BODY_23 order)
    mid = (fr.joint("RHip")[:2] + fr.joint("LHip")[:2]) / 2
    assert np.abs(fr.joint("MidHip")[:2] - mid).max() < 15
    assert not fr.hand_left.any() and (fr.hand_right[:, 2] > 0).all() and (fr.face[:, 2] > 0).all()
    # same values as OpenCV's own FileStorage reader (float32 storage)
    import cv2

    fs = cv2.FileStorage(str(d / "frame020001_pose.yml"), cv2.FILE_STORAGE_READ)
    m = fs.getNode("pose_0").mat().reshape(23, 3)
    assert np.abs(fr.body - m).max() < 1e-3


def test_body25_to_body23_mapping_by_name(shared):
    fr = read_pose(shared / "data" / "pose" / "poses-openpose" / "001_001" / "frame000101.json")
    b23 = fr.to_body23()
    assert b23.format == "BODY_23" and b23.body.shape == (23, 3)
    for name in BODY_23:
        assert np.array_equal(b23.joint(name), fr.joint(name)), name
    with pytest.raises(V2VError):
        map_body25_to_body23(np.zeros((23, 3)))


def test_pose_render_cli_on_shared_data_and_fixture_cases(shared, run_cli, tmp_path):
    import cv2

    rc, _out, err = run_cli("pose", "render", shared / "data" / "pose" / "poses-openpose" / "001_001",
                           "--out", tmp_path / "json", "--facetexts")
    assert rc == 0, err
    assert len(list((tmp_path / "json").glob("*.png"))) == 3
    lab = cv2.imread(str(tmp_path / "json" / "frame000100.png"))
    assert lab.shape == (512, 1024, 3) and (lab < 250).any() and (lab == 255).mean() > 0.8
    rc, _out, err = run_cli("pose", "render", shared / "data" / "edn_sample" / "train" / "keypoints",
                           "--out", tmp_path / "yml", "--facetexts")
    assert rc == 0, err
    for stem in ("frame020001", "frame020005", "frame020009"):
        ours = cv2.imread(str(tmp_path / "yml" / f"{stem}.png"))
        official = cv2.imread(str(shared / "data" / "edn_sample" / "train" / "train_label" / f"{stem}.png"))
        assert np.abs(ours.astype(int) - official).max() <= 1  # the official sample labels
        box = (tmp_path / "yml" / "facetexts" / f"{stem}.txt").read_text().split()
        ref = (shared / "data" / "edn_sample" / "train" / "train_facetexts128" / f"{stem}.txt").read_text().split()
        assert box == ref
    # the fixture's render cases, one per format, through the same command
    fx = shared / "fixtures" / "edn"
    d = np.load(fx / "render.npz")
    for k, name, hw, nf in ((0, "body23_yml_1080p__frame000000_pose.yml", "1080x1920", 8),
                            (1, "body25_json_720p__frame000000_keypoints.json", "720x1280", 22),
                            (2, "coco18_json_4x3__frame000000_keypoints.json", "1080x1440", 9)):
        rc, _out, err = run_cli("pose", "render", fx / "openpose" / name, "--out", tmp_path / f"e{k}",
                               "--frame-size", hw, "--num-face-keypoints", nf, "--facetexts")
        assert rc == 0, err
        png = next((tmp_path / f"e{k}").glob("*.png"))
        ours = cv2.imread(str(png))[:, :, ::-1]
        assert np.array_equal(ours, d[f"e{k}_label"]), name
        box = [int(v) for v in next((tmp_path / f"e{k}" / "facetexts").glob("*.txt")).read_text().split()]
        assert box == d[f"e{k}_face_box"].tolist()


def test_malformed_and_wrong_count_pose_files_fail_with_one_line(tmp_path, run_cli):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "frame000000_keypoints.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2, ')
    with pytest.raises(V2VError, match="frame000000_keypoints.json"):
        read_openpose_json(bad / "frame000000_keypoints.json")
    rc, _out, err = run_cli("pose", "render", bad, "--out", tmp_path / "o")
    assert rc == 2 and err.startswith("error:") and "frame000000_keypoints.json" in err
    assert len(err.strip().splitlines()) == 1
    wrong = tmp_path / "wrong_keypoints.json"
    wrong.write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 72}]}))
    with pytest.raises(V2VError, match=r"wrong_keypoints.json: .*72 values; expected 75 \(BODY_25\)"):
        read_pose(wrong)
    face = tmp_path / "face_keypoints.json"
    face.write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 75, "face_keypoints_2d": [1.0] * 30}]}))
    with pytest.raises(V2VError, match="face_keypoints_2d has 30 values; expected 210"):
        read_pose(face)
    yml = tmp_path / "x_pose.yml"
    yml.write_text("%YAML:1.0\npose_0: !!opencv-nd-matrix\n   sizes: [ 1, 20, 3 ]\n   dt: f\n   data: [ "
                   + ", ".join(["1."] * 60) + " ]\n")
    with pytest.raises(V2VError, match="x_pose.yml"):
        read_pose(yml)


def _person(ax, ay, h, nose=True, ankles=True):
    """A BODY_23 frame: head at (ax, ay - h), ankles at y = ay."""
    b = np.zeros((23, 3))
    b[0] = (ax, ay - 0.85 * h, 1)
    if nose:
        b[18] = (ax, ay - h, 1)
    b[20] = (ax - 5, ay - h, 1)
    b[22] = (ax + 5, ay - h, 1)
    if ankles:
        b[10] = (ax - 10, ay, 1)
        b[15] = (ax + 10, ay - 2, 1)
    return PoseFrame(body=b, format="BODY_23")


def test_normalisation_statistics_and_clear_errors():
    from v2v.data.pose_norm import compute_norm_params, keypoint_stats, normalize_frames, pose_stats

    assert pose_stats(_person(100, 500, 300).body) == pytest.approx((np.hypot(0, 299.0), 498.0, 500.0))
    tgt = [_person(100, 400 + 5 * i, 200 + i) for i in range(20)]
    src = [_person(300, 600 + 10 * i, 400 + 2 * i) for i in range(20)]
    ts = keypoint_stats(tgt, (0, 20), 5000, draws=list(range(20)))
    ss = keypoint_stats(src, (0, 20), 20000, draws=list(range(20)))
    assert ts.count == 20 and ts.maxtoe == 495.0 and ts.median == np.median([400 + 5 * i for i in range(20)])
    p = compute_norm_params(ts, ss)
    assert 0.4 < p.scale_close < 0.6 and 0.4 < p.scale_far < 0.6  # target is about half as tall
    res = list(normalize_frames(src, p, target_width=200))
    assert all(r.status == 3 for r in res)
    # the normalised source ankles land inside the target's ankle range
    ys = [r.frame.body[10, 1] for r in res]
    assert min(ys) > ts.mintoe - 20 and max(ys) < ts.maxtoe + 20
    no_ankles = [_person(100, 400 + i, 200, ankles=False) for i in range(5)]
    with pytest.raises(V2VError, match="target poses: no usable pose.*ankle"):
        keypoint_stats(no_ankles, (0, 5), name="target poses")


def test_face_box_rule_and_missing_face_box():
    from v2v.data.pose_render import face_box, make_box

    fr = _person(960, 900, 600)
    assert face_box(fr) == make_box(int(230 * 512 / 1080), int(370 * 512 / 1080), int(890 * 1024 / 1920),
                                    int(1030 * 1024 / 1920))
    miny, maxy, minx, maxx = face_box(fr)
    assert maxy - miny == 128 and maxx - minx == 128
    assert make_box(-10, 50, 1000, 1100) == (0, 128, 896, 1024)  # clamped into the 512x1024 label
    b = fr.body.copy()
    b[[18, 20, 22], 2] = 0
    with pytest.raises(V2VError, match="no face box"):
        face_box(PoseFrame(body=b, format="BODY_23", source="f.json"))


def test_median_smoothing_removes_an_outlier_and_keeps_the_frame_count():
    from v2v.data.pose_norm import median_smooth, smooth_sequence

    frames = [_person(100, 500, 300) for _ in range(9)]
    spike = frames[4].body.copy()
    spike[:, 0] += 50
    frames[4] = PoseFrame(body=spike, format="BODY_23")
    out = smooth_sequence(frames, 7, "centered")
    assert len(out) == 9 and np.allclose(out[4].body, frames[0].body)
    assert len(smooth_sequence(frames, 7, "official")) == 3
    # a joint missing in most frames stays missing; one seen in most uses only confident frames
    fs = [_person(100, 500, 300) for _ in range(3)]
    fs[0].body[10] = 0
    m = median_smooth(fs)
    assert np.allclose(m.body[10], fs[1].body[10])


def test_backends_interface(shared, tmp_path, monkeypatch):
    import builtins

    from v2v.data.pose_backends import extract_poses, get_backend, mediapipe_to_body25

    seq = extract_poses(shared / "data" / "pose" / "poses-openpose" / "001_001", "openpose", frame_hw=(1080, 1920))
    assert len(seq) == 3 and seq.frames[0].format == "BODY_25" and seq.frame_hw == (1080, 1920)
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "mediapipe":
            raise ImportError("no mediapipe")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(V2VError, match=r"install v2v\[pose\]"):
        get_backend("mediapipe")
    monkeypatch.setattr(builtins, "__import__", real_import)
    with pytest.raises(V2VError, match="did you mean 'openpose'"):
        get_backend("openpos")
    lm = np.zeros((33, 4))
    lm[:, 3] = 1.0
    lm[11, :2] = (0.6, 0.3)  # left shoulder
    lm[12, :2] = (0.4, 0.3)  # right shoulder
    lm[27, :2] = (0.55, 0.9)  # left ankle
    lm[0, :2] = (0.5, 0.1)
    b = mediapipe_to_body25(lm, (100, 200))
    assert b[2, :2].tolist() == pytest.approx([80, 30]) and b[5, :2].tolist() == pytest.approx([120, 30])
    assert b[1, :2].tolist() == pytest.approx([100, 30])  # neck = mid-shoulders
    assert b[14, :2].tolist() == pytest.approx([110, 90]) and b[0, :2].tolist() == pytest.approx([100, 10])


def test_pose_extract_and_normalize_cli(shared, run_cli, tmp_path):
    src = shared / "data" / "pose" / "poses-openpose" / "001_001"
    rc, _out, err = run_cli("pose", "extract", src, "--out", tmp_path / "ex", "--backend", "openpose")
    assert rc == 0, err
    got = read_pose_sequence(tmp_path / "ex")
    assert len(got) == 3 and np.array_equal(got[1].body, read_pose(src / "frame000101.json").body)
    rc, _out, err = run_cli("pose", "normalize", "--source", src, "--target", src, "--out", tmp_path / "norm",
                           "--source-size", "1080x1920", "--target-size", "1080x1920", "--smooth", "1")
    assert rc == 0, err
    info = json.loads((tmp_path / "norm" / "norm_params.json").read_text())
    assert info["norm_params"]["scale_close"] == pytest.approx(1.0) and info["target_stats"]["count"] >= 1
    frames = read_pose_sequence(tmp_path / "norm")
    assert len(frames) == 3 and frames[0].format == "BODY_23"
    # identical source and target statistics: the normalisation is the identity on valid frames
    ref = read_pose(src / "frame000101.json").to_body23()
    assert np.abs(frames[1].body - ref.body).max() < 1e-6


def test_cli_errors_are_one_line(tmp_path, run_cli):
    tgt = tmp_path / "tgt"
    tgt.mkdir()
    body = np.zeros((25, 3))
    body[[0, 1, 17, 18], :] = (100, 100, 1)  # head and neck only: no ankles
    for t in range(3):
        (tgt / f"frame{t:06d}_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": body.reshape(-1).tolist()}]}))
    rc, _out, err = run_cli("pose", "normalize", "--source", tgt, "--target", tgt, "--out", tmp_path / "o")
    assert rc == 2 and err.startswith("error: target poses") and "ankle" in err and len(err.strip().splitlines()) == 1
    (tgt / "frame000001_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 60}]}))
    rc, _out, err = run_cli("pose", "render", tgt, "--out", tmp_path / "r")
    assert rc == 2 and "frame000001_keypoints.json" in err and "60 values" in err and len(err.strip().splitlines()) == 1


def test_target_stats_json_round_trip(shared, run_cli, tmp_path):
    from v2v.commands.dance import _load_target

    src = shared / "data" / "pose" / "poses-openpose" / "001_001"
    rc, _out, err = run_cli("pose", "normalize", "--source", src, "--target", src, "--out", tmp_path / "n",
                            "--source-size", "1080x1920", "--target-size", "1080x1920")
    assert rc == 0, err
    st_json, hw_json, fmt = _load_target(str(tmp_path / "n" / "norm_params.json"), None, True)
    st_dir, hw_dir, _ = _load_target(str(src), (1080, 1920), True)
    assert fmt == "BODY_23" and tuple(hw_json) == hw_dir == (1080, 1920)
    assert st_json.maxtoe == st_dir.maxtoe and st_json.tiptoe_to_height == st_dir.tiptoe_to_height
