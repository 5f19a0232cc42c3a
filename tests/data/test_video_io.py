"""Video I/O: round trips (mp4, gif, webm, frame folder), odd sizes, fps, errors, atomicity."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from v2v.data.video import VideoWriter, list_frames, natural_key, open_video, read_video, write_video
from v2v.errors import V2VError


def synthetic_clip(t: int = 30, w: int = 64, h: int = 48) -> np.ndarray:
    """A moving horizontal gradient plus a soft moving blob: uint8 T,H,W,3."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for k in range(t):
        r = x / w * 150 + k * 3
        g = y / h * 200
        b = 80 + 150 * np.exp(-((x - 10 - k) ** 2 + (y - 20) ** 2) / 60.0)
        frames.append(np.stack([r, g, b], -1).astype(np.uint8))
    return np.stack(frames)


def coded_clip(t: int = 30, w: int = 64, h: int = 48, block: int = 8) -> np.ndarray:
    """Frames of random grey blocks (levels 48 or 208, one pattern per frame): uint8 T,H,W,3."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, size=(t, -(-h // block), -(-w // block)))
    frames = np.where(codes, 208, 48).astype(np.uint8).repeat(block, 1).repeat(block, 2)[:, :h, :w]
    return np.repeat(frames[..., None], 3, axis=-1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def _listing(d):
    return sorted(os.listdir(d))


@pytest.mark.parametrize(("w", "h", "fps"), [(64, 48, 12.5), (65, 49, 24.0)])
def test_mp4_roundtrip(tmp_path, w, h, fps):
    clip = synthetic_clip(30, w, h)
    p = tmp_path / "clip.mp4"
    write_video(p, clip, fps)
    with open_video(p) as r:
        assert r.size == (w, h)
        assert r.num_frames == 30
        assert r.fps == pytest.approx(fps, abs=1e-6)
        frames = np.stack(list(r))
    assert frames.shape == (30, h, w, 3) and frames.dtype == np.uint8
    assert psnr(frames, clip) > 35
    assert _listing(tmp_path) == ["clip.mp4"]
    # no frame dropped, duplicated or reordered: the smooth clip's adjacent frames differ by about
    # the codec error (~1 grey level), so a nearest-frame test on it is ambiguous; frames carrying a
    # random block code differ from each other by ~60 levels and identify themselves unambiguously
    coded = coded_clip(30, w, h)
    q = tmp_path / "coded.mp4"
    write_video(q, coded, fps)
    got = read_video(q)[0].astype(np.float64)
    assert got.shape == coded.shape
    errs = np.abs(got[:, None] - coded[None].astype(np.float64)).mean(axis=(2, 3, 4))  # (decoded, source)
    own = np.diag(errs)
    others = errs + np.diag(np.full(30, np.inf))
    assert (own < 10).all(), own.max()
    assert (others.min(axis=1) > 3 * own).all()


def test_odd_size_is_padded_with_edge_in_the_file(tmp_path):
    clip = synthetic_clip(3, 65, 49)
    p = tmp_path / "odd.mp4"
    write_video(p, clip, 10)
    from v2v.data.video import _probe

    info = _probe(str(p))
    assert info["size"] == (66, 50) and info["crop"] == (65, 49)


def test_gif_and_webm_roundtrip(tmp_path):
    clip = synthetic_clip(30, 65, 49)
    write_video(tmp_path / "a.gif", clip, 12.5)
    frames, meta = read_video(tmp_path / "a.gif")
    assert frames.shape == clip.shape
    assert meta["fps"] == pytest.approx(12.5) and meta["num_frames"] == 30
    assert psnr(frames, clip) > 30  # 256-colour palette
    write_video(tmp_path / "b.webm", torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255, 24)
    frames, meta = read_video(tmp_path / "b.webm")
    assert frames.shape == clip.shape and meta["fps"] == pytest.approx(24)
    assert psnr(frames, clip) > 35


def test_frame_folder_roundtrip_exact_and_natural_order(tmp_path):
    clip = synthetic_clip(12, 65, 49)
    out = tmp_path / "frames"
    with VideoWriter(out, fps=24) as wr:
        wr.write(clip[0])  # uint8 HWC
        wr.write(torch.from_numpy(clip[1]).permute(2, 0, 1).float() / 255)  # float 3,H,W
        wr.write(torch.from_numpy(clip[2:]).permute(0, 3, 1, 2).float() / 255)  # float B,3,H,W
    assert len(list_frames(out)) == 12
    r = open_video(out, fps=24)
    assert r.kind == "folder" and r.num_frames == 12 and r.fps == 24 and r.size == (65, 49)
    np.testing.assert_array_equal(np.stack(list(r)), clip)
    assert open_video(out).fps == 25.0  # default for folders
    # natural order: 2 before 10
    names = ["f10.png", "f2.png", "f1.png"]
    assert sorted(names, key=natural_key) == ["f1.png", "f2.png", "f10.png"]
    # overwriting an existing folder replaces it as a whole
    write_video(out, clip[:3], 5)
    assert len(list_frames(out)) == 3
    assert _listing(tmp_path) == ["frames"]


def test_batches_and_read_indices(tmp_path):
    clip = synthetic_clip(10, 32, 24)
    write_video(tmp_path / "f", clip, 10)
    r = open_video(tmp_path / "f")
    bs = list(r.batches(4))
    assert [b.shape[0] for b in bs] == [4, 4, 2]
    assert bs[0].shape == (4, 3, 24, 32) and bs[0].dtype == torch.float32
    torch.testing.assert_close(bs[1][0], torch.from_numpy(clip[4]).permute(2, 0, 1).float() / 255)
    small = next(r.batches(3, size=(12, 16)))
    assert small.shape == (3, 3, 12, 16)
    torch.testing.assert_close(small.mean(), bs[0][:3].mean(), atol=2e-3, rtol=0)
    np.testing.assert_array_equal(r.read([7, 2, 7]), clip[[7, 2, 7]])
    with pytest.raises(V2VError, match="frame 10 requested"):
        r.read([10])


def test_single_image_is_one_frame_video(shared):
    p = shared / "data/animation/source/doll-06.png"
    with open_video(p) as r:
        assert r.kind == "image" and r.num_frames == 1 and r.size == (998, 1030)
        (f,) = list(r)
    assert f.shape == (1030, 998, 3) and (f[:, -6:] == 255).all()


def test_real_driving_video_meta_and_frames(shared):
    r = open_video(shared / "data/animation/driving/08.mp4")
    assert r.fps == 35.0 and r.size == (256, 256) and r.num_frames == 150
    fr = r.read([0, 4])
    assert fr.shape == (2, 256, 256, 3)
    assert 0 < np.abs(fr[0].astype(int) - fr[1]).mean() < 40  # consecutive-ish frames: similar, not equal
    r0 = open_video(shared / "data/animation/driving/00.mp4")
    assert r0.fps == 30.0 and r0.num_frames == 265


def test_truncated_mp4_raises_naming_file(tmp_path):
    clip = (np.random.default_rng(0).random((30, 48, 64, 3)) * 255).astype(np.uint8)
    write_video(tmp_path / "video.mp4", clip, 24)
    data = (tmp_path / "video.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(V2VError, match=r"cut\.mp4: cannot decode \(truncated or not a video\)") as ei:
        read_video(cut)
    assert "\n" not in str(ei.value)


def test_truncated_real_mp4_without_faststart(tmp_path, shared):
    data = (shared / "data/animation/driving/08.mp4").read_bytes()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(V2VError, match=r"half\.mp4: cannot decode"):
        read_video(cut)


def test_garbage_and_empty_files(tmp_path):
    g = tmp_path / "garbage.mp4"
    g.write_bytes(b"\x00garbage" * 200)
    with pytest.raises(V2VError, match=r"garbage\.mp4: cannot decode"):
        open_video(g)
    e = tmp_path / "empty.mp4"
    e.write_bytes(b"")
    with pytest.raises(V2VError, match=r"empty\.mp4: contains no frames"):
        open_video(e)
    d = tmp_path / "nothing"
    d.mkdir()
    with pytest.raises(V2VError, match=r"nothing: contains no frames"):
        open_video(d)
    with pytest.raises(V2VError, match=r"nope\.mp4: file not found"):
        open_video(tmp_path / "nope.mp4")


def test_zero_frame_mp4(tmp_path):
    import subprocess

    import imageio_ffmpeg

    z = tmp_path / "zero.mp4"
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=16x16:d=1",
    ]
    subprocess.run([*cmd, "-frames:v", "0", "-c:v", "libx264", str(z)], check=True)
    with pytest.raises(V2VError, match=r"zero\.mp4: contains no frames"):
        read_video(z)


def test_early_stop_kills_decoder(shared):
    r = open_video(shared / "data/animation/driving/00.mp4")
    it = iter(r)
    next(it)
    proc = r._proc
    assert proc is not None and proc.poll() is None
    r.close()
    assert proc.poll() is not None
    with open_video(shared / "data/animation/driving/00.mp4") as r2:
        for _ in r2:
            break
        proc = r2._proc
    assert proc.poll() is not None


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "outdir"])
def test_exception_inside_writer_leaves_nothing(tmp_path, name):
    clip = synthetic_clip(3, 16, 16)
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(tmp_path / name, fps=10) as wr:
        wr.write(clip[0])
        wr.write(clip[1])
        raise RuntimeError("boom")
    assert _listing(tmp_path) == []


def test_failed_overwrite_keeps_old_output(tmp_path):
    clip = synthetic_clip(4, 16, 16)
    write_video(tmp_path / "keep.mp4", clip, 10)
    before = (tmp_path / "keep.mp4").read_bytes()
    with pytest.raises(V2VError, match="expected 16x16"), VideoWriter(tmp_path / "keep.mp4", 10) as wr:
        wr.write(clip[0])
        wr.write(np.zeros((8, 8, 3), np.uint8))  # size change -> error
    assert (tmp_path / "keep.mp4").read_bytes() == before
    assert _listing(tmp_path) == ["keep.mp4"]


def test_writer_rejects_bad_extension_and_fps(tmp_path):
    with pytest.raises(V2VError, match=r"\.xyz"):
        VideoWriter(tmp_path / "a.xyz", 10)
    with pytest.raises(V2VError, match="fps"):
        VideoWriter(tmp_path / "a.mp4", 0)
