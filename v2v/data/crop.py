"""Automatic square crops of faces or bodies in videos and images (FOMM ``crop-video.py`` semantics).

FOMM and its successors expect the subject centred in a square frame. This module finds the
subject in every frame with a detector, links the detections into *tubes* over time, and turns
each long enough tube into one stable square crop:

1. **Detect** boxes ``(x0, y0, x1, y1)`` in pixels per frame (:func:`make_detector`):

   - ``fan``: face-alignment's S3FD face detector, when its weights are in the torch hub cache;
   - ``mediapipe``: MediaPipe face detection (face) or pose landmarks (body), with ``v2v[pose]``;
   - ``haar``: OpenCV's Haar cascades, shipped inside opencv-python (always available, offline).

   ``auto`` picks the first available in that order and says which.
2. **Track** (FOMM ``process_video``): a tube keeps its *initial* box and the union of all boxes
   assigned to it. A frame's box joins the tube whose union box overlaps it most, if that IoU is
   above ``iou_with_initial``; otherwise it starts a new tube. A tube ends when no box of the
   current frame overlaps its initial box by more than ``iou_with_initial``.
3. **Crop** (FOMM ``compute_bbox``): the union box is enlarged by ``increase`` of its size on
   every side, and the shorter side further, so that the crop is as square as the frame allows;
   it is clipped to the frame. Tubes shorter than ``min_frames`` are dropped.

A single image is a one-frame video (``min_frames`` is then 1).

Boxes are integer pixel coordinates ``(left, top, right, bottom)``, right/bottom exclusive.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

import numpy as np

from v2v.errors import V2VError, unknown_key_message

__all__ = ["DETECTORS", "CropTube", "crop_box", "find_tubes", "iou", "make_detector"]

DETECTORS = ("auto", "fan", "mediapipe", "haar")
FAN_DETECTOR_FILE = "s3fd-619a316812.pth"


def iou(a, b) -> float:
    """Intersection over union of two boxes ``(x0, y0, x1, y1)``.

    >>> iou((0, 0, 2, 2), (1, 0, 3, 2))
    0.3333333333333333
    """
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _join(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def crop_box(box, frame_hw, increase: float = 0.1) -> tuple[int, int, int, int]:
    """FOMM's ``compute_bbox``: enlarge ``box`` by ``increase`` per side, squarer, clipped to the frame.

    Args:
        box: ``(x0, y0, x1, y1)`` union box in pixels.
        frame_hw: ``(H, W)`` of the frame.
        increase: fraction of the box size added on every side (FOMM ``--increase``, 0.1).

    Returns:
        ``(left, top, right, bottom)`` integers, inside the frame.

    Example:
        >>> crop_box((40, 40, 60, 80), (200, 200))
        (26, 36, 74, 84)
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    wi = max(increase, ((1 + 2 * increase) * h - w) / (2 * w))
    hi = max(increase, ((1 + 2 * increase) * w - h) / (2 * h))
    left, top = int(x0 - wi * w), int(y0 - hi * h)
    right, bottom = int(x1 + wi * w), int(y1 + hi * h)
    H, W = int(frame_hw[0]), int(frame_hw[1])
    return max(0, left), max(0, top), min(right, W), min(bottom, H)


@dataclass
class CropTube:
    """One tracked subject: frames ``start..end`` (inclusive) and its square-ish crop box."""

    start: int
    end: int
    initial: tuple
    union: tuple
    box: tuple | None = None  # (left, top, right, bottom) after crop_box
    missed: int = 0  # consecutive frames without a detection (tracking state)

    @property
    def frames(self) -> int:
        return self.end - self.start + 1

    def ffmpeg_command(self, inp: str, out: str, fps: float, size: int | None = 256) -> str:
        """The ffmpeg command that cuts this tube out of ``inp`` (as FOMM's script prints it)."""
        left, top, right, bottom = self.box
        vf = f"crop={right - left}:{bottom - top}:{left}:{top}" + (f",scale={size}:{size}" if size else "")
        return (f"ffmpeg -i {shlex.quote(inp)} -ss {self.start / fps:.3f} -t {self.frames / fps:.3f} "
                f"-filter:v {shlex.quote(vf)} {shlex.quote(out)}")


