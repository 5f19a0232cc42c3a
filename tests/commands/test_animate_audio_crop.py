"""`v2v animate` keeps the driving video's sound (default) and --auto-crop animates a face crop."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from v2v.data.audio import has_audio, media_duration
from v2v.data.video import open_video

ASSETS = Path(__file__).resolve().parents[2] / "v2v" / "assets" / "demo"
FOMM = ["--config", ASSETS / "fomm_puppets.yaml", "--checkpoint", ASSETS / "fomm_puppets.safetensors"]


@pytest.fixture(scope="module")
def toned_clip(tmp_path_factory):
    import imageio_ffmpeg

    path = tmp_path_factory.mktemp("tone") / "driving.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=2",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
                   check=True, timeout=120)
    return path


def test_animate_keeps_the_audio(run_cli, shared, toned_clip, tmp_path):
    out = tmp_path / "out.mp4"
    src = shared / "data" / "animation" / "source" / "05.png"
    rc, _, err = run_cli("animate", *FOMM, "--source", src, "--driving", toned_clip, "--out", out)
    assert rc == 0, err
    assert has_audio(out)
    a, v = media_duration(out, "Audio"), media_duration(out, "Video")
    assert abs(a - v) < 0.15 and abs(v - 2.0) < 0.15, (a, v)
    silent = tmp_path / "silent.mp4"
    rc, _, err = run_cli("animate", *FOMM, "--source", src, "--driving", toned_clip, "--out", silent, "--no-audio")
    assert rc == 0 and not has_audio(silent)


def test_animate_auto_crop(run_cli, shared, tmp_path):
    frames = next((shared / "data" / "face" / "images").iterdir())  # 3 real 640x480 face frames
    out = tmp_path / "cropped.mp4"
    rc, _, err = run_cli("animate", *FOMM, "--source", shared / "data" / "animation" / "source" / "05.png",
                         "--driving", frames, "--out", out, "--auto-crop")
    assert rc == 0, err
    assert "auto-crop:" in err and "box" in err
    with open_video(out) as r:
        assert r.num_frames == 3
