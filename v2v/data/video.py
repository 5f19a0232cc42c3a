"""Video I/O: streaming readers and atomic writers for files, GIFs, frame folders and images.

Conventions: a decoded frame is ``np.uint8 (H, W, 3)`` RGB; tensors are float32 ``B,3,H,W`` in
``[0, 1]``; ``VideoReader.size`` is ``(W, H)`` (like PIL/ffmpeg) while every ``size=`` argument
that asks for a *resize* is ``(H, W)`` (like torch). RGBA and gray frames follow
:mod:`v2v.data.image` (alpha composited over white, gray replicated).

Reading (:func:`open_video` -> :class:`VideoReader`)
  * ``.mp4 .mov .m4v .avi .webm .mkv`` (and other ffmpeg containers): decoded by the ffmpeg
    binary shipped with ``imageio-ffmpeg`` through a pipe (``-f rawvideo -pix_fmt rgb24``,
    ``-fps_mode passthrough`` so no frame is duplicated or dropped). Frames stream one at a
    time (constant memory). ``fps`` comes from the stream header; ``num_frames`` from the
    container index (exact for mp4/mov/m4v/avi, ``None`` for other containers). When the
    container announces N frames but fewer decode (with decoder errors, or more than 2 short),
    or ffmpeg fails, iteration raises ``V2VError("<file>: cannot decode (truncated or not a
    video) ...")`` after yielding the frames that did decode.
  * ``.gif``: Pillow, frame by frame (``fps = 1000 / duration_ms`` of the first frame;
    GIF stores durations in 10 ms units, so e.g. 24 fps reads back as 25 fps).
  * a folder of frames (png/jpg/...): files sorted in *natural* order (``2.png`` before
    ``10.png``); hidden files are ignored. ``fps`` defaults to 25 unless given.
  * a single image: a 1-frame video, ``fps`` defaults to 25.

Writing (:class:`VideoWriter`, :func:`write_video`) is **atomic** for every format: the output
goes to a temp file/folder beside the target and is moved into place by ``os.replace`` on a
clean close; if an exception escapes the ``with`` block the temp output is deleted and the
target is untouched.
  * ``.mp4 .mov .m4v .mkv .avi``: H.264 (``libx264``), ``yuv420p``, ``-movflags +faststart``,
    quality by ``crf`` (default 18, from ``quality=8`` on imageio's 0-10 scale:
    ``crf = round(51 - 4.1 * quality)``). yuv420p needs even sizes (a macro-block size of 2;
    imageio's default of 16 would *resize* the frames, which we do not do): an odd width or
    height is **padded by one replicated edge column/row** and the true size is stored in the
    container comment ``v2v:size=WxH``; :func:`open_video` crops it back, so a 65x49 clip reads
    back as 65x49 (other players show 66x50).
  * ``.webm``: VP9 (``libvpx-vp9``, yuv420p, ``-deadline realtime -cpu-used 8`` for speed, same
    crf and padding rule).
  * ``.gif``: Pillow, 256-colour palette per frame (fast octree quantizer), no dithering, ``loop=0``,
    frame duration ``round(1000 / fps)`` ms rounded to GIF's 10 ms units. Frames are kept in
    memory until close (GIFs are small).
  * a path ending in ``/`` or without extension: a frame folder ``000000.png, 000001.png, ...``
    (lossless). An existing folder at that path is replaced as a whole on close.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from v2v.data.image import IMAGE_EXTENSIONS, _as_uint8_hwc, read_image, resize_image, to_rgb_uint8
from v2v.errors import V2VError
from v2v.utils import atomic_path, default_file_mode

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "VideoReader",
    "VideoWriter",
    "is_video_path",
    "list_frames",
    "natural_key",
    "open_video",
    "read_video",
    "write_video",
]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".webm", ".mkv", ".gif", ".mpg", ".mpeg", ".flv", ".ts")
_EXACT_COUNT = (".mp4", ".mov", ".m4v", ".avi")
_X264 = (".mp4", ".mov", ".m4v", ".mkv", ".avi")
DEFAULT_FPS = 25.0
_SIZE_TAG = re.compile(r"v2v:size=(\d+)x(\d+)")


def natural_key(name: str):
    """Sort key for natural order: ``frame2.png`` < ``frame10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(name))]


