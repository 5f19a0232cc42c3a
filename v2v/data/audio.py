"""Keep a video's sound: copy the audio track of one file into another, trimmed to its length.

FOMM, TPSMM and LivePortrait users ask for this more than anything else: the animated output
should speak with the driving video's voice. v2v writes video frames first (atomically), then
:func:`copy_audio` muxes the source's first audio stream into the output:

- the video stream is copied bit for bit (``-c:v copy``); only the audio is (re-)encoded, to AAC
  for mp4/mov/mkv and Opus for webm;
- the audio starts at the source's ``start`` seconds and is cut at the output's duration
  (``-t``), so a trimmed or shortened output stays in sync with its frames;
- a source without audio (or a GIF / frame folder) leaves the output untouched and returns False;
- the result replaces the output atomically (temp file + ``os.replace``); on failure the
  video-only output stays as it was.

ffmpeg is the binary that imageio-ffmpeg ships; its messages are shown only on failure.
"""
from __future__ import annotations

import os
import re
import subprocess

from v2v.errors import V2VError

__all__ = ["copy_audio", "has_audio", "media_duration"]

_AUDIO_CONTAINERS = {".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus"}


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _header(path: str) -> str:
    r = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-i", os.fspath(path)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, check=False)
    return r.stderr.decode("utf-8", "replace")


def has_audio(path: str | os.PathLike) -> bool:
    """True when ``path`` is a media file with at least one audio stream.

    >>> has_audio("no/such/file.mp4")
    False
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        return False
    return any(ln.lstrip().startswith("Stream ") and " Audio: " in ln for ln in _header(path).splitlines())


def media_duration(path: str | os.PathLike, stream: str = "Video") -> float | None:
    """Duration in seconds of a file's first ``Video`` or ``Audio`` stream (container duration
    when the stream has none), by decoding it with ffmpeg's null muxer; None when absent."""
    path = os.fspath(path)
    sel = "v:0" if stream == "Video" else "a:0"
    r = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-i", path, "-map", sel, "-f", "null", "-"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=600, check=False)
    times = re.findall(r"time=(\d+):(\d+):([0-9.]+)", r.stderr.decode("utf-8", "replace"))
    if r.returncode != 0 or not times:
        return None
    h, m, s = times[-1]
    return 3600 * int(h) + 60 * int(m) + float(s)


def copy_audio(source: str | os.PathLike, video: str | os.PathLike, start: float = 0.0,
               duration: float | None = None) -> bool:
    """Mux ``source``'s first audio stream into ``video`` (in place, atomically).

    Args:
        source: the file whose sound to keep (e.g. the driving video).
        video: the freshly written output video (mp4/mov/mkv/m4v/webm); other outputs (GIF,
            frame folders) have no audio and are left as they are.
        start: seconds into ``source`` where the output's first frame was taken.
        duration: output length in seconds (default: the output's video duration).

    Returns:
        True when an audio track was written, False when there was nothing to do.

    Raises:
        V2VError: ffmpeg failed (the message holds its last line); ``video`` is unchanged.
    """
    source, video = os.fspath(source), os.fspath(video)
    ext = os.path.splitext(video)[1].lower()
    if ext not in _AUDIO_CONTAINERS or not has_audio(source):
        return False
    if duration is None:
        duration = media_duration(video, "Video")
    folder = os.path.dirname(os.path.abspath(video))
    tmp = os.path.join(folder, f".{os.path.basename(video)}.audio-{os.getpid()}{ext}")
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", video]
    if start:
        cmd += ["-ss", f"{start:.6f}"]
    cmd += ["-i", source, "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", _AUDIO_CONTAINERS[ext]]
    if duration:
        cmd += ["-t", f"{duration:.6f}"]
    if ext != ".webm":
        cmd += ["-movflags", "+faststart"]
    cmd += [tmp]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=3600, check=False)
        if r.returncode != 0 or not os.path.isfile(tmp):
            msg = (r.stderr.decode("utf-8", "replace").strip().splitlines() or ["unknown error"])[-1]
            raise V2VError(f"{video}: could not copy the audio of {source} ({msg})")
        mode = os.stat(video).st_mode & 0o777
        os.chmod(tmp, mode)
        os.replace(tmp, video)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True
