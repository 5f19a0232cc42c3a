"""`v2v crop` on real faces and real driving clips (../shared), and its one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from v2v.data.crop import find_tubes, make_detector
from v2v.data.image import read_image
from v2v.data.video import open_video


def test_face_box_contains_all_68_landmarks(shared):
    det, used = make_detector("auto")
    images = sorted((shared / "data" / "face" / "images").rglob("*.jpg"))
    assert images
    for img_path in images:
        rel = img_path.relative_to(shared / "data" / "face" / "images").with_suffix(".json")
        lm = np.array(json.loads((shared / "data" / "face" / "landmarks-dlib68" / rel).read_text()))
        assert lm.shape == (68, 2)
        tubes = find_tubes([read_image(img_path)], det, min_frames=1)
        assert tubes, f"{used}: no face found in {img_path.name}"
        left, top, right, bottom = tubes[0].box
        assert (lm[:, 0] >= left).all() and (lm[:, 0] < right).all(), (img_path.name, tubes[0].box)
        assert (lm[:, 1] >= top).all() and (lm[:, 1] < bottom).all(), (img_path.name, tubes[0].box)
        # a face crop, not the whole frame
        assert (right - left) * (bottom - top) < 0.5 * 640 * 480


def test_one_stable_box_per_driving_clip(shared, run_cli):
    clips = sorted((shared / "data" / "animation" / "driving").glob("*.mp4"))
    assert clips
    for clip in clips:
        rc, out, err = run_cli("crop", clip)
        assert rc == 0, err
        lines = [ln for ln in out.splitlines() if ln.startswith("tube ")]
        assert len(lines) == 1, out  # one tube covering the clip
        with open_video(clip) as r:
            n = r.num_frames
        assert f"frames 0-{n - 1} ({n})" in lines[0]


def test_crop_writes_video_and_refuses_its_input(shared, run_cli, tmp_path):
    frames = next((shared / "data" / "face" / "images").iterdir())  # a 3-frame folder is a video
    out = tmp_path / "crop.mp4"
    rc, _, err = run_cli("crop", frames, "--out", out, "--size", "64")
    assert rc == 0, err
    with open_video(out) as r:
        assert r.size == (64, 64) and r.num_frames == 3
    rc, _, err = run_cli("crop", out, "--out", out)
    assert rc == 2 and err.count("\n") == 1 and "input" in err


def test_no_face_is_a_one_line_error(run_cli, tmp_path):
    from v2v.data.image import write_image

    img = tmp_path / "blank.png"
    write_image(img, np.zeros((64, 64, 3), np.uint8))
    rc, _, err = run_cli("crop", img, "--detector", "haar")
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("gap,expect", [(0, 2), (3, 1)])
def test_max_gap_bridges_missed_detections(gap, expect):
    frames = [np.zeros((32, 32, 3), np.uint8)] * 10
    boxes = iter([[(8, 8, 24, 24)]] * 4 + [[]] * 2 + [[(8, 8, 24, 24)]] * 4)
    tubes = find_tubes(frames, lambda f: next(boxes), min_frames=1, max_gap=gap)
    assert len(tubes) == expect
