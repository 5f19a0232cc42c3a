"""Keeping the sound: copy_audio muxes a source's audio into an output, trimmed to its length."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from v2v.data.audio import copy_audio, has_audio, media_duration
from v2v.data.video import VideoWriter, open_video


def _ffmpeg():
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def toned_clip(tmp_path_factory):
    """A 3 s, 10 fps, 48x48 clip with a 440 Hz tone."""
    path = tmp_path_factory.mktemp("audio") / "tone.mp4"
    subprocess.run([_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=48x48:rate=10:duration=3",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
                   check=True, timeout=120)
    return path


def _write(path, n, fps=10.0):
    with VideoWriter(path, fps) as w:
        for i in range(n):
            w.write(np.full((48, 48, 3), i * 10 % 255, np.uint8))


def test_audio_copied_and_trimmed_to_output(toned_clip, tmp_path):
    assert has_audio(toned_clip)
    out = tmp_path / "out.mp4"
    _write(out, 15)  # 1.5 s of video
    mode = os.stat(out).st_mode & 0o777
    assert not has_audio(out)
    assert copy_audio(toned_clip, out)
    assert has_audio(out)
    a = media_duration(out, "Audio")
    v = media_duration(out, "Video")
    assert abs(v - 1.5) < 0.15 and abs(a - v) < 0.15, (a, v)
    with open_video(out) as r:  # the frames are untouched
        assert r.num_frames == 15 and abs(r.fps - 10) < 1e-6
    assert os.stat(out).st_mode & 0o777 == mode
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp files left


def test_silent_source_and_gif_outputs_are_left_alone(toned_clip, tmp_path):
    silent = tmp_path / "silent.mp4"
    _write(silent, 5)
    out = tmp_path / "out.mp4"
    _write(out, 5)
    before = out.read_bytes()
    assert not copy_audio(silent, out)
    assert out.read_bytes() == before
    gif = tmp_path / "out.gif"
    _write(gif, 3)
    assert not copy_audio(toned_clip, gif)