def list_frames(folder: str | os.PathLike, exts=IMAGE_EXTENSIONS) -> list[Path]:
    """Image files of a folder (non-recursive, hidden files skipped) in natural order."""
    d = Path(folder)
    files = [
        p for p in d.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def is_video_path(path: str | os.PathLike) -> bool:
    """True when the extension is a video/GIF container this module reads."""
    return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


def _ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover
        exe = shutil.which("ffmpeg")
        if exe:
            return exe
        raise V2VError("video I/O needs ffmpeg: pip install imageio-ffmpeg (or put ffmpeg on PATH)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


# --------------------------------------------------------------------------------------------
# ffmpeg probing


def _probe(path: str) -> dict:
    """Parse ``ffmpeg -i`` output: size, fps, pix_fmt, rotation, duration, comment tag."""
    try:
        r = subprocess.run(
            [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path],
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        raise V2VError(f"{path}: cannot decode (ffmpeg timed out reading the header)") from None
    text = r.stderr.decode("utf-8", "replace")
    vlines = [ln for ln in text.splitlines() if ln.lstrip().startswith("Stream ") and " Video: " in ln]
    if not vlines:
        if "Input #0" in text:
            raise V2VError(f"{path}: contains no frames (no video stream)")
        raise V2VError(f"{path}: cannot decode (truncated or not a video)")
    # skip cover art ("attached pic") streams: map the first real video stream
    vidx = next((i for i, ln in enumerate(vlines) if "attached pic" not in ln), 0)
    line = vlines[vidx]
    m = re.search(r", (\d+)x(\d+)[ ,\[]", line + " ")
    if not m:
        raise V2VError(f"{path}: cannot decode (no frame size in the video stream header)")
    w, h = int(m.group(1)), int(m.group(2))
    fps = 0.0
    for pat in (r" ([0-9.]+)k? fps", r" ([0-9.]+)k? tbr"):
        mm = re.search(pat, line)
        if mm:
            fps = float(mm.group(1)) * (1000.0 if "k " in mm.group(0)[-6:] else 1.0)
            break
    rot = 0
    mr = re.search(r"rotation of (-?[0-9.]+) degrees", text) or re.search(r"rotate\s*:\s*(-?\d+)", text)
    if mr:
        rot = round(float(mr.group(1))) % 360
    if rot in (90, 270):
        w, h = h, w
    pix = ""
    mp = re.search(r"Video: [^,]+, ([a-z0-9_]+)", line)
    if mp:
        pix = mp.group(1)
    dur = 0.0
    md = re.search(r"Duration: (\d+):(\d+):([0-9.]+)", text)
    if md:
        dur = 3600 * int(md.group(1)) + 60 * int(md.group(2)) + float(md.group(3))
    tag = _SIZE_TAG.search(text)
    crop = None
    if tag:
        cw, ch = int(tag.group(1)), int(tag.group(2))
        if 0 < cw <= w and 0 < ch <= h and (cw, ch) != (w, h):
            crop = (cw, ch)
    return {"size": (w, h), "fps": fps, "pix_fmt": pix, "duration": dur, "crop": crop, "stream": vidx}


def _cv2_info(path: str) -> tuple[int | None, float | None]:
    """(frame count from the container index, exact fps) via OpenCV's FFmpeg backend, or Nones."""
    try:
        import cv2
    except ImportError:  # pragma: no cover
        return None, None
    with quiet_stderr():  # OpenCV's bundled FFmpeg logs decoder errors straight to fd 2
        cap = cv2.VideoCapture(path)
        try:
            if not cap.isOpened():
                return None, None
            n = round(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            f = float(cap.get(cv2.CAP_PROP_FPS))
            return (n if n > 0 else None), (f if f > 0 else None)
        finally:
            cap.release()


@contextlib.contextmanager
def quiet_stderr():
    """Hide what native code (OpenCV's FFmpeg, decoders) writes to fd 2, unless logging is verbose.

    The hidden text goes to the ``v2v.data.video`` debug log instead (shown with ``-v -v``).
    """
    if logging.getLogger(__name__).isEnabledFor(logging.INFO):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace").strip()
            if text:
                logging.getLogger(__name__).debug("native stderr: %s", text)


# --------------------------------------------------------------------------------------------
# reader


class VideoReader:
    """A lazily decoded video: a file (ffmpeg), a GIF, a frame folder or a single image.

    Attributes: ``path`` (str), ``fps`` (float), ``size`` ``(W, H)``, ``num_frames`` (int, or
    ``None`` when the container does not say), ``kind`` (``"ffmpeg" | "gif" | "folder" |
    "image"``). Iterating yields ``np.uint8 (H, W, 3)`` RGB frames one at a time (constant
    memory; each ``iter()`` restarts from frame 0). Use as a context manager to stop a running
    decoder early. Errors are V2VError naming the file.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None):
        p = os.fspath(path)
        self.path = p
        self._proc = None
        self._files: list[Path] = []
        self._crop = None
        self._alpha = False
        self._stream = 0
        if not os.path.exists(p):
            raise V2VError(f"{p}: file not found")
        ext = os.path.splitext(p)[1].lower()
        if os.path.isdir(p):
            self.kind = "folder"
            self._files = list_frames(p)
            if not self._files:
                raise V2VError(
                    f"{p}: contains no frames (expected image files {', '.join(IMAGE_EXTENSIONS[:4])}, ...)"
                )
            first = read_image(self._files[0])
            self.size = (first.shape[1], first.shape[0])
            self.num_frames = len(self._files)
            self.fps = float(fps) if fps else DEFAULT_FPS
        elif ext == ".gif":
            self.kind = "gif"
            self._init_gif(fps)
        elif ext in IMAGE_EXTENSIONS:
            self.kind = "image"
            first = read_image(p)
            self.size = (first.shape[1], first.shape[0])
            self.num_frames = 1
            self.fps = float(fps) if fps else DEFAULT_FPS
        else:
            self.kind = "ffmpeg"
            if os.path.getsize(p) == 0:
                raise V2VError(f"{p}: contains no frames (empty file)")
            info = _probe(p)
            self._crop = info["crop"]
            self._stream = info["stream"]
            self.size = info["crop"] or info["size"]
            self._coded = info["size"]
            pf = info["pix_fmt"]
            self._alpha = (
                pf.startswith(("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya")) or pf == "pal8"
            )
            count, f_cv = _cv2_info(p)
            self.num_frames = count if ext in _EXACT_COUNT else None
            if fps:
                self.fps = float(fps)
            else:
                f = info["fps"]
                # the header prints e.g. "29.97 fps"; cv2 gives the exact rational when it agrees
                self.fps = f_cv if (f_cv and (not f or abs(f_cv - f) <= 0.01 * f)) else (f or DEFAULT_FPS)
        if self.kind != "ffmpeg":
            self._coded = self.size

    # -- gif
    def _init_gif(self, fps):
        try:
            from PIL import Image

            with Image.open(self.path) as im:
                self.size = im.size
                self.num_frames = int(getattr(im, "n_frames", 1))
                dur = im.info.get("duration") or 0
        except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad files
            raise V2VError(f"{self.path}: cannot decode (truncated or not a GIF: {e})") from None
        if self.num_frames < 1:
            raise V2VError(f"{self.path}: contains no frames")
        self.fps = float(fps) if fps else (1000.0 / dur if dur else DEFAULT_FPS)

    def _iter_gif(self):
        from PIL import Image

        try:
            with Image.open(self.path) as im:
                for i in range(self.num_frames):
                    im.seek(i)
                    yield to_rgb_uint8(np.asarray(im.convert("RGBA")), name=self.path)
        except (OSError, EOFError, ValueError) as e:
            raise V2VError(f"{self.path}: cannot decode (truncated or not a GIF: {e})") from None

    # -- ffmpeg
    def _iter_ffmpeg(self):
        w, h = self._coded  # decode the coded size; the v2v:size crop is a numpy slice
        cw, ch = self.size
        nch = 4 if self._alpha else 3
        cmd = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", self.path]
        cmd += ["-map", f"0:v:{self._stream}"]
        cmd += [
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgba" if self._alpha else "rgb24",
            "-",
        ]
        nbytes = w * h * nch
        errf = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf, bufsize=nbytes
        )
        self._proc = proc
        n = 0
        try:
            while True:
                buf = proc.stdout.read(nbytes)
                if not buf:
                    break
                if len(buf) < nbytes:
                    raise V2VError(
                        f"{self.path}: cannot decode (truncated or not a video): frame {n} is incomplete"
                    )
                frame = np.frombuffer(buf, np.uint8).reshape(h, w, nch)[:ch, :cw]
                n += 1
                yield to_rgb_uint8(frame, name=self.path) if nch == 4 else frame.copy()
            rc = proc.wait()
            if n == 0:
                errf.seek(0)
                msg = errf.read().decode("utf-8", "replace").strip().splitlines()
                why = f": {msg[-1]}" if (rc and msg) else ""
                raise V2VError(f"{self.path}: contains no frames{why}")
            if self.num_frames is not None and n < self.num_frames:
                errf.seek(0)
                logged = bool(errf.read().strip())
                # A truncated file always makes ffmpeg log errors ("partial file", "Invalid NAL
                # unit size"); a deficit of 1-2 frames without errors is an mp4 edit list
                # dropping leading frames, which is legitimate.
                if logged or self.num_frames - n > 2:
                    raise V2VError(
                        f"{self.path}: cannot decode (truncated or not a video): decoded {n} of "
                        f"{self.num_frames} frames the container announces"
                    )
                self.num_frames = n
            if rc != 0:
                errf.seek(0)
                msg = errf.read().decode("utf-8", "replace").strip().splitlines()
                raise V2VError(
                    f"{self.path}: cannot decode (truncated or not a video) after {n} frames"
                    + (f": {msg[-1]}" if msg else "")
                )
        finally:
            self._stop(proc)
            errf.close()

    @staticmethod
    def _stop(proc):
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.kill()
        with contextlib.suppress(Exception):
            proc.stdout.close()
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)

    def __iter__(self):
        if self.kind == "ffmpeg":
            return self._iter_ffmpeg()
        if self.kind == "gif":
            return self._iter_gif()
        if self.kind == "image":
            return iter([read_image(self.path)])
        return self._iter_folder()

    def _iter_folder(self):
        w, h = self.size
        for f in self._files:
            img = read_image(f)
            if img.shape[:2] != (h, w):
                raise V2VError(
                    f"{f}: frame size {img.shape[1]}x{img.shape[0]} differs from the first frame's {w}x{h}"
                )
            yield img

    def read(self, indices=None, max_frames: int | None = None) -> np.ndarray:
        """Decode frames into ``np.uint8 (T, H, W, 3)``.

        ``indices``: a list of frame indices (any order, repeats allowed), decoded in one pass
        that stops after the largest index (frame folders and GIFs read only those frames).
        ``None`` reads all frames (at most ``max_frames``). An index past the end raises V2VError.
        """
        if indices is None:
            out = []
            for i, f in enumerate(self):
                if max_frames is not None and i >= max_frames:
                    break
                out.append(f)
            return np.stack(out)
        idx = [int(i) for i in indices]
        if not idx:
            w, h = self.size
            return np.zeros((0, h, w, 3), np.uint8)
        if min(idx) < 0:
            raise V2VError(f"{self.path}: negative frame index {min(idx)}")
        if self.num_frames is not None and max(idx) >= self.num_frames:
            raise V2VError(
                f"{self.path}: frame {max(idx)} requested but the video has {self.num_frames} frames"
            )
        if self.kind == "folder":
            return np.stack([read_image(self._files[i]) for i in idx])
        want = set(idx)
        last = max(idx)
        got: dict[int, np.ndarray] = {}
        it = iter(self)
        try:
            for i, f in enumerate(it):
                if i in want:
                    got[i] = f
                if i >= last:
                    break
        finally:
            with contextlib.suppress(Exception):
                it.close()
        if last not in got:
            raise V2VError(
                f"{self.path}: frame {last} requested but only {len(got) and max(got) + 1} frames decode"
            )
        return np.stack([got[i] for i in idx])

    def batches(self, n: int, size=None, device=None):
        """Yield float32 tensors ``B,3,H,W`` in [0, 1] with ``B <= n`` (the last may be short).

        ``size = (H, W)`` resizes each frame (INTER_AREA when shrinking, bilinear when
        enlarging); ``device`` moves the batch (pinned-free, non-blocking copy).
        """
        import torch

        if n < 1:
            raise V2VError(f"batches: n must be >= 1, got {n}")
        buf = []
        for f in self:
            if size is not None:
                f = resize_image(f, size)
            buf.append(f)
            if len(buf) == n:
                yield self._to_batch(buf, device, torch)
                buf = []
        if buf:
            yield self._to_batch(buf, device, torch)

    @staticmethod
    def _to_batch(frames, device, torch):
        a = np.stack(frames)
        t = torch.from_numpy(a).permute(0, 3, 1, 2).float().div_(255.0)
        return t if device is None else t.to(device, non_blocking=True)

    @property
    def meta(self) -> dict:
        """``{"path", "fps", "size" (W,H), "num_frames", "kind"}``."""
        return {
            "path": self.path,
            "fps": self.fps,
            "size": self.size,
            "num_frames": self.num_frames,
            "kind": self.kind,
        }

    def close(self):
        """Stop a running decoder (also done by the context manager and at the end of iteration)."""
        self._stop(self._proc)
        self._proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"VideoReader({self.path!r}, kind={self.kind}, fps={self.fps:g}, size={self.size}, num_frames={self.num_frames})"


def open_video(path: str | os.PathLike, fps: float | None = None) -> VideoReader:
    """Open a video file, GIF, frame folder or single image for streaming; see :class:`VideoReader`.

    ``fps`` overrides the frame rate (frame folders and images have none; default 25).
    """
    return VideoReader(path, fps=fps)


def read_video(path: str | os.PathLike, fps: float | None = None, max_frames: int | None = None):
    """Decode a whole video: ``(np.uint8 (T, H, W, 3) RGB, meta)`` with meta as ``VideoReader.meta``."""
    with open_video(path, fps=fps) as r:
        frames = r.read(max_frames=max_frames)
        meta = r.meta
    if max_frames is None or meta["num_frames"] is None:
        meta["num_frames"] = len(frames)  # what actually decoded
    return frames, meta


# --------------------------------------------------------------------------------------------
# writer


def _fps_fraction(fps: float) -> str:
    fr = Fraction(str(float(fps))).limit_denominator(100000)
    if abs(float(fr) - 30000 / 1001) < 1e-3:
        fr = Fraction(30000, 1001)
    elif abs(float(fr) - 24000 / 1001) < 1e-3:
        fr = Fraction(24000, 1001)
    return f"{fr.numerator}/{fr.denominator}"


class VideoWriter:
    """Atomic video writer: mp4/mov/mkv/avi (H.264), webm (VP9), gif, or a frame folder.

    ``VideoWriter(path, fps, quality=8, crf=None, codec=None, preset="medium")``.
    ``write(frame)`` accepts ``np.uint8 (H,W,3)`` RGB, or a float tensor/array ``3,H,W`` or
    ``B,3,H,W`` in [0, 1] (B frames are written in order). All frames must share the first
    frame's size.

    Encoding details: H.264 ``libx264`` with ``pix_fmt yuv420p``, ``crf = round(51 - 4.1 *
    quality)`` unless ``crf`` is given (quality 8 -> crf 18), ``-movflags +faststart``. yuv420p
    needs even dimensions (macro-block size 2; we never resize): odd sizes are padded by one
    replicated edge column/row, and the real size is stored in the container comment
    ``v2v:size=WxH`` so :func:`open_video` crops it back. GIF: Pillow, 256-colour (fast octree)
    palette per frame, duration rounded to 10 ms. Folder: ``000000.png`` ... (lossless).

    Output appears only on a clean :meth:`close` (temp file + ``os.replace``); :meth:`abort`
    (called when an exception leaves the ``with`` block) removes every temp file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        quality: float = 8,
        crf: int | None = None,
        codec: str | None = None,
        preset: str = "medium",
    ):
        p = os.fspath(path)
        if not fps or float(fps) <= 0:
            raise V2VError(f"{p}: fps must be > 0, got {fps!r}")
        self.path = p
        self.fps = float(fps)
        ext = os.path.splitext(p.rstrip("/\\"))[1].lower()
        if p.endswith(("/", os.sep)) or ext == "":
            self.kind = "folder"
        elif ext == ".gif":
            self.kind = "gif"
        elif ext in _X264 or ext == ".webm":
            self.kind = "ffmpeg"
        else:
            raise V2VError(
                f"{p}: unsupported video extension '{ext}' (valid: .mp4 .mov .m4v .mkv .avi .webm .gif, or a folder)"
            )
        if not 0 <= float(quality) <= 10:
            raise V2VError(f"{p}: quality must be in [0, 10], got {quality}")
        self.crf = int(crf) if crf is not None else round(51 - 4.1 * float(quality))
        self.codec = codec or ("libvpx-vp9" if ext == ".webm" else "libx264")
        self.preset = preset
        self.size = None  # (W, H) of the first frame
        self.num_frames = 0
        self._ctx = None
        self._tmp = None
        self._proc = None
        self._errf = None
        self._gif = []
        self._closed = False

    # -- lifecycle
    def _start(self, w: int, h: int):
        self.size = (w, h)
        target = self.path.rstrip("/\\") if self.kind == "folder" else self.path
        parent = os.path.dirname(os.path.abspath(target))
        os.makedirs(parent, exist_ok=True)
        if self.kind == "folder":
            self._tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=parent)
            os.chmod(self._tmp, default_file_mode(directory=True))  # mkdtemp's 0700 ignores the umask
            return
        self._ctx = atomic_path(target)
        self._tmp = self._ctx.__enter__()
        if self.kind == "gif":
            return
        pw, ph = w + (w % 2), h + (h % 2)
        cmd = [
            _ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{pw}x{ph}",
            "-r",
            _fps_fraction(self.fps),
            "-i",
            "-",
            "-an",
            "-c:v",
            self.codec,
            "-pix_fmt",
            "yuv420p",
        ]
        if self.codec == "libx264":
            cmd += ["-crf", str(self.crf), "-preset", self.preset]
        elif self.codec == "libvpx-vp9":
            cmd += [
                "-crf",
                str(self.crf),
                "-b:v",
                "0",
                "-row-mt",
                "1",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ]
        if os.path.splitext(target)[1].lower() in (".mp4", ".mov", ".m4v"):
            cmd += ["-movflags", "+faststart"]
        if (pw, ph) != (w, h):
            cmd += ["-metadata", f"comment=v2v:size={w}x{h}"]
        cmd += [self._tmp]
        self._errf = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close/abort  # noqa: SIM115 - closed in finally
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._errf
            )
        except OSError as e:
            self.abort()
            raise V2VError(f"{self.path}: cannot start ffmpeg ({e})") from None

    def _frames(self, frame):
        try:
            import torch

            if isinstance(frame, torch.Tensor) and frame.dim() == 4:
                return [_as_uint8_hwc(f, self.path) for f in frame]
        except ImportError:  # pragma: no cover
            pass
        a = frame
        if isinstance(a, np.ndarray) and a.ndim == 4:
            if a.dtype == np.uint8:
                return [_as_uint8_hwc(f, self.path) for f in a]
            return list(_as_uint8_hwc(a, self.path))
        return [_as_uint8_hwc(a, self.path)]

    def write(self, frame) -> None:
        """Append one frame (uint8 HWC RGB, float 3,H,W) or a batch (float B,3,H,W / uint8 T,H,W,3)."""
        if self._closed:
            raise V2VError(f"{self.path}: write() after close()")
        for f in self._frames(frame):
            h, w = f.shape[:2]
            if self.size is None:
                self._start(w, h)
            elif (w, h) != self.size:
                raise V2VError(
                    f"{self.path}: frame {self.num_frames} is {w}x{h}, expected {self.size[0]}x{self.size[1]} like the first frame"
                )
            if self.kind == "folder":
                from v2v.data.image import write_image

                write_image(os.path.join(self._tmp, f"{self.num_frames:06d}.png"), f)
            elif self.kind == "gif":
                self._gif.append(f)
            else:
                if (w % 2) or (h % 2):
                    f = np.pad(f, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                try:
                    self._proc.stdin.write(np.ascontiguousarray(f).tobytes())
                except (BrokenPipeError, OSError):
                    msg = self._stderr()
                    self.abort()
                    raise V2VError(
                        f"{self.path}: ffmpeg stopped while encoding{': ' + msg if msg else ''}"
                    ) from None
            self.num_frames += 1

    def _stderr(self) -> str:
        if self._errf is None:
            return ""
        with contextlib.suppress(Exception):
            self._errf.seek(0)
            lines = self._errf.read().decode("utf-8", "replace").strip().splitlines()
            return lines[-1] if lines else ""
        return ""

    def close(self) -> None:
        """Finish encoding and move the output into place (no-op when already closed)."""
        if self._closed:
            return
        if self.num_frames == 0:
            self._closed = True
            raise V2VError(f"{self.path}: no frames were written")
        try:
            if self.kind == "folder":
                self._finish_folder()
            elif self.kind == "gif":
                self._finish_gif()
            else:
                self._proc.stdin.close()
                rc = self._proc.wait()
                if rc != 0:
                    raise V2VError(f"{self.path}: ffmpeg failed (exit {rc}): {self._stderr()}")
                self._proc = None
        except BaseException as e:
            self.abort(e)
            raise
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)  # os.replace onto the target
            self._ctx = None
        if self._errf is not None:
            self._errf.close()
            self._errf = None
        self._closed = True

    def _finish_gif(self):
        from PIL import Image

        ms = max(10, round(1000.0 / self.fps / 10.0) * 10)
        ims = [
            Image.fromarray(f).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            for f in self._gif
        ]
        ims[0].save(
            self._tmp,
            format="GIF",
            save_all=True,
            append_images=ims[1:],
            duration=ms,
            loop=0,
            optimize=False,
            disposal=1,
        )
        self._gif = []

    def _finish_folder(self):
        target = os.path.abspath(self.path.rstrip("/\\"))
        old = None
        if os.path.lexists(target):
            if not os.path.isdir(target):
                raise V2VError(f"{target}: exists and is not a folder; cannot write frames there")
            old = tempfile.mkdtemp(
                prefix=f".{os.path.basename(target)}.", suffix=".old", dir=os.path.dirname(target)
            )
            os.rmdir(old)
            os.replace(target, old)
        try:
            os.replace(self._tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        self._tmp = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self, exc: BaseException | None = None) -> None:
        """Drop everything written so far: kill ffmpeg, delete the temp output."""
        self._closed = True
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.kill()
            with contextlib.suppress(Exception):
                self._proc.stdin.close()
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=5)
            self._proc = None
        if self._ctx is not None:
            err = exc if exc is not None else RuntimeError("aborted")
            with contextlib.suppress(BaseException):
                self._ctx.__exit__(type(err), err, None)  # removes the temp file
            self._ctx = None
        elif self.kind == "folder" and self._tmp and os.path.isdir(self._tmp):
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
        self._gif = []
        if self._errf is not None:
            with contextlib.suppress(Exception):
                self._errf.close()
            self._errf = None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.close()
        else:
            self.abort(ev)
        return False

    def __del__(self):  # never leave temp files behind when a writer is dropped unclosed
        with contextlib.suppress(Exception):
            if not self._closed:
                self.abort()


def write_video(path: str | os.PathLike, frames, fps: float, **kwargs) -> None:
    """Write frames atomically (see :class:`VideoWriter` for formats and ``kwargs``).

    ``frames``: an iterable of frames, ``np.uint8 (T,H,W,3)``, or a float tensor ``T,3,H,W``
    (or ``1,T,3,H,W``) in [0, 1].
    """
    try:
        import torch

        if isinstance(frames, torch.Tensor) and frames.dim() == 5:
            if frames.shape[0] != 1:
                raise V2VError(
                    f"{path}: write_video takes one video (1,T,3,H,W), got batch {frames.shape[0]}"
                )
            frames = frames[0]
    except ImportError:  # pragma: no cover
        pass
    with VideoWriter(path, fps, **kwargs) as w:
        for f in frames:
            w.write(f)