def find_tubes(frames, detector, increase: float = 0.1, iou_with_initial: float = 0.25,
               min_frames: int = 150, max_gap: int = 0) -> list[CropTube]:
    """Detect, link and crop (module docstring, steps 1-3) over an iterable of ``H,W,3`` uint8 frames.

    ``max_gap``: a tube survives up to this many consecutive frames in which no detection
    overlaps its initial box (a turned head, a missed detection); ``0`` is FOMM's behaviour,
    which ends a tube at the first such frame. Frames inside a gap still belong to the tube.

    Returns the tubes of at least ``min_frames`` frames, longest first, each with its ``box``.

    Example:
        >>> frames = [np.zeros((64, 64, 3), np.uint8)] * 3
        >>> find_tubes(frames, lambda f: [(20, 20, 40, 44)], min_frames=3)[0].box
        (15, 17, 44, 46)
    """
    done: list[CropTube] = []
    live: list[CropTube] = []
    hw = None
    for i, frame in enumerate(frames):
        hw = frame.shape[:2]
        boxes = [tuple(float(v) for v in b[:4]) for b in detector(frame)]
        keep = []
        for t in live:
            seen = any(iou(t.initial, b) > iou_with_initial for b in boxes)
            t.missed = 0 if seen else t.missed + 1
            (keep if t.missed <= max_gap else done).append(t)
        live = keep
        for b in boxes:
            best, best_iou = None, 0.0
            for t in live:
                o = iou(t.union, b)
                if o > best_iou and o > iou_with_initial:
                    best, best_iou = t, o
            if best is None:
                live.append(CropTube(i, i, b, b))
            else:
                best.end, best.union = i, _join(best.union, b)
    out = [t for t in done + live if t.frames >= min_frames]
    for t in out:
        t.box = crop_box(t.union, hw, increase)
    return sorted(out, key=lambda t: -t.frames)


# ----------------------------------------------------------------------------------- detectors


def _haar(target: str):
    import cv2

    names = (["haarcascade_frontalface_default.xml", "haarcascade_profileface.xml"] if target == "face"
             else ["haarcascade_fullbody.xml", "haarcascade_upperbody.xml"])
    base = getattr(getattr(cv2, "data", None), "haarcascades", "") or ""
    cascades = []
    for n in names:
        path = os.path.join(base, n)
        if os.path.isfile(path):
            c = cv2.CascadeClassifier(path)
            if not c.empty():
                cascades.append(c)
    if not cascades:
        raise V2VError(f"OpenCV Haar cascades not found in '{base}' (opencv-python 4.x ships them; "
                       f"install opencv-python<5)")

    def detect(frame):
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        s = min(1.0, 320.0 / max(h, w))  # detect on at most 320 px: subjects to crop are large
        if s < 1.0:
            gray = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(24, min(gray.shape) // 8)
        for c in cascades:  # the first cascade that finds something wins (frontal before profile)
            found = c.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
            if len(found):
                # the largest detection is the subject; FOMM keeps all, but Haar false positives are small
                x, y, bw, bh = max(found, key=lambda r: r[2] * r[3])
                return [(x / s, y / s, (x + bw) / s, (y + bh) / s)]
        return []

    return detect


def _fan(device: str):
    import torch

    if not os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", FAN_DETECTOR_FILE)):
        return None
    from face_alignment.detection.sfd import FaceDetector

    det = FaceDetector(device=device)

    def detect(frame):
        boxes = det.detect_from_image(np.ascontiguousarray(frame[..., ::-1]))
        return [tuple(b[:4]) for b in boxes if len(b) < 5 or b[4] > 0.5]

    return detect


def _mediapipe(target: str):
    try:
        import mediapipe as mp
    except ImportError:
        return None
    if target == "face":
        fd = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)

        def detect(frame):
            h, w = frame.shape[:2]
            res = fd.process(np.ascontiguousarray(frame))
            out = []
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                out.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
            return out

        return detect
    pose = mp.solutions.pose.Pose(static_image_mode=False)

    def detect_body(frame):
        h, w = frame.shape[:2]
        res = pose.process(np.ascontiguousarray(frame))
        if not res.pose_landmarks:
            return []
        pts = np.array([(p.x * w, p.y * h) for p in res.pose_landmarks.landmark if p.visibility > 0.5])
        if not len(pts):
            return []
        return [(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())]

    return detect_body


def make_detector(name: str = "auto", target: str = "face", device: str = "cpu"):
    """Build a detector ``frame (H,W,3 uint8 RGB) -> list of (x0, y0, x1, y1)``.

    Args:
        name: ``auto`` (best available: fan, mediapipe, haar), ``fan``, ``mediapipe`` or ``haar``.
        target: ``face`` or ``body`` (``fan`` detects faces only).
        device: for ``fan``.

    Returns:
        ``(detector, name_used)``.

    Example:
        >>> det, used = make_detector("haar")
        >>> used, det(np.zeros((64, 64, 3), np.uint8))
        ('haar', [])
    """
    if name not in DETECTORS:
        raise V2VError(unknown_key_message("detector", name, DETECTORS))
    if target not in ("face", "body"):
        raise V2VError(unknown_key_message("crop target", target, ("face", "body")))
    order = ["fan", "mediapipe", "haar"] if name == "auto" else [name]
    for n in order:
        if n == "fan" and target == "face":
            det = _fan(device)
        elif n == "mediapipe":
            det = _mediapipe(target)
        elif n == "haar":
            det = _haar(target)
        else:
            det = None
        if det is not None:
            return det, n
        if name != "auto":
            why = {"fan": f"face-alignment's S3FD weights ({FAN_DETECTOR_FILE}) are not in the torch hub cache"
                          if target == "face" else "fan detects faces only",
                   "mediapipe": "mediapipe is not installed (pip install 'v2v[pose]')"}[n]
            raise V2VError(f"detector '{n}' is not available: {why}")
    raise V2VError("no face/body detector available")  # pragma: no cover - haar always exists
