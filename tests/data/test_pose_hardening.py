"""Hostile keypoints, dataset roots of per-sequence folders, symlinks in outputs, official face boxes."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from v2v.data.pose import PoseFrame, find_pose_sequences, read_openpose_json, read_pose, write_openpose_json
from v2v.errors import V2VError


def _person(rng, k=25, scale=(1920, 1080)):
    body = np.zeros((k, 3))
    body[:, 0] = rng.uniform(600, 1300, k)
    body[:, 1] = rng.uniform(100, 1000, k)
    body[:, 2] = rng.uniform(0.5, 1.0, k)
    return body


def _write_seq(folder, n=3, seed=0, k=25):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for t in range(n):
        fmt = {25: "BODY_25", 23: "BODY_23", 18: "COCO_18"}[k]
        write_openpose_json(os.path.join(folder, f"frame{t:06d}_keypoints.json"),
                            PoseFrame(body=_person(rng, k), format=fmt))


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e308", "1" + "0" * 400])
def test_non_finite_or_huge_keypoints_are_undetected(tmp_path, bad, caplog):
    rng = np.random.default_rng(1)
    vals = [f"{v:.3f}" for v in _person(rng).reshape(-1)]
    vals[0] = bad  # nose x
    vals[3 * 4 + 1] = bad  # RWrist y
    p = tmp_path / "f_keypoints.json"
    p.write_text('{"people": [{"pose_keypoints_2d": [' + ",".join(vals) + "]}]}")
    with caplog.at_level("WARNING"):
        fr = read_openpose_json(p)
    assert fr.body[0].tolist() == [0, 0, 0] and fr.body[4].tolist() == [0, 0, 0]
    assert np.isfinite(fr.body).all() and fr.body[1, 2] > 0
    assert "2 pose_keypoints" in caplog.text or "2 people[0].pose_keypoints_2d" in caplog.text


def test_hostile_keypoints_render_without_crash(tmp_path, run_cli):
    seq = tmp_path / "seq"
    _write_seq(seq, 2)
    f = seq / "frame000001_keypoints.json"
    d = json.loads(f.read_text())
    d["people"][0]["pose_keypoints_2d"][:6] = [1e308, -1e308, 1.0, 10**30, 5.0, 1.0]
    f.write_text(json.dumps(d).replace("1e+308", "1e999"))
    rc, _, err = run_cli("pose", "render", seq, "--out", tmp_path / "labels", "--size", "64")
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "labels")) == ["frame000000.png", "frame000001.png"]


def test_deeply_nested_json_is_one_line_error(tmp_path, run_cli):
    p = tmp_path / "seq" / "frame000000_keypoints.json"
    p.parent.mkdir()
    p.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(V2VError, match="nested too deeply|not an OpenPose"):
        read_pose(p)
    rc, _out, err = run_cli("pose", "render", p.parent, "--out", tmp_path / "labels")
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "labels").exists()


def test_dataset_root_of_sequences_is_mirrored(tmp_path, run_cli):
    root = tmp_path / "poses-openpose"
    _write_seq(root / "seqA", 2, 0)
    _write_seq(root / "group" / "seqB", 3, 1)
    assert [r for r, _ in find_pose_sequences(root)] == [os.path.join("group", "seqB"), "seqA"]
    rc, _, err = run_cli("pose", "render", root, "--out", tmp_path / "labels", "--size", "32", "--facetexts")
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "labels" / "seqA")) == ["facetexts", "frame000000.png", "frame000001.png"]
    assert len(os.listdir(tmp_path / "labels" / "group" / "seqB" / "facetexts")) == 3
    rc, _, err = run_cli("pose", "extract", root, "--out", tmp_path / "ext")
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "ext" / "group" / "seqB")) == [
        "frame000000_keypoints.json", "frame000001_keypoints.json", "frame000002_keypoints.json", "meta.json"]
    _write_seq(tmp_path / "target", 6, 5)
    rc, _, err = run_cli("pose", "normalize", "--source", root, "--target", tmp_path / "target",
                         "--out", tmp_path / "norm", "--smooth", "1")
    assert rc == 0, err
    assert (tmp_path / "norm" / "seqA" / "norm_params.json").is_file()
    assert (tmp_path / "norm" / "group" / "seqB" / "frame000002_keypoints.json").is_file()


def test_no_write_through_planted_symlinks_and_umask_permissions(tmp_path, run_cli):
    seq = tmp_path / "seq"
    _write_seq(seq, 1)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "labels"
    (out / "facetexts").mkdir(parents=True)
    os.symlink(victim, out / "facetexts" / "frame000000.txt")
    os.symlink(victim, out / "frame000000.png")
    old = os.umask(0o022)
    try:
        rc, _, err = run_cli("pose", "render", seq, "--out", out, "--size", "32", "--facetexts")
        assert rc == 0, err
        ext = tmp_path / "ext"
        ext.mkdir()
        os.symlink(victim, ext / "meta.json")
        rc, _, err = run_cli("pose", "extract", seq, "--out", ext)
        assert rc == 0, err
    finally:
        os.umask(old)
    assert victim.read_text() == "keep me"
    for p in (out / "facetexts" / "frame000000.txt", out / "frame000000.png", ext / "meta.json"):
        assert not p.is_symlink() and (p.stat().st_mode & 0o777) == 0o644, p


def _official_box(body, fmt, S, buffer=70):
    """graph_train.py --facetexts --output_dim S, written from the official formulas."""
    nose, rear, lear = {"BODY_23": (18, 20, 22), "BODY_25": (0, 17, 18), "COCO_18": (0, 16, 17)}[fmt]
    if body[nose, 2] > 0:
        ax, ay = body[nose, :2]
    elif body[rear, 2] > 0 and body[lear, 2] > 0:
        ax, ay = 0.5 * (body[rear, :2] + body[lear, :2])
    elif body[rear, 2] > 0:
        ax, ay = body[rear, :2]
    else:
        ax, ay = body[lear, :2]
    sx, sy = 2.0 * S / 1920, float(S) / 1080
    minx, miny = int(max(ax - buffer, 0) * sx), int(max(ay - buffer, 0) * sy)
    maxx, maxy = int(min(ax + buffer, 1920) * sx), int(min(ay + buffer, 1080) * sy)
    if maxy - miny != 128:
        maxy = maxy + (128 - (maxy - miny)) // 2
        miny = maxy - 128
        if maxy > 512:
            miny, maxy = 384, 512
        if miny < 0:
            miny, maxy = 0, 128
    if maxx - minx != 128:
        maxx = maxx + (128 - (maxx - minx)) // 2
        minx = maxx - 128
        if maxx > 1024:
            minx, maxx = 896, 1024
        if minx < 0:
            minx, maxx = 0, 128
    return [miny, maxy, minx, maxx]


def _bodies(rng, k):
    out = []
    for t in range(3):
        body = _person(rng, k)
        body[:, 0] = rng.uniform(0, 1920, k)
        body[:, 1] = rng.uniform(0, 1080, k)
        if t == 1:
            body[{18: 0, 25: 0, 23: 18}[k], 2] = 0  # no nose: the ears decide
        out.append(body)
    return out


FORMATS = [(18, "COCO_18"), (25, "BODY_25"), (23, "BODY_23")]


def test_official_face_box_at_every_output_dim():
    from v2v.data.pose_render import official_face_box, to_canvas

    rng = np.random.default_rng(0)
    for k, fmt in FORMATS:
        for S in (32, 64, 128, 256, 300, 384, 512, 640, 768, 1024, 2048):
            for body in _bodies(rng, k):
                cf, _ = to_canvas(PoseFrame(body=body, format=fmt), (1080, 1920), (1080, 1920))
                assert list(official_face_box(cf, S)) == _official_box(body, fmt, S), (S, fmt)


@pytest.mark.parametrize(("S", "k", "fmt"), [(256, 18, "COCO_18"), (96, 25, "BODY_25")])
def test_render_label_size_and_facetexts_follow_output_dim(tmp_path, run_cli, S, k, fmt):
    from PIL import Image

    seq = tmp_path / "seq"
    os.makedirs(seq)
    bodies = _bodies(np.random.default_rng(S + k), k)
    for t, body in enumerate(bodies):
        write_openpose_json(seq / f"frame{t:06d}_keypoints.json", PoseFrame(body=body, format=fmt))
    rc, _, err = run_cli("pose", "render", seq, "--out", tmp_path / "out", "--size", S, "--facetexts",
                         "--frame-size", "1080x1920")
    assert rc == 0, err
    for t, body in enumerate(bodies):
        with Image.open(tmp_path / "out" / f"frame{t:06d}.png") as im:
            assert im.size == (2 * S, S)
        got = [int(v) for v in (tmp_path / "out" / "facetexts" / f"frame{t:06d}.txt").read_text().split()]
        assert got == _official_box(body, fmt, S), (S, fmt, t)


def test_target_stats_json_errors_are_one_line(tmp_path):
    from v2v.commands.dance import _load_target

    good = {"target_stats": {"maxheight": 1.0, "mintoe": 1.0, "maxtoe": 2.0, "avemintoe": 1.0, "minmaxtoe": 2.0,
                             "median": 1.5}, "target_hw": [64, 64]}
    cases = {"empty": "", "truncated": json.dumps(good)[:40], "incomplete": json.dumps({"target_stats": {"maxheight": 1}}),
             "wrongtype": json.dumps({"target_stats": {**good["target_stats"], "median": "x"}}),
             "badhw": json.dumps({**good, "target_hw": [0, "a"]}), "list": "[1, 2]", "deep": "[" * 50000}
    for name, text in cases.items():
        p = tmp_path / f"{name}.json"
        p.write_text(text)
        with pytest.raises(V2VError) as ei:
            _load_target(str(p), None, True)
        assert "\n" not in str(ei.value), name
    p = tmp_path / "ok.json"
    p.write_text(json.dumps(good))
    st, hw, fmt = _load_target(str(p), None, True)
    assert hw == (64, 64) and st.median == 1.5 and fmt == "BODY_23"
